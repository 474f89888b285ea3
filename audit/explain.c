/* explain.c — `explain RUN_ID`: one run, why it started and what it
 * changed: its reason, times and status; the events it covered
 * (run_events), grouped by key with their verdicts; for each env var that
 * changed, the value before and after (runs.values_before/values_after);
 * its notes (lock deferral, notify failure) and the tail of its output.
 *
 * An unknown run id is EX_DATAERR ("no run 42 in DB"): the command line
 * is well formed, the data does not have it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "audit-cli.h"
#include "pbtime.h"
#include "textesc.h"

/* In the text form, the events listed per key (the rest is counted). */
#define EXPLAIN_PER_KEY 20
/* In the text form, the output lines shown. */
#define EXPLAIN_TAIL_LINES 10

struct change {
	const char *env;		/* borrowed from the json_t objects */
	const char *before, *after;	/* NULL: not set */
};

struct changes {
	struct change *v;
	size_t n, cap;
};

static void add_change(struct changes *c, const char *env, json_t *before, json_t *after)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].env, env))
			return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		if (!c->v)
			abort();
	}
	c->v[c->n].env = env;
	c->v[c->n].before = json_string_value(json_object_get(before, env));
	c->v[c->n].after = json_string_value(json_object_get(after, env));
	c->n++;
}

static int differs(json_t *before, json_t *after, const char *env)
{
	const char *b = json_string_value(json_object_get(before, env));
	const char *a = json_string_value(json_object_get(after, env));

	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

/* The env vars that changed: those named in changed_keys (in order), then
 * any other whose value differs between before and after. */
static void changes_of(json_t *keys, json_t *before, json_t *after, struct changes *c)
{
	const char *name;
	size_t idx;
	json_t *v;

	if (json_is_array(keys))
		json_array_foreach(keys, idx, v)
			if (json_is_string(v))
				add_change(c, json_string_value(v), before, after);
	if (json_is_object(before))
		json_object_foreach(before, name, v)
			if (differs(before, after, name))
				add_change(c, name, before, after);
	if (json_is_object(after))
		json_object_foreach(after, name, v)
			if (differs(before, after, name))
				add_change(c, name, before, after);
}

static json_t *col_json(sqlite3_stmt *st, int i)
{
	const char *s = au_col_text(st, i);

	return s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
}

/* --- the events, grouped by key ----------------------------------------------- */

struct key_group {
	struct au_buf key;
	int64_t count[AU_VERDICT_SLOTS];	/* by au_verdict_index */
	int64_t total;
};

static void print_counts(const struct key_group *g)
{
	int first = 1;

	printf("  %s  (%lld event%s:", au_esc(g->key.s), (long long)g->total, g->total == 1 ? "" : "s");
	for (int i = 0; i < AU_VERDICT_SLOTS; i++) {
		if (!g->count[i])
			continue;
		printf("%s %lld %s", first ? "" : ",", (long long)g->count[i],
		       au_verdict_word(i));
		first = 0;
	}
	printf(")\n");
}

/* Column i of st escaped for a terminal, "-" for NULL. */
static const char *col_shown(sqlite3_stmt *st, int i)
{
	const char *s = au_col_text(st, i);

	return s ? au_esc(s) : "-";
}

static void print_event_line(sqlite3_stmt *st)
{
	char ts[PB_TIME_BUF];
	const char *verdict = au_col_text(st, E_VERDICT), *detail = au_col_text(st, E_DETAIL);
	const char *value = au_col_text(st, E_VALUE);

	printf("    #%-8lld %s  %-9s %-8s %-12s %s/%s seq %s%s  %s\n",
	       (long long)sqlite3_column_int64(st, E_ID), au_col_time(st, E_AT, ts),
	       col_shown(st, E_VERDICT), col_shown(st, E_KIND), col_shown(st, E_REGION),
	       col_shown(st, E_NODE), col_shown(st, E_SERVICE), col_shown(st, E_SEQ),
	       sqlite3_column_int(st, E_REDELIVERED) ? " redelivered" : "",
	       au_esc(detail && verdict && au_verdict_index(verdict) != PB_VERDICT_APPLIED ? detail
							       : value ? value : "(retired)"));
}

/* Text: one block per key with its verdict counts, then the events (the
 * first EXPLAIN_PER_KEY unless --all). The statement is ordered by key,
 * so a group is complete when the key changes; its lines are buffered
 * until then (its counts come first). */
static int explain_events_text(sqlite3 *db, sqlite3_stmt *st, int all, struct pb_err *err)
{
	struct key_group g = { AU_BUF_INIT, { 0 }, 0 };
	int step, rc = -1;
	int64_t total = 0, shown = 0;
	const char *key;

	/* pass 1: counts per key; pass 2 prints. Two passes over one run's
	 * events keep memory flat whatever the run covered. */
	printf("\nevents covered:");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		key = au_col_text(st, E_KEY);
		if (!key)
			key = "(no key)";
		if (g.total && strcmp(g.key.s, key)) {
			print_counts(&g);
			au_buf_reset(&g.key);
			memset(g.count, 0, sizeof(g.count));
			g.total = 0;
		}
		if (!total)
			printf("\n");
		if (!g.total)
			au_buf_puts(&g.key, key);
		g.count[au_verdict_index(au_col_text(st, E_VERDICT))]++;
		g.total++;
		total++;
	}
	if (step != SQLITE_DONE) {
		au_step_error(db, step, err);
		goto out;
	}
	if (g.total)
		print_counts(&g);
	if (!total) {
		printf(" none recorded\n");
		rc = 0;
		goto out;
	}
	sqlite3_reset(st);
	au_buf_reset(&g.key);
	g.total = 0;
	printf("\n");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		key = au_col_text(st, E_KEY);
		if (!key)
			key = "(no key)";
		if (!g.key.len || strcmp(g.key.s, key)) {
			if (g.total > shown)
				printf("    ... %lld more (--all lists them)\n", (long long)(g.total - shown));
			au_buf_reset(&g.key);
			au_buf_puts(&g.key, key);
			printf("  %s\n", au_esc(key));
			g.total = shown = 0;
		}
		g.total++;
		if (all || shown < EXPLAIN_PER_KEY) {
			print_event_line(st);
			shown++;
		}
	}
	if (g.total > shown)
		printf("    ... %lld more (--all lists them)\n", (long long)(g.total - shown));
	if (step != SQLITE_DONE) {
		au_step_error(db, step, err);
		goto out;
	}
	rc = 0;
