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

#endif
