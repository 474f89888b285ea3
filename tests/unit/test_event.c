/* test_event.c — the event codec of docs/protocol.md §4: good events round-trip,
 * every bad body is refused with an error naming the field. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "event-private.h"
#include "pbtime.h"
#include "suite_main.h"

#define GOOD_BODY                                                                           \
	"{\"v\": 1, \"id\": \"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0aa\", \"kind\": \"provides\"," \
	" \"federation\": \"seatgeek\", \"region\": \"us-east-1\", \"node\": \"api-03\","       \
	" \"service\": \"api\", \"key\": \"API_URL\", \"value\": \"http://10.0.3.7:1100\","     \
	" \"public\": false, \"seq\": 17, \"ttl_s\": 0, \"ts\": \"2026-11-22T03:00:00.123Z\"}"

static const char *const spec_fields[] = {
	"v", "id", "kind", "federation", "region", "node", "service",
	"key", "value", "public", "seq", "ttl_s", "ts",
};
#define N_FIELDS (sizeof(spec_fields) / sizeof(spec_fields[0]))

static int parse_text(const char *s, struct pb_event *ev, struct pb_err *err)
{
	return pb_event_parse(s, strlen(s), ev, err);
}

static void assert_events_equal(const struct pb_event *a, const struct pb_event *b)
{
	ck_assert_str_eq(a->id, b->id);
	ck_assert_int_eq(a->kind, b->kind);
	ck_assert_str_eq(a->federation, b->federation);
	ck_assert_str_eq(a->region, b->region);
	ck_assert_str_eq(a->node, b->node);
	ck_assert_str_eq(a->service, b->service);
	ck_assert_str_eq(a->key, b->key);
	ck_assert_int_eq(a->has_value, b->has_value);
	ck_assert_uint_eq(a->value_len, b->value_len);
	ck_assert_mem_eq(a->value, b->value, a->value_len);
	ck_assert_int_eq(a->public, b->public);
	ck_assert_int_eq(a->seq, b->seq);
	ck_assert_int_eq(a->ttl_s, b->ttl_s);
	ck_assert_str_eq(a->ts, b->ts);
}

/* ---- good events ---- */

static const struct {
	enum pb_kind kind;
	const char *fed, *region, *node, *service, *key, *value;
	int public;
	int64_t seq, ttl_s;
} good[] = {
	{ PB_KIND_PROVIDES, "seatgeek", "us-east-1", "api-03", "api", "API_URL",
	  "http://10.0.3.7:1100", 0, 17, 0 },
	{ PB_KIND_RETIRE, "seatgeek", "us-east-1", "api-03", "api", "API_URL", NULL, 0, 18, 0 },
	{ PB_KIND_PROVIDES, "p", "r", "n", "S.v_1-x", "_K", "", 1, 0, 300 },
	{ PB_KIND_PROVIDES, "fed-2", "eu-west-1", "www-01", "app-www", "WWW_URL",
	  "it's \"quoted\" \\ $(rm -rf /) `x` \t tab, caf\xc3\xa9 \xe2\x98\x83", 1,
	  INT64_MAX, INT64_MAX },
};

START_TEST(good_round_trips)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev, back;
	size_t len = 0;
	char *text;

	ck_assert_int_eq(pb_event_init(&ev, good[_i].kind, good[_i].fed, good[_i].region,
				       good[_i].node, good[_i].service, good[_i].key,
				       good[_i].value, good[_i].public, good[_i].seq,
				       good[_i].ttl_s, &err), 0);
	ck_assert_int_eq(err.code, 0);
	text = pb_event_encode(&ev, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(text));
	ck_assert_msg(pb_event_parse(text, len, &back, &err) == 0, "%s: %s", text, err.msg);
	assert_events_equal(&ev, &back);
	ck_assert_int_eq(back.has_value, good[_i].kind == PB_KIND_PROVIDES);
	if (good[_i].value)
		ck_assert_str_eq(back.value, good[_i].value);
	free(text);
}
END_TEST

START_TEST(init_fills_id_and_ts)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event a, b;
	int64_t ms, now = pb_now_ms();

	ck_assert_int_eq(pb_event_init(&a, PB_KIND_PROVIDES, "f", "r", "n", "s", "K", "v", 0, 1,
				       0, &err), 0);
	ck_assert_int_eq(pb_event_init(&b, PB_KIND_PROVIDES, "f", "r", "n", "s", "K", "v", 0, 1,
				       0, &err), 0);
	ck_assert_uint_eq(strlen(a.id), 36);
	ck_assert_str_ne(a.id, b.id);
	ck_assert_int_eq(a.id[14], '4');	/* version 4: random */
	for (const char *p = a.id; *p; p++)
		ck_assert_msg(strchr("0123456789abcdef-", *p), "id %s not lowercase hex", a.id);
	ck_assert_int_eq(pb_time_parse_rfc3339(a.ts, &ms, &err), 0);
	ck_assert_msg(ms >= now - 1000 && ms <= now + 5000, "ts %s is not now", a.ts);
	ck_assert_int_eq(a.value_len, 1);
	ck_assert_int_eq(a.has_value, 1);
}
END_TEST

static const struct {
	enum pb_kind kind;
	const char *fed, *region, *node, *service, *key, *value;
	int64_t seq;
	const char *want;
} bad_init[] = {
	{ PB_KIND_PROVIDES, "Seatgeek", "r", "n", "s", "K", "v", 0, "field 'federation'" },
	{ PB_KIND_PROVIDES, "f", "us_east", "n", "s", "K", "v", 0, "field 'region'" },
	{ PB_KIND_PROVIDES, "f", "r", "-n", "s", "K", "v", 0, "field 'node'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s/x", "K", "v", 0, "field 'service'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s", "k", "v", 0, "field 'key'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s", "K", NULL, 0, "field 'value'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s", "K", "a\nb", 0, "field 'value'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s", "K", "a\rb", 0, "field 'value'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s", "K", "bad \xff utf8", 0, "field 'value'" },
	{ PB_KIND_RETIRE, "f", "r", "n", "s", "K", "v", 0, "field 'value'" },
	{ PB_KIND_PROVIDES, "f", "r", "n", "s", "K", "v", -1, "field 'seq'" },
	{ PB_KIND_PROVIDES, NULL, "r", "n", "s", "K", "v", 0, "field 'federation'" },
};

START_TEST(init_refuses_bad)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_int_eq(pb_event_init(&ev, bad_init[_i].kind, bad_init[_i].fed,
				       bad_init[_i].region, bad_init[_i].node,
				       bad_init[_i].service, bad_init[_i].key, bad_init[_i].value,
				       0, bad_init[_i].seq, 0, &err), -1);
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strstr(err.msg, bad_init[_i].want), "%s: want %s", err.msg,
		      bad_init[_i].want);
}
END_TEST

START_TEST(init_value_at_limit)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	char *v = malloc(PB_VALUE_MAX + 2);

	memset(v, 'x', PB_VALUE_MAX);
	v[PB_VALUE_MAX] = '\0';
	ck_assert_int_eq(pb_event_init(&ev, PB_KIND_PROVIDES, "f", "r", "n", "s", "K", v, 0, 0, 0,
				       &err), 0);
	ck_assert_uint_eq(ev.value_len, PB_VALUE_MAX);
	v[PB_VALUE_MAX] = 'x';
	v[PB_VALUE_MAX + 1] = '\0';
	ck_assert_int_eq(pb_event_init(&ev, PB_KIND_PROVIDES, "f", "r", "n", "s", "K", v, 0, 0, 0,
				       &err), -1);
	ck_assert_str_eq(err.msg, "field 'value': 4097 bytes, more than 4096");
	free(v);
}
END_TEST

