/* replay.c — `replay`: the decision core's inputs fed again, in their
 * recorded order and at their recorded times, through the daemon's own
 * decision core (lib/decide.c) in virtual time; prints the runs that
 * would start and compares them with the recorded ones. The decisions are
 * the core's alone: this file reads inputs, prints and compares.
 *
 * Where the inputs come from:
 * - A log of schema 3 or later (lib/audit.h) records every input the
 *   core saw besides the events (the inputs table): they are fed as
 *   recorded ("recorded inputs").
 * - A log pruned by retention (meta inputs_from) begins with a base, a
 *   start or snapshot input holding the core's whole state: the replay
 *   starts there, and the rows kept from before it (the newest seq of
 *   each (node, service), the last runs) are part of that state: the
 *   events are not fed, the runs not compared.
 * - A log without inputs rows (schema 2, written by an older provbus)
 *   has its inputs derived from what it holds ("derived inputs",
 *   derive_inputs below): each params row is a daemon start or a reload
 *   with its debounce parameters; the required keys, accepted regions
 *   and federation are those of the events the daemon did not judge
 *   foreign or invalid, each key its own env var (env names are not in
 *   the log); the startup, manual and resume runs are requests at their
 *   queued_at; pause and resume notes are pause inputs; each event is a
 *   batch of its own (settled at its receive instant); the recorded
 *   `expired` rows are lease expiries at their instant; each recorded
 *   run is the poll that started it at its started_at, with its lock
 *   wait, and its end at finished_at with its status. The splay draw of
 *   a run is the daemon's ("splay" note), else its recorded start minus
 *   the instant the core let it go (held to [0, splay_ms]), drawn at
 *   that instant. Inputs at one instant come before the events of that
 *   instant. Values are compared as the sets of values (their env names
 *   are not in the log).
 *
 * With the recorded parameters the comparison is exact, with no
 * tolerance: every recorded start must be decided by the core at its
 * recorded instant (the poll that started it is an input), with the
 * recorded reason, queued_at and values, each splay draw and lease expiry
 * as recorded, each event judged as recorded. A what-if changes only the
 * parameters: the core then decides the starts itself, at its own
 * deadlines, and runs last as the recorded ones did (beyond them, the
 * median duration) and end the same way.
 *
 * Memory: the params, runs and notes rows (small), the derived inputs
 * (one or two per run) and one entry per simulated run; the events and
 * the recorded inputs are streamed. */
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "audit-cli.h"
#include "debounce.h"
#include "decide.h"
#include "decidelog.h"
#include "event.h"
#include "manifest.h"
#include "pbtime.h"
#include "providers.h"
#include "strv.h"

/* provbus.json(5) defaults, for a log with no params row before its first
 * event: what the daemon's params read back gives for an empty row */
static struct pb_debounce_params default_params(void)
{
	struct pb_debounce_params p;

	pb_decide_deb_from_json(NULL, &p);
	return p;
}

struct param_row {
	int64_t at;
	int start;		/* 1: a daemon start, 0: a reload */
	struct pb_debounce_params p;	/* with the what-if overrides applied */
	struct pb_debounce_params recorded;
};

struct rec_run {
	int64_t id;
	int64_t splay;		/* the splay the daemon drew (its "splay" note), -1: unknown */
	enum pb_reason reason;
	int reason_ok;		/* the reason text was known */
	int64_t queued, started, finished, deferred;
	int has_finished, ok;
	char status[16];
};

enum note_kind { NOTE_PAUSE, NOTE_RESUME, NOTE_STOP };

struct note {
	int64_t at;
	enum note_kind kind;
	int inferred;		/* a stop deduced from a restart, not noted */
};

struct sim_run {
	int64_t queued, started, finished;
	enum pb_reason reason;
	int ok;
	int64_t events;		/* applied and expired events since the previous start */
	/* --json only (provbus-audit(1) run object): the ids of the recorded events it
	 * covers (applied or expired since the previous start), and the keys
	 * whose values differ from the last good run's, joined by ',' */
	int64_t *ids;
	size_t n_ids;
	char *changed_keys;
	size_t rec;		/* paired recorded run (index), or SIZE_MAX */
};

/* The differences the core's own checks find (core_diff) */
enum { CD_VALUES, CD_SPLAY, CD_EXPIRED, CD_START, CD_VERDICT, CD_UNSTARTED, CD__COUNT };

struct replay {
	const struct au_opts *o;
	sqlite3 *db;
	int what_if;

	struct param_row *params;
	size_t n_params;
	struct rec_run *rec;
	size_t n_rec;
	int64_t median_ms;
	struct note *notes;
	size_t n_notes;
	int64_t log_end;
	int64_t now;

	struct sim_run *runs;
	size_t n_runs, cap_runs;
	int64_t applied_since_start;	/* applied and expired events since the last start */
	int64_t *ids_since_start;	/* --json: their recorded ids */
	size_t n_ids_since_start, cap_ids_since_start;
	int64_t *starts;	/* every simulated start, for the throttle seed */

	/* diagnostics */
	int64_t n_events, n_fed, n_expired_sim, n_expired_rec;
	int64_t splay_taken;
	int late_run;		/* a run would start after the end of the log */
	int64_t first_event_at, last_event_at;
	int derived;		/* no inputs rows: the inputs are derived from the log */
	size_t n_rec_derived;	/* recorded runs replayed from derived inputs */
	int pruned;		/* retention deleted the inputs before the first base */
	int64_t pruned_at;	/* ... that base's instant */
	size_t n_rec_pruned;	/* recorded runs before it, left out */
	int64_t core_diff[CD__COUNT];
	size_t *undecided;	/* recorded runs (index) the core did not start at their instant */
	size_t n_undecided;
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		abort();
	return q;
}

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort();
	return d;
}

/* --- loading the small tables ------------------------------------------------ */

static void apply_overrides(const struct au_opts *o, struct pb_debounce_params *p)
{
	if (o->has_quiet)
		p->quiet_ms = o->quiet_ms;
	if (o->has_max_wait)
		p->max_wait_ms = o->max_wait_ms;
	if (o->has_throttle) {
		p->throttle_runs = o->throttle_runs;
		p->throttle_per_ms = o->throttle_per_ms;
	}
}

static int load_params(struct replay *r, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(r->db, "SELECT at, json FROM params ORDER BY at, id", err);
	size_t cap = 0;
	int step;

	if (!st)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *j = json_loads(au_col_text(st, 1) ? au_col_text(st, 1) : "", 0, NULL);
		struct param_row *p;
		const char *ev;

		if (!json_is_object(j)) {
			json_decref(j);
			continue;	/* a damaged row: the previous parameters stay */
		}
		if (r->n_params == cap) {
			cap = cap ? cap * 2 : 8;
			r->params = xrealloc(r->params, cap * sizeof(*r->params));
		}
		p = &r->params[r->n_params++];
		p->at = sqlite3_column_int64(st, 0);
		pb_decide_deb_from_json(j, &p->recorded);
		ev = json_string_value(json_object_get(j, "event"));
		p->start = !ev || strcmp(ev, "reload") != 0;
		p->p = p->recorded;
		apply_overrides(r->o, &p->p);
		json_decref(j);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(r->db, step, err);
	return 0;
}

static int i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The recorded runs (by id: the order the daemon started them) and the
 * median duration. */
static int load_runs(struct replay *r, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(r->db, "SELECT id, reason, queued_at, started_at, finished_at,"
					     " exit_status, status, deferred_ms FROM runs ORDER BY id", err);
	size_t cap = 0, n_d = 0;
	int64_t *durations = NULL;
	int step;

	if (!st)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct rec_run *x;
		const char *status = au_col_text(st, 6);

		if (au_col_null(st, 3))
			continue;	/* never started: not a start to reproduce */
		if (r->n_rec == cap) {
			cap = cap ? cap * 2 : 64;
			r->rec = xrealloc(r->rec, cap * sizeof(*r->rec));
			durations = xrealloc(durations, cap * sizeof(*durations));
		}
		x = &r->rec[r->n_rec++];
		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		x->splay = -1;
		x->reason_ok = pb_reason_parse(au_col_text(st, 1), &x->reason) == 0;
		if (!x->reason_ok)
			x->reason = PB_REASON_CHANGE;
		x->started = sqlite3_column_int64(st, 3);
		x->queued = au_col_null(st, 2) ? x->started : sqlite3_column_int64(st, 2);
		x->has_finished = !au_col_null(st, 4);
		x->finished = x->has_finished ? sqlite3_column_int64(st, 4) : 0;
		x->deferred = sqlite3_column_int64(st, 7);
		snprintf(x->status, sizeof(x->status), "%s", status ? status : "");
		if (status && strcmp(status, "running"))
			x->ok = !strcmp(status, "ok");
		else
			x->ok = status ? 1 : !au_col_null(st, 5) && sqlite3_column_int(st, 5) == 0;
		if (x->has_finished && x->finished >= x->started)
			durations[n_d++] = x->finished - x->started;
	}
	sqlite3_finalize(st);
	if (n_d) {
		qsort(durations, n_d, sizeof(*durations), i64_cmp);
		r->median_ms = durations[n_d / 2];
	} else {
		r->median_ms = 10000;
	}
	free(durations);
	if (step != SQLITE_DONE)
		return au_step_error(r->db, step, err);
	return 0;
}

