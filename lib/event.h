/* event.h — the version-1 event of docs/protocol.md §4: build, encode, parse, validate.
 *
 * An event is a plain struct with bounded fields (no heap). pb_event_parse
 * applies every body rule of docs/protocol.md §4; pb_event_check_route the rules that
 * need the AMQP envelope. Errors are EX_DATAERR and name the field, e.g.
 * "field 'seq': want a non-negative integer". */
#ifndef PB_EVENT_H
#define PB_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "names.h"
#include "vocab.h"

#define PB_EVENT_MAX_BYTES 65536	/* a message over this is invalid */
#define PB_UUID_STR 37

/* enum pb_kind, pb_kind_name, pb_kind_parse: vocab.h */

struct pb_event {
	char id[PB_UUID_STR];	/* lowercase UUID text */
	enum pb_kind kind;
	char federation[PB_IDENT_MAX + 1];
	char region[PB_IDENT_MAX + 1];
	char node[PB_IDENT_MAX + 1];
	char service[PB_SERVICE_MAX + 1];
	char key[PB_KEY_MAX + 1];
	int has_value;		/* 0 for retire (value null) */
	char value[PB_VALUE_MAX + 1];
	size_t value_len;
	int public;
	int64_t seq;		/* >= 0 */
	int64_t ttl_s;		/* >= 0; > 0 is a lease */
	char ts[40];		/* RFC 3339 as sent */
};

/* Fills a new event: a fresh random id (libuuid), ts = now, value copied
 * (NULL for retire). Validates names and value; returns 0 or -1 + err. */
int pb_event_init(struct pb_event *ev, enum pb_kind kind, const char *federation,
		  const char *region, const char *node, const char *service, const char *key,
		  const char *value, int public, int64_t seq, int64_t ttl_s, struct pb_err *err);

/* Encodes as compact JSON, fields in the order of docs/protocol.md §4. Returns a
 * malloc'd NUL-terminated string (free()), *len set if len != NULL. */
char *pb_event_encode(const struct pb_event *ev, size_t *len);

/* Parses and validates a message body (len bytes, not NUL-terminated).
 * Rules: at most 64 KiB; a JSON object; "v" == 1; every field present
 * with its type (id a UUID; kind provides|retire; federation, region,
 * node by the ident rule; service by the service rule; key by the key
 * rule; value a string for provides and null for retire, at most 4096
 * bytes; every string, known field or not, and every member name passing
 * pb_event_check_text; public a boolean; seq and ttl_s non-negative
 * integers; ts an RFC 3339 string). Unknown extra fields are allowed
 * (forward compatibility within v1). Returns 0 or -1 + err naming the
 * field. */
int pb_event_parse(const void *body, size_t len, struct pb_event *ev, struct pb_err *err);

/* The text rule of docs/protocol.md for one string field of an event or report
 * (field names it in the message): valid UTF-8 without C0 control but
 * TAB, DEL or C1 control (pb_textesc_check). Returns 0, or -1 with err
 * EX_DATAERR, e.g. "field 'value': control byte 0x1b at offset 3". */
int pb_event_check_text(const char *field, const char *s, size_t len, struct pb_err *err);

/* The same rule for every string and every member name in the JSON
 * value o (a whole report body, say), the message naming the top-level
 * member it is in. Returns 0, or -1 with err EX_DATAERR. */
int pb_event_check_json_text(json_t *o, struct pb_err *err);

/* The routing key of ev: "REGION.KIND.KEY", into buf (size bytes). */
char *pb_event_routing_key(const struct pb_event *ev, char *buf, size_t size);

/* The exchange of a federation: "provbus.F", into buf. */
char *pb_exchange_name(const char *federation, char *buf, size_t size);

/* Envelope rules: routing_key must be ev's own "region.kind.key" and
 * exchange must be "provbus." + ev->federation. Returns 0 or -1 + err
 * naming the routing key or exchange. */
int pb_event_check_route(const struct pb_event *ev, const char *exchange,
			 const char *routing_key, struct pb_err *err);

#endif
