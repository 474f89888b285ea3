/* list.c — `events`, `runs` and `export --jsonl`: rows of the audit log
 * as an aligned table or one JSON object per line.
 *
 * Rows are streamed (a 1,000,000-event log is never held in memory) and
 * the time filters use the indexes events(received_at),
 * events(key, received_at) and runs(started_at). */
#include <stdlib.h>
#include <string.h>

#include "audit-cli.h"
#include "pbtime.h"

/* The members of the provbus-audit(1) event object (plus detail and source). */
void au_event_members(struct au_json *j, sqlite3_stmt *st)
{
	au_json_int(j, "id", sqlite3_column_int64(st, E_ID));
	au_json_col(j, "msg_id", st, E_MSG);
	au_json_col_time(j, "received_at", st, E_AT);
	au_json_col(j, "kind", st, E_KIND);
	au_json_col(j, "federation", st, E_FED);
	au_json_col(j, "region", st, E_REGION);
	au_json_col(j, "node", st, E_NODE);
	au_json_col(j, "service", st, E_SERVICE);
	au_json_col(j, "key", st, E_KEY);
	au_json_col(j, "value", st, E_VALUE);
	au_json_col(j, "seq", st, E_SEQ);
	au_json_col(j, "verdict", st, E_VERDICT);
	au_json_bool(j, "redelivered", sqlite3_column_int(st, E_REDELIVERED) != 0);
	au_json_col(j, "detail", st, E_DETAIL);
	au_json_col(j, "source", st, E_SOURCE);
}

/* Binds the ?1 since / ?2 until / ?3 key / ?4 verdict parameters that
 * the statement has (unset ones stay NULL, which the SQL treats as "no
 * filter"). */
static void bind_filters(sqlite3_stmt *st, const struct au_opts *o)
{
	if (o->has_since)
		sqlite3_bind_int64(st, 1, o->since);
	if (o->has_until)
		sqlite3_bind_int64(st, 2, o->until);
	if (sqlite3_bind_parameter_count(st) >= 3 && o->key)
		sqlite3_bind_text(st, 3, o->key, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 4 && o->verdict)
		sqlite3_bind_text(st, 4, o->verdict, -1, SQLITE_STATIC);
}

/* "SELECT ... WHERE" the filters o sets, in the parameters bind_filters()
 * fills: time (a column) from ?1 since to ?2 until, and with by_key the
 * ?3 key and ?4 verdict; then "ORDER BY order". The query is written out
 * for each combination so that sqlite picks the index for what is given
 * (an "?1 IS NULL OR ..." form would defeat it). */
static char *filtered_sql(const char *select, const char *time, int by_key,
			  const struct au_opts *o, const char *order)
{
	struct au_buf b = AU_BUF_INIT;

	au_buf_printf(&b, "%s WHERE 1", select);
	if (o->has_since)
		au_buf_printf(&b, " AND %s >= ?1", time);
	if (o->has_until)
		au_buf_printf(&b, " AND %s <= ?2", time);
	if (by_key && o->key)
		au_buf_puts(&b, " AND key = ?3");
	if (by_key && o->verdict)
		au_buf_puts(&b, " AND verdict = ?4");
	au_buf_printf(&b, " ORDER BY %s", order);
	return b.s;
}

/* How `events` and `runs` print a row: its JSON members (--json) or its
 * table row under cols. ctx is the verb's. */
struct list_fmt {
	const char *const *cols;
	int (*members)(struct au_json *j, sqlite3_stmt *st, void *ctx, struct pb_err *err);
	void (*row)(struct au_table *t, sqlite3_stmt *st, void *ctx);
};

/* Binds o's filters to st and prints every row of it, as one JSON object
 * a line or as a table. 0, or -1 with err. */
static int list_rows(sqlite3 *db, sqlite3_stmt *st, const struct au_opts *o,
		     const struct list_fmt *fmt, void *ctx, struct pb_err *err)
{
	struct au_json j = AU_JSON_INIT;
	struct au_table t;
	int rc = -1, step;

	bind_filters(st, o);
	if (!o->json)
		au_table_init(&t, stdout, fmt->cols);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (!o->json) {
			fmt->row(&t, st, ctx);
			continue;
		}
		au_json_begin(&j);
		if (fmt->members(&j, st, ctx, err) < 0)
			goto out;
		au_json_end(&j);
		au_json_print(&j, stdout);
	}
	if (!o->json)
		au_table_finish(&t);
	if (step != SQLITE_DONE) {
		au_step_error(db, step, err);
		goto out;
	}
	rc = 0;
out:
	au_json_release(&j);
	return rc;
}