static int rec_cmp_id(const void *key, const void *elem)
{
	int64_t id = *(const int64_t *)key, other = ((const struct rec_run *)elem)->id;

	return id < other ? -1 : id > other;
}

/* The daemon notes the splay it drew for each run ("waited a splay of N
 * ms (of at most M)"): the replay draws the same. */
static int load_splays(struct replay *r, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(r->db, "SELECT run_id, text FROM notes WHERE kind = 'splay'"
					     " AND run_id IS NOT NULL", err);
	int step;

	if (!st)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		struct rec_run *x = bsearch(&id, r->rec, r->n_rec, sizeof(*r->rec), rec_cmp_id);
		const char *text = au_col_text(st, 1);
		long long ms;

		if (x && text && sscanf(text, "waited a splay of %lld ms", &ms) == 1 && ms >= 0)
			x->splay = ms;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(r->db, step, err);
	return 0;
}

static int note_cmp(const void *a, const void *b)
{
	const struct note *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

/* When the daemon stopped before each restart, if no note says so: just
 * after its last record (event, run, note) before the start. A daemon
 * that was up later and started a run would have left that run in the
 * log, so this never drops a recorded run; it keeps the replay from
 * starting runs while the daemon was down. */
static int infer_stops(struct replay *r, size_t *cap, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(r->db,
		"SELECT max(coalesce((SELECT max(received_at) FROM events WHERE received_at < ?1), 0),"
		" coalesce((SELECT max(coalesce(finished_at, started_at)) FROM runs"
		"  WHERE coalesce(finished_at, started_at) < ?1), 0),"
		" coalesce((SELECT max(at) FROM notes WHERE at < ?1), 0))", err);
	size_t i, n0 = r->n_notes;
	int step = SQLITE_DONE;

	if (!st)
		return -1;
	for (i = 0; i < r->n_params; i++) {
		const struct param_row *p = &r->params[i];
		int64_t last, prev_start = INT64_MIN;
		int noted = 0;

		if (!p->start)
			continue;
		for (size_t k = 0; k < i; k++)
			if (r->params[k].start)
				prev_start = r->params[k].at;
		if (prev_start == INT64_MIN)
			continue;	/* the first start: nothing ran before it */
		for (size_t k = 0; k < n0; k++)
			noted |= r->notes[k].kind == NOTE_STOP && r->notes[k].at > prev_start &&
				 r->notes[k].at <= p->at;
		if (noted)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, p->at);
		if ((step = sqlite3_step(st)) != SQLITE_ROW)
			break;
		step = SQLITE_DONE;
		last = sqlite3_column_int64(st, 0);
		if (last < prev_start)
			last = prev_start;
		if (r->n_notes == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			r->notes = xrealloc(r->notes, *cap * sizeof(*r->notes));
		}
		r->notes[r->n_notes++] = (struct note){ last + 1, NOTE_STOP, 1 };
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(r->db, step, err);
	if (r->n_notes)
		qsort(r->notes, r->n_notes, sizeof(*r->notes), note_cmp);
	return 0;
}

/* Notes that change what the daemon could do: pause/resume (if the
 * daemon notes them) and stop (it was down until its next start). */
static int load_notes(struct replay *r, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(r->db, "SELECT at, kind FROM notes WHERE kind IN"
					     " ('pause', 'paused', 'resume', 'resumed', 'stop', 'shutdown')"
					     " ORDER BY at, id", err);
	size_t cap = 0;
	int step;

	if (!st)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = au_col_text(st, 1);

		if (r->n_notes == cap) {
			cap = cap ? cap * 2 : 16;
			r->notes = xrealloc(r->notes, cap * sizeof(*r->notes));
		}
		r->notes[r->n_notes].at = sqlite3_column_int64(st, 0);
		r->notes[r->n_notes].kind = !strncmp(k, "pause", 5)    ? NOTE_PAUSE
					    : !strncmp(k, "resume", 6) ? NOTE_RESUME
								       : NOTE_STOP;
		r->notes[r->n_notes].inferred = 0;
		r->n_notes++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(r->db, step, err);
	return infer_stops(r, &cap, err);
}

/* The end of the log: its last event, run start or end, note or params row. */
static int load_end(struct replay *r, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(r->db,
		"SELECT max(coalesce((SELECT max(received_at) FROM events), 0),"
		" coalesce((SELECT max(started_at) FROM runs), 0),"
		" coalesce((SELECT max(finished_at) FROM runs), 0),"
		" coalesce((SELECT max(at) FROM notes), 0),"
		" coalesce((SELECT max(at) FROM params), 0)),"
		" (SELECT min(received_at) FROM events)", err);
	int step;

	if (!st)
		return -1;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		r->log_end = sqlite3_column_int64(st, 0);
		r->first_event_at = au_col_null(st, 1) ? 0 : sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_ROW)
		return au_step_error(r->db, step, err);
	return 0;
}

static void copy_field(char *dst, size_t size, sqlite3_stmt *st, int i)
{
	const char *s = au_col_text(st, i);
	size_t n = s ? strnlen(s, size - 1) : 0;

	if (n)
		memcpy(dst, s, n);
	dst[n] = '\0';
}

enum { V_ID, V_AT, V_KIND, V_FED, V_REGION, V_NODE, V_SERVICE, V_KEY, V_VALUE, V_SEQ, V_TTL,
       V_PUBLIC, V_VERDICT, V_MSG_ID, V_LEASE_FROM };

/* --- the decision core, fed the recorded or the derived inputs ----------------------- */

/* A log written since schema 3 records every input of the daemon's
 * decision core (lib/decide.h; the inputs table of lib/audit.h). */
static int has_inputs(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int yes = 0;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM inputs WHERE kind IN ('start', 'snapshot') LIMIT 1",
			       -1, &st, NULL) == SQLITE_OK)
		yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

/* One input of the core: an inputs row, or one derived from the log. */
struct input {
	int64_t id;		/* the inputs row (0: derived) */
	int64_t at;
	int64_t after;		/* recorded: fed after the events up to this id */
	int rank;		/* derived: the order of the inputs of one instant */
	const char *kind;
	int64_t n;
	const char *text;
	char *own;		/* derived: the text, owned */
};

/* The order of derived inputs at one instant (all before that instant's
 * events): a start or reload first, a run's end before the request and
 * the start that may follow it. */
enum { RANK_START, RANK_RELOAD, RANK_PAUSE, RANK_LOCK_TAKEN, RANK_FINISHED, RANK_REQUEST,
       RANK_STARTED, RANK_LOCK_WAIT };

struct core_replay {
	struct replay *r;
	struct pb_decide *core;
	struct pb_decide_params_store *store;
	sqlite3_stmt *values_st;
	struct seq_floor **floors;	/* the stale floors as of the event streamed */
	size_t n_floor_buckets;
	int64_t last_event;	/* the highest events.id fed */
	int running;		/* a simulated run is going (runs[n_runs - 1]) */
	int64_t run_end;	/* what-if: when it ends */
	int64_t splay_ms;	/* in force (what-if: half of it is drawn) */
	int64_t first_start;	/* the first base's instant */
	int64_t first_base;	/* ... its inputs row (a pruned log: those before are fed no more) */
	/* derived inputs (a log without inputs rows) */
	struct input *din;
	size_t n_din, cap_din;
	int drawn;		/* the splay of the pending run is drawn */
	char **keys, **regions, *federation;	/* the derived filter */
	size_t n_keys, n_regions;
	struct pb_want *wants;	/* one per key, env = key */
};

static void core_sink(void *ctx, const struct pb_decide_rec *x)
{
	struct core_replay *c = ctx;

	if (x->kind == PB_DECIDE_REC_EXPIRED)
		c->r->n_expired_sim++;
}

/* The highest seq of each (node, service) in the rows streamed so far
 * (verdict not invalid): as the events come in id order, the daemon's
 * floor for stale as of each event (lib/audit.h pb_audit_max_seq, the
 * rows before it). A hash table of chains. */
struct seq_floor {
	struct seq_floor *next;
	int64_t seq;
	char key[];		/* node '\0' service */
};