out:
	au_buf_release(&g.key);
	return rc;
}

/* JSON: "events_by_key": [{"key": K, "verdicts": {...}, "events": [...]}] */
static int explain_events_json(sqlite3 *db, sqlite3_stmt *st, struct au_json *j,
			       struct pb_err *err)
{
	struct au_buf cur = AU_BUF_INIT;
	int step, open = 0, rc = -1;
	const char *key;

	au_json_array_begin(j, "events_by_key");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		key = au_col_text(st, E_KEY);
		if (!open || (key ? !cur.len || strcmp(cur.s, key) : cur.len)) {
			if (open) {
				au_json_array_end(j);
				au_json_end(j);
			}
			au_buf_reset(&cur);
			if (key)
				au_buf_puts(&cur, key);
			au_json_begin(j);
			au_json_str(j, "key", key);
			au_json_array_begin(j, "events");
			open = 1;
		}
		au_json_begin(j);
		au_event_members(j, st);
		au_json_end(j);
	}
	if (step != SQLITE_DONE) {
		au_step_error(db, step, err);
		goto out;
	}
	if (open) {
		au_json_array_end(j);
		au_json_end(j);
	}
	au_json_array_end(j);
	rc = 0;
out:
	au_buf_release(&cur);
	return rc;
}

/* --- the run ---------------------------------------------------------------------- */

