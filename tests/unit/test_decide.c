/* test_decide.c — the decision core (lib/decide.h) of provbus-consumer(1):
 * the rules of events, values and runs as scripts with explicit times,
 * then a seeded simulation.
 *
 * Scripts: one core per case (quiet 100 ms, max wait 1000 ms, throttle 5
 * per 10 s, no splay, 2 retries from 50 ms; wants ENV_A={A}, ENV_B={B},
 * ENV_L="lit"; static B="sb"; region r1 accepted). Steps:
 *   EV(t, node, region, key, value, seq, ttl, verdict, changed)
 *                      a batch of one (settled at t)
 *   BEV(...)           the same inside a batch (not settled)
 *   RET(t, node, key, seq, verdict, changed)     a retire
 *   DUPE(t, node, key, value, seq)               seen before: duplicate
 *   EXPIRE(t, n)       n leases ran out
 *   REQ(t, r)  PAUSE(t)  RESUME(t)
 *   WAIT(t, next)      poll: no start, next deadline
 *   GO(t, r, q)        poll: start (reason r, queued at q), then started
 *   LOCK(t) TAKEN(t, waited)
 *   FIN(t, st)         the run ended: OK FAILED INTERRUPTED
 *   ADDKEY(t)          reload that adds the required key C (ENV_C={C})
 *   OWEFULL(t) DONE(t, full, key)    catch-ups
 *   VAL(t, env, v)     the value of env is v (NULL: left out)
 *   DIRTY(t, x) NOTES(t, n)
 *   SETTLE(t)          the end of a batch of events
 *
 * Simulation: PB_DECIDE_SEEDS seeds (default 2000; 400 under the
 * sanitizers, 200 under PB_VALGRIND) of random event
 * streams, timer orders, run lengths, failures, lock waits, pauses,
 * reloads and restarts, with the invariants checked after every step. A
 * failing seed prints itself; PB_DECIDE_SEED=N replays one (verbose). */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "suite_main.h"

#define NEVER PB_TIME_NEVER

/* ---- fixtures ---- */

static const char *keys2[] = { "A", "B" };
static const char *keys3[] = { "A", "B", "C" };
static const char *regions1[] = { "r1" };
static const struct pb_want wants2[] = {
	{ "ENV_A", "A", NULL }, { "ENV_B", "B", NULL }, { "ENV_L", NULL, "lit" },
};
static const struct pb_want wants3[] = {
	{ "ENV_A", "A", NULL }, { "ENV_B", "B", NULL }, { "ENV_C", "C", NULL },
	{ "ENV_L", NULL, "lit" },
};
static struct pb_static statics[] = { { "B", "sb" } };

static void params_for(struct pb_decide_params *p, int with_c, const struct pb_debounce_params *dp)
{
	memset(p, 0, sizeof(*p));
	p->deb = *dp;
	p->wants = with_c ? wants3 : wants2;
	p->n_wants = with_c ? 4 : 3;
	p->filter.federation = "f";
	p->filter.keys = with_c ? keys3 : keys2;
	p->filter.n_keys = with_c ? 3 : 2;
	p->filter.regions = regions1;
	p->filter.n_regions = 1;
	p->statics = statics;
	p->n_statics = 1;
}

static void make_event(struct pb_event *ev, int retire, const char *node, const char *region,
		       const char *key, const char *value, int64_t seq, int64_t ttl, unsigned id)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->id, sizeof(ev->id), "00000000-0000-4000-8000-%012x", id);
	ev->kind = retire ? PB_KIND_RETIRE : PB_KIND_PROVIDES;
	snprintf(ev->federation, sizeof(ev->federation), "f");
	snprintf(ev->region, sizeof(ev->region), "%s", region);
	snprintf(ev->node, sizeof(ev->node), "%s", node);
	snprintf(ev->service, sizeof(ev->service), "s");
	snprintf(ev->key, sizeof(ev->key), "%s", key);
	if (!retire && value) {
		ev->has_value = 1;
		snprintf(ev->value, sizeof(ev->value), "%s", value);
		ev->value_len = strlen(ev->value);
	}
	ev->seq = seq;
	ev->ttl_s = ttl;
}

/* A restored provider of key A in federation f, region r1, service s. */
static void make_provider(struct pb_provider *pv, const char *node, const char *value, int64_t seq,
			  int64_t expires_at)
{
	memset(pv, 0, sizeof(*pv));
	strcpy(pv->federation, "f");
	strcpy(pv->region, "r1");
	snprintf(pv->node, sizeof(pv->node), "%s", node);
	strcpy(pv->service, "s");
	strcpy(pv->key, "A");
	pv->value = (char *)value;
	pv->seq = seq;
	pv->expires_at = expires_at;
}

struct notes {
	int retry_exhausted, pause, resume, verdicts, expired, values;
};

static void count_rec(void *ctx, const struct pb_decide_rec *r)
{
	struct notes *n = ctx;

	switch (r->kind) {
	case PB_DECIDE_REC_VERDICT:
		n->verdicts++;
		break;
	case PB_DECIDE_REC_EXPIRED:
		n->expired++;
		break;
	case PB_DECIDE_REC_VALUES:
		n->values++;
		break;
	case PB_DECIDE_REC_NOTE:
		if (!strcmp(r->note_kind, "retry-exhausted"))
			n->retry_exhausted++;
		else if (!strcmp(r->note_kind, "pause"))
			n->pause++;
		else if (!strcmp(r->note_kind, "resume"))
			n->resume++;
		break;
	}
}

/* ---- scripts ---- */

enum op {
	OP_END = 0, OP_EV, OP_BEV, OP_RET, OP_DUPE, OP_EXPIRE, OP_REQ, OP_PAUSE, OP_RESUME, OP_WAIT,
	OP_GO, OP_LOCK, OP_TAKEN, OP_FIN, OP_ADDKEY, OP_OWEFULL, OP_DONE, OP_VAL, OP_DIRTY,
	OP_NOTES, OP_SETTLE,
};

struct step {
	int64_t at;
	enum op op;
	const char *node, *region, *key, *value;
	int64_t seq, ttl;
	int verdict, changed;	/* expected; reason for REQ/GO; status for FIN; x for checks */
	int64_t t;		/* next (WAIT), queued (GO), waited (TAKEN) */
};