static uint32_t floor_hash(const char *node, const char *service)
{
	uint32_t h = 2166136261u;

	for (const char *p = node; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (const char *p = service; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static struct seq_floor **floor_find(struct core_replay *c, const char *node, const char *service)
{
	struct seq_floor **f;
	size_t ln = strlen(node);

	if (!c->floors) {
		c->n_floor_buckets = 4096;
		c->floors = calloc(c->n_floor_buckets, sizeof(*c->floors));
		if (!c->floors)
			abort();
	}
	f = &c->floors[floor_hash(node, service) & (c->n_floor_buckets - 1)];
	for (; *f; f = &(*f)->next)
		if (!strcmp((*f)->key, node) && !strcmp((*f)->key + ln + 1, service))
			break;
	return f;
}

static int64_t core_seq_floor(struct core_replay *c, const char *node, const char *service)
{
	struct seq_floor **f = floor_find(c, node, service);

	return *f ? (*f)->seq : 0;
}

/* The row just streamed raises its (node, service)'s floor. */
static void floor_note(struct core_replay *c, sqlite3_stmt *st)
{
	const char *verdict = au_col_text(st, V_VERDICT), *node = au_col_text(st, V_NODE),
		   *service = au_col_text(st, V_SERVICE);
	int64_t seq = sqlite3_column_int64(st, V_SEQ);
	struct seq_floor **f;

	if (!verdict || !strcmp(verdict, "invalid") || !node || !service || au_col_null(st, V_SEQ))
		return;
	f = floor_find(c, node, service);
	if (!*f) {
		size_t ln = strlen(node), ls = strlen(service);

		*f = xrealloc(NULL, sizeof(**f) + ln + ls + 2);
		(*f)->next = NULL;
		(*f)->seq = seq;
		memcpy((*f)->key, node, ln + 1);
		memcpy((*f)->key + ln + 1, service, ls + 1);
	} else if (seq > (*f)->seq) {
		(*f)->seq = seq;
	}
}

static void floors_free(struct core_replay *c)
{
	for (size_t i = 0; c->floors && i < c->n_floor_buckets; i++)
		while (c->floors[i]) {
			struct seq_floor *n = c->floors[i]->next;

			free(c->floors[i]);
			c->floors[i] = n;
		}
	free(c->floors);
}

/* One recorded event row, fed as the daemon fed it. */
static void core_event(struct core_replay *c, sqlite3_stmt *st)
{
	struct replay *r = c->r;
	const char *verdict = au_col_text(st, V_VERDICT), *kind = au_col_text(st, V_KIND);
	int64_t id = sqlite3_column_int64(st, V_ID), at = sqlite3_column_int64(st, V_AT);
	struct pb_decide_event in;
	struct pb_event ev;
	enum pb_verdict v;

	c->last_event = id;
	r->n_events++;
	if (!r->first_event_at)
		r->first_event_at = at;
	r->last_event_at = at;
	if (verdict && !strcmp(verdict, "expired")) {
		r->n_expired_rec++;
		/* recorded inputs: the core's own record of an expire input;
		 * derived: the expire input itself (the first row of the
		 * instant removes them all) */
		if (r->derived && c->core)
			pb_decide_expire(c->core, at);
		goto covered;
	}
	if (!verdict || !strcmp(verdict, "invalid") || !kind || au_col_null(st, V_KEY) ||
	    au_col_null(st, V_FED) || au_col_null(st, V_REGION) || au_col_null(st, V_NODE) ||
	    au_col_null(st, V_SERVICE))
		return;
	memset(&ev, 0, offsetof(struct pb_event, value));
	if (pb_kind_parse(kind, &ev.kind) < 0)
		return;
	copy_field(ev.id, sizeof(ev.id), st, V_MSG_ID);
	copy_field(ev.federation, sizeof(ev.federation), st, V_FED);
	copy_field(ev.region, sizeof(ev.region), st, V_REGION);
	copy_field(ev.node, sizeof(ev.node), st, V_NODE);
	copy_field(ev.service, sizeof(ev.service), st, V_SERVICE);
	copy_field(ev.key, sizeof(ev.key), st, V_KEY);
	ev.has_value = !au_col_null(st, V_VALUE);
	if (ev.has_value) {
		copy_field(ev.value, sizeof(ev.value), st, V_VALUE);
		ev.value_len = strlen(ev.value);
	} else {
		ev.value[0] = '\0';
		ev.value_len = 0;
	}
	ev.public = sqlite3_column_int(st, V_PUBLIC) != 0;
	ev.seq = sqlite3_column_int64(st, V_SEQ);
	ev.ttl_s = sqlite3_column_int64(st, V_TTL);
	in.ev = &ev;
	in.seen_before = !strcmp(verdict, "duplicate");
	in.seq_floor = in.seen_before ? 0 : core_seq_floor(c, ev.node, ev.service);
	in.apply_at = au_col_null(st, V_LEASE_FROM) ? at : sqlite3_column_int64(st, V_LEASE_FROM);
	r->n_fed++;
	v = pb_decide_event(c->core, at, &in, NULL);
	if (r->derived)
		pb_decide_settle(c->core, at);	/* a batch of its own */
	if (strcmp(pb_verdict_name(v), verdict))
		r->core_diff[CD_VERDICT]++;
	if (v != PB_VERDICT_APPLIED)
		return;
covered:
	r->applied_since_start++;
	if (r->o->json) {
		if (r->n_ids_since_start == r->cap_ids_since_start) {
			r->cap_ids_since_start = r->cap_ids_since_start ? r->cap_ids_since_start * 2 : 16;
			r->ids_since_start = xrealloc(r->ids_since_start, r->cap_ids_since_start *
								  sizeof(*r->ids_since_start));
		}
		r->ids_since_start[r->n_ids_since_start++] = id;
	}
}

/* The keys (env names) whose values differ from the last good run's. */
static char *core_changed_keys(const struct pb_decide *d)
{
	size_t n_ok, n_v, i = 0, j = 0;
	const struct pb_kv *ok = pb_decide_ok_values(d, &n_ok), *v = pb_decide_values(d, &n_v);
	struct au_buf b = AU_BUF_INIT;
	char *out;

	while (i < n_ok || j < n_v) {
		int cmp = i >= n_ok ? 1 : j >= n_v ? -1 : strcmp(ok[i].name, v[j].name);
		const char *name = cmp <= 0 ? ok[i].name : v[j].name;

		if (cmp || strcmp(ok[i].value, v[j].value))
			au_buf_printf(&b, "%s%s", b.len ? "," : "", name);
		i += cmp <= 0;
		j += cmp >= 0;
	}
	out = xstrdup(b.s ? b.s : "");
	au_buf_release(&b);
	return out;
}

/* Recorded inputs: the core's values equal the run's values_after.
 * Derived: the env names are not in the log (each key is its own env
 * var), so the values are compared as sets of values. */
static int core_values_match(const struct core_replay *c, const json_t *want)
{
	size_t n, i = 0;
	const struct pb_kv *kv = pb_decide_values(c->core, &n);
	const char **a, **b;
	const char *k;
	json_t *v;
	int eq;

	if (!c->r->derived) {
		json_t *got = json_object();

		for (i = 0; got && i < n; i++)
			json_object_set_new(got, kv[i].name, json_string(kv[i].value));
		eq = json_equal(want, got);
		json_decref(got);
		return eq;
	}
	if (json_object_size(want) != n)
		return 0;
	a = xrealloc(NULL, (n + 1) * sizeof(*a));
	b = xrealloc(NULL, (n + 1) * sizeof(*b));
	json_object_foreach((json_t *)want, k, v)
		a[i++] = json_string_value(v) ? json_string_value(v) : "";
	for (i = 0; i < n; i++)
		b[i] = kv[i].value;
	qsort(a, n, sizeof(*a), pb_strv_cmp);
	qsort(b, n, sizeof(*b), pb_strv_cmp);
	for (i = 0, eq = 1; eq && i < n; i++)
		eq = !strcmp(a[i], b[i]);
	free(a);
	free(b);
	return eq;
}

/* A run starts at now (the core said so, or the record did). */
static void core_run_start(struct core_replay *c, int64_t now, const struct pb_decide_action *a,
			   int64_t rec_id)
{
	struct replay *r = c->r;
	struct sim_run *s;
	size_t k = r->n_runs;

	if (rec_id > 0 && c->values_st) {
		sqlite3_stmt *st = c->values_st;
		json_t *want = NULL;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, rec_id);
		if (sqlite3_step(st) == SQLITE_ROW && au_col_text(st, 0))
			want = json_loads(au_col_text(st, 0), 0, NULL);
		if (json_is_object(want) && !core_values_match(c, want))
			r->core_diff[CD_VALUES]++;
		json_decref(want);
		sqlite3_reset(st);
	}
	if (r->n_runs == r->cap_runs) {
		r->cap_runs = r->cap_runs ? r->cap_runs * 2 : 64;
		r->runs = xrealloc(r->runs, r->cap_runs * sizeof(*r->runs));
		r->starts = xrealloc(r->starts, r->cap_runs * sizeof(*r->starts));
	}
	s = &r->runs[r->n_runs];
	memset(s, 0, sizeof(*s));
	r->starts[r->n_runs] = now;
	r->n_runs++;
	s->queued = a->queued_at;
	s->started = now;
	s->finished = now;
	s->reason = a->reason;
	s->ok = 1;
	s->events = r->applied_since_start;
	s->ids = r->ids_since_start;
	s->n_ids = r->n_ids_since_start;
	s->changed_keys = r->o->json ? core_changed_keys(c->core) : NULL;
	s->rec = SIZE_MAX;
	r->applied_since_start = 0;
	r->ids_since_start = NULL;
	r->n_ids_since_start = r->cap_ids_since_start = 0;
	if (pb_decide_started(c->core, now) < 0)
		abort();
	c->running = 1;
	c->drawn = 0;
	if (r->what_if) {
		int64_t dur = k < r->n_rec && r->rec[k].has_finished
				      ? r->rec[k].finished - r->rec[k].started : r->median_ms;

		c->run_end = now + (dur > 0 ? dur : 0);
		s->ok = k < r->n_rec ? r->rec[k].ok : 1;
	}
}

static void core_run_end(struct core_replay *c, int64_t now, enum pb_run_status st)
{
	struct replay *r = c->r;

	if (!c->running)
		return;
	c->running = 0;
	r->runs[r->n_runs - 1].finished = now;
	r->runs[r->n_runs - 1].ok = st == PB_RUN_OK;
	pb_decide_finished(c->core, now, st);
}

/* What-if: what the core decides by itself up to t (polls at its own
 * deadlines; runs end after the recorded durations). */
static void core_until(struct core_replay *c, int64_t t)
{
	struct replay *r = c->r;
	struct pb_decide_action a;

	if (!r->what_if || !c->core)
		return;
	for (int guard = 0; guard < 1000000; guard++) {
		int64_t next;

		if (c->running) {
			if (c->run_end > t)
				return;
			core_run_end(c, c->run_end, r->runs[r->n_runs - 1].ok ? PB_RUN_OK
									    : PB_RUN_FAILED);
			continue;
		}
		pb_decide_poll(c->core, r->now, (uint64_t)(c->splay_ms / 2), &a);
		if (a.start) {
			core_run_start(c, r->now, &a, 0);
			continue;
		}
		next = a.run_at;
		if (next == PB_TIME_NEVER || next > t)
			return;
		r->now = next > r->now ? next : r->now + 1;
	}
}

/* Derived inputs: the splay is drawn by the poll at the instant the core
 * lets the pending run go (up to t), and the draw is that of the next
 * recorded run: the daemon's ("splay" note), else its recorded start
 * minus that instant, held to [0, splay_ms]. A recorded log has the draw
 * as an input. */
static void derived_splay(struct core_replay *c, int64_t t)
{
	struct replay *r = c->r;
	struct pb_decide_action a;

	if (!r->derived || r->what_if || !c->core || c->running || c->splay_ms <= 0)
		return;
	for (int guard = 0; !c->drawn && guard < 1000; guard++) {
		size_t k = r->n_runs;
		int64_t draw = c->splay_ms;

		if (k < r->n_rec)
			draw = r->rec[k].splay >= 0 ? r->rec[k].splay : r->rec[k].started - r->now;
		if (draw < 0)
			draw = 0;
		if (draw > c->splay_ms)
			draw = c->splay_ms;
		pb_decide_poll(c->core, r->now, (uint64_t)draw, &a);
		if (a.splay_drawn) {
			c->drawn = 1;
			r->splay_taken++;
			return;
		}
		if (a.start || a.run_at == PB_TIME_NEVER || a.run_at > t || a.run_at <= r->now)
			return;
		r->now = a.run_at;
	}
}

static int json_strv(const json_t *a, const char ***out, size_t *n)
{
	*n = json_array_size(a);
	*out = calloc(*n + 1, sizeof(**out));
	if (!*out)
		return -1;
	for (size_t i = 0; i < *n; i++)
		(*out)[i] = json_string_value(json_array_get(a, i));
	return 0;
}

static int kv_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pb_kv *)a)->name, ((const struct pb_kv *)b)->name);
}

