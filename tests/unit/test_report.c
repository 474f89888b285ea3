/* test_report.c — the fleet reports of docs/protocol.md (lib/report.c): the
 * envelope a consumer builds parses back; the checks a reader applies
 * refuse what they must, table-driven; the digests of a run. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "report.h"
#include "suite_main.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(envelope_round_trip)
{
	struct pb_err e = PB_ERR_INIT;
	json_t *o = pb_report_new(PB_REPORT_PRESENCE, "seatgeek", "us-east-1", "www-01", 1000);
	char rk[128], *text;
	json_t *back;

	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(pb_report_routing_key("us-east-1", "presence", "www-01", rk, sizeof(rk)),
			 "us-east-1.presence.www-01");
	text = json_dumps(o, JSON_COMPACT);
	back = pb_report_parse(text, strlen(text), "provbus.seatgeek", rk, &e);
	ck_assert_msg(back != NULL, "%s", e.msg);
	ck_assert_str_eq(pb_report_str(back, "kind"), "presence");
	ck_assert_str_eq(pb_report_str(back, "ts"), "1970-01-01T00:00:01.000Z");
	ck_assert_int_eq((int)strlen(pb_report_str(back, "id")), 36);
	json_decref(back);
	json_decref(o);
	free(text);
}
END_TEST

struct bad {
	const char *body, *exchange, *rk, *want;	/* want: in the message */
};

#define OKBODY(extra) "{\"v\":1,\"id\":\"x\",\"kind\":\"run\",\"federation\":\"f\",\"region\":\"r\"," \
		      "\"node\":\"n\",\"ts\":\"t\"" extra "}"
static const struct bad bads[] = {
	{ "[1]", NULL, NULL, "not a JSON object" },
	{ "{", NULL, NULL, "not JSON" },
	{ "{\"v\":2,\"id\":\"x\",\"kind\":\"run\",\"federation\":\"f\",\"region\":\"r\",\"node\":\"n\",\"ts\":\"t\"}",
	  NULL, NULL, "'v'" },
	{ "{\"v\":1,\"id\":\"x\",\"kind\":\"provides\",\"federation\":\"f\",\"region\":\"r\",\"node\":\"n\",\"ts\":\"t\"}",
	  NULL, NULL, "'kind'" },
	{ "{\"v\":1,\"kind\":\"run\",\"federation\":\"f\",\"region\":\"r\",\"node\":\"n\",\"ts\":\"t\"}",
	  NULL, NULL, "'id'" },
	{ "{\"v\":1,\"id\":\"x\",\"kind\":\"run\",\"federation\":\"f\",\"region\":\"r\",\"node\":\"N\",\"ts\":\"t\"}",
	  NULL, NULL, "'node'" },
	{ "{\"v\":1,\"id\":\"x\",\"kind\":\"run\",\"federation\":\"f\",\"region\":\"r\",\"node\":\"n\"}",
	  NULL, NULL, "'ts'" },
	{ OKBODY(""), NULL, "r.run.other", "routing key" },
	{ OKBODY(""), NULL, "r.presence.n", "routing key" },
	{ OKBODY(""), "provbus.g", "r.run.n", "exchange" },
	{ OKBODY(",\"v\":1"), NULL, NULL, "not JSON" },	/* duplicate member */
	/* the text rule of events: no control byte, DEL or C1 control in any
	 * string or member name, at any depth */
	{ OKBODY(",\"status\":\"ok\\u001b[2K\""), NULL, NULL, "field 'status': control byte 0x1b" },
	{ OKBODY(",\"keys\":[\"A\",\"B\\u007f\"]"), NULL, NULL, "field 'keys'" },
	{ OKBODY(",\"digests\":{\"K\\u009b\":null}"), NULL, NULL, "C1 control" },
	{ "{\"v\":1,\"id\":\"x\\u0007\",\"kind\":\"run\",\"federation\":\"f\",\"region\":\"r\",\"node\":\"n\",\"ts\":\"t\"}",
	  NULL, NULL, "field 'id': control byte 0x07" },
};

START_TEST(bad_table)
{
	const struct bad *b = &bads[_i];
	struct pb_err e = PB_ERR_INIT;
	json_t *o = pb_report_parse(b->body, strlen(b->body), b->exchange, b->rk, &e);

	ck_assert_msg(o == NULL, "row %d: accepted %s", _i, b->body);
	ck_assert_int_eq(e.code, EX_DATAERR);
	ck_assert_msg(strstr(e.msg, b->want), "row %d: '%s' does not name %s", _i, e.msg, b->want);
}
END_TEST

START_TEST(good_route)
{
	struct pb_err e = PB_ERR_INIT;
	const char *b = OKBODY(",\"future_field\":[1]");
	json_t *o = pb_report_parse(b, strlen(b), "provbus.f", "r.run.n", &e);

	ck_assert_msg(o != NULL, "%s", e.msg);
	json_decref(o);
}
END_TEST

START_TEST(digests)
{
	struct pb_want wants[] = { { "API", "API_URL", NULL }, { "DB", "DB_URL", NULL },
				   { "ENV", NULL, "production" } };
	struct pb_kv values[] = { { "API", "http://a:1" }, { "ENV", "production" } };
	char hex[PB_SHA256_HEX_LEN + 1];
	json_t *d = pb_report_digests(wants, N(wants), values, N(values));

	pb_sha256_hex("http://a:1", 10, hex);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq((int)json_object_size(d), 2);	/* the literal has no key */
	ck_assert_str_eq(json_string_value(json_object_get(d, "API_URL")), hex);
	ck_assert(json_is_null(json_object_get(d, "DB_URL")));	/* no value: null */
	json_decref(d);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_add_test(tc, envelope_round_trip);
	tcase_add_loop_test(tc, bad_table, 0, N(bads));
	tcase_add_test(tc, good_route);
	tcase_add_test(tc, digests);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(report_suite());
}