#define EV(at, n, r, k, v, s, ttl, vd, ch) { at, OP_EV, n, r, k, v, s, ttl, PB_VERDICT_##vd, ch, 0 }
#define BEV(at, n, r, k, v, s, ttl, vd, ch) { at, OP_BEV, n, r, k, v, s, ttl, PB_VERDICT_##vd, ch, 0 }
#define RET(at, n, k, s, vd, ch)  { at, OP_RET, n, "r1", k, NULL, s, 0, PB_VERDICT_##vd, ch, 0 }
#define DUPE(at, n, k, v, s)      { at, OP_DUPE, n, "r1", k, v, s, 0, PB_VERDICT_DUPLICATE, 0, 0 }
#define EXPIRE(at, n)             { at, OP_EXPIRE, 0, 0, 0, 0, 0, 0, n, 0, 0 }
#define REQ(at, r)                { at, OP_REQ, 0, 0, 0, 0, 0, 0, PB_REASON_##r, 0, 0 }
#define PAUSE(at)                 { at, OP_PAUSE, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
#define RESUME(at)                { at, OP_RESUME, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
#define WAIT(at, next)            { at, OP_WAIT, 0, 0, 0, 0, 0, 0, 0, 0, next }
#define GO(at, r, q)              { at, OP_GO, 0, 0, 0, 0, 0, 0, PB_REASON_##r, 0, q }
#define LOCK(at)                  { at, OP_LOCK, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
#define TAKEN(at, w)              { at, OP_TAKEN, 0, 0, 0, 0, 0, 0, 0, 0, w }
#define FIN(at, st)               { at, OP_FIN, 0, 0, 0, 0, 0, 0, PB_RUN_##st, 0, 0 }
#define ADDKEY(at)                { at, OP_ADDKEY, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
#define OWEFULL(at)               { at, OP_OWEFULL, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
#define DONE(at, full, k)         { at, OP_DONE, 0, 0, k, 0, 0, 0, full, 0, 0 }
#define VAL(at, env, v)           { at, OP_VAL, 0, 0, env, v, 0, 0, 0, 0, 0 }
#define DIRTY(at, x)              { at, OP_DIRTY, 0, 0, 0, 0, 0, 0, x, 0, 0 }
#define NOTES(at, x)              { at, OP_NOTES, 0, 0, 0, 0, 0, 0, x, 0, 0 }
#define SETTLE(at)                { at, OP_SETTLE, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
#define END                       { 0, OP_END, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

#define START REQ(0, STARTUP), GO(0, STARTUP, 0), FIN(10, OK)

struct dcase {
	const char *name;
	struct step steps[40];
};