static void print_value(const char *label, const char *v)
{
	printf("    %-7s %s\n", label, v ? au_esc(v) : "(not set)");
}

static void print_tail(const char *tail, int len)
{
	int i, lines = 0, start = 0;

	if (!tail || len <= 0)
		return;
	while (len > 0 && tail[len - 1] == '\n')
		len--;
	for (i = len - 1; i >= 0; i--)
		if (tail[i] == '\n' && ++lines == EXPLAIN_TAIL_LINES) {
			start = i + 1;
			break;
		}
	printf("\noutput (last lines):\n");
	for (i = start; i < len;) {
		int e = i;

		while (e < len && tail[e] != '\n')
			e++;
		/* a run's output is anything: escaped, one line at a time */
		fputs("  | ", stdout);
		pb_textesc_write(stdout, tail + i, (size_t)(e - i), false);
		fputc('\n', stdout);
		i = e + 1;
	}
}

static void print_run_head(sqlite3_stmt *run, const struct changes *ch, int64_t n_events)
{
	char ts[PB_TIME_BUF], d[32];
	const char *status = au_col_text(run, R_STATUS);
	int64_t started = sqlite3_column_int64(run, R_STARTED);

	printf("run %lld: %s run, %s", (long long)sqlite3_column_int64(run, R_ID),
	       col_shown(run, R_REASON), status ? au_esc(status) : "-");
	if (!au_col_null(run, R_EXIT))
		printf(" (exit %d)", sqlite3_column_int(run, R_EXIT));
	printf("\n  queued    %s\n", au_col_time(run, R_QUEUED, ts));
	printf("  started   %s", au_col_time(run, R_STARTED, ts));
	if (!au_col_null(run, R_QUEUED) && !au_col_null(run, R_STARTED))
		printf("  (%s after it was queued)",
		       au_duration(started - sqlite3_column_int64(run, R_QUEUED), d));
	printf("\n");
	if (sqlite3_column_int64(run, R_DEFERRED) > 0)
		printf("  deferred  %s waiting for the provision lock\n",
		       au_duration(sqlite3_column_int64(run, R_DEFERRED), d));
	printf("  finished  %s", au_col_time(run, R_FINISHED, ts));
	if (!au_col_null(run, R_FINISHED) && !au_col_null(run, R_STARTED))
		printf("  (took %s)", au_duration(sqlite3_column_int64(run, R_FINISHED) - started, d));
	printf("\n");
	if (!au_col_null(run, R_NOTIFY))
		printf("  notify    exit %d\n", sqlite3_column_int(run, R_NOTIFY));
	printf("  events    %lld\n", (long long)n_events);
	if (!ch->n) {
		printf("\nno value changed%s\n",
		       au_col_text(run, R_REASON) && strcmp(au_col_text(run, R_REASON), "change")
			       ? " (the run was asked for, not caused by a change)" : "");
		return;
	}
	printf("\nvalue changes:\n");
	for (size_t i = 0; i < ch->n; i++) {
		printf("  %s\n", au_esc(ch->v[i].env));
		print_value("before", ch->v[i].before);
		print_value("after", ch->v[i].after);
	}
}

static int print_notes(sqlite3 *db, int64_t run_id, struct au_json *j, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(db, "SELECT at, kind, text FROM notes WHERE run_id = ?1 ORDER BY id",
				      err);
	char ts[PB_TIME_BUF];
	int step, n = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	if (j)
		au_json_array_begin(j, "notes");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (j) {
			au_json_begin(j);
			au_json_col_time(j, "at", st, 0);
			au_json_col(j, "kind", st, 1);
			au_json_col(j, "text", st, 2);
			au_json_end(j);
			continue;
		}
		if (!n++)
			printf("\nnotes:\n");
		printf("  %s  %s  %s\n", au_col_time(st, 0, ts), col_shown(st, 1),
		       au_col_text(st, 2) ? au_esc(au_col_text(st, 2)) : "");
	}
	if (j)
		au_json_array_end(j);
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(db, step, err);
	return 0;
}

