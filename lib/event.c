/* event.c — the version-1 event of SPEC §5.
 *
 * The parser trusts nothing: a body comes from any node that may publish
 * on the federation's exchange, so every field is checked for presence,
 * type, length and name rule before it is copied into the bounded struct,
 * and every error names the field. Text taken from a body and put into an
 * error message is cut short and stripped of control characters, since
 * messages end up in logs and the audit log. */
#include "event.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uuid/uuid.h>

#include "pbtime.h"

#define SHOW_MAX 200		/* bytes of a hostile text shown in a message */

const char *pb_kind_name(enum pb_kind k)
{
	return k == PB_KIND_RETIRE ? "retire" : "provides";
}

int pb_kind_parse(const char *s, enum pb_kind *out)
{
	if (s && !strcmp(s, "provides")) {
		*out = PB_KIND_PROVIDES;
		return 0;
	}
	if (s && !strcmp(s, "retire")) {
		*out = PB_KIND_RETIRE;
		return 0;
	}
	return -1;
}

/* Copies at most SHOW_MAX bytes of s (len bytes) into buf for a message:
 * control and non-ASCII bytes become '?', a cut text ends in "...". */
static const char *show(const char *s, size_t len, char *buf, size_t size)
{
	size_t i, n = len < SHOW_MAX ? len : SHOW_MAX;

	if (n > size - 4)
		n = size - 4;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* Keeps only printable ASCII in an error message built from jansson's
 * text, which quotes bytes of the (hostile) input. */
static void scrub(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

static int uuid_text_ok(const char *s, size_t len)
{
	size_t i;

	if (len != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

enum name_rule { RULE_IDENT, RULE_SERVICE, RULE_KEY };

static const struct {
	int (*ok)(const char *);
	const char *want;
} rules[] = {
	[RULE_IDENT] = { pb_name_ident_ok, "[a-z0-9][a-z0-9-]{0,62}" },
	[RULE_SERVICE] = { pb_name_service_ok, "[A-Za-z0-9][A-Za-z0-9_.-]{0,127}" },
	[RULE_KEY] = { pb_name_key_ok, "[A-Z_][A-Z0-9_]{0,127}" },
};

/* Checks a name (len bytes, may hold a NUL from "\u0000") by its rule and
 * copies it into dst (size bytes, large enough for any valid name). */
static int take_name(const char *field, const char *s, size_t len, enum name_rule rule,
		     char *dst, size_t size, struct pb_err *err)
{
	char shown[SHOW_MAX + 4];

	if (strlen(s) != len || len >= size || !rules[rule].ok(s))
		return pb_err_set(err, EX_DATAERR, "field '%s': bad name '%s': want %s", field,
				  show(s, len, shown, sizeof(shown)), rules[rule].want);
	memcpy(dst, s, len + 1);
	return 0;
}

static int take_value(const char *s, size_t len, struct pb_event *ev, struct pb_err *err)
{
	if (len > PB_VALUE_MAX)
		return pb_err_set(err, EX_DATAERR, "field 'value': %zu bytes, more than %d", len,
				  PB_VALUE_MAX);
	if (memchr(s, '\0', len))
		return pb_err_set(err, EX_DATAERR, "field 'value': holds a NUL byte");
	if (memchr(s, '\r', len) || memchr(s, '\n', len))
		return pb_err_set(err, EX_DATAERR,
				  "field 'value': holds a line break (CR or LF)");
	memcpy(ev->value, s, len);
	ev->value[len] = '\0';
	ev->value_len = len;
	ev->has_value = 1;
	return 0;
}

int pb_event_init(struct pb_event *ev, enum pb_kind kind, const char *federation,
		  const char *region, const char *node, const char *service, const char *key,
		  const char *value, int public, int64_t seq, int64_t ttl_s, struct pb_err *err)
{
	const struct {
		const char *field, *s;
		enum name_rule rule;
		char *dst;
		size_t size;
	} names[] = {
		{ "federation", federation, RULE_IDENT, ev->federation, sizeof(ev->federation) },
		{ "region", region, RULE_IDENT, ev->region, sizeof(ev->region) },
		{ "node", node, RULE_IDENT, ev->node, sizeof(ev->node) },
		{ "service", service, RULE_SERVICE, ev->service, sizeof(ev->service) },
		{ "key", key, RULE_KEY, ev->key, sizeof(ev->key) },
	};
	uuid_t uu;
	size_t i;
	int rc = -1;

	memset(ev, 0, sizeof(*ev));
	if (kind != PB_KIND_PROVIDES && kind != PB_KIND_RETIRE) {
		pb_err_set(err, EX_SOFTWARE, "field 'kind': unknown kind %d", (int)kind);
		goto out;
	}
	ev->kind = kind;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!names[i].s) {
			pb_err_set(err, EX_DATAERR, "field '%s': missing", names[i].field);
			goto out;
		}
		if (take_name(names[i].field, names[i].s, strlen(names[i].s), names[i].rule,
			      names[i].dst, names[i].size, err))
			goto out;
	}
	if (kind == PB_KIND_PROVIDES) {
		json_t *probe;

		if (!value) {
			pb_err_set(err, EX_DATAERR, "field 'value': a provides event needs a value");
			goto out;
		}
		if (take_value(value, strlen(value), ev, err))
			goto out;
		/* the encoder needs valid UTF-8; find out now, not at send time */
		probe = json_stringn(ev->value, ev->value_len);
		if (!probe) {
			pb_err_set(err, EX_DATAERR, "field 'value': not valid UTF-8");
			goto out;
		}
		json_decref(probe);
	} else if (value) {
		pb_err_set(err, EX_DATAERR, "field 'value': a retire event has no value");
		goto out;
	}
	if (seq < 0 || ttl_s < 0) {
		pb_err_set(err, EX_DATAERR, "field '%s': want a non-negative integer",
			   seq < 0 ? "seq" : "ttl_s");
		goto out;
	}
	ev->public = !!public;
	ev->seq = seq;
	ev->ttl_s = ttl_s;
	uuid_generate_random(uu);
	uuid_unparse_lower(uu, ev->id);
	{
		char ts[PB_TIME_BUF];

		size_t n = strlen(pb_time_format(pb_now_ms(), ts));

		if (n >= sizeof(ev->ts))
			n = sizeof(ev->ts) - 1;
		memcpy(ev->ts, ts, n);
		ev->ts[n] = '\0';
	}
	rc = 0;
out:
	return rc;
}

char *pb_event_encode(const struct pb_event *ev, size_t *len)
{
	json_t *o = json_object(), *value;
	char *text = NULL;

	if (!o)
		goto out;
	value = ev->has_value ? json_stringn(ev->value, ev->value_len) : json_null();
	/* json_object_set_new steals a NULL and fails; checked once below */
	if (json_object_set_new(o, "v", json_integer(1)) ||
	    json_object_set_new(o, "id", json_string(ev->id)) ||
	    json_object_set_new(o, "kind", json_string(pb_kind_name(ev->kind))) ||
	    json_object_set_new(o, "federation", json_string(ev->federation)) ||
	    json_object_set_new(o, "region", json_string(ev->region)) ||
	    json_object_set_new(o, "node", json_string(ev->node)) ||
	    json_object_set_new(o, "service", json_string(ev->service)) ||
	    json_object_set_new(o, "key", json_string(ev->key)) ||
	    json_object_set_new(o, "value", value) ||
	    json_object_set_new(o, "public", json_boolean(ev->public)) ||
	    json_object_set_new(o, "seq", json_integer(ev->seq)) ||
	    json_object_set_new(o, "ttl_s", json_integer(ev->ttl_s)) ||
	    json_object_set_new(o, "ts", json_string(ev->ts)))
		goto out;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text && len)
		*len = strlen(text);
out:
	json_decref(o);
	return text;
}

/* The type names used in "want X, got Y" messages. */
static const char *type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "something else";
}

