/* timeline.c — `timeline --html FILE`: one self-contained HTML page (inline
 * SVG and CSS, a few lines of JS, no URL to fetch) drawing the audit log on
 * one time axis: a lane of runs (bars from start to finish, coloured by
 * status, a thin line from queued to started) and one lane per key with
 * its events (dots coloured by verdict). Every mark has a native SVG
 * <title> for hover details.
 *
 * Dense lanes are aggregated: a lane with more than TL_DOT_LIMIT events in
 * the range is drawn as one bar per TL_BUCKET_PX-pixel column, its height
 * the count (log scale), its colour the dominant verdict, with a thin
 * strip on top when the column also holds stale, expired or invalid
 * events. So the page stays small (about 1 MB for 100,000 events over a
 * dozen keys) and draws fast whatever the log holds.
 *
 * Test hooks: each run bar is <rect class="run st-STATUS"
 * data-run-id="N">; each event dot has class "ev", each aggregated
 * column class "agg"; the script sets <body data-rendered="1"
 * data-runs="N" data-marks="N"> when it ran. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit-cli.h"
#include "envfile.h"
#include "pbtime.h"

#define TL_WIDTH 1400		/* plot area, px (viewBox units) */
#define TL_LABEL_W 190		/* lane labels on the left */
#define TL_RIGHT_PAD 20
#define TL_TOP 34		/* axis labels on top */
#define TL_RUN_H 34
#define TL_LANE_H 26
#define TL_BOTTOM 30
#define TL_DOT_LIMIT 1000	/* events per lane drawn one by one */
#define TL_BUCKET_PX 2
#define TL_BUCKETS (TL_WIDTH / TL_BUCKET_PX)

/* The colour of a verdict (an index of au_verdict_index). */
static const char *verdict_colour(int i)
{
	switch ((enum pb_verdict)i) {
	case PB_VERDICT_APPLIED: return "#00897b";
	case PB_VERDICT_DUPLICATE: return "#b0bec5";
	case PB_VERDICT_STALE: return "#fb8c00";
	case PB_VERDICT_FOREIGN: return "#8e24aa";
	case PB_VERDICT_EXPIRED: return "#6d4c41";
	case PB_VERDICT_INVALID: return "#d81b60";
	case PB_VERDICT__COUNT: break;	/* AU_VERDICT_OTHER */
	}
	return "#607d8b";
}

/* A verdict worth a strip on an aggregated column even when few events
 * have it. */
static int verdict_warns(int i)
{
	switch ((enum pb_verdict)i) {
	case PB_VERDICT_STALE:
	case PB_VERDICT_EXPIRED:
	case PB_VERDICT_INVALID:
		return 1;
	case PB_VERDICT_APPLIED:
	case PB_VERDICT_DUPLICATE:
	case PB_VERDICT_FOREIGN:
	case PB_VERDICT__COUNT:
		break;
	}
	return 0;
}

static const char css[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}"
	"h1{font-size:18px;margin:0 0 4px}"
	".meta{color:#555;margin:0 0 10px}"
	".legend{display:flex;flex-wrap:wrap;gap:14px;margin:0 0 8px;font-size:13px}"
	".legend span{display:inline-flex;align-items:center;gap:5px}"
	".sw{display:inline-block;width:12px;height:12px;border-radius:6px}"
	".sq{border-radius:2px}"
	"svg{display:block;width:100%;height:auto;font-size:11px}"
	".grid{stroke:#e6e6e6;stroke-width:1}"
	".tick{fill:#555}"
	".lbl{fill:#222;font-size:12px}"
	".lanebg{fill:#fafafa}"
	".ev:hover,.run:hover,.agg:hover{stroke:#000;stroke-width:1.5}"
	".wait{stroke:#90a4ae;stroke-width:2}"
	".chg{stroke:#263238;stroke-width:1.5}"
	".note{color:#555;font-size:12px;margin-top:8px}";

/* "://" written as "&#58;//": the page holds no URL, not even in the
 * event values it shows (they are text; nothing is fetched). */