/* A daemon start: a new core with the recorded parameters and the state
 * it restored (the providers: those the replay's core holds). Derived
 * inputs carry the parameters only: the last good values and the
 * throttle window are the replay's own, nothing is owed or paused.
 * snapshot 1: a snapshot input, the state of a core that had been
 * running, with what its debounce had pending. */
static int core_start(struct core_replay *c, int64_t now, const json_t *j, int snapshot)
{
	struct replay *r = c->r;
	struct pb_decide_params p;
	struct pb_decide_params_store *store = NULL;
	struct pb_decide *old = c->core, *d;
	const json_t *okj = json_object_get(j, "ok_values"), *sj = json_object_get(j, "starts");
	int64_t starts[PB_DEBOUNCE_MAX_THROTTLE];
	int n_starts = 0;
	const char **keys = NULL;
	size_t n_keys = 0;

	if (pb_decide_params_from_json(json_object_get(j, "params"), &p, &store) < 0)
		return -1;
	apply_overrides(r->o, &p.deb);
	if (c->running) {
		c->running = 0;	/* the daemon stopped during it */
		r->runs[r->n_runs - 1].finished = now;
	}
	c->drawn = 0;
	if (!(d = pb_decide_new(&p, core_sink, c))) {
		pb_decide_params_store_free(store);
		return -1;
	}
	if (json_is_array(json_object_get(j, "providers"))) {
		/* the providers the daemon restored, as recorded */
		const json_t *a = json_object_get(j, "providers");

		for (size_t i = 0; i < json_array_size(a); i++) {
			const json_t *x = json_array_get(a, i);
			struct pb_provider pv;

			memset(&pv, 0, sizeof(pv));
			snprintf(pv.federation, sizeof(pv.federation), "%s",
				 json_string_value(json_array_get(x, 0)) ?: "");
			snprintf(pv.region, sizeof(pv.region), "%s",
				 json_string_value(json_array_get(x, 1)) ?: "");
			snprintf(pv.node, sizeof(pv.node), "%s", json_string_value(json_array_get(x, 2)) ?: "");
			snprintf(pv.service, sizeof(pv.service), "%s",
				 json_string_value(json_array_get(x, 3)) ?: "");
			snprintf(pv.key, sizeof(pv.key), "%s", json_string_value(json_array_get(x, 4)) ?: "");
			pv.value = (char *)json_string_value(json_array_get(x, 5));
			pv.public = (int)json_integer_value(json_array_get(x, 6));
			pv.seq = json_integer_value(json_array_get(x, 7));
			pv.expires_at = json_integer_value(json_array_get(x, 8));
			pv.updated_at = json_integer_value(json_array_get(x, 9));
			pv.tombstone = (int)json_integer_value(json_array_get(x, 10));
			if (pb_decide_restore_provider(d, &pv) < 0)
				goto oom;
		}
	} else if (old) {
		struct pb_providers *pv = pb_decide_providers(old);

		for (size_t i = 0; i < pb_providers_count(pv); i++)
			if (pb_decide_restore_provider(d, pb_providers_at(pv, i)) < 0)
				goto oom;
	}
	if (json_is_object(okj)) {
		size_t n = json_object_size(okj), i = 0;
		struct pb_kv *kv = calloc(n + 1, sizeof(*kv));
		const char *k;
		json_t *v;
		int rc;

		if (!kv)
			goto oom;
		json_object_foreach((json_t *)okj, k, v) {
			kv[i].name = (char *)k;
			kv[i++].value = (char *)(json_string_value(v) ? json_string_value(v) : "");
		}
		qsort(kv, i, sizeof(*kv), kv_name_cmp);
		rc = pb_decide_restore_ok_values(d, kv, i);
		free(kv);
		if (rc < 0)
			goto oom;
	} else if (r->derived && old) {
		size_t n;
		const struct pb_kv *kv = pb_decide_ok_values(old, &n);

		if (kv && pb_decide_restore_ok_values(d, kv, n) < 0)
			goto oom;
	}
	if (r->what_if || r->derived) {
		/* the simulation's own throttle window */
		for (size_t i = r->n_runs; i-- > 0 && n_starts < PB_DEBOUNCE_MAX_THROTTLE;)
			if (r->starts[i] > now - p.deb.throttle_per_ms)
				n_starts++;
		for (int i = 0; i < n_starts; i++)
			starts[i] = r->starts[r->n_runs - (size_t)n_starts + (size_t)i];
	} else {
		for (size_t i = 0; i < json_array_size(sj) && n_starts < PB_DEBOUNCE_MAX_THROTTLE; i++)
			starts[n_starts++] = json_integer_value(json_array_get(sj, i));
	}
	pb_decide_restore_starts(d, starts, n_starts);
	if (json_strv(json_object_get(j, "owed_keys"), &keys, &n_keys) < 0 ||
	    pb_decide_restore_owed(d, json_integer_value(json_object_get(j, "owed_full")) != 0,
				   keys, n_keys) < 0) {
		free(keys);
		goto oom;
	}
	free(keys);
	pb_decide_restore_paused(d, json_integer_value(json_object_get(j, "paused")) != 0);
	if (pb_decide_restored(d) < 0)
		goto oom;
	if (snapshot) {
		struct pb_debounce_pending pend;

		pb_debounce_pending_from_json(json_object_get(j, "pending"), &pend);
		pb_decide_restore_running(d, (int)json_integer_value(json_object_get(j, "fails_in_row")),
					  json_integer_value(json_object_get(j, "splay_ms")), &pend);
	}
	pb_decide_free(old);
	pb_decide_params_store_free(c->store);
	c->splay_ms = p.deb.splay_ms;
	c->core = d;
	c->store = store;
	return 0;
oom:
	pb_decide_free(d);
	pb_decide_params_store_free(store);
	return -1;
}

static int core_reload(struct core_replay *c, int64_t now, const json_t *j)
{
	struct pb_decide_params p;
	struct pb_decide_params_store *store = NULL;
	const char **added = NULL;
	size_t n_added = 0;
	int rc;

	if (pb_decide_params_from_json(json_object_get(j, "params"), &p, &store) < 0)
		return -1;
	apply_overrides(c->r->o, &p.deb);
	if (json_strv(json_object_get(j, "added"), &added, &n_added) < 0) {
		pb_decide_params_store_free(store);
		return -1;
	}
	rc = pb_decide_reload(c->core, now, &p, added, n_added);
	c->splay_ms = p.deb.splay_ms;
	free(added);
	pb_decide_params_store_free(c->store);
	c->store = store;
	return rc;
}