/* The member `field` of o, which must be present. */
static json_t *member(json_t *o, const char *field, struct pb_err *err)
{
	json_t *j = json_object_get(o, field);

	if (!j)
		pb_err_set(err, EX_DATAERR, "field '%s': missing", field);
	return j;
}

static json_t *member_string(json_t *o, const char *field, struct pb_err *err)
{
	json_t *j = member(o, field, err);

	if (j && !json_is_string(j)) {
		pb_err_set(err, EX_DATAERR, "field '%s': want a string, got %s", field,
			   type_name(j));
		j = NULL;
	}
	return j;
}

static int member_count(json_t *o, const char *field, int64_t *out, struct pb_err *err)
{
	json_t *j = member(o, field, err);

	if (!j)
		return -1;
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return pb_err_set(err, EX_DATAERR, "field '%s': want a non-negative integer, got %s",
				  field, json_is_integer(j) ? "a negative integer" : type_name(j));
	*out = json_integer_value(j);
	return 0;
}

static int parse_names(json_t *o, struct pb_event *ev, struct pb_err *err)
{
	const struct {
		const char *field;
		enum name_rule rule;
		char *dst;
		size_t size;
	} names[] = {
		{ "federation", RULE_IDENT, ev->federation, sizeof(ev->federation) },
		{ "region", RULE_IDENT, ev->region, sizeof(ev->region) },
		{ "node", RULE_IDENT, ev->node, sizeof(ev->node) },
		{ "service", RULE_SERVICE, ev->service, sizeof(ev->service) },
		{ "key", RULE_KEY, ev->key, sizeof(ev->key) },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *j = member_string(o, names[i].field, err);

		if (!j || take_name(names[i].field, json_string_value(j), json_string_length(j),
				    names[i].rule, names[i].dst, names[i].size, err))
			return -1;
	}
	return 0;
}