static const struct dcase cases[] = {
	/* verdicts and values */
	{ "applied, stale, foreign, duplicate; the value is the join", {
		VAL(0, "ENV_A", NULL), VAL(0, "ENV_B", "sb"), VAL(0, "ENV_L", "lit"),
		EV(1, "n1", "r1", "A", "x", 5, 0, APPLIED, 1), VAL(1, "ENV_A", "x"),
		EV(2, "n2", "r1", "A", "w", 1, 0, APPLIED, 1), VAL(2, "ENV_A", "w,x"),
		EV(3, "n3", "r1", "A", "x", 1, 0, APPLIED, 0), VAL(3, "ENV_A", "w,x"),
		EV(4, "n1", "r1", "A", "old", 4, 0, STALE, 0),
		EV(5, "n1", "r2", "A", "y", 9, 0, FOREIGN, 0),
		EV(6, "n4", "r1", "Z", "y", 9, 0, FOREIGN, 0),
		DUPE(7, "n1", "A", "x", 5), VAL(7, "ENV_A", "w,x"), END } },
	{ "retire leaves a tombstone; an older provides stays out; static while none", {
		EV(1, "n1", "r1", "B", "b1", 5, 0, APPLIED, 1), VAL(1, "ENV_B", "b1"),
		RET(2, "n1", "B", 6, APPLIED, 1), VAL(2, "ENV_B", "sb"),
		EV(3, "n1", "r1", "B", "b0", 6, 0, STALE, 0), VAL(3, "ENV_B", "sb"), END } },
	{ "a lease runs out: expired, the values change (reason expiry)", {
		START,
		EV(100, "n1", "r1", "A", "x", 1, 2, APPLIED, 1), WAIT(100, 200),
		GO(200, CHANGE, 200), FIN(300, OK),
		WAIT(300, 2100), EXPIRE(2099, 0), EXPIRE(2100, 1), VAL(2100, "ENV_A", NULL),
		WAIT(2100, 2200), GO(2200, EXPIRY, 2200), FIN(2300, OK), DIRTY(2300, 0), END } },
	/* debounce, one at a time, throttle, retry, pause, lock */
	{ "nothing before the startup request; the startup run covers earlier changes", {
		EV(1, "n1", "r1", "A", "x", 1, 0, APPLIED, 1), WAIT(1, NEVER), WAIT(5000, NEVER),
		DIRTY(5000, 1), REQ(6000, STARTUP), GO(6000, STARTUP, 6000), FIN(6100, OK),
		DIRTY(6100, 0), WAIT(6100, NEVER), END } },
	{ "quiet re-armed by each change; max wait caps it", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), WAIT(100, 200),
		EV(150, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), WAIT(150, 250),
		EV(240, "n1", "r1", "A", "c", 3, 0, APPLIED, 1), WAIT(240, 340),
		GO(340, CHANGE, 340), FIN(400, OK),
		EV(1000, "n1", "r1", "A", "d", 4, 0, APPLIED, 1), EV(1090, "n1", "r1", "A", "e", 5, 0, APPLIED, 1),
		EV(1180, "n1", "r1", "A", "f", 6, 0, APPLIED, 1), EV(1270, "n1", "r1", "A", "g", 7, 0, APPLIED, 1),
		EV(1360, "n1", "r1", "A", "h", 8, 0, APPLIED, 1), EV(1450, "n1", "r1", "A", "i", 9, 0, APPLIED, 1),
		EV(1540, "n1", "r1", "A", "j", 10, 0, APPLIED, 1), EV(1630, "n1", "r1", "A", "k", 11, 0, APPLIED, 1),
		EV(1720, "n1", "r1", "A", "l", 12, 0, APPLIED, 1), EV(1810, "n1", "r1", "A", "m", 13, 0, APPLIED, 1),
		EV(1900, "n1", "r1", "A", "n", 14, 0, APPLIED, 1), EV(1990, "n1", "r1", "A", "o", 15, 0, APPLIED, 1),
		WAIT(1990, 2000), GO(2000, CHANGE, 2000), END } },
	{ "a batch: the values are computed at its end, the quiet counts from there", {
		START,
		BEV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), VAL(100, "ENV_A", "a"),
		BEV(110, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), VAL(110, "ENV_A", "a"),
		BEV(120, "n2", "r1", "A", "b", 1, 0, APPLIED, 0),
		SETTLE(150), VAL(150, "ENV_A", "b"), WAIT(150, 250), GO(250, CHANGE, 250), END } },
	{ "A -> B -> A inside a batch: no run", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), GO(200, CHANGE, 200), FIN(300, OK),
		BEV(400, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), BEV(401, "n1", "r1", "A", "a", 3, 0, APPLIED, 1),
		SETTLE(402), DIRTY(402, 0), WAIT(402, NEVER), END } },
	{ "A -> B -> A before a start: no run", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), GO(200, CHANGE, 200), FIN(300, OK),
		EV(400, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), DIRTY(400, 1),
		EV(450, "n1", "r1", "A", "a", 3, 0, APPLIED, 1), DIRTY(450, 0),
		WAIT(450, NEVER), WAIT(5000, NEVER), END } },
	{ "one at a time: changes during a run make one follow-up", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), GO(200, CHANGE, 200),
		EV(300, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), WAIT(400, NEVER),
		EV(500, "n1", "r1", "A", "c", 3, 0, APPLIED, 1), WAIT(600, NEVER),
		FIN(1000, OK), DIRTY(1000, 1), GO(1000, CHANGE, 400), FIN(1100, OK),
		WAIT(1100, NEVER), END } },
	{ "throttle 5 per 10 s: the sixth start waits for the window", {
		START,
		REQ(100, MANUAL), GO(100, MANUAL, 100), FIN(150, OK),
		REQ(200, MANUAL), GO(200, MANUAL, 200), FIN(250, OK),
		REQ(300, MANUAL), GO(300, MANUAL, 300), FIN(350, OK),
		REQ(400, MANUAL), GO(400, MANUAL, 400), FIN(450, OK),
		REQ(500, MANUAL), WAIT(500, 10000), GO(10000, MANUAL, 500), END } },
	{ "retry: base * 2^n, max 2, then given up until the next change", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), GO(200, CHANGE, 200),
		FIN(300, FAILED), WAIT(300, 350), GO(350, RETRY, 350),
		FIN(400, FAILED), WAIT(400, 500), GO(500, RETRY, 500),
		FIN(600, FAILED), NOTES(600, 1), WAIT(600, NEVER), DIRTY(600, 1),
		EV(700, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), GO(800, CHANGE, 800),
		FIN(900, OK), DIRTY(900, 0), END } },
	{ "pause holds runs; resume queues one", {
		START,
		PAUSE(100), EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), WAIT(200, NEVER),
		WAIT(5000, NEVER), RESUME(6000), GO(6000, RESUME, 200), FIN(6100, OK), DIRTY(6100, 0),
		END } },
	{ "lock wait: nothing else starts; the wait is measured", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), GO(200, CHANGE, 200), LOCK(200),
		LOCK(450), EV(500, "n1", "r1", "A", "b", 2, 0, APPLIED, 1), WAIT(700, NEVER),
		TAKEN(800, 600), FIN(900, OK), GO(900, CHANGE, 600), END } },
	{ "interrupted: neither success nor failure count", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), GO(200, CHANGE, 200),
		FIN(300, INTERRUPTED), NOTES(300, 0), DIRTY(300, 1), END } },
	/* catch-up gates */
	{ "no run while the full catch-up is owed", {
		OWEFULL(0), REQ(0, STARTUP), WAIT(0, NEVER),
		EV(10, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), WAIT(500, NEVER),
		DONE(600, 1, NULL), GO(600, STARTUP, 0), END } },
	{ "a reload adding a key: no run before its catch-up, even with a change due", {
		START,
		EV(100, "n1", "r1", "A", "a", 1, 0, APPLIED, 1), WAIT(100, 200),
		ADDKEY(150), VAL(150, "ENV_C", NULL), WAIT(200, NEVER), WAIT(5000, NEVER),
		EV(5100, "n2", "r1", "C", "c", 1, 0, APPLIED, 1), WAIT(5200, NEVER),
		DONE(5300, 0, "C"), GO(5300, CHANGE, 200), FIN(5400, OK), VAL(5400, "ENV_C", "c"),
		DIRTY(5400, 0), END } },
	{ "a catch-up of another key pays nothing owed", {
		START, ADDKEY(100), DONE(200, 0, "A"), WAIT(200, NEVER), DONE(300, 0, "C"),
		WAIT(300, NEVER), END } },
};

static int64_t next_or_never(const struct pb_decide_action *a)
{
	return a->next_at;
}