static void put_text(struct au_buf *b, const char *s)
{
	const char *p;

	if (!s)
		return;
	while ((p = strstr(s, "://"))) {
		char *part = strndup(s, (size_t)(p - s));

		if (!part)
			abort();
		au_buf_html(b, part);
		free(part);
		au_buf_puts(b, "&#58;//");
		s = p + 3;
	}
	au_buf_html(b, s);
}

struct tl {
	const struct au_opts *o;
	sqlite3 *db;
	int64_t t0, t1;		/* the range drawn */
	struct au_buf out;
	int64_t n_events, n_runs, n_marks;
};

static double x_of(const struct tl *t, int64_t ms)
{
	double span = (double)(t->t1 - t->t0);

	if (ms < t->t0)
		ms = t->t0;
	if (ms > t->t1)
		ms = t->t1;
	return TL_LABEL_W + (span > 0 ? (double)(ms - t->t0) / span * TL_WIDTH : 0);
}

/* The range: --since/--until, else the log's first and last times. */
static int find_range(struct tl *t, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(t->db,
		"SELECT min(m), max(m) FROM ("
		" SELECT min(received_at) m FROM events UNION ALL SELECT max(received_at) FROM events"
		" UNION ALL SELECT min(coalesce(queued_at, started_at)) FROM runs"
		" UNION ALL SELECT max(coalesce(finished_at, started_at)) FROM runs)", err);
	int step;

	if (!st)
		return -1;
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		sqlite3_finalize(st);
		return au_step_error(t->db, step, err);
	}
	t->t0 = au_col_null(st, 0) ? pb_now_ms() - 3600000 : sqlite3_column_int64(st, 0);
	t->t1 = au_col_null(st, 1) ? pb_now_ms() : sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	if (t->o->has_since)
		t->t0 = t->o->since;
	if (t->o->has_until)
		t->t1 = t->o->until;
	if (t->t1 <= t->t0)
		t->t1 = t->t0 + 1000;
	/* a little air on both sides */
	{
		int64_t pad = (t->t1 - t->t0) / 100;

		if (!t->o->has_since)
			t->t0 -= pad;
		if (!t->o->has_until)
			t->t1 += pad;
	}
	return 0;
}

/* --- axis ------------------------------------------------------------------------ */

static const int64_t tick_steps[] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000,
	300000, 600000, 900000, 1800000, 3600000, 7200000, 10800000, 21600000, 43200000, 86400000,
	172800000, 604800000, 0,
};

static void tick_label(int64_t ms, int64_t step, int64_t span, char *buf, size_t size)
{
	char ts[PB_TIME_BUF];

	pb_time_format(ms, ts);	/* 2026-11-22T03:00:00.123Z */
	if (span > 86400000)
		snprintf(buf, size, "%.5s %.5s", ts + 5, ts + 11);	/* 11-22 03:00 */
	else if (step >= 60000)
		snprintf(buf, size, "%.5s", ts + 11);	/* 03:00 */
	else if (step >= 1000)
		snprintf(buf, size, "%.8s", ts + 11);	/* 03:00:00 */
	else
		snprintf(buf, size, "%.12s", ts + 11);	/* 03:00:00.123 */
}

static void draw_axis(struct tl *t, int height)
{
	int64_t span = t->t1 - t->t0, step = tick_steps[0], first, ms;
	char label[64];

	for (int i = 0; tick_steps[i]; i++) {
		step = tick_steps[i];
		if (span / step <= 10)
			break;
	}
	first = (t->t0 / step + (t->t0 % step ? 1 : 0)) * step;
	au_buf_puts(&t->out, "<g class=\"axis\">");
	for (ms = first; ms <= t->t1; ms += step) {
		double x = x_of(t, ms);

		tick_label(ms, step, span, label, sizeof(label));
		au_buf_printf(&t->out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
				       "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>"
				       "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
			      x, TL_TOP - 6, x, height - TL_BOTTOM + 4, x, TL_TOP - 12, label, x,
			      height - TL_BOTTOM + 18, label);
	}
	au_buf_printf(&t->out, "<text class=\"tick\" x=\"%d\" y=\"%d\">time (UTC)</text></g>\n", 4,
		      TL_TOP - 12);
}

