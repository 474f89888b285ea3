/* pbtest-auditgen — synthetic provbus audit logs, for the provbus-audit
 * tests and the 1,000,000-event benchmark; and a JSON-lines checker.
 *
 *   pbtest-auditgen -o DB [-n EVENTS] [--hours H] [--start T] [--keys K]
 *       [--nodes N] [--bursts B] [--seed S] [--quiet-ms Q] [--max-wait-ms M]
 *       [--throttle R/S] [--splay-ms S] [--retry R/BASE_MS] [--run-ms MIN-MAX]
 *       [--fail-every N] [--defer-every N] [--manual N] [--restart]
 *       [--latency-ms L] [--aba N] [--no-finish]
 *   pbtest-auditgen -o DB --empty          the schema only (for SQL fixtures)
 *   pbtest-auditgen check-jsonl FIELD,FIELD,... [--type T] < LINES
 *
 * The log is what a provbus-consumer (node "node-a", federation "fleet",
 * region "us-east-1", requiring KEY_00..KEY_{K-1}) would have written:
 * events spread evenly over H hours ending now (or from --start), most
 * of them re-announcements that change nothing, with B deploy bursts
 * (a key's providers announce a new value, 100-900 ms apart), retire and
 * come-back pairs, A->B->A flips (--aba), duplicates (redelivered),
 * stale seqs, foreign keys and regions, and a few invalid messages. The
 * runs are decided by lib/debounce.c driven exactly as the daemon drives
 * it (change with dirty, request, poll, started, finished with dirty),
 * each start delayed by a random loop latency in [0, L] ms (default 20),
 * durations random in MIN-MAX ms; every Nth run fails (retries follow) or
 * waits N ms for the lock (deferred); --manual adds provision-now
 * requests; --restart stops the daemon at half time for 30 s (a params
 * row, a startup run; events that arrived meanwhile come at restart);
 * --no-finish leaves the last run running. Values and changes are
 * computed here independently of lib/providers.c.
 *
 * Prints one line: "EVENTS events, RUNS runs, PARAMS params -> DB".
 *
 * check-jsonl reads JSON lines and checks each is an object holding
 * every FIELD (only objects whose "type" is T, with --type); prints
 * "# N lines ok" or the first bad line; exit 0, or 1 for a bad line or
 * when no line was checked. The tests use it where
 * jq or python may be missing. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "audit.h"
#include "debounce.h"
#include "pbtime.h"

#define FED "fleet"
#define REGION "us-east-1"
#define FOREIGN_REGION "eu-west-1"
#define NODE "node-a"
#define MAX_KEYS 64
#define MAX_NODES 512
#define KEYS_PER_NODE 2
#define DUP_RING 256

/* ---- a reproducible PRNG (xorshift64*) */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static int64_t rng_range(int64_t lo, int64_t hi)	/* [lo, hi] */
{
	if (hi <= lo)
		return lo;
	return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

static int chance(double p)
{
	return (double)(rng() >> 11) / 9007199254740992.0 < p;
}

static int64_t last_splay;

static int64_t splay_draw(void *ctx, int64_t max_ms)
{
	(void)ctx;
	last_splay = rng_range(0, max_ms);
	return last_splay;
}

static void uuid_text(char *buf)
{
	uint64_t a = rng(), b = rng();

	snprintf(buf, 37, "%08x-%04x-4%03x-%04x-%012" PRIx64, (unsigned)(a >> 32),
		 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
		 (unsigned)(0x8000 | ((b >> 48) & 0x3fff)), (uint64_t)(b & 0xffffffffffffULL));
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pbtest-auditgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EX_SOFTWARE);
}

/* ---- options */
struct gen_opts {
	const char *out;
	long long n_events;
	double hours;
	int64_t start;
	int keys, nodes;
	long bursts;
	struct pb_debounce_params p;
	int64_t run_min, run_max;
	int fail_every, defer_every, manual, restart, aba, no_finish, empty;
	int64_t latency;
};

/* ---- the node's view: providers[node][slot] -> version, -1 retired/none */
struct world {
	int keys, nodes;
	int node_keys[MAX_NODES][KEYS_PER_NODE];
	int version[MAX_NODES][KEYS_PER_NODE];	/* -1: not live */
	int64_t seq[MAX_NODES];
	char *cur[MAX_KEYS];	/* current value text per key; NULL: none */
	char *good[MAX_KEYS];	/* values of the last successful run */
	char *run_vals[MAX_KEYS];	/* values the running run was started with */
};