START_TEST(test_case)
{
	const struct dcase *tc = &cases[_i];
	struct pb_debounce_params dp = { 100, 1000, 5, 10000, 0, 2, 50 };
	struct pb_decide_params p, p3;
	struct notes notes = { 0 };
	struct pb_decide *d;
	static struct pb_event ev;
	unsigned id = 1;

	params_for(&p, 0, &dp);
	params_for(&p3, 1, &dp);
	d = pb_decide_new(&p, count_rec, &notes);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(pb_decide_restored(d), 0);
	for (const struct step *s = tc->steps; s->op != OP_END; s++) {
		struct pb_decide_action a;
		struct pb_decide_event in = { &ev, 0, 0, s->at };
		size_t n;
		const struct pb_kv *kv;
		int changed = -1;

		switch (s->op) {
		case OP_EV:
		case OP_BEV:
		case OP_RET:
		case OP_DUPE:
			make_event(&ev, s->op == OP_RET, s->node, s->region, s->key, s->value, s->seq,
				   s->ttl, s->op == OP_DUPE ? 1 : id++);
			in.seen_before = s->op == OP_DUPE;
			ck_assert_msg((int)pb_decide_event(d, s->at, &in, &changed) == s->verdict,
				      "%s: at %" PRId64 ": verdict %s", tc->name, s->at,
				      pb_verdict_name(s->verdict));
			ck_assert_msg(changed == s->changed, "%s: at %" PRId64 ": changed %d, want %d",
				      tc->name, s->at, changed, s->changed);
			if (s->op != OP_BEV)
				pb_decide_settle(d, s->at);
			break;
		case OP_EXPIRE:
			ck_assert_int_eq((int)pb_decide_expire(d, s->at), s->verdict);
			break;
		case OP_REQ:
			pb_decide_request(d, s->at, (enum pb_reason)s->verdict);
			break;
		case OP_PAUSE:
		case OP_RESUME:
			pb_decide_pause(d, s->at, s->op == OP_PAUSE);
			break;
		case OP_WAIT:
			pb_decide_poll(d, s->at, 0, &a);
			ck_assert_msg(!a.start && next_or_never(&a) == s->t,
				      "%s: at %" PRId64 ": start=%d next=%" PRId64 ", want next %" PRId64,
				      tc->name, s->at, a.start, a.next_at, s->t);
			break;
		case OP_GO:
			pb_decide_poll(d, s->at, 0, &a);
			ck_assert_msg(a.start && (int)a.reason == s->verdict && a.queued_at == s->t,
				      "%s: at %" PRId64 ": start=%d reason=%s queued=%" PRId64,
				      tc->name, s->at, a.start, pb_reason_name(a.reason), a.queued_at);
			ck_assert_int_eq(pb_decide_started(d, s->at), 0);
			ck_assert_int_eq(pb_decide_run_state(d), PB_DECIDE_GOING);
			break;
		case OP_LOCK:
			pb_decide_lock_wait(d, s->at);
			ck_assert_int_eq(pb_decide_run_state(d), PB_DECIDE_LOCK_WAIT);
			break;
		case OP_TAKEN:
			ck_assert_int_eq(pb_decide_lock_taken(d, s->at), s->t);
			break;
		case OP_FIN:
			pb_decide_finished(d, s->at, (enum pb_run_status)s->verdict);
			ck_assert_int_eq(pb_decide_run_state(d), PB_DECIDE_IDLE);
			break;
		case OP_ADDKEY: {
			const char *added[] = { "C" };

			ck_assert_int_eq(pb_decide_reload(d, s->at, &p3, added, 1), 0);
			ck_assert(pb_decide_owed(d, NULL, NULL, NULL));
			break;
		}
		case OP_SETTLE:
			pb_decide_settle(d, s->at);
			break;
		case OP_OWEFULL:
			pb_decide_owe_full(d, s->at);
			break;
		case OP_DONE: {
			const char *k[] = { s->key };

			pb_decide_catchup_done(d, s->at, s->verdict, k, s->key ? 1 : 0);
			break;
		}
		case OP_VAL:
			kv = pb_decide_values(d, &n);
			{
				const char *got = NULL;

				for (size_t i = 0; i < n; i++)
					if (!strcmp(kv[i].name, s->key))
						got = kv[i].value;
				ck_assert_msg(s->value ? got && !strcmp(got, s->value) : !got,
					      "%s: at %" PRId64 ": %s=%s, want %s", tc->name, s->at,
					      s->key, got ? got : "(none)", s->value ? s->value : "(none)");
			}
			break;
		case OP_DIRTY:
			ck_assert_msg(pb_decide_dirty(d) == s->verdict, "%s: at %" PRId64 ": dirty",
				      tc->name, s->at);
			break;
		case OP_NOTES:
			ck_assert_int_eq(notes.retry_exhausted, s->verdict);
			break;
		case OP_END:
			break;
		}
	}
	pb_decide_free(d);
}
END_TEST

/* The instant a run became due (its queued_at) does not depend on
 * whether the daemon polled while the throttle held it: replay makes only
 * the polls that start a run. Two cores get the same inputs, one also a
 * poll in between (throttled); they start the run with the same queue
 * time. Throttle 1 per 60 s (a run at 0), quiet 1000 ms, no splay. */
static struct pb_decide *latch_core(void)
{
	static struct pb_debounce_params dp = { 1000, 30000, 1, 60000, 0, 2, 50 };
	static struct pb_decide_params p;
	struct pb_kv ok[] = { { "ENV_A", "x" }, { "ENV_B", "sb" }, { "ENV_L", "lit" } };
	struct pb_provider pv;
	int64_t start0 = 0;
	struct pb_decide *d;

	params_for(&p, 0, &dp);
	d = pb_decide_new(&p, NULL, NULL);
	make_provider(&pv, "n1", "x", 1, NEVER);
	ck_assert_int_eq(pb_decide_restore_provider(d, &pv), 0);
	ck_assert_int_eq(pb_decide_restore_ok_values(d, ok, 3), 0);
	pb_decide_restore_starts(d, &start0, 1);
	ck_assert_int_eq(pb_decide_restored(d), 0);
	pb_decide_restore_running(d, 0, 0, NULL);
	return d;
}

static void latch_value(struct pb_decide *d, int64_t at, const char *value, int64_t seq)
{
	static struct pb_event ev;
	struct pb_decide_event in = { &ev, 0, 0, at };

	make_event(&ev, 0, "n1", "r1", "A", value, seq, 0, (unsigned)seq);
	pb_decide_event(d, at, &in, NULL);
	pb_decide_settle(d, at);
}

START_TEST(test_due_latch)
{
	for (int script = 0; script < 2; script++) {
		int64_t queued[2];

		for (int polled = 0; polled < 2; polled++) {
			struct pb_decide *d = latch_core();
			struct pb_decide_action a;

			latch_value(d, 1000, "y", 2);	/* due at 2000 */
			if (script == 0) {
				if (polled)
					pb_decide_poll(d, 3000, 0, &a);	/* held by the throttle */
				pb_decide_request(d, 4000, PB_REASON_MANUAL);
				latch_value(d, 5000, "x", 3);	/* back to the last good value */
			} else {
				pb_decide_request(d, 1500, PB_REASON_MANUAL);	/* due at 1500 */
				if (polled)
					pb_decide_poll(d, 1500, 0, &a);
				latch_value(d, 5000, "z", 4);
			}
			pb_decide_poll(d, 60000, 0, &a);
			ck_assert_msg(a.start, "script %d, polled %d: the run starts", script, polled);
			queued[polled] = a.queued_at;
			pb_decide_free(d);
		}
		ck_assert_msg(queued[0] == queued[1],
			      "script %d: queued at %" PRId64 " without the poll, %" PRId64 " with it",
			      script, queued[0], queued[1]);
		ck_assert_int_eq(queued[0], script == 0 ? 2000 : 1500);
	}
}
END_TEST

