/* output.c — text buffer, JSON writer and aligned tables of
 * provbus-audit; see audit-cli.h. */
#include "audit-cli.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pbtime.h"
#include "textesc.h"

int au_verdict_index(const char *word)
{
	enum pb_verdict v;

	return pb_verdict_parse(word, &v) < 0 ? AU_VERDICT_OTHER : (int)v;
}

const char *au_verdict_word(int i)
{
	return i >= 0 && i < AU_VERDICT_OTHER ? pb_verdict_name((enum pb_verdict)i) : "other";
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fputs(AU_PROG ": error: out of memory\n", stderr);
		abort();
	}
	return q;
}

void au_buf_add(struct au_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void au_buf_puts(struct au_buf *b, const char *s)
{
	au_buf_add(b, s, strlen(s));
}

void au_buf_putc(struct au_buf *b, char c)
{
	au_buf_add(b, &c, 1);
}

void au_buf_printf(struct au_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		au_buf_add(b, small, (size_t)n);
		return;
	}
	au_buf_add(b, "", 0);
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = b->len + (size_t)n + 1;
		b->s = xrealloc(b->s, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void au_buf_reset(struct au_buf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void au_buf_release(struct au_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

void au_buf_flush(struct au_buf *b, FILE *f)
{
	if (b->len)
		fwrite(b->s, 1, b->len, f);
	au_buf_reset(b);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid;
 * its code point in *cpp. */
static size_t utf8_cp(const unsigned char *s, size_t n, unsigned *cpp)
{
	size_t len, i;
	unsigned cp;

	*cpp = s[0];
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cpp = cp;
	return len;
}

static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp;

	return utf8_cp(s, n, &cp);
}

/* C1 controls and the bidirectional formatting characters: valid JSON
 * raw, but a terminal acts on them (textesc.h) */
static int is_terminal_control(unsigned cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void au_json_quote(struct au_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	if (!s) {
		au_buf_add(b, "null", 4);
		return;
	}
	au_buf_putc(b, '"');
	while (i < n) {
		unsigned char c = p[i];
		unsigned cp;
		size_t l = 0;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
			run++;
			i++;
			continue;
		}
		if (c >= 0x80 && (l = utf8_cp(p + i, n - i, &cp)) > 0 && !is_terminal_control(cp)) {
			run += l;
			i += l;
			continue;
		}
		au_buf_add(b, (const char *)p + i - run, run);
		run = 0;
		if (l > 0) {	/* C1 or bidi: the same string, escaped */
			au_buf_printf(b, "\\u%04x", cp);
			i += l;
			continue;
		}
		switch (c) {
		case '"': au_buf_add(b, "\\\"", 2); break;
		case '\\': au_buf_add(b, "\\\\", 2); break;
		case '\n': au_buf_add(b, "\\n", 2); break;
		case '\r': au_buf_add(b, "\\r", 2); break;
		case '\t': au_buf_add(b, "\\t", 2); break;
		default:
			if (c <= 0x7f)
				au_buf_printf(b, "\\u%04x", c);
			else	/* invalid UTF-8: the text \xNN, as textesc.h */
				au_buf_printf(b, "\\\\x%02x", c);
		}
		i++;
	}
	au_buf_add(b, (const char *)p + i - run, run);
	au_buf_putc(b, '"');
}

void au_buf_html(struct au_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, l;

	while (i < n) {
		switch (p[i]) {
		case '<': au_buf_puts(b, "&lt;"); i++; continue;
		case '>': au_buf_puts(b, "&gt;"); i++; continue;
		case '&': au_buf_puts(b, "&amp;"); i++; continue;
		case '"': au_buf_puts(b, "&quot;"); i++; continue;
		case '\'': au_buf_puts(b, "&#39;"); i++; continue;
		default: break;
		}
		if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f) {
			au_buf_putc(b, ' ');
			i++;
		} else if ((l = utf8_len(p + i, n - i)) > 0) {
			unsigned cp;

			if (utf8_cp(p + i, n - i, &cp) && is_terminal_control(cp)) {
				au_buf_putc(b, ' ');	/* C1, bidi: no use in a page */
				i += l;
				continue;
			}
			au_buf_add(b, s + i, l);
			i += l;
		} else {
			au_buf_puts(b, "\xef\xbf\xbd");
			i++;
		}
	}
}

/* --- JSON writer ------------------------------------------------------------ */

static void json_member(struct au_json *j, const char *k)
{
	int d = j->depth > 0 ? j->depth - 1 : 0;

	if (j->count[d]++)
		au_buf_putc(&j->b, ',');
	if (k) {
		au_json_quote(&j->b, k, strlen(k));
		au_buf_putc(&j->b, ':');
	}
}

/* Opens an object or an array ('{' or '['): a level whose members count
 * from 0. */
static void json_open(struct au_json *j, char c)
{
	au_buf_putc(&j->b, c);
	if (j->depth < AU_JSON_DEPTH)
		j->count[j->depth++] = 0;
}

static void json_close(struct au_json *j, char c)
{
	au_buf_putc(&j->b, c);
	if (j->depth > 0)
		j->depth--;
}

void au_json_begin(struct au_json *j)
{
	if (j->depth == 0)
		au_buf_reset(&j->b);
	else
		json_member(j, NULL);
	json_open(j, '{');
}

void au_json_obj_begin(struct au_json *j, const char *k)
{
	json_member(j, k);
	json_open(j, '{');
}

void au_json_end(struct au_json *j)
{
	json_close(j, '}');
}

void au_json_str(struct au_json *j, const char *k, const char *v)
{
	json_member(j, k);
	au_json_quote(&j->b, v, v ? strlen(v) : 0);
}

void au_json_int(struct au_json *j, const char *k, int64_t v)
{
	json_member(j, k);
	au_buf_printf(&j->b, "%lld", (long long)v);
}

void au_json_null(struct au_json *j, const char *k)
{
	json_member(j, k);
	au_buf_add(&j->b, "null", 4);
}

void au_json_bool(struct au_json *j, const char *k, int v)
{
	json_member(j, k);
	au_buf_puts(&j->b, v ? "true" : "false");
}

void au_json_time(struct au_json *j, const char *k, int64_t ms)
{
	char ts[PB_TIME_BUF];

	au_json_str(j, k, pb_time_format(ms, ts));
}

void au_json_raw(struct au_json *j, const char *k, const char *v)
{
	json_member(j, k);
	au_buf_puts(&j->b, v);
}

void au_json_col(struct au_json *j, const char *k, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		au_json_null(j, k);
		break;
	case SQLITE_INTEGER:
		au_json_int(j, k, sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		json_member(j, k);
		au_buf_printf(&j->b, "%.17g", sqlite3_column_double(st, i));
		break;
	default: {
		const char *s = (const char *)sqlite3_column_text(st, i);

		json_member(j, k);
		au_json_quote(&j->b, s ? s : "", (size_t)sqlite3_column_bytes(st, i));
	}
	}
}

void au_json_col_time(struct au_json *j, const char *k, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		au_json_null(j, k);
	else
		au_json_time(j, k, sqlite3_column_int64(st, i));
}

void au_json_col_json(struct au_json *j, const char *k, sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
	/* jansson writes DEL and C1 controls raw */
	char *safe = pb_textesc_json(text);

	if (safe)
		au_json_raw(j, k, safe);
	else
		au_json_null(j, k);
	free(safe);
	free(text);
	json_decref(v);
}

void au_json_array_begin(struct au_json *j, const char *k)
{
	json_member(j, k);
	json_open(j, '[');
}

void au_json_array_end(struct au_json *j)
{
	json_close(j, ']');
}

void au_json_array_int(struct au_json *j, int64_t v)
{
	au_json_int(j, NULL, v);
}

void au_json_array_str(struct au_json *j, const char *v)
{
	au_json_str(j, NULL, v);
}

void au_json_print(struct au_json *j, FILE *f)
{
	au_buf_putc(&j->b, '\n');
	au_buf_flush(&j->b, f);
	j->depth = 0;
}

void au_json_release(struct au_json *j)
{
	au_buf_release(&j->b);
}

/* --- table ------------------------------------------------------------------ */

void au_table_init(struct au_table *t, FILE *out, const char *const *cols)
{
	memset(t, 0, sizeof(*t));
	t->out = out;
	for (; cols[t->ncols] && t->ncols < AU_TABLE_MAX_COLS; t->ncols++) {
		const char *c = cols[t->ncols];

		t->right[t->ncols] = c[0] == '>';
		t->head[t->ncols] = c + (c[0] == '>');
		t->width[t->ncols] = strlen(t->head[t->ncols]);
	}
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void table_print_row(struct au_table *t, const char *const *cells)
{
	int i;

	for (i = 0; i < t->ncols; i++) {
		const char *c = cells[i] ? cells[i] : AU_NONE;
		size_t w = text_width(c), pad = w < t->width[i] ? t->width[i] - w : 0;
		int last = i == t->ncols - 1;

		if (t->right[i])
			fprintf(t->out, "%*s%s", (int)pad, "", c);
		else if (last)
			fputs(c, t->out);
		else
			fprintf(t->out, "%s%*s", c, (int)pad, "");
		fputs(last ? "\n" : "  ", t->out);
	}
}

static void table_flush(struct au_table *t)
{
	size_t r;

	if (t->flushed)
		return;
	table_print_row(t, t->head);
	for (r = 0; r < t->nrows; r++) {
		table_print_row(t, (const char *const *)t->rows + r * (size_t)t->ncols);
		for (int i = 0; i < t->ncols; i++)
			free(t->rows[r * (size_t)t->ncols + (size_t)i]);
	}
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
	t->flushed = 1;
}

/* cell c escaped for a terminal, malloc'd; NULL is AU_NONE */
static char *table_cell(const char *c)
{
	char *e;

	if (!c)
		c = AU_NONE;
	e = pb_textesc_dup(c, strlen(c), false);
	if (!e) {
		fputs(AU_PROG ": error: out of memory\n", stderr);
		abort();
	}
	return e;
}

void au_table_row(struct au_table *t, const char *const *cells)
{
	char *safe[AU_TABLE_MAX_COLS];
	int i;

	for (i = 0; i < t->ncols; i++)
		safe[i] = table_cell(cells[i]);
	if (t->flushed) {
		table_print_row(t, (const char *const *)safe);
		for (i = 0; i < t->ncols; i++)
			free(safe[i]);
		return;
	}
	if (t->nrows == t->caprows) {
		t->caprows = t->caprows ? t->caprows * 2 : 64;
		t->rows = xrealloc(t->rows, t->caprows * (size_t)t->ncols * sizeof(char *));
	}
	for (i = 0; i < t->ncols; i++) {
		size_t w = text_width(safe[i]);

		t->rows[t->nrows * (size_t)t->ncols + (size_t)i] = safe[i];
		if (w > t->width[i])
			t->width[i] = w;
	}
	if (++t->nrows >= AU_TABLE_SAMPLE)
		table_flush(t);
}

void au_table_finish(struct au_table *t)
{
	table_flush(t);
}

/* --- helpers ------------------------------------------------------------------ */

static char *esc_slot[AU_ESC_SLOTS];
static unsigned esc_next;

const char *au_esc(const char *s)
{
	char **slot = &esc_slot[esc_next++ % AU_ESC_SLOTS];

	if (!s)
		return NULL;
	free(*slot);
	*slot = pb_textesc_dup(s, strlen(s), false);
	if (!*slot) {
		fputs(AU_PROG ": error: out of memory\n", stderr);
		abort();
	}
	return *slot;
}

void au_esc_release(void)
{
	for (int i = 0; i < AU_ESC_SLOTS; i++) {
		free(esc_slot[i]);
		esc_slot[i] = NULL;
	}
}

const char *au_col_time(sqlite3_stmt *st, int i, char *buf)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return AU_NONE;
	return pb_time_format(sqlite3_column_int64(st, i), buf);
}

const char *au_col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int au_col_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

sqlite3_stmt *au_prepare(sqlite3 *db, const char *sql, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK) {
		const char *file = sqlite3_db_filename(db, "main");

		pb_err_set(err, rc == SQLITE_ERROR ? EX_DATAERR : EX_IOERR,
			   "%s: damaged or incomplete audit log: %s", file && *file ? file : "audit log",
			   sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

int au_step_error(sqlite3 *db, int rc, struct pb_err *err)
{
	const char *file = sqlite3_db_filename(db, "main");

	return pb_err_set(err, rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? EX_DATAERR : EX_IOERR,
			  "%s: reading the audit log: %s", file && *file ? file : "audit log",
			  sqlite3_errmsg(db));
}

const char *au_duration(int64_t ms, char *buf)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, 32, "%lld ms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, 32, "%.1f s", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, 32, "%lld min %lld s", (long long)(ms / 60000),
			 (long long)(ms % 60000 / 1000));
	else
		snprintf(buf, 32, "%lld h %lld min", (long long)(ms / 3600000),
			 (long long)(ms % 3600000 / 60000));
	return buf;
}