static char *value_of(int node, int version)
{
	char *s;

	if (asprintf(&s, "http://10.0.%d.%d:8080/v%d", node / 250, node % 250 + 1, version) < 0)
		abort();
	return s;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The joined, sorted, de-duplicated values of key k (NULL: none). */
static char *key_value(const struct world *w, int k)
{
	char *vals[MAX_NODES];
	int n = 0, i, j;
	size_t len = 0;
	char *out, *p;

	for (i = 0; i < w->nodes; i++)
		for (j = 0; j < KEYS_PER_NODE; j++)
			if (w->node_keys[i][j] == k && w->version[i][j] >= 0)
				vals[n++] = value_of(i, w->version[i][j]);
	if (!n)
		return NULL;
	qsort(vals, (size_t)n, sizeof(vals[0]), strp_cmp);
	for (i = 0; i < n; i++)
		len += strlen(vals[i]) + 1;
	out = malloc(len + 1);	/* + 1: GCC with ASan cannot see that n > 0 */
	p = out;
	for (i = 0; i < n; i++) {
		if (i && !strcmp(vals[i], vals[i - 1]))
			continue;
		if (p != out)
			*p++ = ',';
		strcpy(p, vals[i]);
		p += strlen(vals[i]);
	}
	*p = '\0';
	for (i = 0; i < n; i++)
		free(vals[i]);
	return out;
}

static int str_eq(const char *a, const char *b)
{
	return (!a || !b) ? a == b : !strcmp(a, b);
}

static int dirty(const struct world *w)
{
	for (int k = 0; k < w->keys; k++)
		if (!str_eq(w->cur[k], w->good[k]))
			return 1;
	return 0;
}

static void copy_vals(char **dst, char *const *src, int n)
{
	for (int k = 0; k < n; k++) {
		free(dst[k]);
		dst[k] = src[k] ? strdup(src[k]) : NULL;
	}
}

/* ---- sqlite */
static sqlite3 *db;
static sqlite3_stmt *ins_event, *ins_run, *ins_run_event, *ins_param, *ins_note;

static void sql_exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die("sql: %s", msg ? msg : "?");
}

static sqlite3_stmt *prep(const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die("prepare: %s", sqlite3_errmsg(db));
	return st;
}