START_TEST(test_pause_notes_and_restore)
{
	struct pb_debounce_params dp = { 100, 1000, 3, 10000, 500, 2, 50 };
	struct pb_decide_params p;
	struct notes notes = { 0 };
	struct pb_decide *d, *e;
	struct pb_decide_action a;
	struct pb_provider pv;
	struct pb_kv ok[] = { { "ENV_A", "x" }, { "ENV_B", "sb" }, { "ENV_L", "lit" } };
	const char *owed[] = { "B" };
	const char *const *ok_keys;
	int64_t starts[] = { -100, -50, -20 };
	size_t n;
	int full;

	params_for(&p, 0, &dp);
	d = pb_decide_new(&p, count_rec, &notes);
	pb_decide_pause(d, 0, 1);
	pb_decide_pause(d, 1, 1);
	pb_decide_pause(d, 2, 0);
	ck_assert_int_eq(notes.pause, 1);
	ck_assert_int_eq(notes.resume, 1);
	ck_assert(!pb_decide_paused(d));
	pb_decide_free(d);

	/* a restart: providers, last good values, throttle window, owed, paused */
	e = pb_decide_new(&p, NULL, NULL);
	make_provider(&pv, "n1", "x", 3, NEVER);
	ck_assert_int_eq(pb_decide_restore_provider(e, &pv), 0);
	ck_assert_int_eq(pb_decide_restore_ok_values(e, ok, 3), 0);
	pb_decide_restore_starts(e, starts, 3);
	ck_assert_int_eq(pb_decide_restore_owed(e, 0, owed, 1), 0);
	pb_decide_restore_paused(e, 1);
	ck_assert_int_eq(pb_decide_restored(e), 0);
	ck_assert(!pb_decide_dirty(e));
	ck_assert(pb_decide_paused(e));
	ck_assert(pb_decide_owed(e, &full, &ok_keys, &n));
	ck_assert(!full && n == 1 && !strcmp(ok_keys[0], "B"));
	pb_decide_request(e, 0, PB_REASON_STARTUP);
	ck_assert(pb_decide_startup_requested(e));
	pb_decide_pause(e, 0, 0);
	pb_decide_poll(e, 0, 7, &a);
	ck_assert(!a.start && a.next_at == NEVER);	/* B is owed */
	pb_decide_catchup_done(e, 1, 0, owed, 1);
	pb_decide_poll(e, 1, 7, &a);
	/* throttle: the window of the last run ago: 3 in 10 s */
	ck_assert(!a.start && a.throttled_until == 9900 && a.next_at == 9900);
	pb_decide_poll(e, 9900, 1003, &a);
	ck_assert(a.splay_drawn && a.splay_ms == 1003 % 501);
	ck_assert(!a.start && a.next_at == 9900 + 1003 % 501);
	pb_decide_poll(e, 9900 + 1003 % 501, 5, &a);
	ck_assert(a.start && !a.splay_drawn && a.reason == PB_REASON_STARTUP);
	ck_assert_int_eq(pb_decide_started(e, a.queued_at), 0);
	ck_assert_ptr_nonnull(pb_decide_run_values(e, &n));
	ck_assert_int_eq(n, 3);
	ck_assert_ptr_nonnull(pb_decide_debounce(e));
	ck_assert_ptr_nonnull(pb_decide_providers(e));
	ck_assert_int_eq(pb_decide_retry_at(e), NEVER);
	pb_decide_finished(e, 10400, PB_RUN_RUNNING);	/* not an end */
	ck_assert_int_eq(pb_decide_run_state(e), PB_DECIDE_GOING);
	pb_decide_finished(e, 10500, PB_RUN_FAILED);
	ck_assert_int_eq(pb_decide_fails_in_row(e), 1);
	ck_assert_int_eq(pb_decide_retry_at(e), 10550);
	ck_assert(pb_decide_pending(e));
	pb_decide_finished(e, 10600, PB_RUN_OK);	/* no run: ignored */
	pb_decide_lock_wait(e, 10600);			/* likewise */
	ck_assert_int_eq(pb_decide_run_state(e), PB_DECIDE_IDLE);
	/* the audit log's highest seq for (node, service) makes older ones stale */
	{
		static struct pb_event ev;
		struct pb_decide_event in = { &ev, 0, 7, 10700 };

		make_event(&ev, 0, "n5", "r1", "A", "y", 6, 0, 99);
		ck_assert_int_eq(pb_decide_event(e, 10700, &in, NULL), PB_VERDICT_STALE);
		in.seq_floor = 0;
		make_event(&ev, 0, "n6", "r1", "A", "y", 6, 0, 98);
		ck_assert_int_eq(pb_decide_event(e, 10700, &in, NULL), PB_VERDICT_APPLIED);
	}
	ck_assert_int_eq(pb_decide_restore_owed(e, 0, owed, 1), 0);
	ck_assert_int_eq(pb_decide_restore_owed(e, 0, owed, 1), 0);	/* once */
	ck_assert(pb_decide_owed(e, NULL, &ok_keys, &n) && n == 1);
	ck_assert_int_eq(pb_decide_fails_in_row(e), 1);
	pb_decide_free(e);
	pb_decide_free(NULL);
}
END_TEST

/* ---- out of memory: every allocation made to fail in turn ----
 * The suite is linked with --wrap for these (Makefile), so the library's
 * calls come here. */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static long alloc_fail_at = -1, alloc_count;

static int alloc_fails(void)
{
	return alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at;
}

void *__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return alloc_fails() ? NULL : __real_strdup(s);
}