static int event_members(struct au_json *j, sqlite3_stmt *st, void *ctx, struct pb_err *err)
{
	(void)ctx;
	(void)err;
	au_event_members(j, st);
	return 0;
}

static void event_row(struct au_table *t, sqlite3_stmt *st, void *ctx)
{
	char id[24], ts[PB_TIME_BUF], seq[24], who[256];
	const char *node = au_col_text(st, E_NODE), *svc = au_col_text(st, E_SERVICE);
	const char *cells[10];
	const char *verdict = au_col_text(st, E_VERDICT), *value = au_col_text(st, E_VALUE);
	const char *detail = au_col_text(st, E_DETAIL);

	(void)ctx;
	snprintf(id, sizeof(id), "%lld", (long long)sqlite3_column_int64(st, E_ID));
	if (au_col_null(st, E_SEQ))
		snprintf(seq, sizeof(seq), "-");
	else
		snprintf(seq, sizeof(seq), "%lld", (long long)sqlite3_column_int64(st, E_SEQ));
	if (node || svc)
		snprintf(who, sizeof(who), "%s/%s", node ? node : "-", svc ? svc : "-");
	else
		snprintf(who, sizeof(who), "-");
	cells[0] = id;
	cells[1] = au_col_time(st, E_AT, ts);
	cells[2] = verdict;
	cells[3] = au_col_text(st, E_KIND);
	cells[4] = au_col_text(st, E_KEY);
	cells[5] = au_col_text(st, E_REGION);
	cells[6] = who;
	cells[7] = seq;
	cells[8] = sqlite3_column_int(st, E_REDELIVERED) ? "yes" : "no";
	/* the value, or why the event was refused / what expired */
	cells[9] = detail && verdict && au_verdict_index(verdict) != PB_VERDICT_APPLIED ? detail : value;
	au_table_row(t, cells);
}

int au_cmd_events(sqlite3 *db, const struct au_opts *o, struct pb_err *err)
{
	static const char *const cols[] = { ">ID", "RECEIVED_AT", "VERDICT", "KIND", "KEY", "REGION",
					    "NODE/SERVICE", ">SEQ", "REDELIVERED", "VALUE/DETAIL",
					    NULL };
	static const struct list_fmt fmt = { cols, event_members, event_row };
	char *sql = filtered_sql("SELECT " AU_EVENT_COLS " FROM events", "received_at", 1, o,
				 "received_at, id");
	sqlite3_stmt *st = au_prepare(db, sql, err);
	int rc = st ? list_rows(db, st, o, &fmt, NULL, err) : -1;

	sqlite3_finalize(st);
	free(sql);
	return rc;
}

/* --- runs ---------------------------------------------------------------------- */

/* The members of the run object of provbus-audit(1) (plus status, deferred_ms,
 * notify_status); ev is the prepared "event ids of run ?1" statement. */
int au_run_members(struct au_json *j, sqlite3_stmt *st, sqlite3_stmt *ev, sqlite3 *db,
		   struct pb_err *err)
{
	int step;

	au_json_int(j, "id", sqlite3_column_int64(st, R_ID));
	au_json_col(j, "reason", st, R_REASON);
	au_json_col_time(j, "queued_at", st, R_QUEUED);
	au_json_col_time(j, "started_at", st, R_STARTED);
	au_json_col_time(j, "finished_at", st, R_FINISHED);
	au_json_col(j, "exit_status", st, R_EXIT);
	au_json_col(j, "status", st, R_STATUS);
	au_json_col(j, "deferred_ms", st, R_DEFERRED);
	/* a run that waited for the provision lock: started_at is when the
	 * daemon took it off the queue, the process began deferred_ms later */
	if (au_col_null(st, R_STARTED))
		au_json_null(j, "process_started_at");
	else
		au_json_time(j, "process_started_at", sqlite3_column_int64(st, R_STARTED) +
							      sqlite3_column_int64(st, R_DEFERRED));
	au_json_array_begin(j, "events");
	sqlite3_reset(ev);
	sqlite3_bind_int64(ev, 1, sqlite3_column_int64(st, R_ID));
	while ((step = sqlite3_step(ev)) == SQLITE_ROW)
		au_json_array_int(j, sqlite3_column_int64(ev, 0));
	if (step != SQLITE_DONE)
		return au_step_error(db, step, err);
	au_json_array_end(j);
	if (au_col_null(st, R_CHANGED))
		au_json_raw(j, "changed_keys", "[]");
	else
		au_json_col_json(j, "changed_keys", st, R_CHANGED);
	au_json_col(j, "notify_status", st, R_NOTIFY);
	return 0;
}