/* --- runs ------------------------------------------------------------------------- */

static const char *status_colour(const char *status)
{
	enum pb_run_status s;

	if (pb_run_status_parse(status, &s) < 0)
		return "#9e9e9e";	/* unknown */
	switch (s) {
	case PB_RUN_OK: return "#43a047";
	case PB_RUN_FAILED: return "#e53935";
	case PB_RUN_INTERRUPTED: return "#9e9e9e";
	case PB_RUN_RUNNING: return "#1e88e5";
	case PB_RUN__COUNT: break;
	}
	return "#9e9e9e";
}

/* The status as a class name: only the statuses the daemon writes (the
 * log may have been edited by hand; an attribute takes no escaped text). */
static const char *status_class(const char *status)
{
	enum pb_run_status s;

	return pb_run_status_parse(status, &s) < 0 ? "unknown" : pb_run_status_name(s);
}

static int draw_runs(struct tl *t, int y, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(t->db,
		"SELECT id, reason, queued_at, started_at, finished_at, exit_status, status, deferred_ms,"
		" changed_keys, (SELECT count(*) FROM run_events WHERE run_id = runs.id),"
		" (SELECT min(at) FROM params WHERE at > runs.started_at)"
		" FROM runs WHERE started_at IS NOT NULL AND started_at <= ?2"
		" AND coalesce(finished_at, ?2) >= ?1 ORDER BY id", err);
	char q[PB_TIME_BUF], s[PB_TIME_BUF], f[PB_TIME_BUF], d[32];
	int step;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, t->t0);
	sqlite3_bind_int64(st, 2, t->t1);
	au_buf_printf(&t->out, "<rect class=\"lanebg\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
			       "<text class=\"lbl\" x=\"6\" y=\"%d\">provision runs</text>\n<g class=\"runs\">",
		      TL_LABEL_W, y, TL_WIDTH, TL_RUN_H - 4, y + TL_RUN_H / 2 + 2);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t started = sqlite3_column_int64(st, 3);
		int64_t queued = au_col_null(st, 2) ? started : sqlite3_column_int64(st, 2);
		int finished = !au_col_null(st, 4);
		const char *status = au_col_text(st, 6);
		/* not finished: a running one goes on to the end; an
		 * interrupted one ended when the daemon did (before its next
		 * start; the log does not say when) */
		int64_t end = finished ? sqlite3_column_int64(st, 4)
			      : status && strcmp(status, pb_run_status_name(PB_RUN_RUNNING)) ? (au_col_null(st, 10) ? started
										       : sqlite3_column_int64(st, 10))
			      : t->t1;
		double x0 = x_of(t, started), x1 = x_of(t, end), xq = x_of(t, queued);

		if (x1 - x0 < 2)
			x1 = x0 + 2;
		if (xq < x0 - 0.5)
			au_buf_printf(&t->out, "<line class=\"wait\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>",
				      xq, y + TL_RUN_H / 2 - 2, x0, y + TL_RUN_H / 2 - 2);
		au_buf_printf(&t->out, "<rect class=\"run st-%s\" data-run-id=\"%lld\" x=\"%.1f\" y=\"%d\""
				       " width=\"%.1f\" height=\"%d\" rx=\"2\" fill=\"%s\"><title>",
			      status_class(status), (long long)sqlite3_column_int64(st, 0), x0, y + 4,
			      x1 - x0, TL_RUN_H - 12, status_colour(status));
		au_buf_printf(&t->out, "run %lld · ", (long long)sqlite3_column_int64(st, 0));
		put_text(&t->out, au_col_text(st, 1));
		au_buf_puts(&t->out, " · ");
		put_text(&t->out, status ? status : "?");
		if (!au_col_null(st, 5))
			au_buf_printf(&t->out, " (exit %d)", sqlite3_column_int(st, 5));
		au_buf_printf(&t->out, "\nqueued %s\nstarted %s\n", pb_time_format(queued, q),
			      pb_time_format(started, s));
		if (finished)
			au_buf_printf(&t->out, "finished %s (took %s)\n", pb_time_format(end, f),
				      au_duration(end - started, d));
		if (sqlite3_column_int64(st, 7) > 0)
			au_buf_printf(&t->out, "waited %s for the lock\n",
				      au_duration(sqlite3_column_int64(st, 7), d));
		au_buf_printf(&t->out, "%lld events", (long long)sqlite3_column_int64(st, 9));
		if (au_col_text(st, 8)) {
			au_buf_puts(&t->out, " · changed ");
			put_text(&t->out, au_col_text(st, 8));
		}
		au_buf_puts(&t->out, "</title></rect>");
		t->n_runs++;
	}
	au_buf_puts(&t->out, "</g>\n");
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(t->db, step, err);
	return 0;
}