/* Every input once, results ignored: nothing may crash or leak. */
static void oom_scenario(void)
{
	struct pb_debounce_params dp = { 100, 1000, 5, 10000, 0, 2, 50 };
	struct pb_decide_params p, p3;
	struct pb_kv ok[] = { { "ENV_A", "x" } };
	const char *c[] = { "C" }, *ab[] = { "A", "B" };
	struct pb_decide_action a;
	struct notes notes = { 0 };
	static struct pb_event ev;
	struct pb_decide_event in = { &ev, 0, 0, 0 };
	struct pb_provider pv;
	struct pb_decide *d;

	params_for(&p, 0, &dp);
	params_for(&p3, 1, &dp);
	if (!(d = pb_decide_new(&p, count_rec, &notes)))
		return;
	make_provider(&pv, "n9", "old", 0, 50);
	pb_decide_restore_provider(d, &pv);
	pb_decide_restore_ok_values(d, ok, 1);
	pb_decide_restore_owed(d, 0, ab, 2);
	pb_decide_restored(d);
	pb_decide_catchup_done(d, 0, 0, ab, 2);
	pb_decide_request(d, 0, PB_REASON_STARTUP);
	make_event(&ev, 0, "n1", "r1", "A", "x", 1, 1, 1);
	pb_decide_event(d, 1, &in, NULL);
	make_event(&ev, 0, "n2", "r1", "B", "y", 1, 0, 2);
	pb_decide_event(d, 2, &in, NULL);
	pb_decide_reload(d, 3, &p3, c, 1);
	pb_decide_catchup_done(d, 4, 0, c, 1);
	make_event(&ev, 0, "n3", "r1", "C", "z", 1, 0, 3);
	pb_decide_event(d, 5, &in, NULL);
	pb_decide_poll(d, 5000, 0, &a);
	if (a.start)
		pb_decide_started(d, 5000);
	pb_decide_finished(d, 5100, PB_RUN_OK);
	pb_decide_expire(d, 6000);
	pb_decide_free(d);
}

START_TEST(test_out_of_memory)
{
	long k;

	for (k = 0; k < 10000; k++) {
		alloc_count = 0;
		alloc_fail_at = k;
		oom_scenario();
		alloc_fail_at = -1;
		if (alloc_count <= k)
			break;	/* every allocation of the scenario has failed once */
	}
	ck_assert_int_lt(k, 10000);
	ck_assert_int_gt(k, 20);
}
END_TEST

/* ---- the simulation ---- */

/* seeds by default: a few seconds; valgrind and the sanitizers are 10-50x slower */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SIM_SEEDS 400
#else
#define SIM_SEEDS (getenv("PB_VALGRIND") ? 200 : 2000)
#endif
#define SIM_NODES 4
#define SIM_MAX_STARTS 4096

struct sim {
	uint64_t seed, rng;
	int verbose;
	struct pb_debounce_params dp;
	struct pb_decide_params p2, p3;
	int with_c;
	struct pb_decide *d;
	struct notes notes;
	int64_t now;
	unsigned next_id;
	int64_t seqs[SIM_NODES];
	/* the runner */
	int running;
	int64_t run_ends;
	int run_fails, run_locked;
	/* the model */
	int startup;		/* the startup request was made (this incarnation) */
	int owe_full, owe_c;	/* catch-ups owed, as the sim knows them */
	int paused;
	int justified;		/* something since the last start asks for a run */
	int gave_up;		/* retries exhausted and nothing since */
	int64_t starts[SIM_MAX_STARTS];
	int n_starts;
	struct pb_kv *ok;	/* values of the last successful run (the audit log) */
	size_t n_ok;
	int have_ok;
	char fail[512];
};

static uint64_t rnd(struct sim *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static int pick(struct sim *s, int n)
{
	return (int)(rnd(s) % (uint64_t)n);
}

static void sim_rec(void *ctx, const struct pb_decide_rec *r)
{
	struct sim *s = ctx;

	count_rec(&s->notes, r);
	if (r->kind == PB_DECIDE_REC_VALUES) {
		s->justified = 1;
		s->gave_up = 0;
	}
	if (r->kind == PB_DECIDE_REC_NOTE && !strcmp(r->note_kind, "retry-exhausted"))
		s->gave_up = 1;
	if (s->verbose && r->kind == PB_DECIDE_REC_NOTE)
		printf("  %" PRId64 " note %s\n", r->at, r->note_kind);
}

#define CHECK(s, cond, ...) do { \
	if (!(s)->fail[0] && !(cond)) \
		snprintf((s)->fail, sizeof((s)->fail), __VA_ARGS__); \
} while (0)

/* The values agree with a full computation from the providers. */
static void check_values(struct sim *s)
{
	const struct pb_decide_params *p = s->with_c ? &s->p3 : &s->p2;
	struct pb_kv *kv;
	size_t n, nv;
	const struct pb_kv *v = pb_decide_values(s->d, &nv);

	if (pb_providers_values(pb_decide_providers(s->d), p->wants, p->n_wants, &p->filter,
				p->statics, p->n_statics, p->public_only, &kv, &n) < 0)
		return;
	CHECK(s, pb_kv_equal(kv, n, v, nv), "values differ from a full computation");
	pb_kv_free_array(kv, n);
}

static void check_invariants(struct sim *s)
{
	size_t n;
	int dirty = pb_decide_dirty(s->d);
	const struct pb_kv *ok = pb_decide_ok_values(s->d, &n);

	CHECK(s, (pb_decide_run_state(s->d) != PB_DECIDE_IDLE) == s->running,
	      "the core's run state and the runner disagree");
	CHECK(s, s->have_ok ? ok && pb_kv_equal(ok, n, s->ok, s->n_ok) : !ok,
	      "the last good values differ from those of the last successful run");
	/* every change is followed by a run with those values, or pending */
	CHECK(s, !dirty || s->running || pb_decide_pending(s->d) || s->paused || !s->startup ||
	      s->owe_full || s->owe_c || s->gave_up,
	      "values differ from the last good run's and nothing is pending");
	check_values(s);
}