/* "A,B,C" from a JSON array text; "-" when empty or not an array. */
static void changed_keys_text(const char *json, struct au_buf *out)
{
	const char *p = json;

	au_buf_reset(out);
	/* the array holds env names ([A-Z0-9_]), so a light scan is enough */
	for (; p && *p; p++) {
		if (*p == '"') {
			const char *q = strchr(p + 1, '"');

			if (!q)
				break;
			if (out->len)
				au_buf_putc(out, ',');
			au_buf_add(out, p + 1, (size_t)(q - p - 1));
			p = q;
		}
	}
	if (!out->len)
		au_buf_puts(out, AU_NONE);
}

static void run_row(struct au_table *t, sqlite3_stmt *st, int64_t n_events, struct au_buf *keys)
{
	char id[24], q[PB_TIME_BUF], s[PB_TIME_BUF], f[PB_TIME_BUF], dur[32], ex[24], ne[24];
	const char *cells[10];

	snprintf(id, sizeof(id), "%lld", (long long)sqlite3_column_int64(st, R_ID));
	if (au_col_null(st, R_EXIT))
		snprintf(ex, sizeof(ex), "-");
	else
		snprintf(ex, sizeof(ex), "%d", sqlite3_column_int(st, R_EXIT));
	if (au_col_null(st, R_STARTED) || au_col_null(st, R_FINISHED))
		snprintf(dur, sizeof(dur), "-");
	else
		/* the process's own duration: a wait for the lock is not in it */
		au_duration(sqlite3_column_int64(st, R_FINISHED) - sqlite3_column_int64(st, R_STARTED) -
				    sqlite3_column_int64(st, R_DEFERRED), dur);
	snprintf(ne, sizeof(ne), "%lld", (long long)n_events);
	changed_keys_text(au_col_text(st, R_CHANGED), keys);
	cells[0] = id;
	cells[1] = au_col_text(st, R_REASON);
	cells[2] = au_col_time(st, R_QUEUED, q);
	cells[3] = au_col_time(st, R_STARTED, s);
	cells[4] = au_col_time(st, R_FINISHED, f);
	cells[5] = dur;
	cells[6] = au_col_text(st, R_STATUS);
	cells[7] = ex;
	cells[8] = ne;
	cells[9] = keys->s;
	au_table_row(t, cells);
}

/* What a row of `runs` is printed with besides itself. */
struct runs_ctx {
	sqlite3 *db;
	sqlite3_stmt *ev;	/* the event ids of run ?1 */
	sqlite3_stmt *cnt;	/* how many events run ?1 has */
	struct au_buf keys;
};

static int run_json(struct au_json *j, sqlite3_stmt *st, void *ctx, struct pb_err *err)
{
	struct runs_ctx *r = ctx;

	return au_run_members(j, st, r->ev, r->db, err);
}

static void run_table_row(struct au_table *t, sqlite3_stmt *st, void *ctx)
{
	struct runs_ctx *r = ctx;

	sqlite3_reset(r->cnt);
	sqlite3_bind_int64(r->cnt, 1, sqlite3_column_int64(st, R_ID));
	run_row(t, st, sqlite3_step(r->cnt) == SQLITE_ROW ? sqlite3_column_int64(r->cnt, 0) : 0,
		&r->keys);
}

int au_cmd_runs(sqlite3 *db, const struct au_opts *o, struct pb_err *err)
{
	static const char *const cols[] = { ">ID", "REASON", "QUEUED_AT", "STARTED_AT", "FINISHED_AT",
					    ">DURATION", "STATUS", ">EXIT", ">EVENTS", "CHANGED_KEYS",
					    NULL };
	static const struct list_fmt fmt = { cols, run_json, run_table_row };
	struct runs_ctx r = { db, NULL, NULL, AU_BUF_INIT };
	/* runs are few (one per debounced burst), so a full scan of runs is
	 * cheap; a run that never started is placed by its queued_at */
	char *sql = filtered_sql("SELECT " AU_RUN_COLS " FROM runs",
				 "coalesce(started_at, queued_at)", 0, o, "id");
	sqlite3_stmt *st = au_prepare(db, sql, err);
	int rc = -1;

	if (!st)
		goto out;
	r.ev = au_prepare(db, "SELECT event_id FROM run_events WHERE run_id = ?1 ORDER BY event_id",
			  err);
	r.cnt = au_prepare(db, "SELECT count(*) FROM run_events WHERE run_id = ?1", err);
	if (!r.ev || !r.cnt)
		goto out;
	rc = list_rows(db, st, o, &fmt, &r, err);
out:
	sqlite3_finalize(st);
	sqlite3_finalize(r.ev);
	sqlite3_finalize(r.cnt);
	au_buf_release(&r.keys);
	free(sql);
	return rc;
}