/* --- event lanes ------------------------------------------------------------------------ */

struct lane {
	char *key;		/* NULL: events with no key (invalid) */
	int64_t count;
};

static int load_lanes(struct tl *t, struct lane **out, size_t *n_out, struct pb_err *err)
{
	/* events_key (key, received_at) covers this */
	sqlite3_stmt *st = au_prepare(t->db, "SELECT key, count(*) FROM events WHERE received_at >= ?1"
					     " AND received_at <= ?2 GROUP BY key ORDER BY key IS NULL, key",
				      err);
	struct lane *l = NULL;
	size_t n = 0, cap = 0;
	int step;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, t->t0);
	sqlite3_bind_int64(st, 2, t->t1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			l = realloc(l, cap * sizeof(*l));
			if (!l)
				abort();
		}
		l[n].key = au_col_text(st, 0) ? strdup(au_col_text(st, 0)) : NULL;
		l[n].count = sqlite3_column_int64(st, 1);
		t->n_events += l[n].count;
		n++;
	}
	sqlite3_finalize(st);
	*out = l;
	*n_out = n;
	if (step != SQLITE_DONE)
		return au_step_error(t->db, step, err);
	return 0;
}

static void dot(struct tl *t, sqlite3_stmt *st, int y)
{
	char ts[PB_TIME_BUF];
	const char *verdict = au_col_text(st, 2), *detail = au_col_text(st, 9);
	int v = au_verdict_index(verdict);

	int changed = sqlite3_column_int(st, 10) != 0;

	au_buf_printf(&t->out, "<circle class=\"ev v-%s%s\" cx=\"%.1f\" cy=\"%d\" r=\"%s\" fill=\"%s\"><title>#%lld ",
		      au_verdict_word(v), changed ? " chg" : "",
		      x_of(t, sqlite3_column_int64(st, 1)), y, changed ? "5" : "3.5",
		      verdict_colour(v), (long long)sqlite3_column_int64(st, 0));
	au_buf_puts(&t->out, pb_time_format(sqlite3_column_int64(st, 1), ts));
	au_buf_putc(&t->out, ' ');
	put_text(&t->out, verdict ? verdict : "?");
	if (au_col_text(st, 3)) {	/* kind */
		au_buf_putc(&t->out, ' ');
		put_text(&t->out, au_col_text(st, 3));
	}
	if (au_col_text(st, 4) || au_col_text(st, 5)) {	/* node/service */
		au_buf_putc(&t->out, ' ');
		put_text(&t->out, au_col_text(st, 4) ? au_col_text(st, 4) : "-");
		au_buf_putc(&t->out, '/');
		put_text(&t->out, au_col_text(st, 5) ? au_col_text(st, 5) : "-");
	}
	if (!au_col_null(st, 6))
		au_buf_printf(&t->out, " seq %lld", (long long)sqlite3_column_int64(st, 6));
	if (sqlite3_column_int(st, 8))
		au_buf_puts(&t->out, " (redelivered)");
	if (changed)
		au_buf_puts(&t->out, " · changed the values");
	au_buf_putc(&t->out, '\n');
	put_text(&t->out, detail && v != PB_VERDICT_APPLIED ? detail : au_col_text(st, 7) ? au_col_text(st, 7) : "(no value)");
	au_buf_puts(&t->out, "</title></circle>");
	t->n_marks++;
}