static void sim_poll(struct sim *s)
{
	struct pb_decide_action a;
	int64_t per = s->dp.throttle_per_ms;
	int in_window = 0;

	pb_decide_poll(s->d, s->now, rnd(s), &a);
	CHECK(s, a.next_at == NEVER || a.next_at > s->now || a.start,
	      "poll: next deadline %" PRId64 " is not in the future", a.next_at);
	if (!a.start)
		return;
	CHECK(s, !s->running, "two runs at once");
	CHECK(s, s->startup, "a run before the startup request");
	CHECK(s, !s->owe_full && !s->owe_c, "a run before an owed catch-up");
	CHECK(s, !s->paused, "a run while paused");
	CHECK(s, s->justified, "a run nothing asked for (a second follow-up?)");
	CHECK(s, a.reason != PB_REASON_CHANGE || pb_decide_dirty(s->d),
	      "a change run with the values of the last good run (A -> B -> A)");
	for (int i = 0; i < s->n_starts; i++)
		in_window += s->starts[i] > s->now - per;
	CHECK(s, in_window < s->dp.throttle_runs, "throttle: %d starts in the window already",
	      in_window);
	if (s->verbose)
		printf("  %" PRId64 " start reason=%s queued=%" PRId64 "\n", s->now,
		       pb_reason_name(a.reason), a.queued_at);
	if (pb_decide_started(s->d, s->now) < 0)
		return;
	if (s->n_starts < SIM_MAX_STARTS)
		s->starts[s->n_starts++] = s->now;
	s->justified = 0;
	s->running = 1;
	s->run_locked = pick(s, 6) == 0;
	if (s->run_locked)
		pb_decide_lock_wait(s->d, s->now);
	s->run_ends = s->now + 1 + pick(s, 400);
	s->run_fails = pick(s, 5) == 0;
}

static void sim_finish(struct sim *s, enum pb_run_status st)
{
	size_t n;
	const struct pb_kv *rv = pb_decide_run_values(s->d, &n);

	if (st == PB_RUN_OK) {
		pb_kv_free_array(s->ok, s->n_ok);
		s->ok = pb_decide_kv_copy(rv, n);
		s->n_ok = n;
		s->have_ok = s->ok != NULL;
	}
	if (s->run_locked)
		pb_decide_lock_taken(s->d, s->now);
	pb_decide_finished(s->d, s->now, st);
	if (st != PB_RUN_OK)
		s->justified = 1;	/* a retry may follow */
	s->running = 0;
	if (s->verbose)
		printf("  %" PRId64 " finished %d\n", s->now, (int)st);
}

static void sim_event(struct sim *s)
{
	static struct pb_event ev;
	static const char *vals[] = { "v1", "v2", "v3" };
	static const char *keys[] = { "A", "B", "C", "Z" };
	char node[8];
	int nd = pick(s, SIM_NODES), retire = pick(s, 5) == 0, seen = pick(s, 20) == 0;
	int64_t seq = pick(s, 8) == 0 ? s->seqs[nd] - 1 : ++s->seqs[nd];
	struct pb_decide_event in = { &ev, seen, 0, s->now };
	int changed;
	enum pb_verdict v;

	snprintf(node, sizeof(node), "n%d", nd);
	make_event(&ev, retire, node, pick(s, 6) ? "r1" : "r2", keys[pick(s, 4)],
		   vals[pick(s, 3)], seq < 0 ? 0 : seq, pick(s, 4) == 0 ? 1 + pick(s, 3) : 0,
		   s->next_id++);
	v = pb_decide_event(s->d, s->now, &in, &changed);
	CHECK(s, !seen || v == PB_VERDICT_DUPLICATE, "seen before but %s", pb_verdict_name(v));
	CHECK(s, seen || strcmp(ev.region, "r2") || v != PB_VERDICT_APPLIED,
	      "a region not accepted was applied");
	CHECK(s, v == PB_VERDICT_APPLIED || !changed, "%s changed the values", pb_verdict_name(v));
	if (s->verbose)
		printf("  %" PRId64 " event %s %s %s=%s seq=%" PRId64 " ttl=%" PRId64 " -> %s%s\n",
		       s->now, retire ? "retire" : "provides", node, ev.key, ev.value, ev.seq,
		       ev.ttl_s, pb_verdict_name(v), changed ? " changed" : "");
}

/* A restart: a new core built from what the audit log holds. */
static void sim_restart(struct sim *s)
{
	struct pb_decide *n = pb_decide_new(s->with_c ? &s->p3 : &s->p2, sim_rec, s);
	struct pb_providers *old = pb_decide_providers(s->d);
	const char *c[] = { "C" };
	const struct pb_kv *ov, *nv;
	size_t on, nn;

	for (size_t i = 0; i < pb_providers_count(old); i++)
		pb_decide_restore_provider(n, pb_providers_at(old, i));
	if (s->have_ok)
		pb_decide_restore_ok_values(n, s->ok, s->n_ok);
	pb_decide_restore_starts(n, s->starts, s->n_starts < 1024 ? s->n_starts : 1024);
	pb_decide_restore_owed(n, s->owe_full, c, s->owe_c ? 1 : 0);
	pb_decide_restore_paused(n, s->paused);
	pb_decide_restored(n);
	ov = pb_decide_values(s->d, &on);
	nv = pb_decide_values(n, &nn);
	CHECK(s, pb_kv_equal(ov, on, nv, nn), "a restart changed the values");
	CHECK(s, pb_decide_dirty(n) == pb_decide_dirty(s->d), "a restart changed what is pending");
	CHECK(s, pb_decide_paused(n) == s->paused, "a restart lost the pause");
	CHECK(s, pb_decide_owed(n, NULL, NULL, NULL) == (s->owe_full || s->owe_c),
	      "a restart lost an owed catch-up");
	pb_decide_free(s->d);
	s->d = n;
	s->running = 0;		/* the run was interrupted with the daemon */
	s->startup = 0;
	s->justified = 0;
	s->gave_up = 0;
	if (s->verbose)
		printf("  %" PRId64 " restart\n", s->now);
}