enum { I_ID, I_AT, I_AFTER, I_KIND, I_N, I_TEXT };

/* The first base (a start or snapshot input: the core's whole state):
 * its instant (c->first_start) and the events before it. *after > 0: a
 * log migrated from schema 2, whose older part is replayed from derived
 * inputs. A log pruned by retention: the base meta "inputs_from" names
 * (lib/audit.c; a prune under way leaves older bases, with rows after
 * them gone); its rows before the base are what retention keeps (the
 * newest seq of each (node, service), the last runs), not inputs: the
 * replay begins at the base, the inputs before it are not fed and the
 * recorded runs before it are left out. */
static int core_first_start(struct core_replay *c, int64_t *after, struct pb_err *err)
{
	struct replay *r = c->r;
	/* a pruned log: the base meta names (while a prune is under way,
	 * older bases are still there, and some rows after them gone) */
	sqlite3_stmt *st = au_prepare(r->db, "SELECT at, after_event, id, 1 FROM inputs WHERE"
					     " id = (SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'inputs_from')"
					     " AND kind IN ('start', 'snapshot') UNION ALL"
					     " SELECT * FROM (SELECT at, after_event, id, 0 FROM inputs"
					     " WHERE kind IN ('start', 'snapshot') ORDER BY id LIMIT 1)"
					     " ORDER BY 4 DESC LIMIT 1", err);
	size_t k = 0;

	*after = 0;
	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		c->first_start = sqlite3_column_int64(st, 0);
		*after = sqlite3_column_int64(st, 1);
		c->first_base = sqlite3_column_int64(st, 2);
		r->pruned = sqlite3_column_int(st, 3) == 1;
	}
	sqlite3_finalize(st);
	if (!r->pruned)
		return 0;
	r->pruned_at = c->first_start;
	r->first_event_at = 0;	/* the first event fed, not the kept rows before */
	*after = 0;
	for (size_t i = 0; i < r->n_rec; i++)
		if (r->rec[i].started >= c->first_start)
			r->rec[k++] = r->rec[i];
	r->n_rec_pruned = r->n_rec - k;
	r->n_rec = k;
	return 0;
}

/* --- inputs derived from a log without inputs rows ------------------------------------- */

static struct input *din_add(struct core_replay *c, int64_t at, int rank, const char *kind,
			     int64_t n, char *own)
{
	struct input *in;

	if (c->n_din == c->cap_din) {
		c->cap_din = c->cap_din ? c->cap_din * 2 : 64;
		c->din = xrealloc(c->din, c->cap_din * sizeof(*c->din));
	}
	in = &c->din[c->n_din++];
	memset(in, 0, sizeof(*in));
	in->at = at;
	in->rank = rank;
	in->kind = kind;
	in->n = n;
	in->own = own;
	in->text = own;
	in->id = (int64_t)c->n_din;	/* the order they were made in: ties */
	return in;
}