START_TEST(parse_spec_example)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_msg(parse_text(GOOD_BODY, &ev, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(ev.id, "3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0aa");
	ck_assert_int_eq(ev.kind, PB_KIND_PROVIDES);
	ck_assert_str_eq(ev.federation, "seatgeek");
	ck_assert_str_eq(ev.region, "us-east-1");
	ck_assert_str_eq(ev.node, "api-03");
	ck_assert_str_eq(ev.service, "api");
	ck_assert_str_eq(ev.key, "API_URL");
	ck_assert_str_eq(ev.value, "http://10.0.3.7:1100");
	ck_assert_uint_eq(ev.value_len, 20);
	ck_assert_int_eq(ev.has_value, 1);
	ck_assert_int_eq(ev.public, 0);
	ck_assert_int_eq(ev.seq, 17);
	ck_assert_int_eq(ev.ttl_s, 0);
	ck_assert_str_eq(ev.ts, "2026-11-22T03:00:00.123Z");
}
END_TEST

/* Good bodies that are not what our encoder writes. */
static const char *const good_bodies[] = {
	/* fields in another order, extra fields (forward compatible), offsets */
	"{\"ts\":\"2026-11-22T03:00:00+02:00\",\"extra\":{\"a\":[1]},\"v\":1,\"ttl_s\":5,"
	"\"seq\":0,\"public\":true,\"value\":null,\"key\":\"K\",\"service\":\"s\","
	"\"node\":\"n\",\"region\":\"r\",\"federation\":\"f\",\"kind\":\"retire\","
	"\"id\":\"00000000-0000-0000-0000-000000000000\"}",
	/* uppercase UUID (read as lowercase), whitespace, a 4096-byte value is tested below */
	"\n { \"v\" : 1 , \"id\" : \"3F0C1D52-8D7E-4C35-9A55-B2D1D8C6F0AA\", \"kind\":\"provides\","
	"\"federation\":\"f\",\"region\":\"r\",\"node\":\"n\",\"service\":\"s\",\"key\":\"K\","
	"\"value\":\"caf\\u00e9 \\\"x\\\" \\t\",\"public\":false,\"seq\":9007199254740993,"
	"\"ttl_s\":0,\"ts\":\"2026-11-22T03:00:00Z\"} \n",
};

START_TEST(parse_good_bodies)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_msg(parse_text(good_bodies[_i], &ev, &err) == 0, "%s", err.msg);
	for (const char *p = ev.id; *p; p++)
		ck_assert_msg(strchr("0123456789abcdef-", *p), "id %s not lowercase", ev.id);
	if (_i == 1) {
		ck_assert_str_eq(ev.value, "caf\xc3\xa9 \"x\" \t");
		ck_assert_int_eq(ev.seq, 9007199254740993LL);
	}
}
END_TEST

/* ---- bad bodies: the good body with one field deleted or replaced ---- */

static const struct {
	const char *field;	/* member to change */
	const char *json;	/* its new JSON value; NULL deletes it */
	const char *want;	/* the error must contain this */
} bad_fields[] = {
	{ "v", "2", "field 'v'" },
	{ "v", "0", "field 'v'" },
	{ "v", "\"1\"", "field 'v'" },
	{ "v", "1.0", "field 'v'" },
	{ "v", "true", "field 'v'" },
	{ "v", "null", "field 'v'" },
	{ "id", "1", "field 'id'" },
	{ "id", "\"not-a-uuid\"", "field 'id'" },
	{ "id", "\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0a\"", "field 'id'" },	/* 35 */
	{ "id", "\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0aaa\"", "field 'id'" },	/* 37 */
	{ "id", "\"3f0c1d528-d7e-4c35-9a55-b2d1d8c6f0aa\"", "field 'id'" },	/* dash moved */
	{ "id", "\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0ag\"", "field 'id'" },	/* not hex */
	{ "id", "\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0\\u0000a\"", "field 'id'" },
	{ "id", "\"\"", "field 'id'" },
	{ "kind", "true", "field 'kind'" },
	{ "kind", "\"provide\"", "field 'kind'" },
	{ "kind", "\"PROVIDES\"", "field 'kind'" },
	{ "kind", "\"provides\\u0000x\"", "field 'kind'" },
	{ "federation", "1", "field 'federation'" },
	{ "federation", "\"SeatGeek\"", "field 'federation'" },
	{ "federation", "\"seat.geek\"", "field 'federation'" },
	{ "federation", "\"\"", "field 'federation'" },
	{ "federation", "\"seatgeek\\u0000x\"", "field 'federation'" },
	{ "region", "null", "field 'region'" },
	{ "region", "\"US\"", "field 'region'" },
	{ "region", "\"-us\"", "field 'region'" },
	{ "region", "\"us east\"", "field 'region'" },
	{ "region", "\"us.east\"", "field 'region'" },	/* would break the routing key */
	{ "region", "\"*\"", "field 'region'" },
	{ "region", "\"#\"", "field 'region'" },
	{ "region",
	  "\"a123456789012345678901234567890123456789012345678901234567890123\"",	/* 64 */
	  "field 'region'" },
	{ "node", "[]", "field 'node'" },
	{ "node", "\"api_03\"", "field 'node'" },
	{ "node", "\"n\\nx\"", "field 'node'" },
	{ "service", "{}", "field 'service'" },
	{ "service", "\"\"", "field 'service'" },
	{ "service", "\".api\"", "field 'service'" },
	{ "service", "\"a/b\"", "field 'service'" },
	{ "service", "\"a b\"", "field 'service'" },
	{ "key", "1.5", "field 'key'" },
	{ "key", "\"api_url\"", "field 'key'" },
	{ "key", "\"1API\"", "field 'key'" },
	{ "key", "\"API-URL\"", "field 'key'" },
	{ "key", "\"API.URL\"", "field 'key'" },
	{ "key", "\"\"", "field 'key'" },
	{ "value", "42", "field 'value'" },
	{ "value", "null", "field 'value'" },	/* provides with a null value */
	{ "value", "[\"a\"]", "field 'value'" },
	{ "value", "\"a\\nb\"", "field 'value'" },
	{ "value", "\"a\\rb\"", "field 'value'" },
	{ "value", "\"a\\u0000b\"", "field 'value'" },
	{ "value", "\"\\u0000\"", "field 'value'" },
	{ "value", "\"trailing\\n\"", "field 'value'" },
	{ "public", "\"true\"", "field 'public'" },
	{ "public", "1", "field 'public'" },
	{ "public", "null", "field 'public'" },
	{ "seq", "-1", "field 'seq': want a non-negative integer" },
	{ "seq", "1.5", "field 'seq': want a non-negative integer" },
	{ "seq", "17.0", "field 'seq': want a non-negative integer" },
	{ "seq", "\"17\"", "field 'seq': want a non-negative integer" },
	{ "seq", "null", "field 'seq': want a non-negative integer" },
	{ "ttl_s", "-5", "field 'ttl_s': want a non-negative integer" },
	{ "ttl_s", "true", "field 'ttl_s': want a non-negative integer" },
	{ "ttl_s", "0.5", "field 'ttl_s': want a non-negative integer" },
	{ "ts", "1234", "field 'ts'" },
	{ "ts", "\"yesterday\"", "field 'ts'" },
	{ "ts", "\"\"", "field 'ts'" },
	{ "ts", "\"2026-13-22T03:00:00Z\"", "field 'ts'" },
	{ "ts", "\"2026-11-22T25:00:00Z\"", "field 'ts'" },
	{ "ts", "\"2026-11-22T03:00:00Zjunk\"", "field 'ts'" },
	{ "ts", "\"-2h\"", "field 'ts'" },	/* relative forms are for the CLI only */
	{ "ts", "\"2026-11-22T03:00:00.1234567890123456789012345678901234567890Z\"",
	  "field 'ts'" },
	{ "ts", "\"2026-11-22T03:00:00Z\\u0000x\"", "field 'ts'" },
};

/* The good body with bad_fields[i] applied, as compact JSON (free()). */
static char *mutated_body(size_t i)
{
	json_error_t jerr;
	json_t *o = json_loads(GOOD_BODY, 0, &jerr), *v;
	char *text;

	ck_assert_ptr_nonnull(o);
	if (bad_fields[i].json) {
		v = json_loads(bad_fields[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		ck_assert_msg(v != NULL, "test table: %s: %s", bad_fields[i].json, jerr.text);
		ck_assert_int_eq(json_object_set_new(o, bad_fields[i].field, v), 0);
	} else {
		ck_assert_int_eq(json_object_del(o, bad_fields[i].field), 0);
	}
	text = json_dumps(o, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	json_decref(o);
	return text;
}

START_TEST(parse_refuses_bad_field)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	char *body = mutated_body(_i);

	ck_assert_msg(parse_text(body, &ev, &err) == -1, "accepted: %s", body);
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strstr(err.msg, bad_fields[_i].want), "%s\n  error: %s\n  want: %s", body,
		      err.msg, bad_fields[_i].want);
	free(body);
}
END_TEST

START_TEST(parse_refuses_missing_field)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	json_error_t jerr;
	json_t *o = json_loads(GOOD_BODY, 0, &jerr);
	char want[64], *body;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_object_del(o, spec_fields[_i]), 0);
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ck_assert_msg(parse_text(body, &ev, &err) == -1, "accepted: %s", body);
	snprintf(want, sizeof(want), "field '%s': missing", spec_fields[_i]);
	ck_assert_str_eq(err.msg, want);
	ck_assert_int_eq(err.code, EX_DATAERR);
	free(body);
}
END_TEST