static void sim_step(struct sim *s)
{
	int r = pick(s, 100);

	if (r < 40) {
		sim_event(s);
	} else if (r < 45) {
		pb_decide_settle(s->d, s->now);
	} else if (r < 48) {
		pb_decide_request(s->d, s->now, PB_REASON_MANUAL);
		s->justified = 1;
		s->gave_up = 0;
	} else if (r < 50) {
		s->paused = !s->paused;
		pb_decide_pause(s->d, s->now, s->paused);
		if (!s->paused) {
			s->justified = 1;
			s->gave_up = 0;
		}
	} else if (r < 52 && !s->with_c) {
		const char *c[] = { "C" };

		s->with_c = 1;
		s->owe_c = 1;
		pb_decide_reload(s->d, s->now, &s->p3, c, 1);
	} else if (r < 54 && (s->owe_full || s->owe_c)) {
		const char *c[] = { "C" };
		int full = s->owe_full;

		pb_decide_catchup_done(s->d, s->now, full, c, s->owe_c ? 1 : 0);
		s->owe_full = s->owe_c = 0;
	} else if (r < 55) {
		s->owe_full = 1;
		s->owe_c = 0;
		pb_decide_owe_full(s->d, s->now);
	} else if (r < 57 && !s->startup) {
		s->startup = 1;
		s->justified = 1;
		pb_decide_request(s->d, s->now, PB_REASON_STARTUP);
	} else if (r < 58) {
		sim_restart(s);
	}
}

/* Advances time to the next thing: the runner, a core deadline, or a
 * random gap for the next input. */
static void sim_advance(struct sim *s, int inputs)
{
	struct pb_decide_action a;
	int64_t next;

	pb_decide_poll(s->d, s->now, 0, &a);	/* the splay is drawn already when due */
	next = a.start ? s->now : a.next_at;
	if (s->running && s->run_ends < next)
		next = s->run_ends;
	if (inputs) {
		int64_t gap = s->now + pick(s, 300);

		if (gap < next)
			next = gap;
	}
	if (next == NEVER)
		return;
	if (next > s->now)
		s->now = next;
	if (s->running && s->now >= s->run_ends) {
		if (s->run_locked && pick(s, 2))
			pb_decide_lock_taken(s->d, s->now), s->run_locked = 0;
		sim_finish(s, s->run_fails && inputs ? PB_RUN_FAILED : PB_RUN_OK);
	}
	pb_decide_expire(s->d, s->now);
}

/* One seed: returns 0, or -1 with s->fail. */
static int sim_run(uint64_t seed, int verbose, char *why, size_t size)
{
	struct sim *s = calloc(1, sizeof(*s));
	int rc = 0, i;

	s->seed = seed;
	s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	s->verbose = verbose;
	s->dp.quiet_ms = 1 + pick(s, 200);
	s->dp.max_wait_ms = s->dp.quiet_ms + pick(s, 1000);
	s->dp.throttle_runs = 1 + pick(s, 4);
	s->dp.throttle_per_ms = pick(s, 3000);
	s->dp.splay_ms = pick(s, 2) ? 0 : pick(s, 300);
	s->dp.retry_max = pick(s, 4);
	s->dp.retry_base_ms = 1 + pick(s, 100);
	params_for(&s->p2, 0, &s->dp);
	params_for(&s->p3, 1, &s->dp);
	s->next_id = 1;
	s->d = pb_decide_new(&s->p2, sim_rec, s);
	pb_decide_restored(s->d);
	if (pick(s, 2)) {
		s->owe_full = 1;
		pb_decide_owe_full(s->d, 0);
	}
	for (i = 0; i < 300 && !s->fail[0]; i++) {
		sim_step(s);
		sim_poll(s);
		check_invariants(s);
		sim_advance(s, 1);
		sim_poll(s);
		check_invariants(s);
	}
	/* drain: no more inputs but what lets it settle; every run succeeds */
	if (!s->startup)
		pb_decide_request(s->d, s->now, PB_REASON_STARTUP), s->startup = 1;
	if (s->paused)
		pb_decide_pause(s->d, s->now, 0), s->paused = 0;
	if (s->owe_full || s->owe_c) {
		const char *c[] = { "C" };

		pb_decide_catchup_done(s->d, s->now, s->owe_full, c, s->owe_c ? 1 : 0);
		s->owe_full = s->owe_c = 0;
	}
	s->justified = 1;
	for (i = 0; i < 1000 && !s->fail[0]; i++) {
		s->run_fails = 0;
		sim_poll(s);
		check_invariants(s);
		if (!s->running && !pb_decide_pending(s->d) &&
		    pb_providers_next_expiry(pb_decide_providers(s->d)) == NEVER)
			break;
		sim_advance(s, 0);
	}
	CHECK(s, !s->running && !pb_decide_pending(s->d), "the drain did not settle");
	CHECK(s, !pb_decide_dirty(s->d) || s->gave_up,
	      "after the drain the values are not those of the last good run");
	if (s->fail[0]) {
		snprintf(why, size, "seed %" PRIu64 " at %" PRId64 " ms: %s", seed, s->now, s->fail);
		rc = -1;
	}
	pb_kv_free_array(s->ok, s->n_ok);
	pb_decide_free(s->d);
	free(s);
	return rc;
}

START_TEST(test_simulation)
{
	const char *one = getenv("PB_DECIDE_SEED"), *many = getenv("PB_DECIDE_SEEDS");
	uint64_t n = many ? strtoull(many, NULL, 10) : SIM_SEEDS, first = 1;
	char why[768];
	int failed = 0;

	if (one) {
		first = strtoull(one, NULL, 10);
		n = 1;
	}
	for (uint64_t seed = first; seed < first + n; seed++)
		if (sim_run(seed, one != NULL, why, sizeof(why)) < 0) {
			fprintf(stderr, "test_decide: %s (replay: PB_DECIDE_SEED=%" PRIu64 ")\n",
				why, seed);
			failed++;
			if (failed >= 5)
				break;
		}
	ck_assert_msg(!failed, "%d seed(s) failed, the first: %s", failed, why);
}
END_TEST

static Suite *decide_suite(void)
{
	Suite *s = suite_create("decide");
	TCase *tc = tcase_create("rules");
	TCase *sim = tcase_create("simulation");

	tcase_add_loop_test(tc, test_case, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_pause_notes_and_restore);
	tcase_add_test(tc, test_due_latch);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	tcase_set_timeout(sim, 120);
	tcase_add_test(sim, test_simulation);
	suite_add_tcase(s, sim);
	return s;
}

int main(void)
{
	return pb_suite_run(decide_suite());
}
