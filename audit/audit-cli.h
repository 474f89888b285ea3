/* audit-cli.h — what the parts of provbus-audit share: the parsed
 * command line, a growable text buffer with JSON/HTML escaping, an
 * aligned table printer, and small sqlite helpers.
 *
 * Every verb is one `int au_cmd_<verb>(sqlite3 *db, const struct au_opts
 * *o, struct pb_err *err)` returning 0 or -1 with err filled; main() opens
 * the db read-only inside one read transaction (one snapshot, safe on a
 * live daemon's WAL log) and turns err into the exit code. */
#ifndef PB_AUDIT_CLI_H
#define PB_AUDIT_CLI_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "vocab.h"

#define AU_PROG "provbus-audit"

/* Start times of a recorded and a simulated run closer than this are "the
 * same start" (see replay.c for why 250 ms). */
#define AU_TOLERANCE_MS_DEFAULT 250

struct au_opts {
	const char *db_path;
	int verbose;
	int has_since, has_until;
	int64_t since, until;	/* ms, inclusive */
	const char *since_text, *until_text;
	const char *key;
	const char *verdict;
	int json;
	int all;		/* explain: every event, not the first per key */
	int64_t run_id;		/* explain */
	/* replay what-if */
	int has_quiet, has_max_wait, has_throttle;
	int64_t quiet_ms, max_wait_ms;
	int throttle_runs;
	int64_t throttle_per_ms;
	int64_t tolerance_ms;
	const char *html;	/* timeline */
	int jsonl;		/* export */
};

/* --- text buffer ------------------------------------------------------ */

struct au_buf {
	char *s;		/* NUL-terminated; NULL until the first append */
	size_t len, cap;
};

#define AU_BUF_INIT { NULL, 0, 0 }

/* Appending never fails: out of memory aborts the program (a reporting
 * tool has nothing better to do). */