/* A retire event: value must be null, a string is refused; missing too. */
START_TEST(parse_retire_value_rules)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	json_error_t jerr;
	json_t *o = json_loads(GOOD_BODY, 0, &jerr);
	char *body;

	json_object_set_new(o, "kind", json_string("retire"));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_msg(strstr(err.msg, "field 'value'"), "%s", err.msg);
	free(body);

	json_object_set_new(o, "value", json_string(""));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_msg(strstr(err.msg, "field 'value'"), "%s", err.msg);
	free(body);

	json_object_set_new(o, "value", json_null());
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_msg(parse_text(body, &ev, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ev.kind, PB_KIND_RETIRE);
	ck_assert_int_eq(ev.has_value, 0);
	free(body);

	json_object_del(o, "value");
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_str_eq(err.msg, "field 'value': missing");
	free(body);
	json_decref(o);
}
END_TEST

/* value at 4096 bytes passes, 4097 fails with its size named */
START_TEST(parse_value_size_limit)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	json_error_t jerr;
	json_t *o = json_loads(GOOD_BODY, 0, &jerr);
	char *v = malloc(5001), *body;

	memset(v, 'x', 5000);
	v[5000] = '\0';
	json_object_set_new(o, "value", json_stringn(v, PB_VALUE_MAX));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_msg(parse_text(body, &ev, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(ev.value_len, PB_VALUE_MAX);
	ck_assert_uint_eq(strlen(ev.value), PB_VALUE_MAX);
	free(body);

	json_object_set_new(o, "value", json_stringn(v, PB_VALUE_MAX + 1));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_str_eq(err.msg, "field 'value': 4097 bytes, more than 4096");
	free(body);

	json_object_set_new(o, "value", json_string(v));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_str_eq(err.msg, "field 'value': 5000 bytes, more than 4096");
	free(body);

	/* multi-byte characters count in bytes: 2049 x "é" = 4098 bytes */
	{
		char *u = malloc(2 * 2049 + 1);
		for (int k = 0; k < 2049; k++)
			memcpy(u + 2 * k, "\xc3\xa9", 2);
		u[2 * 2049] = '\0';
		json_object_set_new(o, "value", json_string(u));
		body = json_dumps(o, JSON_COMPACT);
		ck_assert_int_eq(parse_text(body, &ev, &err), -1);
		ck_assert_str_eq(err.msg, "field 'value': 4098 bytes, more than 4096");
		free(body);
		free(u);
	}
	json_decref(o);
	free(v);
}
END_TEST

/* ---- bodies that are not a JSON object at all ---- */

START_TEST(parse_refuses_non_objects)
{
	static const char *const texts[] = {
		"", " ", "[]", "[" GOOD_BODY "]", "1", "\"x\"", "null", "true",
		"{", "{\"v\":1", GOOD_BODY "x", GOOD_BODY GOOD_BODY, "{'v':1}",
		"\xef\xbb\xbf" GOOD_BODY,	/* a BOM */
		"{\"v\":1,\"v\":1}",		/* duplicate member */
	};
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		pb_err_clear(&err);
		ck_assert_msg(parse_text(texts[i], &ev, &err) == -1, "accepted: %s", texts[i]);
		ck_assert_int_eq(err.code, EX_DATAERR);
		ck_assert_msg(!strncmp(err.msg, "body: not a JSON object", 23), "%s: %s", texts[i],
			      err.msg);
	}
}
END_TEST

START_TEST(parse_refuses_empty_and_null)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_int_eq(pb_event_parse("", 0, &ev, &err), -1);
	ck_assert_msg(!strncmp(err.msg, "body: not a JSON object", 23), "%s", err.msg);
	ck_assert_int_eq(pb_event_parse(NULL, 0, &ev, &err), -1);
	ck_assert_msg(!strncmp(err.msg, "body: not a JSON object", 23), "%s", err.msg);
	/* the body is len bytes, not a C string: a good body cut short is bad */
	ck_assert_int_eq(pb_event_parse(GOOD_BODY, strlen(GOOD_BODY) - 1, &ev, &err), -1);
	ck_assert_msg(!strncmp(err.msg, "body: not a JSON object", 23), "%s", err.msg);
	/* ... and a good body followed by a NUL byte counted in len is bad */
	ck_assert_int_eq(pb_event_parse(GOOD_BODY, strlen(GOOD_BODY) + 1, &ev, &err), -1);
	ck_assert_msg(!strncmp(err.msg, "body: ", 6), "%s", err.msg);
}
END_TEST

START_TEST(parse_refuses_bad_utf8)
{
	static const struct {
		const char *text, *want;
	} texts[] = {
		{ "{\"v\":1,\"id\":\"\xff\"}", "field 'id': invalid UTF-8 byte 0xff at offset 13" },
		{ "{\"v\":1,\"value\":\"\xc3\x28\"}", "field 'value': invalid UTF-8 byte 0xc3" },
		/* a UTF-16 surrogate */
		{ "{\"v\":1,\"value\":\"\xed\xa0\x80\"}", "field 'value': invalid UTF-8 byte 0xed" },
		/* overlong */
		{ "{\"v\":1,\"value\":\"\xc0\xaf\"}", "field 'value': invalid UTF-8 byte 0xc0" },
		/* outside a string: no field to name */
		{ "{\"v\":1\xff}", "body: invalid UTF-8 byte 0xff at offset 6" },
		/* lone surrogate escape: jansson's own message */
		{ "{\"v\":1,\"value\":\"\\ud800\"}", "body: not a JSON object" },
	};
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		ck_assert_int_eq(parse_text(texts[i].text, &ev, &err), -1);
		ck_assert_msg(strstr(err.msg, texts[i].want), "%s", err.msg);
		for (const char *p = err.msg; *p; p++)
			ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
				      "unprintable byte in error message: %s", err.msg);
	}
}
END_TEST

START_TEST(parse_refuses_random_bytes)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	unsigned char buf[512];
	unsigned int seed = 12345;

	for (int round = 0; round < 500; round++) {
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
		for (size_t k = 0; k < len; k++)
			buf[k] = (unsigned char)rand_r(&seed);
		if (round % 2)
			buf[0] = '{';	/* get past the first byte now and then */
		ck_assert_int_eq(pb_event_parse(buf, len, &ev, &err), -1);
		ck_assert_int_eq(err.code, EX_DATAERR);
		ck_assert_msg(!strncmp(err.msg, "body: ", 6), "%s", err.msg);
		for (const char *p = err.msg; *p; p++)
			ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
				      "unprintable byte in error message: %s", err.msg);
	}
}
END_TEST

/* Deep nesting within 64 KiB must fail cleanly, not exhaust the stack. */
START_TEST(parse_refuses_deep_nesting)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	size_t depth = 30000, n = 0;
	char *body = malloc(2 * depth + 64);

	n += (size_t)sprintf(body, "{\"v\":1,\"x\":");
	memset(body + n, '[', depth);
	n += depth;
	memset(body + n, ']', depth);
	n += depth;
	body[n++] = '}';
	ck_assert_int_eq(pb_event_parse(body, n, &ev, &err), -1);
	ck_assert_msg(!strncmp(err.msg, "body: ", 6), "%s", err.msg);
	free(body);
}
END_TEST

START_TEST(parse_refuses_big_bodies)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	size_t mib = 1024 * 1024;
	char *big = malloc(mib);
	json_error_t jerr;
	json_t *o;
	char *body, *pad;

	/* 1 MiB of anything */
	memset(big, ' ', mib);
	ck_assert_int_eq(pb_event_parse(big, mib, &ev, &err), -1);
	ck_assert_str_eq(err.msg, "body: 1048576 bytes, more than 65536");

	/* a good event padded with an extra member: 65536 bytes pass, 65537 fail */
	o = json_loads(GOOD_BODY, 0, &jerr);
	json_object_set_new(o, "pad", json_string(""));
	body = json_dumps(o, JSON_COMPACT);
	size_t base = strlen(body);
	free(body);
	pad = malloc(PB_EVENT_MAX_BYTES);
	memset(pad, 'p', PB_EVENT_MAX_BYTES - base);
	pad[PB_EVENT_MAX_BYTES - base] = '\0';
	json_object_set_new(o, "pad", json_string(pad));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_uint_eq(strlen(body), PB_EVENT_MAX_BYTES);
	ck_assert_msg(parse_text(body, &ev, &err) == 0, "%s", err.msg);
	free(body);
	pad[PB_EVENT_MAX_BYTES - base] = 'p';
	pad[PB_EVENT_MAX_BYTES - base + 1] = '\0';
	json_object_set_new(o, "pad", json_string(pad));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_str_eq(err.msg, "body: 65537 bytes, more than 65536");
	free(body);
	json_object_set_new(o, "pad", json_stringn(big, 70000 - base));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_str_eq(err.msg, "body: 70000 bytes, more than 65536");
	free(body);
	json_decref(o);
	free(pad);
	free(big);
}
END_TEST