static int din_cmp(const void *a, const void *b)
{
	const struct input *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Adds x to the sorted set v (binary search: one call per applied row). */
static void strv_add_unique(char ***v, size_t *n, const char *x)
{
	size_t lo = 0, hi = *n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(x, (*v)[mid]);

		if (!cmp)
			return;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	memmove(*v + lo + 1, *v + lo, (*n - lo) * sizeof(**v));
	(*v)[lo] = xstrdup(x);
	(*n)++;
}

/* The required keys and accepted regions: those of the events the
 * daemon applied (or whose lease ran out), sorted as strcmp; one scan
 * (no GROUP BY: sqlite would sort every row; the sets are small). */
static int load_filter(struct core_replay *c, struct pb_err *err)
{
	sqlite3_stmt *st = au_prepare(c->r->db, "SELECT key, region FROM events WHERE verdict IN"
						" ('applied', 'expired')", err);
	int step;

	if (!st)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (au_col_text(st, 0))
			strv_add_unique(&c->keys, &c->n_keys, au_col_text(st, 0));
		if (au_col_text(st, 1))
			strv_add_unique(&c->regions, &c->n_regions, au_col_text(st, 1));
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return au_step_error(c->r->db, step, err);
	return 0;
}

/* The parameters of a derived start or reload: the row's debounce
 * parameters, the derived wants and filter; as the inputs row's text. */
static char *derived_params_text(struct core_replay *c, const struct pb_debounce_params *deb)
{
	struct pb_decide_params p;
	json_t *o;
	char *s;

	memset(&p, 0, sizeof(p));
	p.deb = *deb;
	p.wants = c->wants;
	p.n_wants = c->n_keys;
	p.filter.federation = c->federation;
	p.filter.keys = (const char *const *)c->keys;
	p.filter.n_keys = c->n_keys;
	p.filter.regions = (const char *const *)c->regions;
	p.filter.n_regions = c->n_regions;
	o = json_pack("{s:o}", "params", pb_decide_params_to_json(&p));
	if (!o)
		abort();
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort();
	return s;
}

/* The inputs before until (PB_TIME_NEVER: all of them). */
static int derive_inputs(struct core_replay *c, int64_t until, struct pb_err *err)
{
	struct replay *r = c->r;
	sqlite3_stmt *st;
	int64_t first = PB_TIME_NEVER;
	struct pb_debounce_params dflt = default_params();
	int step;

	if (load_filter(c, err) < 0)
		return -1;
	if (!(st = au_prepare(r->db, "SELECT v FROM meta WHERE k = 'federation'", err)))
		return -1;
	if ((step = sqlite3_step(st)) == SQLITE_ROW && au_col_text(st, 0))
		c->federation = xstrdup(au_col_text(st, 0));
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return au_step_error(r->db, step, err);
	c->wants = xrealloc(NULL, (c->n_keys + 1) * sizeof(*c->wants));
	for (size_t i = 0; i < c->n_keys; i++)
		c->wants[i] = (struct pb_want){ c->keys[i], c->keys[i], NULL };

	/* the daemon's starts and reloads; the first start is before
	 * anything the log holds (a log with no params row: the defaults) */
	if (r->first_event_at)
		first = r->first_event_at;
	for (size_t i = 0; i < r->n_rec; i++)
		if (r->rec[i].queued < first)
			first = r->rec[i].queued;
	if (r->n_params && r->params[0].at < first)
		first = r->params[0].at;
	if (first == PB_TIME_NEVER)
		return 0;	/* an empty log */
	din_add(c, first, RANK_START, "start",
		0, derived_params_text(c, r->n_params ? &r->params[0].recorded : &dflt));
	for (size_t i = 0; i < r->n_params; i++) {
		const struct param_row *p = &r->params[i];

		if (i == 0 && p->start)
			continue;	/* the first start, above */
		din_add(c, p->at, p->start ? RANK_START : RANK_RELOAD, p->start ? "start" : "reload",
			0, derived_params_text(c, &p->recorded));
	}
	for (size_t i = 0; i < r->n_notes; i++)
		if (r->notes[i].kind != NOTE_STOP)
			din_add(c, r->notes[i].at, RANK_PAUSE, "pause", r->notes[i].kind == NOTE_PAUSE,
				NULL);
	for (size_t i = 0; i < r->n_rec; i++) {
		const struct rec_run *x = &r->rec[i];
		enum pb_run_status status;

		if (x->reason == PB_REASON_STARTUP || x->reason == PB_REASON_MANUAL ||
		    x->reason == PB_REASON_RESUME)
			din_add(c, x->queued, RANK_REQUEST, "request", x->reason, NULL);
		din_add(c, x->started, RANK_STARTED, "started", x->id, NULL);
		if (x->deferred > 0) {
			din_add(c, x->started, RANK_LOCK_WAIT, "lock-wait", x->id, NULL);
			din_add(c, x->started + x->deferred, RANK_LOCK_TAKEN, "lock-taken", x->id, NULL);
		}
		if (pb_run_status_parse(x->status, &status) < 0)
			status = x->ok ? PB_RUN_OK : PB_RUN_FAILED;
		if (x->has_finished && status != PB_RUN_RUNNING)
			din_add(c, x->finished, RANK_FINISHED, "finished", status, NULL);
	}
	qsort(c->din, c->n_din, sizeof(*c->din), din_cmp);
	while (c->n_din && c->din[c->n_din - 1].at >= until)
		free(c->din[--c->n_din].own);
	for (size_t i = 0; i < r->n_rec; i++)
		r->n_rec_derived += r->rec[i].started < until;
	return 0;
}

static void derived_release(struct core_replay *c)
{
	for (size_t i = 0; i < c->n_din; i++)
		free(c->din[i].own);
	free(c->din);
	pb_strv_free(c->keys, c->n_keys);
	pb_strv_free(c->regions, c->n_regions);
	free(c->federation);
	free(c->wants);
}

/* Derived: a run the core lets go by the end of the log that the log
 * does not have (not when the daemon was stopped by then). */
static void derived_end(struct core_replay *c)
{
	struct replay *r = c->r;
	struct pb_decide_action a;

	if (!c->core || c->running || !pb_decide_pending(c->core))
		return;
	derived_splay(c, r->log_end);
	pb_decide_poll(c->core, r->log_end > r->now ? r->log_end : r->now, 0, &a);
	if (!a.start) {
		r->late_run = 1;
		return;
	}
	for (size_t i = 0; i < r->n_notes; i++)
		if (r->notes[i].kind == NOTE_STOP && r->notes[i].at >= a.queued_at)
			return;	/* stopped before it could start */
	r->core_diff[CD_UNSTARTED]++;
}

/* --- the merged stream -------------------------------------------------------------- */

static int core_input(struct core_replay *c, const struct input *in, struct pb_err *err);

/* The next input: an inputs row, or a derived one. */
static int next_input(struct core_replay *c, sqlite3_stmt *st, size_t *i, struct input *out,
		      int *step)
{
	if (c->r->derived) {
		if (*i >= c->n_din)
			return 0;
		*out = c->din[(*i)++];
		return 1;
	}
	if ((*step = sqlite3_step(st)) != SQLITE_ROW)
		return 0;
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(st, I_ID);
	out->at = sqlite3_column_int64(st, I_AT);
	out->after = sqlite3_column_int64(st, I_AFTER);
	out->kind = au_col_text(st, I_KIND);
	out->n = sqlite3_column_int64(st, I_N);
	out->text = au_col_text(st, I_TEXT);
	return 1;
}

/* Events and inputs merged: a recorded input comes after the events up
 * to its after_event; a derived one before the events of its instant. */
static int simulate_core(struct core_replay *c, struct pb_err *err)
{
	struct replay *r = c->r;
	int lease = 1;
	sqlite3_stmt *probe = NULL, *ev, *in = NULL;
	int se = SQLITE_DONE, si = SQLITE_DONE, rc = -1, have_in, pre = 0;
	int64_t first_after = 0;
	size_t i_din = 0;
	struct input cur;

	/* a schema 2 log read as it is has no lease_from column */
	if (sqlite3_prepare_v2(r->db, "SELECT lease_from FROM events LIMIT 0", -1, &probe, NULL) !=
	    SQLITE_OK)
		lease = 0;
	sqlite3_finalize(probe);
#define EV_COLS "SELECT id, received_at, kind, federation, region, node, service, key, value," \
		" seq, ttl_s, public, verdict, msg_id, "
	ev = au_prepare(r->db, lease ? EV_COLS "lease_from FROM events ORDER BY id"
				     : EV_COLS "NULL FROM events ORDER BY id", err);
#undef EV_COLS
	if (ev && !r->derived)
		in = au_prepare(r->db, "SELECT id, at, after_event, kind, n, text FROM inputs ORDER BY id",
				err);
	c->values_st = ev && (in || r->derived)
			       ? au_prepare(r->db, "SELECT values_after FROM runs WHERE id = ?", err)
			       : NULL;
	if (!c->values_st)
		goto out;
	if (!r->derived && core_first_start(c, &first_after, err) < 0)
		goto out;
	if (first_after > 0) {
		/* a log migrated from schema 2: its older part (the events up
		 * to the first start input, the runs before it) is replayed
		 * from derived inputs, then the recorded ones take over */
		pre = 1;
		r->derived = 1;
	}
	if (r->derived && derive_inputs(c, pre ? c->first_start : PB_TIME_NEVER, err) < 0)
		goto out;
	se = sqlite3_step(ev);
	have_in = next_input(c, in, &i_din, &cur, &si);
	while (se == SQLITE_ROW || have_in || pre) {
		int ev_ok = se == SQLITE_ROW && (!pre || sqlite3_column_int64(ev, V_ID) <= first_after);
		int event_first;

		if (pre && !ev_ok && !have_in) {
			pre = 0;
			r->derived = 0;
			have_in = next_input(c, in, &i_din, &cur, &si);
			continue;
		}
		event_first = ev_ok && (!have_in || (r->derived ? sqlite3_column_int64(ev, V_AT) < cur.at
								: sqlite3_column_int64(ev, V_ID) <= cur.after));

		if (event_first) {
			int64_t at = sqlite3_column_int64(ev, V_AT);

			if (c->core) {
				core_until(c, at);
				derived_splay(c, at);
				if (at > r->now)
					r->now = at;
				core_event(c, ev);
			}
			floor_note(c, ev);
			se = sqlite3_step(ev);
		} else {
			if (core_input(c, &cur, err) < 0)
				goto out;
			have_in = next_input(c, in, &i_din, &cur, &si);
		}
	}
	if (se != SQLITE_DONE || (!r->derived && si != SQLITE_DONE)) {
		au_step_error(r->db, se != SQLITE_DONE ? se : si, err);
		goto out;
	}
	if (c->core && r->what_if)
		core_until(c, PB_TIME_NEVER - 1);
	else if (r->derived)
		derived_end(c);
	else if (c->core && !c->running && pb_decide_pending(c->core))
		r->late_run = 1;
	if (r->derived && !r->what_if && r->n_expired_sim != r->n_expired_rec)
		r->core_diff[CD_EXPIRED] += llabs(r->n_expired_sim - r->n_expired_rec);
	rc = 0;
out:
	sqlite3_finalize(ev);
	sqlite3_finalize(in);
	sqlite3_finalize(c->values_st);
	c->values_st = NULL;
	return rc;
}

/* One input, recorded or derived. */
static int core_input(struct core_replay *c, const struct input *in, struct pb_err *err)
{
	struct replay *r = c->r;
	const char *kind = in->kind, *text = in->text;
	int64_t at = in->at, n = in->n;
	struct pb_decide_action a;
	json_t *j = NULL;
	int rc = 0;

	if (!kind || (r->pruned && in->id && in->id < c->first_base))
		return 0;	/* (a pruned log: before its base) */
	core_until(c, at);
	if (strcmp(kind, "start") && strcmp(kind, "snapshot"))
		derived_splay(c, at);
	if (at > r->now)
		r->now = at;
	if (!strcmp(kind, "start") || (!strcmp(kind, "snapshot") && !c->core)) {
		if (!(j = json_loads(text ? text : "", 0, NULL)) ||
		    core_start(c, at, j, strcmp(kind, "start") != 0) < 0)
			rc = -1;
	} else if (!c->core || !strcmp(kind, "snapshot")) {
		/* before the first base: nothing to feed; a later snapshot is
		 * the state the core has reached by then */
		return 0;
	} else if (!strcmp(kind, "reload")) {
		if (!(j = json_loads(text ? text : "", 0, NULL)) || core_reload(c, at, j) < 0)
			rc = -1;
	} else if (!strcmp(kind, "settle")) {
		pb_decide_settle(c->core, at);
	} else if (!strcmp(kind, "expire")) {
		if ((int64_t)pb_decide_expire(c->core, at) != n)
			r->core_diff[CD_EXPIRED]++;
	} else if (!strcmp(kind, "request")) {
		pb_decide_request(c->core, at, (enum pb_reason)n);
	} else if (!strcmp(kind, "pause")) {
		pb_decide_pause(c->core, at, n != 0);
	} else if (!strcmp(kind, "owe-full")) {
		pb_decide_owe_full(c->core, at);
	} else if (!strcmp(kind, "catchup")) {
		const char **keys = NULL;
		size_t n_keys = 0;

		j = n ? NULL : json_loads(text ? text : "[]", 0, NULL);
		if (json_strv(j, &keys, &n_keys) < 0)
			rc = -1;
		else
			pb_decide_catchup_done(c->core, at, n != 0, keys, n_keys);
		free(keys);
	} else if (r->what_if) {
		/* the run decisions below are the replay's own in a what-if */
	} else if (!strcmp(kind, "splay")) {
		/* the daemon's poll that drew the splay: rnd % (splay_ms + 1) == n */
		pb_decide_poll(c->core, at, (uint64_t)n, &a);
		if (!a.splay_drawn || a.splay_ms != n)
			r->core_diff[CD_SPLAY]++;
		r->splay_taken++;
	} else if (!strcmp(kind, "started")) {
		/* the daemon's poll that started run n: the core must say start,
		 * now; the record is followed either way to stay in step */
		pb_decide_poll(c->core, at, 0, &a);
		if (!a.start) {
			const struct rec_run *x = bsearch(&n, r->rec, r->n_rec, sizeof(*r->rec),
							  rec_cmp_id);

			if (x) {
				r->undecided = xrealloc(r->undecided,
							(r->n_undecided + 1) * sizeof(*r->undecided));
				r->undecided[r->n_undecided++] = (size_t)(x - r->rec);
			} else {
				r->core_diff[CD_START]++;
			}
			a.reason = x ? x->reason : PB_REASON_CHANGE;
			a.queued_at = x ? x->queued : at;
		}
		core_run_start(c, at, &a, n);
	} else if (!strcmp(kind, "lock-wait")) {
		pb_decide_lock_wait(c->core, at);
	} else if (!strcmp(kind, "lock-taken")) {
		pb_decide_lock_taken(c->core, at);
	} else if (!strcmp(kind, "finished")) {
		core_run_end(c, at, (enum pb_run_status)n);
	}
	json_decref(j);
	if (rc < 0)
		pb_err_set(err, EX_OSERR, "replay: input %lld (%s): out of memory or damaged JSON",
			   (long long)in->id, kind);
	return rc;
}

/* --- comparison and output ---------------------------------------------------------- */

static int in_window(const struct au_opts *o, int64_t t)
{
	return (!o->has_since || t >= o->since) && (!o->has_until || t <= o->until);
}

struct diff {
	int kind;		/* 0 recorded run not reproduced, 1 extra simulated run, 2 reason or
				 * queued_at, 3 a recorded start the core did not decide, 4 +
				 * CD_*: the core's own checks */
	size_t rec, sim;
};

/* Pairs simulated and recorded starts in time order: two starts at the
 * same instant are one (no tolerance). Only runs in the window take part. */
static void pair_runs(struct replay *r, struct diff **out, size_t *n_out)
{
	size_t i = 0, j = 0, n = 0, cap = 0;
	struct diff *d = NULL;

	for (;;) {
		while (i < r->n_rec && !in_window(r->o, r->rec[i].started))
			i++;
		while (j < r->n_runs && !in_window(r->o, r->runs[j].started))
			j++;
		if (i >= r->n_rec && j >= r->n_runs)
			break;
		if (n + 2 > cap) {
			cap = cap ? cap * 2 : 16;
			d = xrealloc(d, cap * sizeof(*d));
		}
		if (i < r->n_rec && j < r->n_runs) {
			if (r->runs[j].started == r->rec[i].started) {
				r->runs[j].rec = i;
				if (!r->what_if && (!r->rec[i].reason_ok ||
						    r->rec[i].reason != r->runs[j].reason ||
						    r->rec[i].queued != r->runs[j].queued))
					d[n++] = (struct diff){ 2, i, j };
				i++;
				j++;
				continue;
			}
			if (r->rec[i].started < r->runs[j].started)
				d[n++] = (struct diff){ 0, i++, SIZE_MAX };
			else
				d[n++] = (struct diff){ 1, SIZE_MAX, j++ };
		} else if (i < r->n_rec) {
			d[n++] = (struct diff){ 0, i++, SIZE_MAX };
		} else {
			d[n++] = (struct diff){ 1, SIZE_MAX, j++ };
		}
	}
	*out = d;
	*n_out = n;
}

/* The params row in force at t (NULL: none yet). */
static const struct param_row *params_at(const struct replay *r, int64_t t)
{
	const struct param_row *p = NULL;

	for (size_t i = 0; i < r->n_params && r->params[i].at <= t; i++)
		p = &r->params[i];
	return p;
}

/* The known causes that may explain a difference around [from, to]. */
static void explain_diff(const struct replay *r, const struct rec_run *x, int64_t from, int64_t to,
			 struct au_buf *b)
{
	const struct param_row *p = params_at(r, to);
	char ts[PB_TIME_BUF], d[32];
	size_t n0 = b->len;

	if (x && x->deferred > 0)
		au_buf_printf(b, "; the run waited %s for the provision lock", au_duration(x->deferred, d));
	if (p && p->recorded.splay_ms > 0)
		au_buf_printf(b, "; splay_ms was %lld (a random delay before each start)",
			      (long long)p->recorded.splay_ms);
	if (x && x->reason == PB_REASON_MANUAL)
		au_buf_puts(b, "; a manual run (provision-now or SIGUSR1)");
	if (x && x->reason == PB_REASON_RESUME)
		au_buf_puts(b, "; a resume (runs were paused before it)");
	/* a restart or reload in the 10 minutes around it */
	for (size_t i = 0; i < r->n_params; i++) {
		const struct param_row *q = &r->params[i];

		if (q->at >= from - 600000 && q->at <= to + 600000)
			au_buf_printf(b, "; the daemon %s at %s", q->start ? "started" : "reloaded its configuration",
				      pb_time_format(q->at, ts));
	}
	for (size_t i = 0; i < r->n_notes; i++)
		if (r->notes[i].at >= from - 600000 && r->notes[i].at <= to + 600000)
			au_buf_printf(b, "; %s %s",
				      r->notes[i].kind == NOTE_PAUSE    ? "paused at"
				      : r->notes[i].kind == NOTE_RESUME ? "resumed at"
				      : r->notes[i].inferred ? "the daemon was down from about"
							     : "the daemon stopped at",
				      pb_time_format(r->notes[i].at, ts));
	if (b->len == n0)
		au_buf_puts(b, "; no known cause (a restart not in the log, a clock step, or a"
			       " difference in the debounce)");
}

static void describe_diff(const struct replay *r, const struct diff *df, int prev_diff,
			  struct au_buf *b)
{
	char t1[PB_TIME_BUF], t2[PB_TIME_BUF], t3[PB_TIME_BUF];
	const struct rec_run *x = df->rec != SIZE_MAX ? &r->rec[df->rec] : NULL;
	const struct sim_run *s = df->sim != SIZE_MAX ? &r->runs[df->sim] : NULL;

	au_buf_reset(b);
	if (df->kind == 0 || df->kind == 3) {
		au_buf_printf(b, "recorded run %lld (%s, started %s) was not reproduced", (long long)x->id,
			      x->reason_ok ? pb_reason_name(x->reason) : "?", pb_time_format(x->started, t1));
		if (df->kind == 3)
			au_buf_puts(b, ": the core does not start a run at that instant");
		explain_diff(r, x, x->queued, x->started, b);
	} else if (df->kind == 1) {
		au_buf_printf(b, "the replay starts a %s run at %s that the log does not have",
			      pb_reason_name(s->reason), pb_time_format(s->started, t1));
		explain_diff(r, NULL, s->queued, s->started, b);
	} else if (df->kind >= 4) {
		static const char *const what[CD__COUNT] = {
			[CD_VALUES] = "run(s) started with values other than the recorded ones",
			[CD_SPLAY] = "splay draw(s) the core did not make as recorded",
			[CD_EXPIRED] = "lease expiry input(s) that removed another number of providers",
			[CD_START] = "recorded start(s) the core did not decide at that instant",
			[CD_VERDICT] = "event verdict(s) the core judged otherwise",
			[CD_UNSTARTED] = "run(s) the core let go before the end of the log that the log"
					 " does not have",
		};

		au_buf_printf(b, "%lld %s", (long long)r->core_diff[df->kind - 4], what[df->kind - 4]);
		return;
	} else {
		au_buf_printf(b, "recorded run %lld (started %s) is a %s run queued at %s, the"
			      " replay's a %s run queued at %s", (long long)x->id,
			      pb_time_format(x->started, t1), x->reason_ok ? pb_reason_name(x->reason) : "?",
			      pb_time_format(x->queued, t2), pb_reason_name(s->reason),
			      pb_time_format(s->queued, t3));
		explain_diff(r, x, x->queued, x->started, b);
	}
	if (prev_diff)
		au_buf_puts(b, "; may follow from the difference before it");
}

static void what_if_text(const struct au_opts *o, struct au_buf *b)
{
	au_buf_puts(b, "with");
	if (o->has_quiet)
		au_buf_printf(b, " quiet %lld ms", (long long)o->quiet_ms);
	if (o->has_max_wait)
		au_buf_printf(b, "%s max-wait %lld ms", o->has_quiet ? "," : "", (long long)o->max_wait_ms);
	if (o->has_throttle)
		au_buf_printf(b, "%s throttle %d/%lld s", o->has_quiet || o->has_max_wait ? "," : "",
			      o->throttle_runs, (long long)(o->throttle_per_ms / 1000));
}

/* Where the core's inputs came from: recorded, derived (no inputs rows)
 * or both (a migrated log: derived before its first start input). */
static const char *inputs_word(const struct replay *r)
{
	return r->derived ? "derived" : r->n_rec_derived ? "recorded and derived" : "recorded";
}

static void print_text(struct replay *r, const struct diff *d, size_t nd, size_t n_sim,
		       size_t n_rec)
{
	struct au_table t;
	struct au_buf b = AU_BUF_INIT;
	static const char *const cols[] = { ">N", "STARTED_AT", "REASON", ">EVENTS", "QUEUED_AT",
					    "RECORDED", NULL };
	char t1[PB_TIME_BUF], t2[PB_TIME_BUF], n[24], ev[24], rec[64];
	size_t i, shown = 0;

	printf("replayed %lld events (%s .. %s), %zu params row%s, %zu recorded run%s\n",
	       (long long)r->n_events, r->n_events ? pb_time_format(r->first_event_at, t1) : "-",
	       r->n_events ? pb_time_format(r->last_event_at, t2) : "-", r->n_params,
	       r->n_params == 1 ? "" : "s", r->n_rec, r->n_rec == 1 ? "" : "s");
	if (r->derived)
		printf("no inputs rows in the log (written by an older provbus): replayed from inputs"
		       " derived from its events, runs, notes and params rows\n");
	if (!r->n_params)
		printf("no params rows in the log: assumed the defaults (quiet 2000 ms, max-wait 30000 ms,"
		       " throttle 6/600 s)\n");
	printf("\n");
	au_table_init(&t, stdout, cols);
	for (i = 0; i < r->n_runs; i++) {
		const struct sim_run *s = &r->runs[i];
		const char *cells[6];

		if (!in_window(r->o, s->started))
			continue;
		snprintf(n, sizeof(n), "%zu", ++shown);
		snprintf(ev, sizeof(ev), "%lld", (long long)s->events);
		if (s->rec != SIZE_MAX)
			snprintf(rec, sizeof(rec), "run %lld", (long long)r->rec[s->rec].id);
		else if (s->started > r->log_end)
			snprintf(rec, sizeof(rec), "(after the end of the log)");
		else
			snprintf(rec, sizeof(rec), "%s", r->what_if ? "-" : "none");
		cells[0] = n;
		cells[1] = pb_time_format(s->started, t1);
		cells[2] = pb_reason_name(s->reason);
		cells[3] = ev;
		cells[4] = pb_time_format(s->queued, t2);
		cells[5] = rec;
		au_table_row(&t, cells);
	}
	au_table_finish(&t);
	printf("\n");
	if (r->what_if) {
		what_if_text(r->o, &b);
		printf("%s: %zu run%s instead of %zu\n", b.s, n_sim, n_sim == 1 ? "" : "s", n_rec);
	} else if (!nd) {
		printf("matches recorded runs (%zu run%s; exact: the decision core fed the %s"
		       " inputs starts them at the recorded instants with the recorded reasons and"
		       " values)\n", n_rec, n_rec == 1 ? "" : "s", inputs_word(r));
	} else {
		printf("differs from recorded runs: %zu difference%s (%zu simulated, %zu recorded runs;"
		       " %s inputs)\n", nd, nd == 1 ? "" : "s", n_sim, n_rec,
		       inputs_word(r));
		for (i = 0; i < nd; i++) {
			describe_diff(r, &d[i], i > 0, &b);
			printf("  - %s\n", au_esc(b.s));
		}
	}
	if (r->splay_taken && !r->what_if)
		printf("note: splay_ms > 0: the splay delays of %lld run%s were replayed from the log%s\n",
		       (long long)r->splay_taken, r->splay_taken == 1 ? "" : "s",
		       r->derived ? " (the daemon's splay notes, else each recorded start minus the"
				    " instant the core let it go)" : "");
	if (r->n_rec_derived && !r->derived)
		printf("note: %zu recorded run%s from before the log held the decision core's inputs"
		       " (written by an older provbus) replayed from inputs derived from its rows\n",
		       r->n_rec_derived, r->n_rec_derived == 1 ? "" : "s");
	if (r->pruned)
		printf("note: the log was pruned (consumer.audit_retention_days): replayed from the"
		       " daemon's state at %s (the start or snapshot input it was pruned up to); %zu"
		       " recorded run%s before it left out\n", pb_time_format(r->pruned_at, t1), r->n_rec_pruned,
		       r->n_rec_pruned == 1 ? "" : "s");
	if (r->late_run)
		printf("note: a run was pending at the end of the log (%s); it is not counted\n",
		       pb_time_format(r->log_end, t1));
	if (r->n_expired_sim != r->n_expired_rec)
		printf("note: %lld lease%s ran out in the replay, %lld in the log\n",
		       (long long)r->n_expired_sim, r->n_expired_sim == 1 ? "" : "s",
		       (long long)r->n_expired_rec);
	au_buf_release(&b);
}

static void print_json(struct replay *r, const struct diff *d, size_t nd, size_t n_sim,
		       size_t n_rec)
{
	struct au_json j = AU_JSON_INIT;
	struct au_buf b = AU_BUF_INIT;
	const struct param_row *p = r->n_params ? &r->params[r->n_params - 1] : NULL;
	struct pb_debounce_params dp = p ? p->p : default_params();
	size_t i, k = 0;

	if (!p)
		apply_overrides(r->o, &dp);
	for (i = 0; i < r->n_runs; i++) {
		const struct sim_run *s = &r->runs[i];

		if (!in_window(r->o, s->started))
			continue;
		au_json_begin(&j);
		au_json_str(&j, "type", "run");
		/* the provbus-audit(1) run members first: id is the simulated run's
		 * number (recorded_id pairs it with a logged run) */
		au_json_int(&j, "id", (int64_t)++k);
		au_json_str(&j, "reason", pb_reason_name(s->reason));
		au_json_time(&j, "queued_at", s->queued);
		au_json_time(&j, "started_at", s->started);
		au_json_time(&j, "finished_at", s->finished);
		if (s->ok)
			au_json_int(&j, "exit_status", 0);
		else
			au_json_null(&j, "exit_status");	/* failed as recorded: see recorded_id */
		au_json_array_begin(&j, "events");
		for (size_t e = 0; e < s->n_ids; e++)
			au_json_array_int(&j, s->ids[e]);
		au_json_array_end(&j);
		au_json_array_begin(&j, "changed_keys");
		for (const char *c = s->changed_keys; c && *c;) {
			size_t n = strcspn(c, ",");
			char key[PB_KEY_MAX + 1];

			snprintf(key, sizeof(key), "%.*s", (int)n, c);
			au_json_array_str(&j, key);
			c += n + (c[n] == ',');
		}
		au_json_array_end(&j);
		au_json_int(&j, "n", (int64_t)k);
		au_json_int(&j, "n_events", s->events);
		au_json_bool(&j, "ok", s->ok);
		if (s->rec != SIZE_MAX) {
			au_json_int(&j, "recorded_id", r->rec[s->rec].id);
			au_json_time(&j, "recorded_started_at", r->rec[s->rec].started);
			au_json_int(&j, "delta_ms", 0);
		} else {
			au_json_null(&j, "recorded_id");
		}
		au_json_end(&j);
		au_json_print(&j, stdout);
	}
	au_json_begin(&j);
	au_json_str(&j, "type", "summary");
	au_json_bool(&j, "what_if", r->what_if);
	au_json_int(&j, "events", r->n_events);
	au_json_int(&j, "runs", (int64_t)n_sim);
	au_json_int(&j, "recorded_runs", (int64_t)n_rec);
	if (r->what_if)
		au_json_null(&j, "matches");
	else
		au_json_bool(&j, "matches", nd == 0);
	au_json_int(&j, "tolerance_ms", 0);
	au_json_bool(&j, "exact", 1);
	au_json_str(&j, "inputs", inputs_word(r));
	if (r->pruned)
		au_json_time(&j, "pruned_before", r->pruned_at);
	else
		au_json_null(&j, "pruned_before");
	au_json_int(&j, "recorded_runs_pruned", (int64_t)r->n_rec_pruned);
	au_json_int(&j, "max_delta_ms", 0);
	au_json_obj_begin(&j, "params");
	au_json_int(&j, "quiet_ms", dp.quiet_ms);
	au_json_int(&j, "max_wait_ms", dp.max_wait_ms);
	au_json_int(&j, "throttle_runs", dp.throttle_runs);
	au_json_int(&j, "throttle_per_s", dp.throttle_per_ms / 1000);
	au_json_int(&j, "splay_ms", dp.splay_ms);
	au_json_end(&j);
	au_json_array_begin(&j, "differences");
	for (i = 0; !r->what_if && i < nd; i++) {
		describe_diff(r, &d[i], i > 0, &b);
		au_json_array_str(&j, b.s);
	}
	au_json_array_end(&j);
	au_json_int(&j, "verdict_differences", r->core_diff[CD_VERDICT]);
	au_json_bool(&j, "run_pending_at_end", r->late_run);
	au_json_end(&j);
	au_json_print(&j, stdout);
	au_json_release(&j);
	au_buf_release(&b);
}

static void replay_release(struct replay *r)
{
	free(r->params);
	free(r->rec);
	free(r->notes);
	for (size_t i = 0; i < r->n_runs; i++) {
		free(r->runs[i].ids);
		free(r->runs[i].changed_keys);
	}
	free(r->runs);
	free(r->ids_since_start);
	free(r->starts);
	free(r->undecided);
}

int au_cmd_replay(sqlite3 *db, const struct au_opts *o, struct pb_err *err)
{
	struct replay r;
	struct core_replay c;
	struct diff *d = NULL;
	size_t nd = 0, n_sim = 0, n_rec = 0, i;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	memset(&c, 0, sizeof(c));
	r.o = o;
	r.db = db;
	r.what_if = o->has_quiet || o->has_max_wait || o->has_throttle;
	r.derived = !has_inputs(db);
	c.r = &r;
	if (load_params(&r, err) < 0 || load_runs(&r, err) < 0 || load_splays(&r, err) < 0 ||
	    load_notes(&r, err) < 0 || load_end(&r, err) < 0)
		goto out;
	rc = simulate_core(&c, err);
	if (rc < 0)
		goto out;
	rc = -1;
	pair_runs(&r, &d, &nd);
	if (!r.what_if) {
		/* the core's own checks: each is a difference */
		for (i = 0; i < CD__COUNT; i++)
			if (r.core_diff[i]) {
				d = xrealloc(d, (nd + 1) * sizeof(*d));
				d[nd++] = (struct diff){ 4 + (int)i, SIZE_MAX, SIZE_MAX };
			}
		for (i = 0; i < r.n_undecided; i++)
			if (in_window(o, r.rec[r.undecided[i]].started)) {
				d = xrealloc(d, (nd + 1) * sizeof(*d));
				d[nd++] = (struct diff){ 3, r.undecided[i], SIZE_MAX };
			}
	}
	for (i = 0; i < r.n_runs; i++)
		n_sim += in_window(o, r.runs[i].started);
	for (i = 0; i < r.n_rec; i++)
		n_rec += in_window(o, r.rec[i].started);
	if (o->json)
		print_json(&r, d, nd, n_sim, n_rec);
	else
		print_text(&r, d, nd, n_sim, n_rec);
	rc = 0;
out:
	pb_decide_free(c.core);
	pb_decide_params_store_free(c.store);
	derived_release(&c);
	floors_free(&c);
	free(d);
	replay_release(&r);
	return rc;
}
