/* event.c — the version-1 event of docs/protocol.md §4.
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

#include "event-private.h"
#include "pbtime.h"
#include "textesc.h"

#define SHOW_MAX 200		/* bytes of a hostile text shown in a message */

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

int pb_event_check_text(const char *field, const char *s, size_t len, struct pb_err *err)
{
	char why[80];

	if (pb_textesc_check(s, len, why, sizeof(why), NULL))
		return pb_err_set(err, EX_DATAERR, "field '%s': %s", field, why);
	return 0;
}

static int take_value(const char *s, size_t len, struct pb_event *ev, struct pb_err *err)
{
	if (len > PB_VALUE_MAX)
		return pb_err_set(err, EX_DATAERR, "field 'value': %zu bytes, more than %d", len,
				  PB_VALUE_MAX);
	/* NUL, CR and LF and every other control: see textesc.h */
	if (pb_event_check_text("value", s, len, err))
		return -1;
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
		if (pb_event_check_text(names[i].field, names[i].s, strlen(names[i].s), err) ||
		    take_name(names[i].field, names[i].s, strlen(names[i].s), names[i].rule,
			      names[i].dst, names[i].size, err))
			goto out;
	}
	if (kind == PB_KIND_PROVIDES) {
		if (!value) {
			pb_err_set(err, EX_DATAERR, "field 'value': a provides event needs a value");
			goto out;
		}
		/* valid UTF-8 too, which the encoder needs: found now, not at send time */
		if (take_value(value, strlen(value), ev, err))
			goto out;
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

/* ---- parsing: two readers, one validation ----
 *
 * The validation below reads the 13 fields of docs/protocol.md §4 through struct
 * field, not through jansson, so that two readers can feed it:
 *
 * - the fast scanner (scan_*): a flat object whose keys are all known
 *   fields, each at most once, and whose values are plain ASCII strings
 *   (no escape, no control or non-ASCII byte), integers of at most 18
 *   digits, true, false or null: every event our encoder writes, unless
 *   its value holds a quote, a backslash, a control byte or UTF-8. It
 *   copies the strings into a buffer on the stack: no malloc, no hash
 *   table (json_loadb was a large share of the consumer's CPU while
 *   draining; the scanner is several times faster: docs/BENCHMARKS.md).
 * - jansson (json_loadb), for any other body. The scanner declines
 *   anything outside its subset, however harmless (an unknown field, a
 *   float, an escape, UTF-8, a duplicate, bad syntax), and jansson then
 *   reads the body from the start: every syntax error message comes from
 *   jansson, and the scanner only has to be right about what it accepts.
 *   Every body it accepts is valid JSON that jansson (with the flags
 *   below) reads to the same values; tests/unit/test_event.c and
 *   fuzz/fuzz_event.c check that both paths give the same result. */

enum field_id {
	F_V, F_ID, F_KIND, F_FEDERATION, F_REGION, F_NODE, F_SERVICE, F_KEY, F_VALUE,
	F_PUBLIC, F_SEQ, F_TTL_S, F_TS, N_FIELDS
};

static const struct {
	const char *name;
	size_t len;
} field_names[N_FIELDS] = {
	[F_V] = { "v", 1 },
	[F_ID] = { "id", 2 },
	[F_KIND] = { "kind", 4 },
	[F_FEDERATION] = { "federation", 10 },
	[F_REGION] = { "region", 6 },
	[F_NODE] = { "node", 4 },
	[F_SERVICE] = { "service", 7 },
	[F_KEY] = { "key", 3 },
	[F_VALUE] = { "value", 5 },
	[F_PUBLIC] = { "public", 6 },
	[F_SEQ] = { "seq", 3 },
	[F_TTL_S] = { "ttl_s", 5 },
	[F_TS] = { "ts", 2 },
};

/* One known member of the body, as either reader found it. */
struct field {
	int present;
	json_type type;
	const char *s;		/* JSON_STRING: NUL-terminated; len bytes, which
				 * may hold a NUL (from "\u0000") */
	size_t len;
	json_int_t i;		/* JSON_INTEGER */
};

/* The type names used in "want X, got Y" messages. */
static const char *type_name(json_type t)
{
	switch (t) {
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

/* The field `id`, which must be present. */
static const struct field *member(const struct field *f, enum field_id id, struct pb_err *err)
{
	if (!f[id].present) {
		pb_err_set(err, EX_DATAERR, "field '%s': missing", field_names[id].name);
		return NULL;
	}
	return &f[id];
}

static const struct field *member_string(const struct field *f, enum field_id id,
					 struct pb_err *err)
{
	const struct field *j = member(f, id, err);

	if (j && j->type != JSON_STRING) {
		pb_err_set(err, EX_DATAERR, "field '%s': want a string, got %s",
			   field_names[id].name, type_name(j->type));
		j = NULL;
	} else if (j && pb_event_check_text(field_names[id].name, j->s, j->len, err)) {
		j = NULL;
	}
	return j;
}

static int member_count(const struct field *f, enum field_id id, int64_t *out,
			struct pb_err *err)
{
	const struct field *j = member(f, id, err);

	if (!j)
		return -1;
	if (j->type != JSON_INTEGER || j->i < 0)
		return pb_err_set(err, EX_DATAERR, "field '%s': want a non-negative integer, got %s",
				  field_names[id].name,
				  j->type == JSON_INTEGER ? "a negative integer" : type_name(j->type));
	*out = j->i;
	return 0;
}

static int parse_names(const struct field *f, struct pb_event *ev, struct pb_err *err)
{
	const struct {
		enum field_id id;
		enum name_rule rule;
		char *dst;
		size_t size;
	} names[] = {
		{ F_FEDERATION, RULE_IDENT, ev->federation, sizeof(ev->federation) },
		{ F_REGION, RULE_IDENT, ev->region, sizeof(ev->region) },
		{ F_NODE, RULE_IDENT, ev->node, sizeof(ev->node) },
		{ F_SERVICE, RULE_SERVICE, ev->service, sizeof(ev->service) },
		{ F_KEY, RULE_KEY, ev->key, sizeof(ev->key) },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct field *j = member_string(f, names[i].id, err);

		if (!j || take_name(field_names[names[i].id].name, j->s, j->len, names[i].rule,
				    names[i].dst, names[i].size, err))
			return -1;
	}
	return 0;
}

static int parse_value(const struct field *f, struct pb_event *ev, struct pb_err *err)
{
	const struct field *j = member(f, F_VALUE, err);

	if (!j)
		return -1;
	if (ev->kind == PB_KIND_RETIRE) {
		if (j->type != JSON_NULL)
			return pb_err_set(err, EX_DATAERR,
					  "field 'value': want null for a retire event, got %s",
					  type_name(j->type));
		ev->has_value = 0;
		return 0;
	}
	if (j->type != JSON_STRING)
		return pb_err_set(err, EX_DATAERR,
				  "field 'value': want a string for a provides event, got %s",
				  type_name(j->type));
	return take_value(j->s, j->len, ev, err);
}

static int parse_ts(const struct field *f, struct pb_event *ev, struct pb_err *err)
{
	const struct field *j = member_string(f, F_TS, err);
	struct pb_err terr = PB_ERR_INIT;
	char shown[SHOW_MAX + 4];
	int64_t ms;

	if (!j)
		return -1;
	if (j->len >= sizeof(ev->ts) || strlen(j->s) != j->len ||
	    pb_time_parse_rfc3339(j->s, &ms, &terr))
		return pb_err_set(err, EX_DATAERR,
				  "field 'ts': '%s' is not an RFC 3339 time (2026-11-22T03:00:00.123Z)",
				  show(j->s, j->len, shown, sizeof(shown)));
	memcpy(ev->ts, j->s, j->len + 1);
	return 0;
}

/* Applies every body rule of docs/protocol.md §4 to the fields f (N_FIELDS of them). */
static int parse_fields(const struct field *f, struct pb_event *ev, struct pb_err *err)
{
	char shown[SHOW_MAX + 4];
	const struct field *j;
	size_t i;

	j = member(f, F_V, err);
	if (!j)
		return -1;
	if (j->type != JSON_INTEGER || j->i != 1) {
		if (j->type == JSON_INTEGER)
			return pb_err_set(err, EX_DATAERR,
					  "field 'v': version %lld is not supported: want 1",
					  (long long)j->i);
		return pb_err_set(err, EX_DATAERR, "field 'v': want the integer 1, got %s",
				  type_name(j->type));
	}

	j = member_string(f, F_ID, err);
	if (!j)
		return -1;
	if (!uuid_text_ok(j->s, j->len))
		return pb_err_set(err, EX_DATAERR,
				  "field 'id': '%s' is not a UUID (8-4-4-4-12 hex digits)",
				  show(j->s, j->len, shown, sizeof(shown)));
	/* one spelling per id, so that duplicates are found whatever the case */
	for (i = 0; i < 36; i++)
		ev->id[i] = (char)tolower((unsigned char)j->s[i]);
	ev->id[36] = '\0';

	j = member_string(f, F_KIND, err);
	if (!j)
		return -1;
	if (strlen(j->s) != j->len || pb_kind_parse(j->s, &ev->kind))
		return pb_err_set(err, EX_DATAERR, "field 'kind': '%s': want provides or retire",
				  show(j->s, j->len, shown, sizeof(shown)));

	if (parse_names(f, ev, err) || parse_value(f, ev, err))
		return -1;

	j = member(f, F_PUBLIC, err);
	if (!j)
		return -1;
	if (j->type != JSON_TRUE && j->type != JSON_FALSE)
		return pb_err_set(err, EX_DATAERR, "field 'public': want a boolean, got %s",
				  type_name(j->type));
	ev->public = j->type == JSON_TRUE;

	if (member_count(f, F_SEQ, &ev->seq, err) || member_count(f, F_TTL_S, &ev->ttl_s, err))
		return -1;
	return parse_ts(f, ev, err);
}

/* ---- the fast scanner ---- */

/* String bytes (with their NULs) the scanner keeps on the stack: a
 * 4096-byte value and the longest names fit; a longer body goes to
 * jansson. */
#define SCAN_BUF 8192
/* 18 decimal digits always fit in json_int_t (int64), so no overflow test */
#define SCAN_DIGITS_MAX 18

struct scan {
	const char *p, *end;
	char *buf;		/* SCAN_BUF bytes */
	size_t used;
};

static int is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void scan_space(struct scan *sc)
{
	while (sc->p < sc->end && is_json_space(*sc->p))
		sc->p++;
}

/* Takes byte c after optional whitespace; 0, or -1 if the next byte is
 * another one or the body ends. */
static int scan_byte(struct scan *sc, char c)
{
	scan_space(sc);
	if (sc->p == sc->end || *sc->p != c)
		return -1;
	sc->p++;
	return 0;
}

/* A string of printable ASCII only, from its opening quote: sets *s and
 * *len to its bytes in the body (not copied). 0, or -1 if it holds a
 * backslash, a control byte or a byte >= 0x80, or does not end. */
static int scan_plain_string(struct scan *sc, const char **s, size_t *len)
{
	const char *p = sc->p + 1;

	for (; p < sc->end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"') {
			*s = sc->p + 1;
			*len = (size_t)(p - *s);
			sc->p = p + 1;
			return 0;
		}
		if (c == '\\' || c < 0x20 || c >= 0x80)
			return -1;
	}
	return -1;
}

/* An integer as JSON writes it ("-"? ("0" | [1-9][0-9]*)), at most
 * SCAN_DIGITS_MAX digits; what follows it is for the caller to check (a
 * '.', 'e' or 'E' is then refused as neither ',' nor '}'). */
static int scan_integer(struct scan *sc, json_int_t *out)
{
	const char *p = sc->p, *digits;
	int negative = 0;
	json_int_t n = 0;

	if (*p == '-') {
		negative = 1;
		p++;
	}
	digits = p;
	for (; p < sc->end && *p >= '0' && *p <= '9'; p++) {
		if (p - digits >= SCAN_DIGITS_MAX)
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (p == digits || (*digits == '0' && p - digits > 1))
		return -1;
	*out = negative ? -n : n;
	sc->p = p;
	return 0;
}

static int scan_literal(struct scan *sc, const char *word, size_t len)
{
	if ((size_t)(sc->end - sc->p) < len || memcmp(sc->p, word, len))
		return -1;
	sc->p += len;
	return 0;
}

/* A member's value into f: a plain string (copied, NUL-terminated, into
 * sc->buf), an integer, true, false or null. */
static int scan_value(struct scan *sc, struct field *f)
{
	const char *s;
	size_t len;

	scan_space(sc);
	if (sc->p == sc->end)
		return -1;
	switch (*sc->p) {
	case '"':
		if (scan_plain_string(sc, &s, &len) || len >= SCAN_BUF - sc->used)
			return -1;
		memcpy(sc->buf + sc->used, s, len);
		sc->buf[sc->used + len] = '\0';
		f->type = JSON_STRING;
		f->s = sc->buf + sc->used;
		f->len = len;
		sc->used += len + 1;
		return 0;
	case 't':
		f->type = JSON_TRUE;
		return scan_literal(sc, "true", 4);
	case 'f':
		f->type = JSON_FALSE;
		return scan_literal(sc, "false", 5);
	case 'n':
		f->type = JSON_NULL;
		return scan_literal(sc, "null", 4);
	default:
		f->type = JSON_INTEGER;
		return scan_integer(sc, &f->i);
	}
}

/* A member's key: one of the known fields, not seen before. Returns its
 * field_id, or -1. */
static int scan_key(struct scan *sc, const struct field *f)
{
	const char *s;
	size_t len;
	int id;

	scan_space(sc);
	if (sc->p == sc->end || *sc->p != '"' || scan_plain_string(sc, &s, &len))
		return -1;
	for (id = 0; id < N_FIELDS; id++)
		if (field_names[id].len == len && !memcmp(field_names[id].name, s, len))
			return f[id].present ? -1 : id;
	return -1;
}

/* The fast reading of a body into f (N_FIELDS, zeroed), strings into buf
 * (SCAN_BUF bytes). Returns 0, or -1 if the body is outside the subset
 * the scanner knows (which says nothing about whether it is valid). */
static int scan_body(const char *body, size_t len, struct field *f, char *buf)
{
	struct scan sc = { body, body + len, buf, 0 };
	int id;

	if (!body || scan_byte(&sc, '{'))
		return -1;
	scan_space(&sc);
	if (sc.p < sc.end && *sc.p == '}') {
		sc.p++;		/* {}: every field is then missing */
	} else {
		for (;;) {
			id = scan_key(&sc, f);
			if (id < 0 || scan_byte(&sc, ':') || scan_value(&sc, &f[id]))
				return -1;
			f[id].present = 1;
			if (!scan_byte(&sc, '}'))
				break;
			if (scan_byte(&sc, ','))
				return -1;
		}
	}
	scan_space(&sc);
	return sc.p == sc.end ? 0 : -1;
}

/* ---- jansson ---- */

/* The known members of the object o into f (N_FIELDS, zeroed); strings
 * point into o, valid while o lives. */
static void fields_of_object(json_t *o, struct field *f)
{
	int id;

	for (id = 0; id < N_FIELDS; id++) {
		json_t *j = json_object_get(o, field_names[id].name);

		if (!j)
			continue;
		f[id].present = 1;
		f[id].type = json_typeof(j);
		if (json_is_string(j)) {
			f[id].s = json_string_value(j);
			f[id].len = json_string_length(j);
		} else if (json_is_integer(j)) {
			f[id].i = json_integer_value(j);
		}
	}
}

/* The index of the quote that opens the JSON string holding body[at], or
 * -1 (reads back to the first quote that no backslash escapes). */
static long string_start(const char *body, size_t at)
{
	for (long q = (long)at - 1; q >= 0; q--) {
		long b = q;

		if (body[q] != '"')
			continue;
		while (b > 0 && body[b - 1] == '\\')
			b--;
		if ((q - b) % 2 == 0)
			return q;
	}
	return -1;
}

/* The member whose string value holds body[at], when the bytes before
 * its opening quote read as `"name":` (name in lowercase letters and '_',
 * at most 32): its name's length, *name pointing into body; 0 when not
 * found. A guess good enough for a message (the body is refused whatever
 * it finds), which jansson's own message does not give. */
static int member_at(const char *body, size_t at, const char **name)
{
	long q = string_start(body, at), k = q - 1, e;

	while (k >= 0 && is_json_space(body[k]))
		k--;
	if (q <= 0 || k < 0 || body[k] != ':')
		return 0;
	for (k--; k >= 0 && is_json_space(body[k]); k--)
		;
	if (k <= 0 || body[k] != '"')
		return 0;
	e = k;
	for (k--; k >= 0 && k > e - 33 && (islower((unsigned char)body[k]) || body[k] == '_'); k--)
		;
	if (k < 0 || body[k] != '"' || e - k <= 1)
		return 0;
	*name = body + k + 1;
	return (int)(e - k - 1);
}

/* A body that is not UTF-8 is refused naming the byte, its offset and,
 * when member_at finds it, the member. 0 when the body is valid UTF-8. */
static int check_body_utf8(const char *body, size_t len, struct pb_err *err)
{
	size_t at = pb_textesc_utf8_valid(body, len);
	const char *name;
	int n;

	if (at == len)
		return 0;
	if ((n = member_at(body, at, &name)) > 0)
		return pb_err_set(err, EX_DATAERR,
				  "field '%.*s': invalid UTF-8 byte 0x%02x at offset %zu of the body", n,
				  name, (unsigned char)body[at], at);
	return pb_err_set(err, EX_DATAERR, "body: invalid UTF-8 byte 0x%02x at offset %zu",
			  (unsigned char)body[at], at);
}

/* jansson refused a raw control byte in a string ("control character
 * 0x1b near ...", "unexpected newline near ..."): the same message as for an escaped one, naming the
 * member and the byte's offset in the body. 0 when that is not the case. */
static int raw_control(const char *body, size_t len, const json_error_t *jerr,
		       struct pb_err *err)
{
	const char *jtext = jerr->text;
	/* jansson stops at the byte or right after it: the last one of its
	 * kind up to there is it */
	size_t upto = jerr->position >= 0 && (size_t)jerr->position < len ? (size_t)jerr->position + 1
									   : len;
	unsigned byte;
	const char *p, *name;
	int n;

	/* (a raw TAB is bad JSON, but no offence to the text rule: jansson's
	 * message says it better) */
	if (!strncmp(jtext, "unexpected newline", 18))
		byte = '\n';
	else if (sscanf(jtext, "control character 0x%x", &byte) != 1)
		return 0;
	if (!body || byte >= 0x20 ||
	    byte == '\t' ||
	    !(p = memrchr(body, (int)byte, upto)) || (n = member_at(body, (size_t)(p - body), &name)) <= 0)
		return 0;
	return pb_err_set(err, EX_DATAERR, "field '%.*s': control byte 0x%02x at offset %zu of the body",
			  n, name, byte, (size_t)(p - body));
}

/* The text rule for every string in v and every member name in it, v
 * being the member `name` of the body (or inside it): for an event, what
 * the known fields do not cover, i.e. extra members. depth bounds the walk
 * (jansson bounds nesting too). */
static int check_extra_text(const char *name, json_t *v, int depth, struct pb_err *err)
{
	const char *k;
	json_t *m;
	size_t i;

	if (depth > 64)
		return 0;
	if (json_is_string(v))
		return pb_event_check_text(name, json_string_value(v), json_string_length(v), err);
	if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (check_extra_text(name, m, depth + 1, err))
				return -1;
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, m)
			if (pb_event_check_text(name, k, strlen(k), err) ||
			    check_extra_text(name, m, depth + 1, err))
				return -1;
	}
	return 0;
}

int pb_event_check_json_text(json_t *o, struct pb_err *err)
{
	const char *k;
	json_t *m;

	if (!json_is_object(o))
		return check_extra_text("(body)", o, 0, err);
	json_object_foreach(o, k, m)
		if (pb_event_check_text(k, k, strlen(k), err) || check_extra_text(k, m, 1, err))
			return -1;
	return 0;
}

/* The members of the body o that are not docs/protocol.md fields, by the text
 * rule; each is named in the message when its name is short and clean. */
static int check_extras(json_t *o, struct pb_err *err)
{
	const char *k;
	json_t *m;

	json_object_foreach(o, k, m) {
		int id, known = 0;
		size_t n = strlen(k);

		for (id = 0; id < N_FIELDS && !known; id++)
			known = !strcmp(field_names[id].name, k);
		if (known)
			continue;
		if (pb_event_check_text("member name", k, n, err) ||
		    check_extra_text(n <= 40 && pb_textesc_clean(k, n, false) ? k : "(extra member)",
				     m, 0, err))
			return -1;
	}
	return 0;
}

/* The slow reading: jansson parses the body, its known members go to f. */
static int parse_slow(const void *body, size_t len, struct pb_event *ev, struct pb_err *err)
{
	struct field f[N_FIELDS];
	json_error_t jerr;
	json_t *o = NULL;
	int rc = -1;

	memset(f, 0, sizeof(f));
	if (body && check_body_utf8(body, len, err))
		goto out;
	/* ALLOW_NUL: a "\u0000" in a value is then refused by the value rule,
	 * with a message that names the field, rather than as bad JSON.
	 * REJECT_DUPLICATES: two "key" members would mean two readings. */
	o = json_loadb(body ? body : "", len,
		       JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		if (raw_control(body, len, &jerr, err))
			goto out;
		scrub(jerr.text);
		pb_err_set(err, EX_DATAERR, "body: not a JSON object: %s (line %d, column %d)",
			   jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(o)) {
		pb_err_set(err, EX_DATAERR, "body: not a JSON object, got %s",
			   type_name(json_typeof(o)));
		goto out;
	}
	fields_of_object(o, f);
	if (parse_fields(f, ev, err) || check_extras(o, err))
		goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int pb_event_parse_path(const void *body, size_t len, struct pb_event *ev, struct pb_err *err,
			enum pb_event_path path)
{
	struct field f[N_FIELDS];
	char buf[SCAN_BUF];
	int rc = -1;

	memset(ev, 0, sizeof(*ev));
	if (len > PB_EVENT_MAX_BYTES) {
		pb_err_set(err, EX_DATAERR, "body: %zu bytes, more than %d", len,
			   PB_EVENT_MAX_BYTES);
		goto out;
	}
	if (path != PB_EVENT_PATH_SLOW) {
		memset(f, 0, sizeof(f));
		if (!scan_body(body, len, f, buf)) {
			rc = parse_fields(f, ev, err);
			goto out;
		}
		if (path == PB_EVENT_PATH_FAST) {
			rc = 1;
			goto out;
		}
	}
	rc = parse_slow(body, len, ev, err);
out:
	return rc;
}

int pb_event_parse(const void *body, size_t len, struct pb_event *ev, struct pb_err *err)
{
	return pb_event_parse_path(body, len, ev, err, PB_EVENT_PATH_AUTO);
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