/* Hostile text quoted in an error message is cut and made printable. */
START_TEST(error_messages_are_tame)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	json_error_t jerr;
	json_t *o = json_loads(GOOD_BODY, 0, &jerr);
	char *body, *big = malloc(20001);

	memset(big, 'A', 20000);
	big[20000] = '\0';
	big[3] = '\t';
	big[4] = '\xc3';	/* e acute: valid text, not a valid name */
	big[5] = '\xa9';
	json_object_set_new(o, "region", json_string(big));
	body = json_dumps(o, JSON_COMPACT);
	ck_assert_int_eq(parse_text(body, &ev, &err), -1);
	ck_assert_msg(!strncmp(err.msg, "field 'region': bad name 'AAA???AAA", 35), "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "...'"), "%s", err.msg);
	ck_assert_uint_lt(strlen(err.msg), 400);
	free(body);
	json_decref(o);
	free(big);
}
END_TEST

/* ---- encode ---- */

START_TEST(encode_holds_exactly_spec_fields)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	json_error_t jerr;
	const char *k;
	json_t *o, *v;
	size_t i, len;
	char *text;
	void *iter;

	ck_assert_int_eq(pb_event_init(&ev, _i ? PB_KIND_RETIRE : PB_KIND_PROVIDES, "seatgeek",
				       "us-east-1", "api-03", "api", "API_URL",
				       _i ? NULL : "http://10.0.3.7:1100", 1, 17, 30, &err), 0);
	text = pb_event_encode(&ev, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_null(strchr(text, '\n'));	/* compact */
	ck_assert_ptr_null(strchr(text, ' '));
	o = json_loads(text, 0, &jerr);
	ck_assert_msg(o != NULL, "%s: %s", text, jerr.text);
	ck_assert_uint_eq(json_object_size(o), N_FIELDS);
	/* in protocol order */
	for (i = 0, iter = json_object_iter(o); iter; i++, iter = json_object_iter_next(o, iter)) {
		k = json_object_iter_key(iter);
		ck_assert_str_eq(k, spec_fields[i]);
	}
	ck_assert_int_eq(json_integer_value(json_object_get(o, "v")), 1);
	ck_assert(json_is_integer(json_object_get(o, "v")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "id")), ev.id);
	ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), _i ? "retire" : "provides");
	ck_assert_str_eq(json_string_value(json_object_get(o, "federation")), "seatgeek");
	ck_assert_str_eq(json_string_value(json_object_get(o, "region")), "us-east-1");
	ck_assert_str_eq(json_string_value(json_object_get(o, "node")), "api-03");
	ck_assert_str_eq(json_string_value(json_object_get(o, "service")), "api");
	ck_assert_str_eq(json_string_value(json_object_get(o, "key")), "API_URL");
	v = json_object_get(o, "value");
	if (_i)
		ck_assert(json_is_null(v));
	else
		ck_assert_str_eq(json_string_value(v), "http://10.0.3.7:1100");
	ck_assert(json_is_true(json_object_get(o, "public")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), 17);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ttl_s")), 30);
	ck_assert_str_eq(json_string_value(json_object_get(o, "ts")), ev.ts);
	json_decref(o);
	free(text);
}
END_TEST

START_TEST(encode_exact_text)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	char *text;

	ck_assert_int_eq(parse_text(GOOD_BODY, &ev, &err), 0);
	text = pb_event_encode(&ev, NULL);
	ck_assert_str_eq(text,
			 "{\"v\":1,\"id\":\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0aa\",\"kind\":\"provides\","
			 "\"federation\":\"seatgeek\",\"region\":\"us-east-1\",\"node\":\"api-03\","
			 "\"service\":\"api\",\"key\":\"API_URL\",\"value\":\"http://10.0.3.7:1100\","
			 "\"public\":false,\"seq\":17,\"ttl_s\":0,\"ts\":\"2026-11-22T03:00:00.123Z\"}");
	free(text);
}
END_TEST

/* ---- kinds, names, routes ---- */

START_TEST(kind_names)
{
	enum pb_kind k;

	ck_assert_str_eq(pb_kind_name(PB_KIND_PROVIDES), "provides");
	ck_assert_str_eq(pb_kind_name(PB_KIND_RETIRE), "retire");
	ck_assert_int_eq(pb_kind_parse("provides", &k), 0);
	ck_assert_int_eq(k, PB_KIND_PROVIDES);
	ck_assert_int_eq(pb_kind_parse("retire", &k), 0);
	ck_assert_int_eq(k, PB_KIND_RETIRE);
	ck_assert_int_eq(pb_kind_parse("Retire", &k), -1);
	ck_assert_int_eq(pb_kind_parse("", &k), -1);
	ck_assert_int_eq(pb_kind_parse(NULL, &k), -1);
}
END_TEST

START_TEST(routing_key_and_exchange)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	char buf[256], tiny[8];

	ck_assert_int_eq(parse_text(GOOD_BODY, &ev, &err), 0);
	ck_assert_str_eq(pb_event_routing_key(&ev, buf, sizeof(buf)), "us-east-1.provides.API_URL");
	ck_assert_ptr_null(pb_event_routing_key(&ev, tiny, sizeof(tiny)));
	ev.kind = PB_KIND_RETIRE;
	ck_assert_str_eq(pb_event_routing_key(&ev, buf, sizeof(buf)), "us-east-1.retire.API_URL");
	ck_assert_str_eq(pb_exchange_name("seatgeek", buf, sizeof(buf)), "provbus.seatgeek");
	ck_assert_ptr_null(pb_exchange_name("seatgeek", tiny, sizeof(tiny)));
}
END_TEST

static const struct {
	const char *exchange, *routing_key, *want;	/* want NULL: accepted */
} routes[] = {
	{ "provbus.seatgeek", "us-east-1.provides.API_URL", NULL },
	{ "provbus.seatgeek", "eu-west-1.provides.API_URL",
	  "routing key 'eu-west-1.provides.API_URL' does not match the body's "
	  "us-east-1.provides.API_URL" },
	{ "provbus.seatgeek", "us-east-1.retire.API_URL",
	  "routing key 'us-east-1.retire.API_URL' does not match the body's "
	  "us-east-1.provides.API_URL" },
	{ "provbus.seatgeek", "us-east-1.provides.DB_URL",
	  "routing key 'us-east-1.provides.DB_URL' does not match the body's "
	  "us-east-1.provides.API_URL" },
	{ "provbus.seatgeek", "us-east-1.provides.API_URL.x",
	  "routing key 'us-east-1.provides.API_URL.x' does not match the body's "
	  "us-east-1.provides.API_URL" },
	{ "provbus.seatgeek", "", "routing key '' does not match the body's "
	  "us-east-1.provides.API_URL" },
	{ "provbus.pivotly", "us-east-1.provides.API_URL",
	  "event names federation 'seatgeek' but came through exchange 'provbus.pivotly'" },
	{ "seatgeek", "us-east-1.provides.API_URL",
	  "event names federation 'seatgeek' but came through exchange 'seatgeek'" },
	{ "provbus.seatgeek2", "us-east-1.provides.API_URL",
	  "event names federation 'seatgeek' but came through exchange 'provbus.seatgeek2'" },
	{ "", "us-east-1.provides.API_URL",
	  "event names federation 'seatgeek' but came through exchange ''" },
};

START_TEST(check_route)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_int_eq(parse_text(GOOD_BODY, &ev, &err), 0);
	if (!routes[_i].want) {
		ck_assert_msg(pb_event_check_route(&ev, routes[_i].exchange, routes[_i].routing_key,
						   &err) == 0, "%s", err.msg);
	} else {
		ck_assert_int_eq(pb_event_check_route(&ev, routes[_i].exchange,
						      routes[_i].routing_key, &err), -1);
		ck_assert_int_eq(err.code, EX_DATAERR);
		ck_assert_str_eq(err.msg, routes[_i].want);
	}
}
END_TEST

START_TEST(check_route_retire)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_int_eq(pb_event_init(&ev, PB_KIND_RETIRE, "f", "eu-west-1", "n", "s", "K", NULL,
				       0, 1, 0, &err), 0);
	ck_assert_int_eq(pb_event_check_route(&ev, "provbus.f", "eu-west-1.retire.K", &err), 0);
	ck_assert_int_eq(pb_event_check_route(&ev, "provbus.f", "eu-west-1.provides.K", &err), -1);
	ck_assert_int_eq(pb_event_check_route(&ev, NULL, "eu-west-1.retire.K", &err), -1);
	ck_assert_int_eq(pb_event_check_route(&ev, "provbus.f", NULL, &err), -1);
}
END_TEST