static int parse_value(json_t *o, struct pb_event *ev, struct pb_err *err)
{
	json_t *j = member(o, "value", err);

	if (!j)
		return -1;
	if (ev->kind == PB_KIND_RETIRE) {
		if (!json_is_null(j))
			return pb_err_set(err, EX_DATAERR,
					  "field 'value': want null for a retire event, got %s",
					  type_name(j));
		ev->has_value = 0;
		return 0;
	}
	if (!json_is_string(j))
		return pb_err_set(err, EX_DATAERR,
				  "field 'value': want a string for a provides event, got %s",
				  type_name(j));
	return take_value(json_string_value(j), json_string_length(j), ev, err);
}

static int parse_ts(json_t *o, struct pb_event *ev, struct pb_err *err)
{
	json_t *j = member_string(o, "ts", err);
	struct pb_err terr = PB_ERR_INIT;
	char shown[SHOW_MAX + 4];
	const char *s;
	size_t len;
	int64_t ms;

	if (!j)
		return -1;
	s = json_string_value(j);
	len = json_string_length(j);
	if (len >= sizeof(ev->ts) || strlen(s) != len || pb_time_parse_rfc3339(s, &ms, &terr))
		return pb_err_set(err, EX_DATAERR,
				  "field 'ts': '%s' is not an RFC 3339 time (2026-11-22T03:00:00.123Z)",
				  show(s, len, shown, sizeof(shown)));
	memcpy(ev->ts, s, len + 1);
	return 0;
}

