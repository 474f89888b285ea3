/* jsonpos.c — a small JSON scanner that finds where a member stands.
 *
 * It walks the text once, descending only into the objects and arrays on
 * the path, and skips everything else. Lines and columns are 1-based and
 * counted like jansson counts them: a column is a character (a UTF-8
 * sequence counts once), a line ends at '\n'. The scanner trusts the text
 * no further than it must: anything it cannot read is "not found". */
#include "jsonpos.h"

#include <stdlib.h>
#include <string.h>

#define JSONPOS_MAX_DEPTH 2048	/* jansson's own parser limit */

struct scan {
	const char *p, *end;
	int line, col;
};

struct pos {
	int line, col;
};

static int at_end(const struct scan *s)
{
	return s->p >= s->end;
}

static void advance(struct scan *s)
{
	unsigned char c = (unsigned char)*s->p++;

	if (c == '\n') {
		s->line++;
		s->col = 1;
	} else if ((c & 0xC0) != 0x80) {
		/* count a character once: only its first byte moves the column */
		s->col++;
	}
}

static void skip_ws(struct scan *s)
{
	while (!at_end(s) && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		advance(s);
}

static int expect(struct scan *s, char c)
{
	if (at_end(s) || *s->p != c)
		return -1;
	advance(s);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_hex4(struct scan *s, unsigned *out)
{
	unsigned v = 0;
	int i, h;

	for (i = 0; i < 4; i++) {
		if (at_end(s) || (h = hexval(*s->p)) < 0)
			return -1;
		v = v * 16 + (unsigned)h;
		advance(s);
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *buf, unsigned cp)
{
	if (cp < 0x80) {
		buf[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (char)(0xC0 | (cp >> 6));
		buf[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (char)(0xE0 | (cp >> 12));
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		buf[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	buf[0] = (char)(0xF0 | (cp >> 18));
	buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	buf[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Reads a string at s->p (on its opening quote). With want != NULL,
 * decodes it and sets *match to 1 when it equals want (wlen bytes).
 * Decoding never needs more room than the raw text, since every escape
 * is at least as long as the bytes it stands for. */
static int scan_string(struct scan *s, const char *want, size_t wlen, int *match)
{
	const char *start;
	char *buf = NULL;
	size_t n = 0;
	int rc = -1;

	if (expect(s, '"') < 0)
		return -1;
	start = s->p;
	if (want) {
		const char *q = start;
		while (q < s->end && *q != '"')
			q += (*q == '\\' && q + 1 < s->end) ? 2 : 1;
		buf = malloc((size_t)(q - start) + 4);
		if (!buf)
			return -1;
	}
	while (!at_end(s) && *s->p != '"') {
		unsigned char c = (unsigned char)*s->p;
		if (c < 0x20)
			goto out;
		if (c != '\\') {
			if (buf)
				buf[n++] = (char)c;
			advance(s);
			continue;
		}
		advance(s);
		if (at_end(s))
			goto out;
		c = (unsigned char)*s->p;
		if (c == 'u') {
			unsigned cp, lo;
			advance(s);
			if (read_hex4(s, &cp) < 0)
				goto out;
			if (cp >= 0xD800 && cp <= 0xDBFF && s->end - s->p >= 6 && s->p[0] == '\\' &&
			    s->p[1] == 'u') {
				advance(s);
				advance(s);
				if (read_hex4(s, &lo) < 0)
					goto out;
				if (lo >= 0xDC00 && lo <= 0xDFFF)
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				/* a lone or broken surrogate never matches a key we look for */
			}
			if (buf)
				n += put_utf8(buf + n, cp);
			continue;
		}
		if (buf) {
			switch (c) {
			case 'b': buf[n++] = '\b'; break;
			case 'f': buf[n++] = '\f'; break;
			case 'n': buf[n++] = '\n'; break;
			case 'r': buf[n++] = '\r'; break;
			case 't': buf[n++] = '\t'; break;
			case '"': case '\\': case '/': buf[n++] = (char)c; break;
			default: goto out;
			}
		}
		advance(s);
	}
	if (expect(s, '"') < 0)
		goto out;
	if (want)
		*match = n == wlen && memcmp(buf, want, n) == 0;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int is_scalar_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '+' || c == '.';
}

static int skip_value(struct scan *s, int depth);

static int skip_container(struct scan *s, int depth, char open, char close)
{
	int first = 1;

	if (depth > JSONPOS_MAX_DEPTH || expect(s, open) < 0)
		return -1;
	skip_ws(s);
	if (!at_end(s) && *s->p == close) {
		advance(s);
		return 0;
	}
	for (;;) {
		if (!first && expect(s, ',') < 0)
			return -1;
		first = 0;
		skip_ws(s);
		if (open == '{') {
			if (scan_string(s, NULL, 0, NULL) < 0)
				return -1;
			skip_ws(s);
			if (expect(s, ':') < 0)
				return -1;
			skip_ws(s);
		}
		if (skip_value(s, depth + 1) < 0)
			return -1;
		skip_ws(s);
		if (!at_end(s) && *s->p == close) {
			advance(s);
			return 0;
		}
	}
}

static int skip_value(struct scan *s, int depth)
{
	const char *start = s->p;

	if (at_end(s))
		return -1;
	switch (*s->p) {
	case '"':
		return scan_string(s, NULL, 0, NULL);
	case '{':
		return skip_container(s, depth, '{', '}');
	case '[':
		return skip_container(s, depth, '[', ']');
	default:
		while (!at_end(s) && is_scalar_char(*s->p))
			advance(s);
		return s->p > start ? 0 : -1;
	}
}

/* "[N]" -> N, or -1 when comp is not an index. */
static long parse_index(const char *comp)
{
	char *endp;
	long v;

	if (comp[0] != '[' || comp[1] < '0' || comp[1] > '9')
		return -1;
	v = strtol(comp + 1, &endp, 10);
	if (endp[0] != ']' || endp[1] != '\0' || v < 0)
		return -1;
	return v;
}

/* At the start of a value (whitespace skipped): follows path and sets
 * *key (the member's key, or the element) and *val (its value). */
static int walk(struct scan *s, const char *const *path, size_t n, int depth, struct pos *key,
		struct pos *val)
{
	int first = 1;

	if (n == 0) {
		/* the value found must be whole: a truncated text finds nothing */
		key->line = val->line = s->line;
		key->col = val->col = s->col;
		return skip_value(s, depth);
	}
	if (depth > JSONPOS_MAX_DEPTH || at_end(s))
		return -1;
	if (*s->p == '{') {
		size_t wlen = strlen(path[0]);
		advance(s);
		for (;;) {
			struct pos kpos;
			int match = 0;
			skip_ws(s);
			if (at_end(s) || *s->p == '}')
				return -1;
			if (!first) {
				if (expect(s, ',') < 0)
					return -1;
				skip_ws(s);
			}
			first = 0;
			kpos.line = s->line;
			kpos.col = s->col;
			if (scan_string(s, path[0], wlen, &match) < 0)
				return -1;
			skip_ws(s);
			if (expect(s, ':') < 0)
				return -1;
			skip_ws(s);
			if (match) {
				if (walk(s, path + 1, n - 1, depth + 1, key, val) < 0)
					return -1;
				if (n == 1)
					*key = kpos;
				return 0;
			}
			if (skip_value(s, depth + 1) < 0)
				return -1;
		}
	}
	if (*s->p == '[') {
		long want = parse_index(path[0]), i;
		if (want < 0)
			return -1;
		advance(s);
		for (i = 0;; i++) {
			skip_ws(s);
			if (at_end(s) || *s->p == ']')
				return -1;
			if (i > 0) {
				if (expect(s, ',') < 0)
					return -1;
				skip_ws(s);
			}
			if (i == want)
				return walk(s, path + 1, n - 1, depth + 1, key, val);
			if (skip_value(s, depth + 1) < 0)
				return -1;
		}
	}
	return -1;
}

static int find(const char *text, size_t len, const char *const *path, size_t n, int *line,
		int *col, int want_value)
{
	struct scan s = { text, text + len, 1, 1 };
	struct pos key = { 1, 1 }, val = { 1, 1 };
	int rc;

	skip_ws(&s);
	rc = walk(&s, path, n, 0, &key, &val);
	if (rc < 0)
		key = val = (struct pos){ 1, 1 };
	*line = want_value ? val.line : key.line;
	*col = want_value ? val.col : key.col;
	return rc;
}

int pb_jsonpos_find(const char *text, size_t len, const char *const *path, size_t n,
		    int *line, int *col)
{
	return find(text, len, path, n, line, col, 0);
}

int pb_jsonpos_find_value(const char *text, size_t len, const char *const *path, size_t n,
			  int *line, int *col)
{
	return find(text, len, path, n, line, col, 1);
}
