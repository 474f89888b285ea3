/* report.c — building and checking the fleet reports (report.h). */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "digest.h"
#include "event.h"
#include "names.h"
#include "pbtime.h"

json_t *pb_report_new(const char *kind, const char *federation, const char *region,
		      const char *node, int64_t now)
{
	char id[PB_UUID_STR], ts[PB_TIME_BUF];
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s}", "v", 1, "id", id, "kind", kind,
			 "federation", federation, "region", region, "node", node, "ts",
			 pb_time_format(now, ts));
}

char *pb_report_routing_key(const char *region, const char *kind, const char *node, char *buf,
			    size_t size)
{
	snprintf(buf, size, "%s.%s.%s", region, kind, node);
	return buf;
}

const char *pb_report_str(const json_t *o, const char *field)
{
	return json_string_value(json_object_get(o, field));
}

static int ident_field(const json_t *o, const char *field, struct pb_err *err)
{
	const char *s = pb_report_str(o, field);

	if (!s || !pb_name_ident_ok(s))
		return pb_err_set(err, EX_DATAERR, "field '%s': want a name [a-z0-9][a-z0-9-]{0,62}",
				  field);
	return 0;
}

json_t *pb_report_parse(const void *body, size_t len, const char *exchange,
			const char *routing_key, struct pb_err *err)
{
	json_error_t je;
	json_t *o;
	const char *kind;
	char want[256];

	if (len > PB_EVENT_MAX_BYTES) {
		pb_err_set(err, EX_DATAERR, "report of %zu bytes: over %d", len, PB_EVENT_MAX_BYTES);
		return NULL;
	}
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		pb_err_set(err, EX_DATAERR, "not JSON: %s", je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		pb_err_set(err, EX_DATAERR, "not a JSON object");
		goto bad;
	}
	/* every string of a report follows the text rule of events: a
	 * report's text is printed by provbus-fleet */
	if (pb_event_check_json_text(o, err) < 0)
		goto bad;
	if (!json_is_integer(json_object_get(o, "v")) ||
	    json_integer_value(json_object_get(o, "v")) != 1) {
		pb_err_set(err, EX_DATAERR, "field 'v': want 1");
		goto bad;
	}
	kind = pb_report_str(o, "kind");
	if (!kind || (strcmp(kind, PB_REPORT_PRESENCE) && strcmp(kind, PB_REPORT_RUN))) {
		pb_err_set(err, EX_DATAERR, "field 'kind': want presence or run");
		goto bad;
	}
	if (!pb_report_str(o, "id") || !pb_report_str(o, "ts")) {
		pb_err_set(err, EX_DATAERR, "field '%s': want a string",
			   pb_report_str(o, "id") ? "ts" : "id");
		goto bad;
	}
	if (ident_field(o, "federation", err) < 0 || ident_field(o, "region", err) < 0 ||
	    ident_field(o, "node", err) < 0)
		goto bad;
	pb_report_routing_key(pb_report_str(o, "region"), kind, pb_report_str(o, "node"), want,
			      sizeof(want));
	if (routing_key && strcmp(routing_key, want)) {
		pb_err_set(err, EX_DATAERR, "routing key %.128s: want %s", routing_key, want);
		goto bad;
	}
	if (exchange && (strncmp(exchange, "provbus.", 8) ||
			 strcmp(exchange + 8, pb_report_str(o, "federation")))) {
		pb_err_set(err, EX_DATAERR, "exchange %.128s: the report names federation %s",
			   exchange, pb_report_str(o, "federation"));
		goto bad;
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

json_t *pb_report_digests(const struct pb_want *wants, size_t n_wants, const struct pb_kv *values,
			  size_t n_values)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n_wants; i++) {
		const struct pb_want *w = &wants[i];
		const char *v = NULL;
		char hex[PB_SHA256_HEX_LEN + 1];

		if (!w->key)
			continue;
		for (size_t j = 0; j < n_values && !v; j++)
			if (!strcmp(values[j].name, w->env))
				v = values[j].value;
		if (v) {
			pb_sha256_hex(v, strlen(v), hex);
			json_object_set_new(o, w->key, json_string(hex));
		} else if (!json_object_get(o, w->key)) {
			json_object_set_new(o, w->key, json_null());
		}
	}
	return o;
}