/* Every file in tests/data/event/good parses; every one in bad fails
 * with the text of its .err twin in the message. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf) {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static const struct {
	const char *file, *want;	/* want NULL: good */
} data_files[] = {
	{ "spec-example.json", NULL },
	{ "retire.json", NULL },
	{ "lease-public.json", NULL },
	{ "bad-region-upper.json", "field 'region'" },
	{ "bad-key-lower.json", "field 'key'" },
	{ "bad-value-newline.json", "field 'value'" },
	{ "bad-value-nul.json", "field 'value'" },
	{ "bad-retire-string.json", "field 'value'" },
	{ "bad-v2.json", "field 'v'" },
	{ "bad-array.json", "body: not a JSON object" },
	{ "bad-seq-negative.json", "field 'seq'" },
};

START_TEST(data_file)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	const char *root = getenv("PB_ROOT");
	char path[4096];
	size_t len = 0;
	char *body;
	int rc;

	snprintf(path, sizeof(path), "%s/tests/data/event/%s", root ? root : ".",
		 data_files[_i].file);
	body = slurp(path, &len);
	ck_assert_msg(body != NULL, "cannot read %s", path);
	rc = pb_event_parse(body, len, &ev, &err);
	if (!data_files[_i].want) {
		ck_assert_msg(rc == 0, "%s: %s", path, err.msg);
	} else {
		ck_assert_msg(rc == -1, "%s accepted", path);
		ck_assert_msg(strstr(err.msg, data_files[_i].want), "%s: %s", path, err.msg);
	}
	free(body);
}
END_TEST

/* ---- the two readers agree (event-private.h) ----
 *
 * pb_event_parse tries a fast scanner first and falls back to jansson for
 * anything the scanner does not know. Whatever the body, the result must
 * be the one jansson alone gives: the same return, error code, message and
 * event bytes. Each check also says whether the scanner took the body, so
 * that a table can insist the fast path is really exercised. */

/* Up to 300 bytes of body for a failure message, non-printable bytes as \xNN. */
static const char *printable(const void *body, size_t len, char *buf, size_t size)
{
	const unsigned char *s = body;
	size_t i, n = 0;

	for (i = 0; s && i < len && i < 300 && n + 8 < size; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			buf[n++] = (char)s[i];
		else
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", s[i]);
	}
	buf[n] = '\0';
	return buf;
}

/* Parses body by both paths and fails the test unless they agree;
 * returns 1 if the fast scanner took the body, 0 if it declined it. */
static int paths_agree(const void *body, size_t len)
{
	static struct pb_event auto_ev, slow_ev, fast_ev;	/* 4.6 KiB each */
	struct pb_err auto_err = PB_ERR_INIT, slow_err = PB_ERR_INIT, fast_err = PB_ERR_INIT;
	char shown[2048];
	int auto_rc, slow_rc, fast_rc;

	memset(&auto_ev, 0x55, sizeof(auto_ev));	/* the parser must clear it */
	memset(&slow_ev, 0, sizeof(slow_ev));
	auto_rc = pb_event_parse_path(body, len, &auto_ev, &auto_err, PB_EVENT_PATH_AUTO);
	slow_rc = pb_event_parse_path(body, len, &slow_ev, &slow_err, PB_EVENT_PATH_SLOW);
	ck_assert_msg(auto_rc == slow_rc && auto_err.code == slow_err.code &&
		      !strcmp(auto_err.msg, slow_err.msg),
		      "paths differ on '%s' (%zu bytes):\n  auto: %d %d %s\n  slow: %d %d %s",
		      printable(body, len, shown, sizeof(shown)), len, auto_rc, auto_err.code,
		      auto_err.msg, slow_rc, slow_err.code, slow_err.msg);
	ck_assert_msg(!memcmp(&auto_ev, &slow_ev, sizeof(auto_ev)),
		      "paths fill different events from '%s'",
		      printable(body, len, shown, sizeof(shown)));
	ck_assert_msg(auto_rc == 0 || auto_err.msg[0], "no reason given for '%s'",
		      printable(body, len, shown, sizeof(shown)));

	fast_rc = pb_event_parse_path(body, len, &fast_ev, &fast_err, PB_EVENT_PATH_FAST);
	if (fast_rc == 1) {
		ck_assert_int_eq(fast_err.code, 0);	/* a declined body leaves err alone */
		return 0;
	}
	ck_assert_int_eq(fast_rc, auto_rc);
	ck_assert_str_eq(fast_err.msg, auto_err.msg);
	ck_assert(!memcmp(&fast_ev, &auto_ev, sizeof(fast_ev)));
	return 1;
}

static int paths_agree_text(const char *s)
{
	return paths_agree(s, strlen(s));
}

#define UUID_A "\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0aa\""

static const struct {
	const char *body;
	int fast;		/* 1: the scanner must take it; 0: it must decline */
} path_bodies[] = {
	{ GOOD_BODY, 1 },
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"retire\",\"federation\":\"f\",\"region\":\"r\","
	  "\"node\":\"n\",\"service\":\"s\",\"key\":\"K\",\"value\":null,\"public\":true,"
	  "\"seq\":0,\"ttl_s\":999999999999999999,\"ts\":\"2026-11-22T03:00:00+02:00\"}", 1 },
	/* syntax the scanner knows, refused by the validation */
	{ "{}", 1 },
	{ " \t\r\n{ \t\r\n} \t\r\n", 1 },
	{ " {\t\"v\"\r\n:\n1 } \n", 1 },
	{ "{\"v\":2}", 1 },
	{ "{\"v\":-0}", 1 },
	{ "{\"v\":0}", 1 },
	{ "{\"v\":-1}", 1 },
	{ "{\"v\":-999999999999999999}", 1 },
	{ "{\"v\":true}", 1 },
	{ "{\"v\":false}", 1 },
	{ "{\"v\":null}", 1 },
	{ "{\"v\":\"1\"}", 1 },
	{ "{\"v\":\"\"}", 1 },
	{ "{\"v\":1,\"id\":\"\x7f\"}", 1 },	/* DEL is printable enough for JSON */
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"provides\",\"federation\":\"f\",\"region\":\"r\","
	  "\"node\":\"n\",\"service\":\"s\",\"key\":\"K\",\"value\":\"v\",\"public\":true,"
	  "\"seq\":-1,\"ttl_s\":0,\"ts\":\"2026-11-22T03:00:00Z\"}", 1 },
	/* everything else goes to jansson */
	{ "", 0 },
	{ "   ", 0 },
	{ "[]", 0 },
	{ "1", 0 },
	{ "null", 0 },
	{ "\"{}\"", 0 },
	{ "{", 0 },
	{ "}", 0 },
	{ "{}}", 0 },
	{ "{} x", 0 },
	{ "{}{}", 0 },
	{ "{,}", 0 },
	{ "{\"v\":1,}", 0 },
	{ "{\"v\":1", 0 },
	{ "{\"v\":1 ", 0 },
	{ "{\"v\":", 0 },
	{ "{\"v\"", 0 },
	{ "{\"v", 0 },
	{ "{\"v\" 1}", 0 },
	{ "{\"v\"::1}", 0 },
	{ "{\"v\":1 \"id\":1}", 0 },
	{ "{\"v\":1,,\"id\":1}", 0 },
	{ "{v:1}", 0 },
	{ "{'v':1}", 0 },
	{ "{\"v\":01}", 0 },
	{ "{\"v\":-01}", 0 },
	{ "{\"v\":00}", 0 },
	{ "{\"v\":-}", 0 },
	{ "{\"v\":+1}", 0 },
	{ "{\"v\":1.0}", 0 },
	{ "{\"v\":1.}", 0 },
	{ "{\"v\":.1}", 0 },
	{ "{\"v\":1e0}", 0 },
	{ "{\"v\":1E0}", 0 },
	{ "{\"v\":1e}", 0 },
	{ "{\"v\":-0.0}", 0 },
	{ "{\"v\":1x}", 0 },
	{ "{\"v\":1 2}", 0 },
	{ "{\"v\":0x1}", 0 },
	{ "{\"v\":1000000000000000000}", 0 },	/* 19 digits */
	{ "{\"v\":9223372036854775807}", 0 },
	{ "{\"v\":9223372036854775808}", 0 },
	{ "{\"v\":-9223372036854775808}", 0 },
	{ "{\"v\":-9223372036854775809}", 0 },
	{ "{\"v\":99999999999999999999999999999}", 0 },
	{ "{\"seq\":0000000000000000001}", 0 },
	{ "{\"v\":tru}", 0 },
	{ "{\"v\":truex}", 0 },
	{ "{\"v\":true1}", 0 },
	{ "{\"v\":True}", 0 },
	{ "{\"v\":nul}", 0 },
	{ "{\"v\":nulll}", 0 },
	{ "{\"v\":fals}", 0 },
	{ "{\"v\":NaN}", 0 },
	{ "{\"v\":Infinity}", 0 },
	{ "{\"v\":{}}", 0 },
	{ "{\"v\":[]}", 0 },
	{ "{\"v\":[1]}", 0 },
	{ "{\"v\":1,\"x\":1}", 0 },	/* an unknown field */
	{ "{\"V\":1}", 0 },
	{ "{\"\":1}", 0 },
	{ "{\"v \":1}", 0 },
	{ "{\"ttl\":1}", 0 },
	{ "{\"ttl_s_\":1}", 0 },
	{ "{\"v\":1,\"v\":1}", 0 },	/* a duplicate */
	{ "{\"v\":1,\"v\":2}", 0 },
	{ "{\"seq\":1,\"v\":1,\"seq\":1}", 0 },
	{ "{\"\\u0076\":1}", 0 },	/* "v" spelt with an escape */
	{ "{\"v\\u0000\":1}", 0 },
	{ "{\"v\":1,\"id\":\"a\\\"b\"}", 0 },
	{ "{\"v\":1,\"id\":\"a\\/b\"}", 0 },
	{ "{\"v\":1,\"id\":\"a\\u0000b\"}", 0 },
	{ "{\"v\":1,\"id\":\"a\\ud800b\"}", 0 },
	{ "{\"v\":1,\"id\":\"a\\xb\"}", 0 },
	{ "{\"v\":1,\"id\":\"a\tb\"}", 0 },	/* a raw control byte */
	{ "{\"v\":1,\"id\":\"a\nb\"}", 0 },
	{ "{\"v\":1,\"id\":\"caf\xc3\xa9\"}", 0 },
	{ "{\"v\":1,\"id\":\"\xff\"}", 0 },
	{ "{\"v\":1,\"id\":\"\xc3\x28\"}", 0 },
	{ "{\"v\":1,\"id\":\"abc}", 0 },
	{ "\xef\xbb\xbf{}", 0 },	/* a BOM */
	{ "{\"v\":1}\x0c", 0 },	/* form feed is not JSON whitespace */
	{ "\x0b{\"v\":1}", 0 },
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"provides\",\"federation\":\"f\",\"region\":\"r\","
	  "\"node\":\"n\",\"service\":\"s\",\"key\":\"K\",\"value\":\"caf\xc3\xa9\",\"public\":true,"
	  "\"seq\":1,\"ttl_s\":0,\"ts\":\"2026-11-22T03:00:00Z\"}", 0 },
};