void au_buf_add(struct au_buf *b, const char *s, size_t n);
void au_buf_puts(struct au_buf *b, const char *s);
void au_buf_putc(struct au_buf *b, char c);
void au_buf_printf(struct au_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void au_buf_reset(struct au_buf *b);	/* empties, keeps the memory */
void au_buf_release(struct au_buf *b);
/* Writes the buffer to f and empties it. */
void au_buf_flush(struct au_buf *b, FILE *f);
/* s with <>&"' escaped for HTML text and attributes (invalid UTF-8 is
 * replaced by U+FFFD; control characters, DEL, C1 and bidi controls by a
 * space). */
void au_buf_html(struct au_buf *b, const char *s);

/* --- JSON writer: one object per line ------------------------------------ */

#define AU_JSON_DEPTH 8

struct au_json {
	struct au_buf b;
	int depth;
	int count[AU_JSON_DEPTH];	/* members written at each level */
};

#define AU_JSON_INIT { AU_BUF_INIT, 0, { 0 } }

/* A quoted JSON string; NULL gives null. Nothing in it drives a terminal,
 * whatever the db holds: controls (DEL included), C1 and bidi controls are
 * \uXXXX escapes (the same string), and a byte that is not UTF-8 becomes
 * the text \xNN (as textesc.h prints it), so the output is always valid
 * JSON and UTF-8. */
void au_json_quote(struct au_buf *b, const char *s, size_t n);

void au_json_begin(struct au_json *j);	/* '{' (empties the buffer at depth 0) */
void au_json_end(struct au_json *j);	/* '}' */
void au_json_obj_begin(struct au_json *j, const char *k);	/* "k":{ inside an object */
void au_json_str(struct au_json *j, const char *k, const char *v);	/* v NULL -> null */
void au_json_int(struct au_json *j, const char *k, int64_t v);
void au_json_null(struct au_json *j, const char *k);
void au_json_bool(struct au_json *j, const char *k, int v);
void au_json_time(struct au_json *j, const char *k, int64_t ms);	/* RFC 3339 */
/* v is already JSON text (trusted: produced by jansson or by us). */
void au_json_raw(struct au_json *j, const char *k, const char *v);
/* Column i of st: text -> string, integer -> number, NULL -> null. */
void au_json_col(struct au_json *j, const char *k, sqlite3_stmt *st, int i);
/* A time column (ms) as RFC 3339, NULL -> null. */
void au_json_col_time(struct au_json *j, const char *k, sqlite3_stmt *st, int i);
/* A text column holding JSON: re-encoded compactly if it parses, else
 * null (a damaged row must not break the line). */
void au_json_col_json(struct au_json *j, const char *k, sqlite3_stmt *st, int i);
void au_json_array_begin(struct au_json *j, const char *k);	/* k NULL inside an array */
void au_json_array_end(struct au_json *j);
void au_json_array_int(struct au_json *j, int64_t v);
void au_json_array_str(struct au_json *j, const char *v);
/* Writes the object and a newline to f, empties the buffer. */
void au_json_print(struct au_json *j, FILE *f);
void au_json_release(struct au_json *j);

/* --- aligned table -------------------------------------------------------- */

#define AU_TABLE_MAX_COLS 16
/* Widths are taken from the first rows; later rows that are wider push
 * the line out rather than being cut. */
#define AU_TABLE_SAMPLE 1000

struct au_table {
	FILE *out;
	int ncols;
	const char *head[AU_TABLE_MAX_COLS];
	int right[AU_TABLE_MAX_COLS];	/* 1: right-aligned (numbers) */
	size_t width[AU_TABLE_MAX_COLS];
	char **rows;		/* buffered cells while sampling */
	size_t nrows, caprows;
	int flushed;
};

/* cols: "NAME" or ">NAME" for a right-aligned column; NULL-terminated. */
void au_table_init(struct au_table *t, FILE *out, const char *const *cols);
/* Adds one row of ncols cells (NULL prints "-"); copies them, escaped for
 * a terminal (textesc.h). */
void au_table_row(struct au_table *t, const char *const *cells);
/* Prints what is buffered (the header even for no rows) and frees. */
void au_table_finish(struct au_table *t);

/* --- helpers ---------------------------------------------------------------- */

/* RFC 3339 text of a time column, "-" for NULL, into buf (PB_TIME_BUF). */
const char *au_col_time(sqlite3_stmt *st, int i, char *buf);
/* Text of a column, NULL -> NULL. */
const char *au_col_text(sqlite3_stmt *st, int i);
int au_col_null(sqlite3_stmt *st, int i);

/* Prepares sql or fills err (EX_DATAERR: the db is not what we expect,
 * e.g. a table is missing) naming the db path. */
sqlite3_stmt *au_prepare(sqlite3 *db, const char *sql, struct pb_err *err);
/* After a step loop that did not end in SQLITE_DONE. */
int au_step_error(sqlite3 *db, int rc, struct pb_err *err);

/* "1.5 s", "3 min 2 s", "250 ms" into buf (32 bytes). */
const char *au_duration(int64_t ms, char *buf);

/* s escaped for a terminal (pb_textesc_dup, no raw newline), in one of
 * AU_ESC_SLOTS buffers used in turn: valid until AU_ESC_SLOTS more calls,
 * so that one printf can take several. NULL gives NULL. Every text from
 * the audit log that the text forms print goes through it or the table. */
#define AU_ESC_SLOTS 16
const char *au_esc(const char *s);
/* Frees the buffers of au_esc (at exit). */
void au_esc_release(void);

/* A key's value-set text, as the events and runs print it: NULL -> "-". */
#define AU_NONE "-"

/* --- rows ------------------------------------------------------------------- */

/* The event columns, in the order of E_*. */
#define AU_EVENT_COLS \
	"id, msg_id, received_at, kind, federation, region, node, service, key, value, seq, " \
	"verdict, redelivered, detail, source"
enum { E_ID, E_MSG, E_AT, E_KIND, E_FED, E_REGION, E_NODE, E_SERVICE, E_KEY, E_VALUE, E_SEQ,
       E_VERDICT, E_REDELIVERED, E_DETAIL, E_SOURCE, E__COUNT };

/* The run columns, in the order of R_*. */
#define AU_RUN_COLS \
	"id, reason, queued_at, started_at, finished_at, exit_status, status, deferred_ms, " \
	"changed_keys, notify_status"
enum { R_ID, R_REASON, R_QUEUED, R_STARTED, R_FINISHED, R_EXIT, R_STATUS, R_DEFERRED, R_CHANGED,
       R_NOTIFY, R__COUNT };

/* The members of the provbus-audit(1) event object (id, msg_id, received_at, kind,
 * federation, region, node, service, key, value, seq, verdict,
 * redelivered; then detail and source) from a row of AU_EVENT_COLS. */
void au_event_members(struct au_json *j, sqlite3_stmt *st);
/* The members of the provbus-audit(1) run object (id, reason, queued_at,
 * started_at, finished_at, exit_status, events, changed_keys; then status,
 * deferred_ms, notify_status) from a row of AU_RUN_COLS; ev is a prepared
 * "SELECT event_id FROM run_events WHERE run_id = ?1" statement. */
int au_run_members(struct au_json *j, sqlite3_stmt *st, sqlite3_stmt *ev, sqlite3 *db,
		   struct pb_err *err);

/* The verbs. */
int au_cmd_events(sqlite3 *db, const struct au_opts *o, struct pb_err *err);
int au_cmd_runs(sqlite3 *db, const struct au_opts *o, struct pb_err *err);
int au_cmd_export(sqlite3 *db, const struct au_opts *o, struct pb_err *err);
int au_cmd_explain(sqlite3 *db, const struct au_opts *o, struct pb_err *err);
int au_cmd_replay(sqlite3 *db, const struct au_opts *o, struct pb_err *err);
int au_cmd_timeline(sqlite3 *db, const struct au_opts *o, struct pb_err *err);

/* The verdict of an events row as an index: its enum pb_verdict
 * (vocab.h), or AU_VERDICT_OTHER for NULL or a word that is no verdict (a
 * log edited by hand). Counts per verdict are arrays of AU_VERDICT_SLOTS. */
#define AU_VERDICT_OTHER PB_VERDICT__COUNT
#define AU_VERDICT_SLOTS (PB_VERDICT__COUNT + 1)
int au_verdict_index(const char *word);
/* The word of an index of au_verdict_index: the verdict, or "other". */
const char *au_verdict_word(int i);

#endif