/* --- export -------------------------------------------------------------------- */

/* Streams every row of sql as one line {"type": type, ...}, fn writing
 * the members after "type". */
static int export_rows(sqlite3 *db, const char *type, const char *sql, struct au_json *j,
		       void (*fn)(struct au_json *j, sqlite3_stmt *st), struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(db, sql, err);
	int step, rc = -1;

	if (!st)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		au_json_begin(j);
		au_json_str(j, "type", type);
		fn(j, st);
		au_json_end(j);
		au_json_print(j, stdout);
	}
	if (step != SQLITE_DONE)
		au_step_error(db, step, err);
	else
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

static void export_event(struct au_json *j, sqlite3_stmt *st)
{
	au_event_members(j, st);
	au_json_col(j, "ttl_s", st, 15);
	if (au_col_null(st, 16))
		au_json_null(j, "public");
	else
		au_json_bool(j, "public", sqlite3_column_int(st, 16) != 0);
	au_json_col(j, "exchange", st, 17);
	au_json_col(j, "routing_key", st, 18);
	au_json_bool(j, "changed", sqlite3_column_int(st, 19) != 0);
}

static void export_param(struct au_json *j, sqlite3_stmt *st)
{
	au_json_int(j, "id", sqlite3_column_int64(st, 0));
	au_json_col_time(j, "at", st, 1);
	au_json_col_json(j, "params", st, 2);
}

static void export_note(struct au_json *j, sqlite3_stmt *st)
{
	au_json_int(j, "id", sqlite3_column_int64(st, 0));
	au_json_col_time(j, "at", st, 1);
	au_json_col(j, "run_id", st, 2);
	au_json_col(j, "kind", st, 3);
	au_json_col(j, "text", st, 4);
}

static void export_provider(struct au_json *j, sqlite3_stmt *st)
{
	au_json_col(j, "federation", st, 0);
	au_json_col(j, "region", st, 1);
	au_json_col(j, "node", st, 2);
	au_json_col(j, "service", st, 3);
	au_json_col(j, "key", st, 4);
	au_json_col(j, "value", st, 5);
	au_json_bool(j, "public", sqlite3_column_int(st, 6) != 0);
	au_json_col(j, "seq", st, 7);
	au_json_col_time(j, "expires_at", st, 8);
	au_json_col_time(j, "updated_at", st, 9);
	au_json_bool(j, "tombstone", sqlite3_column_int(st, 10) != 0);
}

/* Runs carry their values and output tail too (text; invalid UTF-8 in the
 * tail becomes the text \xNN, see au_json_quote). */
static int export_runs(sqlite3 *db, struct au_json *j, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(db, "SELECT " AU_RUN_COLS ", values_before, values_after, "
					  "CAST(output_tail AS TEXT) FROM runs ORDER BY id", err);
	sqlite3_stmt *ev = au_prepare(db, "SELECT event_id FROM run_events WHERE run_id = ?1 "
					  "ORDER BY event_id", err);
	int step, rc = -1;

	if (!st || !ev)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		au_json_begin(j);
		au_json_str(j, "type", "run");
		if (au_run_members(j, st, ev, db, err) < 0)
			goto out;
		au_json_col_json(j, "values_before", st, 10);
		au_json_col_json(j, "values_after", st, 11);
		au_json_col(j, "output_tail", st, 12);
		au_json_end(j);
		au_json_print(j, stdout);
	}
	if (step != SQLITE_DONE) {
		au_step_error(db, step, err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ev);
	return rc;
}

int au_cmd_export(sqlite3 *db, const struct au_opts *o, struct pb_err *err)
{
	struct au_json j = AU_JSON_INIT;
	int rc = -1;

	(void)o;
	if (export_rows(db, "param", "SELECT id, at, json FROM params ORDER BY id", &j,
			export_param, err) < 0 ||
	    export_rows(db, "event", "SELECT " AU_EVENT_COLS ", ttl_s, public, exchange,"
			" routing_key, changed FROM events ORDER BY id", &j, export_event, err) < 0 ||
	    export_runs(db, &j, err) < 0 ||
	    export_rows(db, "note", "SELECT id, at, run_id, kind, text FROM notes ORDER BY id", &j,
			export_note, err) < 0 ||
	    export_rows(db, "provider", "SELECT federation, region, node, service, key, value,"
			" public, seq, expires_at, updated_at, tombstone FROM providers"
			" ORDER BY federation, region, node, service, key", &j, export_provider,
			err) < 0)
		goto out;
	rc = 0;
out:
	au_json_release(&j);
	return rc;
}