START_TEST(paths_agree_on_table)
{
	char shown[2048];
	const char *s = path_bodies[_i].body;

	ck_assert_msg(paths_agree_text(s) == path_bodies[_i].fast, "fast path should %s '%s'",
		      path_bodies[_i].fast ? "take" : "decline",
		      printable(s, strlen(s), shown, sizeof(shown)));
}
END_TEST

/* Bodies with a NUL byte, NULL, and a good body cut at every length. */
START_TEST(paths_agree_on_odd_lengths)
{
	static const char with_nul[] = "{\"v\":1,\"id\":\"a\0b\"}";
	static const char nul_after[] = "{\"v\":1}\0";
	size_t len = strlen(GOOD_BODY);

	ck_assert_int_eq(paths_agree(with_nul, sizeof(with_nul) - 1), 0);
	ck_assert_int_eq(paths_agree(nul_after, sizeof(nul_after) - 1), 0);
	ck_assert_int_eq(paths_agree(NULL, 0), 0);
	ck_assert_int_eq(paths_agree(GOOD_BODY, 0), 0);
	for (size_t n = 1; n < len; n++)
		ck_assert_int_eq(paths_agree(GOOD_BODY, n), 0);
	ck_assert_int_eq(paths_agree(GOOD_BODY, len), 1);
}
END_TEST

/* The existing tables, read by both paths. */
START_TEST(paths_agree_on_other_tests)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	size_t i, len;
	char *text;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_int_eq(pb_event_init(&ev, good[i].kind, good[i].fed, good[i].region,
					       good[i].node, good[i].service, good[i].key,
					       good[i].value, good[i].public, good[i].seq,
					       good[i].ttl_s, &err), 0);
		text = pb_event_encode(&ev, &len);
		/* what our encoder writes goes the fast way, unless the value
		 * needs an escape or holds UTF-8 (good[3]) */
		ck_assert_int_eq(paths_agree(text, len), i != 3);
		free(text);
	}
	for (i = 0; i < sizeof(good_bodies) / sizeof(good_bodies[0]); i++)
		paths_agree_text(good_bodies[i]);
	for (i = 0; i < sizeof(bad_fields) / sizeof(bad_fields[0]); i++) {
		text = mutated_body(i);
		paths_agree_text(text);
		free(text);
	}
}
END_TEST

/* The docs/protocol.md example as members, to be reordered, spaced and mutated. */
static const char *const good_members[][2] = {
	{ "v", "1" },
	{ "id", UUID_A },
	{ "kind", "\"provides\"" },
	{ "federation", "\"seatgeek\"" },
	{ "region", "\"us-east-1\"" },
	{ "node", "\"api-03\"" },
	{ "service", "\"api\"" },
	{ "key", "\"API_URL\"" },
	{ "value", "\"http://10.0.3.7:1100\"" },
	{ "public", "false" },
	{ "seq", "17" },
	{ "ttl_s", "0" },
	{ "ts", "\"2026-11-22T03:00:00.123Z\"" },
};
#define N_MEMBERS (sizeof(good_members) / sizeof(good_members[0]))

/* Values tried in place of each member's own. */
static const char *const other_values[] = {
	"1", "0", "-0", "-1", "2", "17", "123456789012345678", "-123456789012345678",
	"1234567890123456789", "9223372036854775807", "9223372036854775808",
	"-9223372036854775809", "18446744073709551616", "1.0", "1.5", "0.0", "-0.0", "1e2",
	"1E-2", "01", "true", "false", "null", "{}", "[]", "{\"a\":[1]}", "[null]", "\"\"",
	"\"1\"", "\"provides\"", "\"retire\"", "\"provide\\u0073\"", "\"retire\\u0000\"",
	"\"us-east-1\"", "\"US-EAST-1\"", "\"API_URL\"", "\"api_url\"", "\"a b\"",
	"\"a\\nb\"", "\"a\\rb\"", "\"a\\tb\"", "\"a\\\\b\"", "\"a\\\"b\"", "\"a\\/b\"",
	"\"caf\xc3\xa9\"", "\"caf\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud800\"", "\"\xed\xa0\x80\"",
	"\"\x7f\"", "\"3F0C1D52-8D7E-4C35-9A55-B2D1D8C6F0AA\"", "\"3f0c1d52-8d7e-4c35-9a55\"",
	"\"2026-11-22T03:00:00Z\"", "\"2026-11-22 03:00:00+05:30\"", "\"2026-02-30T03:00:00Z\"",
	"\"-2h\"",
};

struct body_buf {
	char text[8192];
	size_t len;
};

static void put(struct body_buf *b, const char *s)
{
	size_t n = strlen(s);

	ck_assert_uint_lt(b->len + n, sizeof(b->text));
	memcpy(b->text + b->len, s, n);
	b->len += n;
}

/* Writes members order[0..n) of good_members, with value `value` for the
 * member at position `at` (if value != NULL) and sp around every token. */
static void build(struct body_buf *b, const size_t *order, size_t n, size_t at,
		  const char *value, const char *sp)
{
	b->len = 0;
	put(b, sp);
	put(b, "{");
	for (size_t k = 0; k < n; k++) {
		put(b, sp);
		put(b, "\"");
		put(b, good_members[order[k]][0]);
		put(b, "\"");
		put(b, sp);
		put(b, ":");
		put(b, sp);
		put(b, value && k == at ? value : good_members[order[k]][1]);
		put(b, sp);
		if (k + 1 < n)
			put(b, ",");
	}
	put(b, "}");
	put(b, sp);
}

