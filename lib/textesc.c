/* textesc.c — see textesc.h. */
#include "textesc.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when the bytes there are not valid UTF-8 (overlongs,
 * surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0], v;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
	    (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

static bool is_bidi_format(unsigned cp)
{
	return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* Calls emit for each run of bytes to copy and each escape; the escape
 * text is at most 11 bytes. Returns the first non-zero emit result. */
typedef int (*emit_fn)(void *ctx, const char *p, size_t n);

/* The escape, into buf, of the character at hand: the invalid byte
 * `byte` (len 0) or the code point cp of len bytes. Returns its length, 0
 * to copy the character as it is. */
typedef int (*decide_fn)(unsigned char byte, unsigned cp, size_t len, bool allow_newline,
			 char buf[12]);

/* for a terminal: \xNN for C0 controls (but TAB, and newline when
 * allowed), DEL and bad bytes; \uXXXX for C1 and bidi formatting */
static int decide_text(unsigned char byte, unsigned cp, size_t len, bool allow_newline,
		       char buf[12])
{
	if (len == 0)
		return snprintf(buf, 12, "\\x%02x", byte);
	if (len == 1)
		return (cp < 0x20 && cp != '\t' && !(allow_newline && cp == '\n')) || cp == 0x7F ?
			       snprintf(buf, 12, "\\x%02x", cp) : 0;
	return (cp >= 0x80 && cp <= 0x9F) || is_bidi_format(cp) ? snprintf(buf, 12, "\\u%04x", cp)
								 : 0;
}

/* inside JSON text (the encoder escaped C0 already): a bad byte as the
 * text \\xNN (a JSON string holding a backslash), DEL, C1 and bidi
 * formatting as \uXXXX */
static int decide_json(unsigned char byte, unsigned cp, size_t len, bool allow_newline,
		       char buf[12])
{
	(void)allow_newline;
	if (len == 0)
		return snprintf(buf, 12, "\\\\x%02x", byte);
	return cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || is_bidi_format(cp) ?
		       snprintf(buf, 12, "\\u%04x", cp) : 0;
}

static int walk(const char *s, size_t n, decide_fn decide, bool allow_newline, emit_fn emit,
		void *ctx)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start = 0;
	char buf[12];
	int rc;

	while (i < n) {
		unsigned cp = 0;
		size_t len = utf8_seq(u + i, n - i, &cp);
		int esc_len = decide(u[i], cp, len, allow_newline, buf);

		if (len == 0)
			len = 1;
		if (esc_len > 0) {
			if (i > start && (rc = emit(ctx, s + start, i - start)) != 0)
				return rc;
			if ((rc = emit(ctx, buf, (size_t)esc_len)) != 0)
				return rc;
			start = i + len;
		}
		i += len;
	}
	if (n > start)
		return emit(ctx, s + start, n - start);
	return 0;
}

static int escape(const char *s, size_t n, bool allow_newline, emit_fn emit, void *ctx)
{
	return walk(s, n, decide_text, allow_newline, emit, ctx);
}

static int emit_file(void *ctx, const char *p, size_t n)
{
	return fwrite(p, 1, n, ctx) == n ? 0 : EOF;
}

int pb_textesc_write(FILE *f, const char *s, size_t n, bool allow_newline)
{
	return escape(s, n, allow_newline, emit_file, f);
}

int pb_textesc_fputs(FILE *f, const char *s)
{
	return s ? pb_textesc_write(f, s, strlen(s), false) : 0;
}

struct membuf {
	char *p;
	size_t len, cap;
};

static int emit_mem(void *ctx, const char *p, size_t n)
{
	struct membuf *m = ctx;

	if (m->len + n + 1 > m->cap) {
		size_t cap = m->cap ? m->cap : 64;
		while (cap < m->len + n + 1)
			cap *= 2;
		char *q = realloc(m->p, cap);
		if (!q)
			return -1;
		m->p = q;
		m->cap = cap;
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
	m->p[m->len] = '\0';
	return 0;
}

char *pb_textesc_dup(const char *s, size_t n, bool allow_newline)
{
	struct membuf m = { NULL, 0, 0 };

	if (emit_mem(&m, "", 0) != 0 || escape(s, n, allow_newline, emit_mem, &m) != 0) {
		free(m.p);
		return NULL;
	}
	return m.p;
}

/* an emit that stops the walk at the first escape: escape() emits a copy
 * run only before an escape or at the very end */
static int emit_stop_at_escape(void *ctx, const char *p, size_t n)
{
	const char *end = ctx;

	return p + n == end ? 0 : 1;
}

bool pb_textesc_clean(const char *s, size_t n, bool allow_newline)
{
	return escape(s, n, allow_newline, emit_stop_at_escape, (void *)(s + n)) == 0;
}

size_t pb_textesc_utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len;
	unsigned cp;

	while (i < n && (len = utf8_seq(u + i, n - i, &cp)) > 0)
		i += len;
	return i;
}

int pb_textesc_check(const char *s, size_t n, char *why, size_t size, size_t *at)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned cp = 0;
		size_t len = utf8_seq(u + i, n - i, &cp);

		if (len == 0 || (len == 1 && ((cp < 0x20 && cp != '\t') || cp == 0x7F)) ||
		    (cp >= 0x80 && cp <= 0x9F)) {
			if (why && size)
				snprintf(why, size,
					 len == 0 ? "invalid UTF-8 byte 0x%02x at offset %zu"
					 : len == 1 ? "control byte 0x%02x at offset %zu"
						    : "C1 control U+%04X at offset %zu",
					 len == 0 ? u[i] : cp, i);
			if (at)
				*at = i;
			return -1;
		}
		i += len;
	}
	return 0;
}

static int escape_json(const char *s, size_t n, emit_fn emit, void *ctx)
{
	return walk(s, n, decide_json, false, emit, ctx);
}

char *pb_textesc_json(const char *json)
{
	struct membuf m = { NULL, 0, 0 };

	if (!json)
		return NULL;
	if (emit_mem(&m, "", 0) != 0 || escape_json(json, strlen(json), emit_mem, &m) != 0) {
		free(m.p);
		return NULL;
	}
	return m.p;
}