struct bucket {
	int64_t n[AU_VERDICT_SLOTS];	/* by au_verdict_index */
	int64_t total;
	int64_t changed;	/* events that changed the values */
};

static void draw_buckets(struct tl *t, const struct bucket *b, int y)
{
	int64_t max = 1;
	char t1[PB_TIME_BUF], t2[PB_TIME_BUF];
	double lmax;
	int i, v;

	for (i = 0; i < TL_BUCKETS; i++)
		if (b[i].total > max)
			max = b[i].total;
	lmax = log1p((double)max);
	for (i = 0; i < TL_BUCKETS; i++) {
		int dom = 0, warn = -1;
		double h, x = TL_LABEL_W + (double)i * TL_BUCKET_PX;
		int64_t from, to;

		if (!b[i].total)
			continue;
		for (v = 1; v < AU_VERDICT_SLOTS; v++)
			if (b[i].n[v] > b[i].n[dom])
				dom = v;
		for (v = 0; v < AU_VERDICT_SLOTS; v++)
			if (v != dom && b[i].n[v] && verdict_warns(v) && (warn < 0 || b[i].n[v] > b[i].n[warn]))
				warn = v;
		h = (TL_LANE_H - 8) * (0.2 + 0.8 * log1p((double)b[i].total) / (lmax > 0 ? lmax : 1));
		from = t->t0 + (t->t1 - t->t0) * i / TL_BUCKETS;
		to = t->t0 + (t->t1 - t->t0) * (i + 1) / TL_BUCKETS;
		au_buf_printf(&t->out, "<rect class=\"agg v-%s\" x=\"%.0f\" y=\"%.1f\" width=\"%d\" height=\"%.1f\""
				       " fill=\"%s\"><title>%s – %s: %lld event%s:",
			      au_verdict_word(dom), x, y + TL_LANE_H - 4 - h, TL_BUCKET_PX, h,
			      verdict_colour(dom), pb_time_format(from, t1) + 11, pb_time_format(to, t2) + 11,
			      (long long)b[i].total, b[i].total == 1 ? "" : "s");
		for (v = 0; v < AU_VERDICT_SLOTS; v++)
			if (b[i].n[v])
				au_buf_printf(&t->out, " %lld %s", (long long)b[i].n[v],
					      au_verdict_word(v));
		if (b[i].changed)
			au_buf_printf(&t->out, "; %lld changed the values", (long long)b[i].changed);
		au_buf_puts(&t->out, "</title></rect>");
		if (b[i].changed)
			au_buf_printf(&t->out, "<rect x=\"%.0f\" y=\"%d\" width=\"%d\" height=\"3\" fill=\"#263238\"/>",
				      x, y + TL_LANE_H - 4, TL_BUCKET_PX);
		if (warn >= 0)
			au_buf_printf(&t->out, "<rect x=\"%.0f\" y=\"%d\" width=\"%d\" height=\"3\" fill=\"%s\"/>",
				      x, y + 1, TL_BUCKET_PX, verdict_colour(warn));
		t->n_marks++;
	}
}