int au_cmd_explain(sqlite3 *db, const struct au_opts *o, struct pb_err *err)
{
	sqlite3_stmt *run = NULL, *ids = NULL, *evs = NULL, *cnt = NULL;
	struct au_json j = AU_JSON_INIT;
	struct changes ch = { NULL, 0, 0 };
	json_t *keys = NULL, *before = NULL, *after = NULL;
	int64_t n_events = 0;
	int rc = -1, step;

	run = au_prepare(db, "SELECT " AU_RUN_COLS ", values_before, values_after, "
			     "CAST(output_tail AS TEXT) FROM runs WHERE id = ?1", err);
	ids = au_prepare(db, "SELECT event_id FROM run_events WHERE run_id = ?1 ORDER BY event_id", err);
	cnt = au_prepare(db, "SELECT count(*) FROM run_events WHERE run_id = ?1", err);
	/* by key, then recorded order (events_key index not needed: one run's rows) */
	evs = au_prepare(db, "SELECT e.id, e.msg_id, e.received_at, e.kind, e.federation, e.region,"
			     " e.node, e.service, e.key, e.value, e.seq, e.verdict, e.redelivered,"
			     " e.detail, e.source FROM run_events r JOIN events e ON e.id = r.event_id"
			     " WHERE r.run_id = ?1 ORDER BY e.key, e.id", err);
	if (!run || !ids || !evs || !cnt)
		goto out;
	sqlite3_bind_int64(run, 1, o->run_id);
	sqlite3_bind_int64(evs, 1, o->run_id);
	sqlite3_bind_int64(cnt, 1, o->run_id);
	step = sqlite3_step(run);
	if (step == SQLITE_DONE) {
		pb_err_set(err, EX_DATAERR, "%s: no run %lld in the audit log (see 'provbus-audit runs')",
			   o->db_path, (long long)o->run_id);
		goto out;
	}
	if (step != SQLITE_ROW) {
		au_step_error(db, step, err);
		goto out;
	}
	if (sqlite3_step(cnt) == SQLITE_ROW)
		n_events = sqlite3_column_int64(cnt, 0);
	keys = col_json(run, R_CHANGED);
	before = col_json(run, R__COUNT);
	after = col_json(run, R__COUNT + 1);
	changes_of(keys, before, after, &ch);

	if (o->json) {
		au_json_begin(&j);
		if (au_run_members(&j, run, ids, db, err) < 0)
			goto out;
		au_json_col_json(&j, "values_before", run, R__COUNT);
		au_json_col_json(&j, "values_after", run, R__COUNT + 1);
		au_json_array_begin(&j, "changes");
		for (size_t i = 0; i < ch.n; i++) {
			au_json_begin(&j);
			au_json_str(&j, "env", ch.v[i].env);
			au_json_str(&j, "before", ch.v[i].before);
			au_json_str(&j, "after", ch.v[i].after);
			au_json_end(&j);
		}
		au_json_array_end(&j);
		if (explain_events_json(db, evs, &j, err) < 0 || print_notes(db, o->run_id, &j, err) < 0)
			goto out;
		au_json_col(&j, "output_tail", run, R__COUNT + 2);
		au_json_end(&j);
		au_json_print(&j, stdout);
	} else {
		print_run_head(run, &ch, n_events);
		if (explain_events_text(db, evs, o->all, err) < 0 || print_notes(db, o->run_id, NULL, err) < 0)
			goto out;
		print_tail(au_col_text(run, R__COUNT + 2), sqlite3_column_bytes(run, R__COUNT + 2));
	}
	rc = 0;
out:
	sqlite3_finalize(run);
	sqlite3_finalize(ids);
	sqlite3_finalize(evs);
	sqlite3_finalize(cnt);
	json_decref(keys);
	json_decref(before);
	json_decref(after);
	free(ch.v);
	au_json_release(&j);
	return rc;
}