START_TEST(paths_agree_on_reshaped_events)
{
	static const char *const spaces[] = { "", " ", "\n", "\t \r\n" };
	static const char *const extras[] = {
		"\"x\":1", "\"extra\":{\"a\":[1]}", "\"V\":1", "\"\":0", "\"v\":1", "\"seq\":17",
		"\"value\":null", "\"ts\":\"2026-11-22T03:00:00Z\"",
	};
	struct body_buf b;
	size_t order[N_MEMBERS + 1], i, k, r, fast = 0, total = 0;

	/* every rotation, forwards and backwards, with each spacing */
	for (r = 0; r < N_MEMBERS; r++) {
		for (i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
			for (k = 0; k < N_MEMBERS; k++)
				order[k] = (k + r) % N_MEMBERS;
			build(&b, order, N_MEMBERS, 0, NULL, spaces[i]);
			ck_assert_int_eq(paths_agree(b.text, b.len), 1);
			for (k = 0; k < N_MEMBERS; k++)
				order[k] = (N_MEMBERS - 1 - k + r) % N_MEMBERS;
			build(&b, order, N_MEMBERS, 0, NULL, spaces[i]);
			ck_assert_int_eq(paths_agree(b.text, b.len), 1);
			total += 2;
		}
	}
	for (k = 0; k < N_MEMBERS; k++)
		order[k] = k;
	/* each member with each other value; each member left out */
	for (i = 0; i < N_MEMBERS; i++) {
		for (k = 0; k < sizeof(other_values) / sizeof(other_values[0]); k++) {
			build(&b, order, N_MEMBERS, i, other_values[k], k % 2 ? " " : "");
			fast += (size_t)paths_agree(b.text, b.len);
			total++;
		}
		size_t fewer[N_MEMBERS];
		for (k = 0, r = 0; k < N_MEMBERS; k++)
			if (k != i)
				fewer[r++] = k;
		build(&b, fewer, N_MEMBERS - 1, 0, NULL, "");
		ck_assert_int_eq(paths_agree(b.text, b.len), 1);
	}
	/* an extra member (unknown, or a duplicate) at each position */
	for (i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
		for (k = 0; k <= N_MEMBERS; k++) {
			b.len = 0;
			put(&b, "{");
			for (r = 0; r <= N_MEMBERS; r++) {
				if (r)
					put(&b, ",");
				if (r == k) {
					put(&b, extras[i]);
				} else {
					size_t m = r < k ? r : r - 1;
					put(&b, "\"");
					put(&b, good_members[m][0]);
					put(&b, "\":");
					put(&b, good_members[m][1]);
				}
			}
			put(&b, "}");
			ck_assert_int_eq(paths_agree(b.text, b.len), 0);
		}
	}
	/* the scanner took a fair share of the replaced values, and not all */
	ck_assert_msg(fast > total / 5 && fast < total, "fast path took %zu of %zu", fast, total);
}
END_TEST

/* Every byte of a good body replaced, deleted or doubled. */
START_TEST(paths_agree_on_byte_mutations)
{
	static const unsigned char bytes[] = {
		'"', '\\', ',', ':', '{', '}', '[', ']', ' ', '\t', '\n', '\r', '0', '1', '9', '-',
		'+', '.', 'e', 'E', 'a', 'f', 'n', 't', 'u', 'Z', '_', 'A', '/', 0, 0x01, 0x0c,
		0x1f, 0x7f, 0x80, 0xa9, 0xc3, 0xed, 0xff,
	};
	const char *src = _i ? "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"retire\",\"federation\":\"f\","
			       "\"region\":\"r\",\"node\":\"n\",\"service\":\"s\",\"key\":\"K\","
			       "\"value\":null,\"public\":true,\"seq\":0,\"ttl_s\":30,"
			       "\"ts\":\"2026-11-22T03:00:00Z\"}"
			     : GOOD_BODY;
	size_t len = strlen(src), i, k, fast = 0, total = 0;
	char *m = malloc(len + 1);

	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof(bytes); k++) {
			if ((unsigned char)src[i] == bytes[k])
				continue;
			memcpy(m, src, len);
			m[i] = (char)bytes[k];
			fast += (size_t)paths_agree(m, len);
			total++;
		}
		memcpy(m, src, i);	/* deleted */
		memcpy(m + i, src + i + 1, len - i - 1);
		fast += (size_t)paths_agree(m, len - 1);
		memcpy(m, src, i + 1);	/* doubled */
		memcpy(m + i + 1, src + i, len - i);
		fast += (size_t)paths_agree(m, len + 1);
		total += 2;
	}
	ck_assert_msg(fast > total / 20 && fast < total, "fast path took %zu of %zu", fast, total);
	free(m);
}
END_TEST

/* Long strings: the scanner keeps 8192 bytes of strings with their NULs,
 * then declines. The other strings of the body take 84 bytes before the
 * value and 25 after it, so a value of 8082 bytes fills the buffer
 * exactly and one of 8083 does not fit. */
START_TEST(paths_agree_on_long_values)
{
	static const size_t sizes[] = {
		0, 1, 4095, 4096, 4097, 7000, 8000, 8081, 8082, 8083, 8084, 8100, 9000, 60000,
	};
	struct body_buf *b = malloc(sizeof(*b));
	size_t order[N_MEMBERS], i, k;
	char *value = malloc(60003);

	for (k = 0; k < N_MEMBERS; k++)
		order[k] = k;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *body;

		value[0] = '"';
		memset(value + 1, 'x', sizes[i]);
		memcpy(value + 1 + sizes[i], "\"", 2);
		/* build() is for short bodies; splice the value in by hand */
		build(b, order, N_MEMBERS, 8, "@", "");
		body = malloc(b->len + sizes[i] + 3);
		char *at = memchr(b->text, '@', b->len);
		size_t head = (size_t)(at - b->text);
		memcpy(body, b->text, head);
		memcpy(body + head, value, sizes[i] + 2);
		memcpy(body + head + sizes[i] + 2, at + 1, b->len - head - 1);
		ck_assert_int_eq(paths_agree(body, b->len - 1 + sizes[i] + 2), sizes[i] <= 8082);
		free(body);
	}
	free(value);
	free(b);
}
END_TEST

/* Every data file, by both paths. */
START_TEST(paths_agree_on_data_files)
{
	const char *root = getenv("PB_ROOT");
	char path[4096];
	size_t len = 0;
	char *body;

	snprintf(path, sizeof(path), "%s/tests/data/event/%s", root ? root : ".",
		 data_files[_i].file);
	body = slurp(path, &len);
	ck_assert_msg(body != NULL, "cannot read %s", path);
	paths_agree(body, len);
	free(body);
}
END_TEST

/* ---- hostile text (terminal control sequences, C1, bad UTF-8) ----
 *
 * A node's credentials are enough to send an event; its strings end up
 * on an operator's terminal. Each body below is refused with the field,
 * the byte and its offset, by both readers. */

#define HOSTILE(node, value, extra)                                                          \
	"{\"v\":1,\"id\":" UUID_A ",\"kind\":\"provides\",\"federation\":\"f\",\"region\":\"r\"," \
	"\"node\":\"" node "\",\"service\":\"s\",\"key\":\"K\",\"value\":\"" value "\","          \
	"\"public\":true,\"seq\":1,\"ttl_s\":0,\"ts\":\"2026-11-22T03:00:00Z\"" extra "}"

