/* textesc.h — printing untrusted text (event fields, report fields,
 * audit rows, run output) so that no byte of it can drive a terminal.
 *
 * Escaped: C0 controls (0x00-0x1F) but TAB, DEL (0x7F), as \xNN (\n, \r
 * and \t have no short forms here: a value's newline must not look like
 * the end of a line); bytes that are not part of valid UTF-8, as \xNN;
 * C1 controls (U+0080-U+009F) and the bidirectional formatting characters
 * (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), as \uXXXX.
 * Everything else, valid UTF-8 included, is copied as it is. */
#ifndef PB_TEXTESC_H
#define PB_TEXTESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the n bytes at s to f, escaped. allow_newline keeps '\n' raw
 * (for multi-line text such as a run's output tail, printed as lines).
 * Returns what fwrite/fputs return: 0, or EOF on a write error. */
int pb_textesc_write(FILE *f, const char *s, size_t n, bool allow_newline);

/* The same for a NUL-terminated string; s NULL writes nothing. */
int pb_textesc_fputs(FILE *f, const char *s);

/* A malloc'd escaped copy of the n bytes at s (caller frees); NULL on
 * out of memory. */
char *pb_textesc_dup(const char *s, size_t n, bool allow_newline);

/* True when the n bytes at s need no escaping. */
bool pb_textesc_clean(const char *s, size_t n, bool allow_newline);

/* The wire rule for text (docs/protocol.md, and stricter for C1 controls): the n
 * bytes at s are valid UTF-8 (no overlong form, surrogate or code point
 * above U+10FFFF) holding no C0 control but TAB, no DEL (0x7F) and no C1
 * control (U+0080-U+009F). Returns 0, or -1 with the first offence in why
 * (size bytes; why may be NULL): "control byte 0x1b at offset 3",
 * "C1 control U+009B at offset 3" or "invalid UTF-8 byte 0xc0 at offset
 * 3", offsets counted in bytes from 0. *at, if at is not NULL, is then
 * that offset. Bidirectional formatting characters pass: the name rules
 * keep them out of names, and the printers escape them. */
int pb_textesc_check(const char *s, size_t n, char *why, size_t size, size_t *at);

/* The length of the longest prefix of the n bytes at s that is valid
 * UTF-8 (n when all of it is). */
size_t pb_textesc_utf8_valid(const char *s, size_t n);

/* Escapes, in JSON text produced by an encoder (jansson's json_dumps), what
 * the encoder leaves raw but a terminal would act on: DEL as \u007f, C1
 * controls and the bidirectional formatting characters as \uXXXX. The
 * JSON value is unchanged. A byte that is not valid UTF-8 becomes the
 * five characters \\xNN (a backslash, escaped, then xNN: inside a JSON
 * string, the text \xNN), so that the output stays valid UTF-8. Returns
 * a malloc'd copy (caller frees), NULL on out of memory or json NULL. */
char *pb_textesc_json(const char *json);

#endif