static int draw_lane(struct tl *t, const struct lane *l, int y, struct pb_err *err)
{
	const char *cols = "SELECT id, received_at, verdict, kind, node, service, seq, value, redelivered,"
			   " detail, changed FROM events WHERE ";
	struct au_buf sql = AU_BUF_INIT;
	struct bucket *b = NULL;
	sqlite3_stmt *st;
	int step, agg = l->count > TL_DOT_LIMIT, rc = -1;

	au_buf_puts(&sql, cols);
	au_buf_puts(&sql, l->key ? "key = ?3" : "key IS NULL");
	au_buf_puts(&sql, " AND received_at >= ?1 AND received_at <= ?2 ORDER BY received_at, id");
	st = au_prepare(t->db, sql.s, err);
	au_buf_release(&sql);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, t->t0);
	sqlite3_bind_int64(st, 2, t->t1);
	if (l->key)
		sqlite3_bind_text(st, 3, l->key, -1, SQLITE_STATIC);
	au_buf_printf(&t->out, "<g class=\"lane\"><rect class=\"lanebg\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
			       "<text class=\"lbl\" x=\"6\" y=\"%d\">",
		      TL_LABEL_W, y, TL_WIDTH, TL_LANE_H - 2, y + TL_LANE_H / 2 + 3);
	put_text(&t->out, l->key ? l->key : "(no key: invalid)");
	au_buf_printf(&t->out, " <tspan class=\"tick\">%lld</tspan></text>", (long long)l->count);
	if (agg)
		b = calloc(TL_BUCKETS, sizeof(*b));
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (agg) {
			int64_t at = sqlite3_column_int64(st, 1);
			int i = (int)((double)(at - t->t0) / (double)(t->t1 - t->t0) * TL_BUCKETS);

			if (i < 0)
				i = 0;
			if (i >= TL_BUCKETS)
				i = TL_BUCKETS - 1;
			b[i].n[au_verdict_index(au_col_text(st, 2))]++;
			b[i].total++;
			b[i].changed += sqlite3_column_int(st, 10) != 0;
		} else {
			dot(t, st, y + TL_LANE_H / 2 - 1);
		}
	}
	if (step != SQLITE_DONE) {
		au_step_error(t->db, step, err);
		goto out;
	}
	if (agg)
		draw_buckets(t, b, y);
	au_buf_puts(&t->out, "</g>\n");
	rc = 0;
out:
	sqlite3_finalize(st);
	free(b);
	return rc;
}

/* --- the page ---------------------------------------------------------------------------- */

static void legend(struct tl *t, int aggregated)
{
	au_buf_puts(&t->out, "<div class=\"legend\"><b>events:</b>");
	for (int i = 0; i < PB_VERDICT__COUNT; i++)
		au_buf_printf(&t->out, "<span><i class=\"sw\" style=\"background:%s\"></i>%s</span>",
			      verdict_colour(i), au_verdict_word(i));
	au_buf_printf(&t->out, "<span><i class=\"sw\" style=\"background:%s;box-shadow:0 0 0 2px #263238\">"
			       "</i>changed the values</span>", verdict_colour(PB_VERDICT_APPLIED));
	au_buf_puts(&t->out, "<b>runs:</b>");
	for (int i = 0; i < PB_RUN__COUNT; i++) {
		const char *word = pb_run_status_name((enum pb_run_status)i);

		au_buf_printf(&t->out, "<span><i class=\"sw sq\" style=\"background:%s\"></i>%s</span>",
			      status_colour(word), word);
	}
	au_buf_puts(&t->out, "<span><i class=\"sw sq\" style=\"background:#90a4ae;height:3px\"></i>"
			     "queued, waiting</span></div>\n");
	if (aggregated)
		au_buf_printf(&t->out, "<p class=\"note\">Lanes with more than %d events are drawn as"
				       " columns: height = count (log scale), colour = the most frequent"
				       " verdict, a strip on top = some stale, expired or invalid events, a dark"
				       " strip below = events that changed the values."
				       " Hover for the counts; narrow the range with --since/--until to see"
				       " single events.</p>\n", TL_DOT_LIMIT);
}

static const char script[] =
	"<script>\n"
	"(function(){var b=document.body;"
	"b.setAttribute('data-runs',document.querySelectorAll('rect.run').length);"
	"b.setAttribute('data-marks',document.querySelectorAll('.ev,.agg').length);"
	"b.setAttribute('data-rendered','1');})();\n"
	"</script>\n";

static int meta_value(sqlite3 *db, const char *k, struct au_buf *out)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && au_col_text(st, 0)) {
			put_text(out, au_col_text(st, 0));
			found = 1;
		}
	}
	sqlite3_finalize(st);
	return found;
}

/* The page, written beside path and renamed over it, with the mode a
 * new file gets (0666 less the umask). Exit codes as the programs' rule:
 * 73 when the file cannot be made, 74 when it cannot be written (full). */