static const struct {
	const char *body;
	const char *want;
} hostile[] = {
	/* ESC [ 1A ESC [ 2K: up one line, erase it */
	{ HOSTILE("n", "\\u001b[1A\\u001b[2K", ""), "field 'value': control byte 0x1b at offset 0" },
	/* OSC 52: writes the operator's clipboard */
	{ HOSTILE("n", "ok\\u001b]52;c;Y3VybCB4fHNo\\u0007", ""),
	  "field 'value': control byte 0x1b at offset 2" },
	{ HOSTILE("n", "ok]52;c;Y3VybCB4fHNo\\u0007", ""),
	  "field 'value': control byte 0x07 at offset 20" },
	{ HOSTILE("n", "a\\u0000b", ""), "field 'value': control byte 0x00 at offset 1" },
	{ HOSTILE("n", "a\\nb", ""), "field 'value': control byte 0x0a at offset 1" },
	{ HOSTILE("n", "a\\rb", ""), "field 'value': control byte 0x0d at offset 1" },
	{ HOSTILE("n", "\\b\\b\\bsafe", ""), "field 'value': control byte 0x08 at offset 0" },
	{ HOSTILE("n", "abc\\u007f", ""), "field 'value': control byte 0x7f at offset 3" },
	{ HOSTILE("n", "abc\x7f", ""), "field 'value': control byte 0x7f at offset 3" },
	/* C1 CSI (U+009B), escaped and raw UTF-8, and NEL (U+0085) */
	{ HOSTILE("n", "x\\u009b2J", ""), "field 'value': C1 control U+009B at offset 1" },
	{ HOSTILE("n", "x\xc2\x9b" "2J", ""), "field 'value': C1 control U+009B at offset 1" },
	{ HOSTILE("n", "\\u0085", ""), "field 'value': C1 control U+0085 at offset 0" },
	/* invalid UTF-8: a lone byte, a cut sequence, an overlong '/', a surrogate */
	{ HOSTILE("n", "a\xff", ""), "field 'value': invalid UTF-8 byte 0xff at offset" },
	{ HOSTILE("n", "a\xe2\x82", ""), "field 'value': invalid UTF-8 byte 0xe2 at offset" },
	{ HOSTILE("n", "\xc0\xaf", ""), "field 'value': invalid UTF-8 byte 0xc0 at offset" },
	{ HOSTILE("n", "\xed\xa0\x80", ""), "field 'value': invalid UTF-8 byte 0xed at offset" },
	{ HOSTILE("n", "a\xc1\x9b", ""), "field 'value': invalid UTF-8 byte 0xc1 at offset" },
	/* a raw ESC is not JSON: jansson's message, with the byte */
	{ HOSTILE("n", "a\x1b[2K", ""), "field 'value': control byte 0x1b at offset 144 of the body" },
	{ HOSTILE("n", "a\nb", ""), "field 'value': control byte 0x0a at offset 144 of the body" },
	{ HOSTILE("n", "a\tb", ""), "body: not a JSON object: control character 0x9" },
	/* newlines as whitespace before it: the one in the string is named */
	{ "{\n\"v\":1,\n\"value\":\"a\nb\"}", "field 'value': control byte 0x0a at offset 19 of the body" },
	/* names: bidi override (U+202E) spelt raw and escaped, controls */
	{ HOSTILE("api\xe2\x80\xae" "30", "v", ""), "field 'node': bad name" },
	{ HOSTILE("api\\u202e30", "v", ""), "field 'node': bad name" },
	{ HOSTILE("api\\u001b", "v", ""), "field 'node': control byte 0x1b at offset 3" },
	{ HOSTILE("api\\u009b", "v", ""), "field 'node': C1 control U+009B at offset 3" },
	/* every string field, extra members too */
	{ HOSTILE("n", "v", ",\"note\":\"\\u001b]0;pwned\\u0007\""),
	  "field 'note': control byte 0x1b at offset 0" },
	{ HOSTILE("n", "v", ",\"x\":{\"y\":[\"ok\",\"\\u007f\"]}"),
	  "field 'x': control byte 0x7f at offset 0" },
	{ HOSTILE("n", "v", ",\"a\\u001bb\":1"), "field 'member name': control byte 0x1b at offset 1" },
	{ HOSTILE("n", "v", ",\"x\":\"\xc2\x85\""), "field 'x': C1 control U+0085 at offset 0" },
	{ "{\"v\":1,\"id\":\"3f0c1d52-8d7e-4c35-9a55-b2d1d8c6f0a\\u001b\"}",
	  "field 'id': control byte 0x1b at offset 35" },
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"provides\\u009b\"}",
	  "field 'kind': C1 control U+009B at offset 8" },
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"retire\",\"federation\":\"f\\u007f\"}",
	  "field 'federation': control byte 0x7f at offset 1" },
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"retire\",\"federation\":\"f\",\"region\":\"r\","
	  "\"node\":\"n\",\"service\":\"s\",\"key\":\"K\\u001b\"}",
	  "field 'key': control byte 0x1b at offset 1" },
	{ "{\"v\":1,\"id\":" UUID_A ",\"kind\":\"retire\",\"federation\":\"f\",\"region\":\"r\","
	  "\"node\":\"n\",\"service\":\"s\\t\",\"key\":\"K\"}", "field 'service': bad name" },
};

START_TEST(parse_refuses_hostile_text)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;
	char shown[2048];
	const char *b = hostile[_i].body;

	ck_assert_msg(parse_text(b, &ev, &err) == -1, "accepted '%s'",
		      printable(b, strlen(b), shown, sizeof(shown)));
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strstr(err.msg, hostile[_i].want), "'%s'\n  error: %s\n  want: %s",
		      printable(b, strlen(b), shown, sizeof(shown)), err.msg, hostile[_i].want);
	for (const char *p = err.msg; *p; p++)
		ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
			      "unprintable byte in error message: %s", err.msg);
	paths_agree_text(b);
}
END_TEST

/* The same text is good with the offending byte taken out: the table
 * tests the rule, not some other mistake in its bodies. */
START_TEST(hostile_text_control)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_msg(parse_text(HOSTILE("n", "ok]52;c;Y3VybCB4fHNo \\t caf\xc3\xa9 \xe2\x80\xae",
					 ",\"note\":\"fine\""), &ev, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(ev.value, "ok]52;c;Y3VybCB4fHNo \t caf\xc3\xa9 \xe2\x80\xae");
}
END_TEST

/* The publisher's side: pb_event_init refuses the same values. */
static const struct {
	const char *node, *value, *want;
} hostile_init[] = {
	{ "n", "\x1b]52;c;Y3VybA==\x07", "field 'value': control byte 0x1b at offset 0" },
	{ "n", "up\x1b[1A\x1b[2K", "field 'value': control byte 0x1b at offset 2" },
	{ "n", "del\x7f", "field 'value': control byte 0x7f at offset 3" },
	{ "n", "c1 \xc2\x9b", "field 'value': C1 control U+009B at offset 3" },
	{ "n", "bad \xc0\xaf", "field 'value': invalid UTF-8 byte 0xc0 at offset 4" },
	{ "api\xe2\x80\xae" "30", "v", "field 'node': bad name" },
	{ "api\x1b", "v", "field 'node': control byte 0x1b at offset 3" },
};

START_TEST(init_refuses_hostile_text)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_event ev;

	ck_assert_int_eq(pb_event_init(&ev, PB_KIND_PROVIDES, "f", "r", hostile_init[_i].node, "s",
				       "K", hostile_init[_i].value, 0, 1, 0, &err), -1);
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strstr(err.msg, hostile_init[_i].want), "%s", err.msg);
}
END_TEST

START_TEST(check_text_names_field)
{
	struct pb_err err = PB_ERR_INIT;

	ck_assert_int_eq(pb_event_check_text("version", "1.0\ttab", 7, &err), 0);
	ck_assert_int_eq(pb_event_check_text("version", "1.0\x1b", 4, &err), -1);
	ck_assert_str_eq(err.msg, "field 'version': control byte 0x1b at offset 3");
	ck_assert_int_eq(err.code, EX_DATAERR);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("codec");

	tcase_add_loop_test(tc, good_round_trips, 0, N(good));
	tcase_add_test(tc, init_fills_id_and_ts);
	tcase_add_loop_test(tc, init_refuses_bad, 0, N(bad_init));
	tcase_add_test(tc, init_value_at_limit);
	tcase_add_test(tc, parse_spec_example);
	tcase_add_loop_test(tc, parse_good_bodies, 0, N(good_bodies));
	tcase_add_loop_test(tc, parse_refuses_bad_field, 0, N(bad_fields));
	tcase_add_loop_test(tc, parse_refuses_missing_field, 0, N(spec_fields));
	tcase_add_test(tc, parse_retire_value_rules);
	tcase_add_test(tc, parse_value_size_limit);
	tcase_add_test(tc, parse_refuses_non_objects);
	tcase_add_test(tc, parse_refuses_empty_and_null);
	tcase_add_test(tc, parse_refuses_bad_utf8);
	tcase_add_test(tc, parse_refuses_random_bytes);
	tcase_add_test(tc, parse_refuses_deep_nesting);
	tcase_add_test(tc, parse_refuses_big_bodies);
	tcase_add_test(tc, error_messages_are_tame);
	tcase_add_loop_test(tc, encode_holds_exactly_spec_fields, 0, 2);
	tcase_add_test(tc, encode_exact_text);
	tcase_add_test(tc, kind_names);
	tcase_add_test(tc, routing_key_and_exchange);
	tcase_add_loop_test(tc, check_route, 0, N(routes));
	tcase_add_test(tc, check_route_retire);
	tcase_add_loop_test(tc, data_file, 0, N(data_files));
	tcase_add_loop_test(tc, parse_refuses_hostile_text, 0, N(hostile));
	tcase_add_test(tc, hostile_text_control);
	tcase_add_loop_test(tc, init_refuses_hostile_text, 0, N(hostile_init));
	tcase_add_test(tc, check_text_names_field);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_add_loop_test(tc, paths_agree_on_table, 0, N(path_bodies));
	tcase_add_test(tc, paths_agree_on_odd_lengths);
	tcase_add_test(tc, paths_agree_on_other_tests);
	tcase_add_test(tc, paths_agree_on_reshaped_events);
	tcase_add_loop_test(tc, paths_agree_on_byte_mutations, 0, 2);
	tcase_add_test(tc, paths_agree_on_long_values);
	tcase_add_loop_test(tc, paths_agree_on_data_files, 0, N(data_files));
	tcase_set_timeout(tc, 300);	/* thousands of bodies, under valgrind too */
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(event_suite());
}
