/* names.h — the name rules of docs/protocol.md §1, docs/protocol.md §4. */
#ifndef PB_NAMES_H
#define PB_NAMES_H

#include <stddef.h>

#define PB_IDENT_MAX 63		/* node, federation, region */
#define PB_KEY_MAX 128		/* keys and env var names */
#define PB_SERVICE_MAX 128	/* service (manifest) ids */
#define PB_VALUE_MAX 4096	/* event values, bytes */

/* node, federation, region: [a-z0-9][a-z0-9-]{0,62} */
int pb_name_ident_ok(const char *s);
/* keys and env var names: ^[A-Z_][A-Z0-9_]{0,127}$ */
int pb_name_key_ok(const char *s);
/* service ids: [A-Za-z0-9][A-Za-z0-9_.-]{0,127} (the contract is silent; this
 * keeps them safe in file names, logs and routing) */
int pb_name_service_ok(const char *s);
/* a value: at most 4096 bytes of text by the wire rule of docs/protocol.md (valid
 * UTF-8, no control character but TAB: see pb_textesc_check); len is its
 * length */
int pb_value_ok(const char *s, size_t len);
/* The same, returning 0, or -1 with what is wrong in why (size bytes):
 * "5000 bytes, more than 4096" or pb_textesc_check's "control byte 0x1b
 * at offset 3". */
int pb_value_check(const char *s, size_t len, char *why, size_t size);

#endif