static int write_file(const char *path, const struct au_buf *b, struct pb_err *err)
{
	struct pb_file_out out;
	struct pb_err e = PB_ERR_INIT;
	mode_t um = umask(0);

	umask(um);
	if (pb_file_out_open(&out, path, &e) == 0) {
		pb_file_out_write(&out, b->s, b->len);
		if (pb_file_out_commit(&out, (int)(0666 & ~um), 0, &e) == 0)
			return 0;
	}
	return pb_err_set(err, e.code, "cannot write the timeline: %s", e.msg);
}

int au_cmd_timeline(sqlite3 *db, const struct au_opts *o, struct pb_err *err)
{
	struct tl t = { o, db, 0, 0, AU_BUF_INIT, 0, 0, 0 };
	struct au_buf svg = AU_BUF_INIT;
	struct lane *lanes = NULL;
	size_t n_lanes = 0, i;
	char a[PB_TIME_BUF], z[PB_TIME_BUF];
	int rc = -1, height, y, aggregated = 0;

	if (find_range(&t, err) < 0 || load_lanes(&t, &lanes, &n_lanes, err) < 0)
		goto out;
	for (i = 0; i < n_lanes; i++)
		aggregated |= lanes[i].count > TL_DOT_LIMIT;
	height = TL_TOP + TL_RUN_H + (int)n_lanes * TL_LANE_H + TL_BOTTOM;

	/* the svg first (it counts what the header says), then the page */
	au_buf_printf(&t.out, "<svg id=\"timeline\" viewBox=\"0 0 %d %d\" role=\"img\""
			      " aria-label=\"events and runs on a time axis\">\n",
		      TL_LABEL_W + TL_WIDTH + TL_RIGHT_PAD, height);
	draw_axis(&t, height);
	y = TL_TOP;
	if (draw_runs(&t, y, err) < 0)
		goto out;
	y += TL_RUN_H;
	for (i = 0; i < n_lanes; i++, y += TL_LANE_H)
		if (draw_lane(&t, &lanes[i], y, err) < 0)
			goto out;
	au_buf_puts(&t.out, "</svg>\n");
	svg = t.out;
	t.out = (struct au_buf)AU_BUF_INIT;

	au_buf_puts(&t.out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			    "<meta name=\"viewport\" content=\"width=device-width\">"
			    "<title>provbus audit timeline</title><style>");
	au_buf_puts(&t.out, css);
	au_buf_puts(&t.out, "</style></head>\n<body data-rendered=\"0\">\n<h1>provbus audit timeline");
	{
		struct au_buf node = AU_BUF_INIT;

		if (meta_value(db, "node", &node)) {
			au_buf_puts(&t.out, ": ");
			au_buf_add(&t.out, node.s, node.len);
		}
		au_buf_release(&node);
	}
	au_buf_printf(&t.out, "</h1>\n<p class=\"meta\">%s – %s (UTC) · %lld events in %zu lane%s · %lld run%s · ",
		      pb_time_format(t.t0, a), pb_time_format(t.t1, z), (long long)t.n_events, n_lanes,
		      n_lanes == 1 ? "" : "s", (long long)t.n_runs, t.n_runs == 1 ? "" : "s");
	put_text(&t.out, o->db_path);
	au_buf_puts(&t.out, "</p>\n");
	legend(&t, aggregated);
	au_buf_add(&t.out, svg.s ? svg.s : "", svg.len);
	au_buf_puts(&t.out, "<p class=\"note\">Hover a mark for its details. Written by provbus-audit "
			    PB_VERSION ".</p>\n");
	au_buf_puts(&t.out, script);
	au_buf_puts(&t.out, "</body></html>\n");
	if (write_file(o->html, &t.out, err) < 0)
		goto out;
	if (o->verbose)
		fprintf(stderr, AU_PROG ": %s: %lld events, %lld runs, %lld marks, %zu bytes\n", o->html,
			(long long)t.n_events, (long long)t.n_runs, (long long)t.n_marks, t.out.len);
	rc = 0;
out:
	for (i = 0; i < n_lanes; i++)
		free(lanes[i].key);
	free(lanes);
	au_buf_release(&svg);
	au_buf_release(&t.out);
	return rc;
}