static void done(sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die("insert: %s", sqlite3_errmsg(db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* ---- the simulated daemon */
struct sim {
	struct gen_opts *o;
	struct world w;
	struct pb_debounce d;
	int64_t now;
	int running;
	int64_t run_id, run_end;
	int run_ok;
	int start_pending;
	int64_t start_at, start_queued;
	enum pb_reason start_reason;
	int64_t n_events, n_runs, n_params, runs_done;
	/* applied events since the last start (run_events of the next run) */
	int64_t *covered;
	size_t n_covered, cap_covered;
	char dup_ids[DUP_RING][37];
	int n_dup;
	int64_t starts[4096];
	int n_starts;
};

static char *values_json(char *const *vals, int n)
{
	json_t *o = json_object();
	char name[16], *s;

	for (int k = 0; k < n; k++) {
		if (!vals[k])
			continue;
		snprintf(name, sizeof(name), "KEY_%02d", k);
		json_object_set_new(o, name, json_string(vals[k]));
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static void run_start(struct sim *s)
{
	struct world *w = &s->w;
	json_t *changed = json_array();
	char name[16], *ck, *vb, *va;
	size_t i;

	pb_debounce_started(&s->d, s->start_at);
	s->running = 1;
	s->start_pending = 0;
	s->n_runs++;
	s->run_id = s->n_runs;
	if (s->n_starts < (int)(sizeof(s->starts) / sizeof(s->starts[0])))
		s->starts[s->n_starts++] = s->start_at;
	s->run_ok = !(s->o->fail_every && s->run_id % s->o->fail_every == 0);
	int64_t deferred = s->o->defer_every && s->run_id % s->o->defer_every == 0
				   ? rng_range(1000, 5000) : 0;
	s->run_end = s->start_at + deferred + rng_range(s->o->run_min, s->o->run_max);
	for (int k = 0; k < w->keys; k++)
		if (!str_eq(w->cur[k], w->good[k])) {
			snprintf(name, sizeof(name), "KEY_%02d", k);
			json_array_append_new(changed, json_string(name));
		}
	copy_vals(w->run_vals, w->cur, w->keys);
	ck = json_dumps(changed, JSON_COMPACT);
	vb = values_json(w->good, w->keys);
	va = values_json(w->cur, w->keys);
	json_decref(changed);
	sqlite3_bind_int64(ins_run, 1, s->run_id);
	bind_text(ins_run, 2, pb_reason_name(s->start_reason));
	sqlite3_bind_int64(ins_run, 3, s->start_queued);
	sqlite3_bind_int64(ins_run, 4, s->start_at);
	bind_text(ins_run, 5, "running");
	sqlite3_bind_int64(ins_run, 6, deferred);
	bind_text(ins_run, 7, ck);
	bind_text(ins_run, 8, vb);
	bind_text(ins_run, 9, va);
	done(ins_run);
	free(ck);
	free(vb);
	free(va);
	for (i = 0; i < s->n_covered; i++) {
		sqlite3_bind_int64(ins_run_event, 1, s->run_id);
		sqlite3_bind_int64(ins_run_event, 2, s->covered[i]);
		done(ins_run_event);
	}
	s->n_covered = 0;
	if (s->o->p.splay_ms > 0) {
		/* the consumer's note, word for word */
		char text[96];

		snprintf(text, sizeof(text), "waited a splay of %lld ms (of at most %lld)",
			 (long long)last_splay, (long long)s->o->p.splay_ms);
		sqlite3_bind_int64(ins_note, 1, s->start_at);
		sqlite3_bind_int64(ins_note, 2, s->run_id);
		bind_text(ins_note, 3, "splay");
		bind_text(ins_note, 4, text);
		done(ins_note);
	}
	if (deferred) {
		char text[96];

		snprintf(text, sizeof(text), "provision lock held by another process; waited %lld ms",
			 (long long)deferred);
		sqlite3_bind_int64(ins_note, 1, s->start_at + deferred);
		sqlite3_bind_int64(ins_note, 2, s->run_id);
		bind_text(ins_note, 3, "deferred");
		bind_text(ins_note, 4, text);
		done(ins_note);
	}
}

static void run_finish(struct sim *s)
{
	char sql[256], tail[128];
	sqlite3_stmt *st;

	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET finished_at = %lld, exit_status = %d, status = '%s',"
		 " output_tail = ?1, notify_status = 0 WHERE id = %lld",
		 (long long)s->run_end, s->run_ok ? 0 : 1, s->run_ok ? "ok" : "failed",
		 (long long)s->run_id);
	snprintf(tail, sizeof(tail), "Chef Client finished, %d/%d resources updated\n%s\n",
		 (int)(s->run_id % 7), 40, s->run_ok ? "ok" : "ERROR: a recipe failed");
	st = prep(sql);
	sqlite3_bind_blob(st, 1, tail, (int)strlen(tail), SQLITE_TRANSIENT);
	done(st);
	sqlite3_finalize(st);
	s->running = 0;
	s->runs_done++;
	if (s->run_ok)
		copy_vals(s->w.good, s->w.run_vals, s->w.keys);
	pb_debounce_finished(&s->d, s->run_end, s->run_ok, dirty(&s->w));
}

/* Everything the daemon would do on its own up to time t. */
static void sim_until(struct sim *s, int64_t t)
{
	struct pb_debounce_due due;

	for (;;) {
		int64_t next;

		if (s->running) {
			next = s->run_end;
		} else if (s->start_pending) {
			next = s->start_at;
		} else {
			pb_debounce_poll(&s->d, s->now, splay_draw, NULL, &due);
			if (due.start) {
				s->start_pending = 1;
				s->start_at = s->now + rng_range(0, s->o->latency);
				s->start_queued = due.queued_at;
				s->start_reason = due.reason;
				continue;
			}
			next = due.next_at;
			if (next <= s->now)
				next = s->now + 1;
		}
		if (next > t)
			break;
		s->now = next;
		if (s->running && s->run_end == s->now)
			run_finish(s);
		else if (s->start_pending && s->start_at == s->now)
			run_start(s);
	}
	if (t > s->now)
		s->now = t;
}

static void add_param(struct sim *s, int64_t at, const char *event)
{
	char json[512];

	snprintf(json, sizeof(json),
		 "{\"quiet_ms\":%lld,\"max_wait_ms\":%lld,\"throttle_runs\":%d,\"throttle_per_s\":%lld,"
		 "\"splay_ms\":%lld,\"retry_max\":%d,\"retry_base_ms\":%lld,\"event\":\"%s\"}",
		 (long long)s->o->p.quiet_ms, (long long)s->o->p.max_wait_ms, s->o->p.throttle_runs,
		 (long long)(s->o->p.throttle_per_ms / 1000), (long long)s->o->p.splay_ms,
		 s->o->p.retry_max, (long long)s->o->p.retry_base_ms, event);
	sqlite3_bind_int64(ins_param, 1, at);
	bind_text(ins_param, 2, json);
	done(ins_param);
	s->n_params++;
}

/* A daemon start at t: new debounce (throttle window read back), a
 * startup run asked for. */
static void daemon_start(struct sim *s, int64_t t)
{
	pb_debounce_init(&s->d, &s->o->p);
	pb_debounce_seed_starts(&s->d, s->starts + (s->n_starts > 64 ? s->n_starts - 64 : 0),
				s->n_starts > 64 ? 64 : s->n_starts);
	s->now = t;
	add_param(s, t, "start");
	pb_debounce_request(&s->d, t, PB_REASON_STARTUP);
}

struct ev {
	const char *msg_id;
	const char *kind, *region, *node, *service, *key, *value, *verdict, *detail;
	int64_t seq;
	int redelivered, changed, has_seq;
};

static int64_t insert_event(struct sim *s, int64_t t, const struct ev *e)
{
	char rk[256];

	bind_text(ins_event, 1, e->msg_id);
	sqlite3_bind_int64(ins_event, 2, t);
	bind_text(ins_event, 3, e->kind);
	bind_text(ins_event, 4, e->key ? FED : NULL);
	bind_text(ins_event, 5, e->region);
	bind_text(ins_event, 6, e->node);
	bind_text(ins_event, 7, e->service);
	bind_text(ins_event, 8, e->key);
	bind_text(ins_event, 9, e->value);
	if (e->has_seq)
		sqlite3_bind_int64(ins_event, 10, e->seq);
	bind_text(ins_event, 11, e->verdict);
	bind_text(ins_event, 12, e->detail);
	sqlite3_bind_int(ins_event, 13, e->redelivered);
	bind_text(ins_event, 14, "provbus." FED);
	snprintf(rk, sizeof(rk), "%s.%s.%s", e->region ? e->region : "?", e->kind ? e->kind : "?",
		 e->key ? e->key : "?");
	bind_text(ins_event, 15, rk);
	sqlite3_bind_int(ins_event, 16, e->changed);
	done(ins_event);
	s->n_events++;
	return sqlite3_last_insert_rowid(db);
}

/* An applied announcement (or retire) of slot j of node i at t with seq:
 * the provider set changes; when the key's value changed, the debounce
 * hears of it. */
static void announce(struct sim *s, int64_t t, int i, int j, int version, int retire, int64_t seq)
{
	struct world *w = &s->w;
	char id[37], key[16], svc[16], node[16], *value = NULL, *nv;
	int k = w->node_keys[i][j], changed;
	struct ev e = { 0 };
	int64_t row;

	sim_until(s, t);
	uuid_text(id);
	snprintf(key, sizeof(key), "KEY_%02d", k);
	snprintf(svc, sizeof(svc), "svc-%d", i % 3);
	snprintf(node, sizeof(node), "n%03d", i);
	w->version[i][j] = retire ? -1 : version;
	if (!retire)
		value = value_of(i, version);
	nv = key_value(w, k);
	changed = !str_eq(nv, w->cur[k]);
	free(w->cur[k]);
	w->cur[k] = nv;
	e.msg_id = id;
	e.kind = retire ? "retire" : "provides";
	e.region = REGION;
	e.node = node;
	e.service = svc;
	e.key = key;
	e.value = value;
	e.seq = seq;
	e.has_seq = 1;
	e.verdict = "applied";
	e.changed = changed;
	row = insert_event(s, t, &e);
	if (s->n_dup < DUP_RING)
		memcpy(s->dup_ids[s->n_dup++], id, 37);
	else
		memcpy(s->dup_ids[rng() % DUP_RING], id, 37);
	/* like the daemon, a run covers every applied event since the
	 * previous start */
	if (s->n_covered == s->cap_covered) {
		s->cap_covered = s->cap_covered ? s->cap_covered * 2 : 1024;
		s->covered = realloc(s->covered, s->cap_covered * sizeof(*s->covered));
	}
	s->covered[s->n_covered++] = row;
	if (changed)
		pb_debounce_change(&s->d, t, PB_REASON_CHANGE, dirty(w));
	free(value);
}

/* A message that changes nothing: duplicate, stale, foreign or invalid. */
static void noise(struct sim *s, int64_t t)
{
	struct world *w = &s->w;
	char id[37], key[24], svc[16], node[16];
	struct ev e = { 0 };
	int i = (int)rng_range(0, w->nodes - 1), r = (int)rng_range(0, 99);

	sim_until(s, t);
	uuid_text(id);
	snprintf(svc, sizeof(svc), "svc-%d", i % 3);
	snprintf(node, sizeof(node), "n%03d", i);
	snprintf(key, sizeof(key), "KEY_%02d", w->node_keys[i][0]);
	e.msg_id = id;
	e.kind = "provides";
	e.region = REGION;
	e.node = node;
	e.service = svc;
	e.key = key;
	e.has_seq = 1;
	e.seq = w->seq[i];
	if (r < 35 && s->n_dup) {
		e.msg_id = s->dup_ids[rng() % (uint64_t)s->n_dup];
		e.verdict = "duplicate";
		e.redelivered = 1;
		e.value = "http://10.0.0.1:8080/v0";
	} else if (r < 55 && w->seq[i] > 1) {
		e.seq = w->seq[i] - 1 - (int64_t)rng_range(0, 2);
		if (e.seq < 0)
			e.seq = 0;
		e.verdict = "stale";
		e.value = "http://10.0.0.1:8080/v0";
	} else if (r < 75) {
		snprintf(key, sizeof(key), "OTHER_%02d", (int)rng_range(0, 9));
		e.verdict = "foreign";
		e.value = "http://10.9.9.9:9090/";
	} else if (r < 95) {
		e.region = FOREIGN_REGION;
		e.verdict = "foreign";
		e.value = "http://10.8.8.8:8080/";
	} else {
		e.kind = NULL;
		e.region = NULL;
		e.node = NULL;
		e.service = NULL;
		e.key = NULL;
		e.has_seq = 0;
		e.verdict = "invalid";
		e.detail = r == 95 ? "field 'v': want 1" : "message is not a JSON object";
	}
	insert_event(s, t, &e);
}

/* A re-announcement of node i that changes nothing (same values): one
 * announcement, one seq for all its keys. */
static void refresh(struct sim *s, int64_t t, int i)
{
	int64_t seq = ++s->w.seq[i];

	for (int j = 0; j < KEYS_PER_NODE; j++)
		if (s->w.version[i][j] >= 0)
			announce(s, t, i, j, s->w.version[i][j], 0, seq);
}

struct burst {
	int64_t at;
	int key, kind;		/* kind 0 deploy, 1 retire+return, 2 A->B->A */
};

static int burst_cmp(const void *a, const void *b)
{
	const struct burst *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

/* Pending changes of a burst, by time. */
struct change {
	int64_t at;
	int node, slot, version, retire;
};

static struct change *chg;
static size_t n_chg, cap_chg;

static void push_change(int64_t at, int node, int slot, int version, int retire)
{
	size_t i;

	if (n_chg == cap_chg) {
		cap_chg = cap_chg ? cap_chg * 2 : 256;
		chg = realloc(chg, cap_chg * sizeof(*chg));
	}
	for (i = n_chg; i > 0 && chg[i - 1].at > at; i--)
		chg[i] = chg[i - 1];
	chg[i] = (struct change){ at, node, slot, version, retire };
	n_chg++;
}

static void schedule_burst(struct sim *s, const struct burst *b)
{
	struct world *w = &s->w;
	int64_t t = b->at;

	for (int i = 0; i < w->nodes; i++)
		for (int j = 0; j < KEYS_PER_NODE; j++) {
			if (w->node_keys[i][j] != b->key)
				continue;
			t += rng_range(100, 900);
			if (b->kind == 0) {
				push_change(t, i, j, w->version[i][j] < 0 ? 1 : w->version[i][j] + 1, 0);
			} else if (b->kind == 1) {
				push_change(t, i, j, 0, 1);
				push_change(t + rng_range(20000, 90000), i, j, 1, 0);
				return;	/* one node goes away and comes back */
			} else {
				int v = w->version[i][j] < 0 ? 1 : w->version[i][j];

				push_change(t, i, j, v + 1000, 0);
				push_change(t + rng_range(200, 600), i, j, v, 0);
				return;
			}
		}
}

static void parse_pair(const char *s, char sep, int64_t *a, int64_t *b, const char *what)
{
	char *end;

	*a = strtoll(s, &end, 10);
	if (*end != sep)
		die("bad %s", what);
	*b = strtoll(end + 1, &end, 10);
	if (*end)
		die("bad %s", what);
}

static int check_jsonl(int argc, char **argv)
{
	const char *fields = NULL, *type = NULL;
	char *line = NULL, *list, *f, *save;
	size_t cap = 0;
	long n = 0, checked = 0;
	ssize_t len;
	int i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc)
			type = argv[++i];
		else
			fields = argv[i];
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		json_error_t je;
		json_t *o;

		n++;
		o = json_loadb(line, (size_t)len, 0, &je);
		if (!json_is_object(o)) {
			printf("# line %ld: not a JSON object: %s\n", n, o ? "" : je.text);
			return 1;
		}
		if (type && !str_eq(json_string_value(json_object_get(o, "type")), type)) {
			json_decref(o);
			continue;
		}
		checked++;
		list = strdup(fields ? fields : "");
		for (f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save))
			if (!json_object_get(o, f)) {
				printf("# line %ld: no field '%s'\n", n, f);
				return 1;
			}
		free(list);
		json_decref(o);
	}
	free(line);
	printf("# %ld lines ok (%ld checked)\n", n, checked);
	return checked ? 0 : 1;	/* nothing to check is a failure: the command printed nothing */
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "hours", 1, NULL, 'H' }, { "start", 1, NULL, 'S' }, { "keys", 1, NULL, 'k' },
		{ "nodes", 1, NULL, 'N' }, { "bursts", 1, NULL, 'b' }, { "seed", 1, NULL, 's' },
		{ "quiet-ms", 1, NULL, 'q' }, { "max-wait-ms", 1, NULL, 'm' },
		{ "throttle", 1, NULL, 't' }, { "splay-ms", 1, NULL, 'y' }, { "retry", 1, NULL, 'r' },
		{ "run-ms", 1, NULL, 'R' }, { "fail-every", 1, NULL, 'f' },
		{ "defer-every", 1, NULL, 'D' }, { "manual", 1, NULL, 'M' },
		{ "restart", 0, NULL, 'X' }, { "latency-ms", 1, NULL, 'L' }, { "aba", 1, NULL, 'A' },
		{ "no-finish", 0, NULL, 'F' }, { "empty", 0, NULL, 'E' }, { NULL, 0, NULL, 0 },
	};
	struct gen_opts o = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct sim s;
	struct burst *bursts;
	int64_t *manual_at = NULL, end, a, b, restart_at = PB_TIME_NEVER, step;
	char path[4096];
	int c, k, mi = 0;
	long bi = 0;

	if (argc > 1 && !strcmp(argv[1], "check-jsonl"))
		return check_jsonl(argc, argv);
	o.n_events = 10000;
	o.hours = 2;
	o.start = PB_TIME_NEVER;
	o.keys = 8;
	o.nodes = 24;
	o.bursts = -1;
	o.p = (struct pb_debounce_params){ 2000, 30000, 6, 600000, 0, 5, 1000 };
	o.run_min = 3000;
	o.run_max = 15000;
	o.latency = 20;
	o.aba = -1;
	while ((c = getopt_long(argc, argv, "o:n:", lo, NULL)) != -1) {
		switch (c) {
		case 'o': o.out = optarg; break;
		case 'n': o.n_events = atoll(optarg); break;
		case 'H': o.hours = atof(optarg); break;
		case 'S':
			if (pb_time_parse(optarg, pb_now_ms(), &o.start, &err) < 0)
				die("%s", err.msg);
			break;
		case 'k': o.keys = atoi(optarg); break;
		case 'N': o.nodes = atoi(optarg); break;
		case 'b': o.bursts = atol(optarg); break;
		case 's': rng_state ^= (uint64_t)atoll(optarg) * 0x9e3779b97f4a7c15ULL; break;
		case 'q': o.p.quiet_ms = atoll(optarg); break;
		case 'm': o.p.max_wait_ms = atoll(optarg); break;
		case 't':
			parse_pair(optarg, '/', &a, &b, "--throttle");
			o.p.throttle_runs = (int)a;
			o.p.throttle_per_ms = b * 1000;
			break;
		case 'y': o.p.splay_ms = atoll(optarg); break;
		case 'r':
			parse_pair(optarg, '/', &a, &b, "--retry");
			o.p.retry_max = (int)a;
			o.p.retry_base_ms = b;
			break;
		case 'R': parse_pair(optarg, '-', &o.run_min, &o.run_max, "--run-ms"); break;
		case 'f': o.fail_every = atoi(optarg); break;
		case 'D': o.defer_every = atoi(optarg); break;
		case 'M': o.manual = atoi(optarg); break;
		case 'X': o.restart = 1; break;
		case 'L': o.latency = atoll(optarg); break;
		case 'A': o.aba = atoi(optarg); break;
		case 'F': o.no_finish = 1; break;
		case 'E': o.empty = 1; break;
		default: return EX_USAGE;
		}
	}
	if (!o.out || o.n_events < 1 || o.keys < 1 || o.keys > MAX_KEYS || o.nodes < 1 ||
	    o.nodes > MAX_NODES || o.hours <= 0) {
		fprintf(stderr, "usage: pbtest-auditgen -o DB [-n EVENTS] [--hours H] ... (see the source)\n");
		return EX_USAGE;
	}
	/* a fresh file */
	unlink(o.out);
	snprintf(path, sizeof(path), "%s-wal", o.out);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", o.out);
	unlink(path);
	db = pb_audit_open(o.out, 0, &err);
	if (!db)
		die("%s", err.msg);
	/* no journal while filling (a generated file has nothing to
	 * protect); WAL again at the end, as the daemon leaves it */
	if (o.empty) {
		/* the schema and meta only: fixtures fill it with plain SQL */
		sql_exec("INSERT OR REPLACE INTO meta(k, v) VALUES('node', '" NODE "'), ('federation', '" FED "');");
		pb_audit_close(db);
		printf("0 events, 0 runs, 0 params -> %s\n", o.out);
		return 0;
	}
	sql_exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; BEGIN;"
		 "INSERT OR REPLACE INTO meta(k, v) VALUES('node', '" NODE "'), ('federation', '" FED "');");
	ins_event = prep("INSERT INTO events(msg_id, received_at, kind, federation, region, node, service,"
			 " key, value, seq, ttl_s, public, verdict, detail, redelivered, source, exchange,"
			 " routing_key, changed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,0,0,?11,?12,?13,'live',"
			 "?14,?15,?16)");
	ins_run = prep("INSERT INTO runs(id, reason, queued_at, started_at, status, deferred_ms,"
		       " changed_keys, values_before, values_after) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
	ins_run_event = prep("INSERT OR IGNORE INTO run_events(run_id, event_id) VALUES(?1, ?2)");
	ins_param = prep("INSERT INTO params(at, json) VALUES(?1, ?2)");
	ins_note = prep("INSERT INTO notes(at, run_id, kind, text) VALUES(?1, ?2, ?3, ?4)");

	memset(&s, 0, sizeof(s));
	s.o = &o;
	s.w.keys = o.keys;
	s.w.nodes = o.nodes;
	for (int i = 0; i < o.nodes; i++) {
		s.w.node_keys[i][0] = i % o.keys;
		s.w.node_keys[i][1] = (i * 7 + 3) % o.keys;
		if (s.w.node_keys[i][1] == s.w.node_keys[i][0])
			s.w.node_keys[i][1] = (s.w.node_keys[i][0] + 1) % o.keys;
		s.w.version[i][0] = s.w.version[i][1] = -1;
	}
	end = o.start == PB_TIME_NEVER ? pb_now_ms() - 60000 : o.start + (int64_t)(o.hours * 3600000);
	s.now = end - (int64_t)(o.hours * 3600000);
	step = (end - s.now) / o.n_events;
	if (step < 1)
		step = 1;
	if (o.bursts < 0)
		o.bursts = (long)(o.hours * 20);
	if (o.aba < 0)
		o.aba = (int)(o.bursts / 10);
	bursts = calloc((size_t)o.bursts + (size_t)o.aba + 1, sizeof(*bursts));
	for (long i = 0; i < o.bursts + o.aba; i++) {
		bursts[i].at = s.now + 60000 + (int64_t)(rng() % (uint64_t)(end - s.now - 60000));
		bursts[i].key = (int)rng_range(0, o.keys - 1);
		bursts[i].kind = i >= o.bursts ? 2 : chance(0.15) ? 1 : 0;
	}
	qsort(bursts, (size_t)(o.bursts + o.aba), sizeof(*bursts), burst_cmp);
	if (o.manual) {
		manual_at = calloc((size_t)o.manual, sizeof(*manual_at));
		for (int i = 0; i < o.manual; i++)
			manual_at[i] = s.now + 120000 + (int64_t)(rng() % (uint64_t)(end - s.now - 120000));
		qsort(manual_at, (size_t)o.manual, sizeof(*manual_at), i64_cmp);
	}
	if (o.restart)
		restart_at = s.now + (end - s.now) / 2;

	/* the daemon starts; the first seconds: every node announces itself
	 * (a history catch-up would look the same) */
	daemon_start(&s, s.now);
	{
		int64_t t = s.now + 5;

		for (int i = 0; i < o.nodes; i++) {
			int64_t seq = ++s.w.seq[i];

			for (int j = 0; j < KEYS_PER_NODE; j++) {
				announce(&s, t, i, j, 1, 0, seq);
				t += 3;
			}
		}
	}
	/* the stream: one slot per `step` ms; each slot is the next due
	 * burst change if any, else a refresh or noise */
	int64_t t = s.now + 1;
	while (s.n_events < o.n_events) {
		if (restart_at != PB_TIME_NEVER && t >= restart_at) {
			/* stop: wait for a running run (SIGTERM waits up to 60 s) */
			sim_until(&s, t);
			if (s.running)
				sim_until(&s, s.run_end);
			s.start_pending = 0;
			t = s.now + 30000;
			restart_at = PB_TIME_NEVER;
			daemon_start(&s, t);
			t += 2;
			continue;
		}
		while (bi < o.bursts + o.aba && bursts[bi].at <= t)
			schedule_burst(&s, &bursts[bi++]);
		while (mi < o.manual && manual_at[mi] <= t) {
			sim_until(&s, manual_at[mi] > s.now ? manual_at[mi] : s.now);
			pb_debounce_request(&s.d, s.now, PB_REASON_MANUAL);
			mi++;
		}
		int64_t before = s.n_events;

		if (n_chg && chg[0].at <= t) {
			struct change ch = chg[0];

			memmove(chg, chg + 1, --n_chg * sizeof(*chg));
			announce(&s, t, ch.node, ch.slot, ch.version, ch.retire, ++s.w.seq[ch.node]);
		} else if (chance(0.08)) {
			noise(&s, t);
		} else {
			int i = (int)rng_range(0, o.nodes - 1);

			refresh(&s, t, i);
		}
		/* spread what is left evenly over the time that is left */
		if (s.n_events < o.n_events && end > t) {
			step = (end - t) * (s.n_events - before) / (o.n_events - s.n_events);
			t += rng_range(step / 2, step + step / 2);
		} else {
			t += 1;
		}
		if (t <= s.now)
			t = s.now + 1;
	}
	/* let the daemon finish what is pending (unless --no-finish) */
	if (!o.no_finish) {
		sim_until(&s, t + 3600000);
	} else {
		/* the log ends while a run is going (asked for by hand if none
		 * is due; the throttle may make it wait) */
		sim_until(&s, t);
		if (!s.running && !s.start_pending)
			pb_debounce_request(&s.d, s.now, PB_REASON_MANUAL);
		while (!s.running)
			sim_until(&s, s.now + 100);
	}
	/* the provider state, as the daemon keeps it */
	{
		sqlite3_stmt *st = prep("INSERT INTO providers(federation, region, node, service, key, value,"
					" public, seq, expires_at, updated_at, tombstone)"
					" VALUES('" FED "', '" REGION "', ?1, ?2, ?3, ?4, 0, ?5, NULL, ?6, ?7)");
		for (int i = 0; i < o.nodes; i++)
			for (int j = 0; j < KEYS_PER_NODE; j++) {
				char node[16], svc[16], key[16], *v = NULL;

				snprintf(node, sizeof(node), "n%03d", i);
				snprintf(svc, sizeof(svc), "svc-%d", i % 3);
				snprintf(key, sizeof(key), "KEY_%02d", s.w.node_keys[i][j]);
				if (s.w.version[i][j] >= 0)
					v = value_of(i, s.w.version[i][j]);
				bind_text(st, 1, node);
				bind_text(st, 2, svc);
				bind_text(st, 3, key);
				bind_text(st, 4, v);
				sqlite3_bind_int64(st, 5, s.w.seq[i]);
				sqlite3_bind_int64(st, 6, s.now);
				sqlite3_bind_int(st, 7, v == NULL);
				done(st);
				free(v);
			}
		sqlite3_finalize(st);
	}
	sql_exec("COMMIT; PRAGMA journal_mode=WAL;");
	printf("%lld events, %lld runs, %lld params -> %s\n", (long long)s.n_events,
	       (long long)s.n_runs, (long long)s.n_params, o.out);
	sqlite3_finalize(ins_event);
	sqlite3_finalize(ins_run);
	sqlite3_finalize(ins_run_event);
	sqlite3_finalize(ins_param);
	sqlite3_finalize(ins_note);
	pb_audit_close(db);
	for (k = 0; k < o.keys; k++) {
		free(s.w.cur[k]);
		free(s.w.good[k]);
		free(s.w.run_vals[k]);
	}
	free(s.covered);
	free(bursts);
	free(manual_at);
	free(chg);
	return 0;
}