static int parse_object(json_t *o, struct pb_event *ev, struct pb_err *err)
{
	char shown[SHOW_MAX + 4];
	json_t *j;
	size_t i;

	j = member(o, "v", err);
	if (!j)
		return -1;
	if (!json_is_integer(j) || json_integer_value(j) != 1) {
		if (json_is_integer(j))
			return pb_err_set(err, EX_DATAERR,
					  "field 'v': version %lld is not supported: want 1",
					  (long long)json_integer_value(j));
		return pb_err_set(err, EX_DATAERR, "field 'v': want the integer 1, got %s",
				  type_name(j));
	}

	j = member_string(o, "id", err);
	if (!j)
		return -1;
	if (!uuid_text_ok(json_string_value(j), json_string_length(j)))
		return pb_err_set(err, EX_DATAERR,
				  "field 'id': '%s' is not a UUID (8-4-4-4-12 hex digits)",
				  show(json_string_value(j), json_string_length(j), shown,
				       sizeof(shown)));
	/* one spelling per id, so that duplicates are found whatever the case */
	for (i = 0; i < 36; i++)
		ev->id[i] = (char)tolower((unsigned char)json_string_value(j)[i]);
	ev->id[36] = '\0';

	j = member_string(o, "kind", err);
	if (!j)
		return -1;
	if (strlen(json_string_value(j)) != json_string_length(j) ||
	    pb_kind_parse(json_string_value(j), &ev->kind))
		return pb_err_set(err, EX_DATAERR, "field 'kind': '%s': want provides or retire",
				  show(json_string_value(j), json_string_length(j), shown,
				       sizeof(shown)));

	if (parse_names(o, ev, err) || parse_value(o, ev, err))
		return -1;

	j = member(o, "public", err);
	if (!j)
		return -1;
	if (!json_is_boolean(j))
		return pb_err_set(err, EX_DATAERR, "field 'public': want a boolean, got %s",
				  type_name(j));
	ev->public = json_is_true(j);

	if (member_count(o, "seq", &ev->seq, err) || member_count(o, "ttl_s", &ev->ttl_s, err))
		return -1;
	return parse_ts(o, ev, err);
}

int pb_event_parse(const void *body, size_t len, struct pb_event *ev, struct pb_err *err)
{
	json_error_t jerr;
	json_t *o = NULL;
	int rc = -1;

	memset(ev, 0, sizeof(*ev));
	if (len > PB_EVENT_MAX_BYTES) {
		pb_err_set(err, EX_DATAERR, "body: %zu bytes, more than %d", len,
			   PB_EVENT_MAX_BYTES);
		goto out;
	}
	/* ALLOW_NUL: a "\u0000" in a value is then refused by the value rule,
	 * with a message that names the field, rather than as bad JSON.
	 * REJECT_DUPLICATES: two "key" members would mean two readings. */
	o = json_loadb(body ? body : "", len,
		       JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		scrub(jerr.text);
		pb_err_set(err, EX_DATAERR, "body: not a JSON object: %s (line %d, column %d)",
			   jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(o)) {
		pb_err_set(err, EX_DATAERR, "body: not a JSON object, got %s", type_name(o));
		goto out;
	}
	if (parse_object(o, ev, err))
		goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

char *pb_event_routing_key(const struct pb_event *ev, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s.%s.%s", ev->region, pb_kind_name(ev->kind), ev->key);

	return n < 0 || (size_t)n >= size ? NULL : buf;
}

char *pb_exchange_name(const char *federation, char *buf, size_t size)
{
	int n = snprintf(buf, size, "provbus.%s", federation);

	return n < 0 || (size_t)n >= size ? NULL : buf;
}

int pb_event_check_route(const struct pb_event *ev, const char *exchange,
			 const char *routing_key, struct pb_err *err)
{
	char want_rk[PB_IDENT_MAX + PB_KEY_MAX + 16], want_ex[PB_IDENT_MAX + 16];
	char shown[SHOW_MAX + 4];

	pb_event_routing_key(ev, want_rk, sizeof(want_rk));
	pb_exchange_name(ev->federation, want_ex, sizeof(want_ex));
	if (!routing_key || strcmp(routing_key, want_rk))
		return pb_err_set(err, EX_DATAERR,
				  "routing key '%s' does not match the body's %s",
				  routing_key ? show(routing_key, strlen(routing_key), shown,
						     sizeof(shown)) : "",
				  want_rk);
	if (!exchange || strcmp(exchange, want_ex))
		return pb_err_set(err, EX_DATAERR,
				  "event names federation '%s' but came through exchange '%s'",
				  ev->federation,
				  exchange ? show(exchange, strlen(exchange), shown, sizeof(shown))
					   : "");
	return 0;
}
