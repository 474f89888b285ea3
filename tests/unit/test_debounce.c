/* test_debounce.c — the run-start rules of provbus-consumer(1), as scripts with
 * explicit times.
 *
 * A case is a parameter set, a splay draw, recent start times to seed and
 * a script of steps "at T do X" / "at T expect Y". Every poll step is
 * made twice at the same time and must answer the same (poll is
 * idempotent and never redraws the splay).
 *
 *   CHANGE(t)         values changed, now differ from the last good run
 *   SAME(t)           values changed back to those of the last good run
 *   EXPIRE(t)         a lease ran out (dirty)
 *   REQUEST(t, r)     startup / manual / resume
 *   PAUSE(t) UNPAUSE(t)
 *   WAIT(t, next)     poll: no start, next deadline = next
 *   IDLE(t)           poll: no start, nothing to wait for
 *   GO(t, r, q)       poll: start with reason r, queued at q; then started(t)
 *   DUE(t, r, q)      poll: start with reason r, queued at q (not started)
 *   OK(t, dirty)      the run ended with status 0; dirty as the caller computes
 *   FAIL(t, dirty)    the run failed
 *   PENDING(t, x)     pb_debounce_pending() == x
 *   DRAWS(t, n)       the splay was drawn n times so far
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debounce.h"
#include "suite_main.h"

#define NEVER PB_TIME_NEVER

enum op {
	OP_END = 0, OP_CHANGE, OP_SAME, OP_EXPIRE, OP_REQUEST, OP_PAUSE, OP_UNPAUSE,
	OP_WAIT, OP_GO, OP_DUE, OP_OK, OP_FAIL, OP_PENDING, OP_DRAWS,
};

struct step {
	int64_t at;
	enum op op;
	int arg;		/* reason for REQUEST, dirty for OK/FAIL, value for PENDING/DRAWS */
	enum pb_reason reason;	/* expected, GO/DUE */
	int64_t t;		/* next_at for WAIT, queued_at for GO/DUE */
};

#define CHANGE(at)        { at, OP_CHANGE, 0, 0, 0 }
#define SAME(at)          { at, OP_SAME, 0, 0, 0 }
#define EXPIRE(at)        { at, OP_EXPIRE, 0, 0, 0 }
#define REQUEST(at, r)    { at, OP_REQUEST, PB_REASON_##r, 0, 0 }
#define PAUSE(at)         { at, OP_PAUSE, 0, 0, 0 }
#define UNPAUSE(at)       { at, OP_UNPAUSE, 0, 0, 0 }
#define WAIT(at, next)    { at, OP_WAIT, 0, 0, next }
#define IDLE(at)          { at, OP_WAIT, 0, 0, NEVER }
#define GO(at, r, q)      { at, OP_GO, 0, PB_REASON_##r, q }
#define DUE(at, r, q)     { at, OP_DUE, 0, PB_REASON_##r, q }
#define OK(at, dirty)     { at, OP_OK, dirty, 0, 0 }
#define FAIL(at, dirty)   { at, OP_FAIL, dirty, 0, 0 }
#define PENDING(at, x)    { at, OP_PENDING, x, 0, 0 }
#define DRAWS(at, n)      { at, OP_DRAWS, n, 0, 0 }
#define END               { 0, OP_END, 0, 0, 0 }

#define MAX_STEPS 48
#define MAX_SEEDS 8

struct dcase {
	const char *name;
	struct pb_debounce_params p;
	int64_t draw;		/* what the rand function returns */
	int64_t seeds[MAX_SEEDS];
	int n_seeds;
	struct step steps[MAX_STEPS];
};

/* quiet 2 s, max wait 30 s, no throttle, no splay, 3 retries from 1 s */
#define P_DEFAULT { 2000, 30000, 0, 0, 0, 3, 1000 }
#define P_THROTTLE { 2000, 30000, 2, 10000, 0, 3, 1000 }

static const struct dcase cases[] = {
	{ "burst of changes: one start at last + quiet", P_DEFAULT, 0, {0}, 0, {
		PENDING(0, 0), IDLE(0),
		CHANGE(0), PENDING(0, 1), WAIT(0, 2000),
		CHANGE(500), WAIT(500, 2500),
		CHANGE(1500), WAIT(1500, 3500),
		WAIT(2500, 3500), WAIT(3499, 3500),
		GO(3500, CHANGE, 3500), PENDING(3500, 0),
		IDLE(3600),
		OK(5000, 0), IDLE(5000), IDLE(99999), END } },
	{ "never quiet: start at first + max_wait", { 2000, 5000, 0, 0, 0, 3, 1000 }, 0, {0}, 0, {
		CHANGE(0), WAIT(0, 2000),
		CHANGE(1000), WAIT(1000, 3000),
		CHANGE(2000), WAIT(2000, 4000),
		CHANGE(3000), WAIT(3000, 5000),
		CHANGE(4000), WAIT(4000, 5000),
		CHANGE(4999), WAIT(4999, 5000),
		GO(5000, CHANGE, 5000), OK(5100, 0), IDLE(5100), END } },
	{ "A -> B -> A before a run: no run", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), WAIT(0, 2000),
		SAME(1000), PENDING(1000, 0), IDLE(1000), IDLE(2000), IDLE(40000), END } },
	{ "A -> B -> A after the quiet fired, before the start: no run", P_THROTTLE, 0, {0}, 0, {
		REQUEST(0, MANUAL), GO(0, MANUAL, 0), OK(10, 0),
		REQUEST(20, MANUAL), GO(20, MANUAL, 20), OK(30, 0),
		CHANGE(100), WAIT(100, 2100), WAIT(2100, 10000),
		SAME(3000), IDLE(3000), IDLE(10000), END } },
	{ "changes during a run: exactly one follow-up", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000),
		CHANGE(2500), IDLE(2500), CHANGE(3000), CHANGE(3200), IDLE(3200),
		OK(4000, 1), PENDING(4000, 1), WAIT(4000, 5200),
		GO(5200, CHANGE, 5200), OK(6000, 0), IDLE(6000), IDLE(60000), END } },
	{ "quiet ran out during the run: follow-up at once after it", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000),
		CHANGE(2100), IDLE(5000),
		OK(9000, 1), GO(9000, CHANGE, 4100), OK(9500, 0), IDLE(9500), END } },
	{ "changes during a run undone by the run's end: no follow-up", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000),
		CHANGE(2500), OK(4000, 0), PENDING(4000, 0), IDLE(4000), IDLE(9000), END } },
	{ "B -> A during a run (clean vs the old run) still follows up", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000),
		SAME(2500), OK(4000, 1), GO(4500, CHANGE, 4500), OK(5000, 0), IDLE(5000), END } },
	{ "no change during a run, clean after it: nothing", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, STARTUP), GO(0, STARTUP, 0), OK(3000, 0), IDLE(3000), END } },
	{ "throttle 2 per 10 s: the third start waits, never dropped", P_THROTTLE, 0, {0}, 0, {
		REQUEST(0, MANUAL), GO(0, MANUAL, 0), OK(100, 0),
		REQUEST(1000, MANUAL), GO(1000, MANUAL, 1000), OK(1100, 0),
		REQUEST(2000, MANUAL), WAIT(2000, 10000), WAIT(9999, 10000),
		PENDING(9999, 1),
		GO(10000, MANUAL, 2000), OK(10100, 0),
		REQUEST(10500, MANUAL), WAIT(10500, 11000),
		GO(11000, MANUAL, 10500), OK(11100, 0),
		CHANGE(12000), WAIT(12000, 14000), WAIT(14000, 20000),
		CHANGE(15000), WAIT(15000, 20000),	/* due already: a later change does not postpone */
		GO(20000, CHANGE, 14000), OK(20100, 0), END } },
	{ "seed_starts restores the window", P_THROTTLE, 0, { -20000, -5000, -9000 }, 3, {
		REQUEST(0, STARTUP), WAIT(0, 1000), WAIT(999, 1000),
		GO(1000, STARTUP, 0), OK(1200, 0),
		REQUEST(1500, MANUAL), WAIT(1500, 5000),
		GO(5000, MANUAL, 1500), OK(5100, 0), END } },
	{ "seeds out of the window do not throttle", P_THROTTLE, 0, { -10000, -30000 }, 2, {
		REQUEST(0, STARTUP), GO(0, STARTUP, 0), OK(10, 0), END } },
	{ "splay: the drawn delay, drawn once per start", { 2000, 30000, 0, 0, 5000, 3, 1000 },
	  3000, {0}, 0, {
		CHANGE(0), WAIT(0, 2000), DRAWS(0, 0),
		WAIT(2000, 5000), DRAWS(2000, 1),
		CHANGE(2500), WAIT(2500, 5000), WAIT(4999, 5000), DRAWS(4999, 1),
		GO(5000, CHANGE, 2000), DRAWS(5000, 1), OK(5100, 0),
		REQUEST(6000, MANUAL), WAIT(6000, 9000), DRAWS(6000, 2),
		GO(9000, MANUAL, 6000), OK(9100, 0), DRAWS(9100, 2), END } },
	{ "splay: a draw above the limit is held to splay_ms", { 0, 0, 0, 0, 500, 3, 1000 },
	  99999, {0}, 0, {
		REQUEST(0, MANUAL), WAIT(0, 500), GO(500, MANUAL, 0), END } },
	{ "splay after the throttle: drawn when the window frees", { 2000, 30000, 1, 10000, 1000, 3, 1000 },
	  700, {0}, 0, {
		REQUEST(0, MANUAL), WAIT(0, 700), GO(700, MANUAL, 0), OK(800, 0),
		REQUEST(1000, MANUAL), WAIT(1000, 10700), DRAWS(1000, 1),
		WAIT(10700, 11400), DRAWS(10700, 2), GO(11400, MANUAL, 1000), END } },
	{ "a same-value change while a retry is due: it stays due, its splay is not drawn again",
	  { 2000, 30000, 0, 0, 5000, 3, 1000 }, 5000, {0}, 0, {
		REQUEST(0, STARTUP), WAIT(0, 5000), DRAWS(0, 1), GO(5000, STARTUP, 0),
		FAIL(6000, 1), WAIT(6000, 7000), WAIT(7000, 12000), DRAWS(7000, 2),
		SAME(8000), PENDING(8000, 1), WAIT(9000, 12000), DRAWS(9000, 2),
		GO(12000, RETRY, 7000), END } },
	{ "failing run: retried at base, 2 base, 4 base, then given up", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000),
		FAIL(2100, 1), PENDING(2100, 1), WAIT(2100, 3100),
		GO(3100, RETRY, 3100), FAIL(3200, 1), WAIT(3200, 5200),
		GO(5200, RETRY, 5200), FAIL(5300, 1), WAIT(5300, 9300),
		GO(9300, RETRY, 9300), FAIL(9400, 1),
		PENDING(9400, 0), IDLE(9400), IDLE(100000),
		/* the next change starts over from base */
		CHANGE(200000), GO(202000, CHANGE, 202000),
		FAIL(202500, 1), WAIT(202500, 203500), END } },
	{ "success resets the retries", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, STARTUP), GO(0, STARTUP, 0),
		FAIL(100, 1), GO(1100, RETRY, 1100),
		FAIL(1200, 1), GO(3200, RETRY, 3200), OK(3300, 0), IDLE(3300),
		CHANGE(4000), GO(6000, CHANGE, 6000),
		FAIL(6100, 1), WAIT(6100, 7100), END } },
	{ "a failed clean run (startup) is retried too", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, STARTUP), GO(0, STARTUP, 0), FAIL(100, 0), WAIT(100, 1100),
		GO(1100, RETRY, 1100), OK(1200, 0), IDLE(1200), END } },
	{ "retry_max 0: no retry", { 2000, 30000, 0, 0, 0, 0, 1000 }, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000), FAIL(2100, 1), IDLE(2100), END } },
	{ "given up: a change during the last run still follows up", { 2000, 30000, 0, 0, 0, 0, 1000 },
	  0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000), CHANGE(2050), FAIL(2100, 1),
		WAIT(2100, 4050), GO(4050, CHANGE, 4050), END } },
	{ "failed run with a change during it: change and retry both pending", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000), CHANGE(2050), FAIL(2100, 1),
		WAIT(2100, 3100), GO(3100, RETRY, 3100), OK(3200, 0), IDLE(3200), END } },
	{ "pause holds; unpause + resume request starts", P_DEFAULT, 0, {0}, 0, {
		PAUSE(0), CHANGE(0), IDLE(0), IDLE(2000), IDLE(50000), PENDING(50000, 1),
		UNPAUSE(60000), REQUEST(60000, RESUME), GO(60000, RESUME, 2000),
		OK(60100, 0), IDLE(60100), END } },
	{ "pause during a run holds the follow-up", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000), PAUSE(2100), CHANGE(2200),
		OK(3000, 1), IDLE(3000), IDLE(10000),
		UNPAUSE(11000), REQUEST(11000, RESUME), GO(11000, RESUME, 4200), END } },
	{ "manual request during quiet starts at once", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), WAIT(0, 2000), REQUEST(500, MANUAL), GO(500, MANUAL, 500),
		OK(600, 0), IDLE(600), IDLE(3000), END } },
	{ "manual request during a run: one run after it", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, STARTUP), GO(0, STARTUP, 0), REQUEST(50, MANUAL),
		REQUEST(60, MANUAL), IDLE(70), OK(100, 0), GO(100, MANUAL, 50),
		OK(200, 0), IDLE(200), END } },
	{ "startup request", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, STARTUP), PENDING(0, 1), GO(0, STARTUP, 0), PENDING(0, 0),
		OK(5, 0), IDLE(5), END } },
	{ "priority: expiry over change", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), EXPIRE(100), GO(2100, EXPIRY, 2100), OK(2200, 0),
		EXPIRE(3000), CHANGE(3100), GO(5100, EXPIRY, 5100), OK(5200, 0),
		CHANGE(6000), GO(8000, CHANGE, 8000), END } },
	{ "priority: retry over change", { 500, 30000, 0, 0, 0, 3, 1000 }, 0, {0}, 0, {
		CHANGE(0), GO(500, CHANGE, 500), FAIL(600, 1),
		CHANGE(700), WAIT(700, 1200), GO(1200, RETRY, 1200), END } },
	{ "priority: manual > startup > resume", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, RESUME), REQUEST(0, STARTUP), DUE(0, STARTUP, 0),
		REQUEST(1, MANUAL), DUE(1, MANUAL, 0), GO(2, MANUAL, 0), OK(3, 0),
		REQUEST(10, RESUME), CHANGE(10), EXPIRE(10), GO(10, RESUME, 10), END } },
	{ "a change after the quiet fired (no poll between) does not postpone", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), CHANGE(2500), GO(2500, CHANGE, 2000), END } },
	{ "priority: retry over expiry", P_DEFAULT, 0, {0}, 0, {
		REQUEST(0, MANUAL), GO(0, MANUAL, 0), FAIL(100, 1),
		EXPIRE(200), GO(1100, RETRY, 1100), END } },
	{ "a due change undone while throttled: the retry is due on its own", { 500, 30000, 1, 10000, 0, 3, 1000 },
	  0, {0}, 0, {
		REQUEST(0, MANUAL), GO(0, MANUAL, 0), FAIL(100, 1),
		CHANGE(200), WAIT(200, 700), WAIT(700, 10000),
		SAME(800), WAIT(800, 1100), WAIT(1100, 10000), GO(10000, RETRY, 1100), END } },
	{ "a follow-up due during the run, undone at its end, leaves nothing due", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000), CHANGE(2100), CHANGE(4200),
		OK(5000, 0), CHANGE(5000), WAIT(5000, 7000), GO(7000, CHANGE, 7000), END } },
	{ "... and after a failed run, the retry waits for its time", P_DEFAULT, 0, {0}, 0, {
		CHANGE(0), GO(2000, CHANGE, 2000), CHANGE(2100), CHANGE(4200),
		FAIL(5000, 0), WAIT(5000, 6000), GO(6000, RETRY, 6000), END } },
	{ "poll is idempotent", { 2000, 30000, 1, 1000, 400, 3, 1000 }, 100, {0}, 0, {
		CHANGE(0), WAIT(0, 2000), WAIT(0, 2000),
		WAIT(2000, 2100), WAIT(2000, 2100), WAIT(2050, 2100), DRAWS(2050, 1),
		DUE(2100, CHANGE, 2000), DUE(2100, CHANGE, 2000), DRAWS(2100, 1),
		GO(2100, CHANGE, 2000), IDLE(2100), IDLE(2100), END } },
};

#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

struct draws {
	int64_t value;
	int n;
};

static int64_t fixed_rand(void *ctx, int64_t max_ms)
{
	struct draws *dr = ctx;

	ck_assert_int_ge(max_ms, 0);
	dr->n++;
	return dr->value;
}

static void poll_twice(struct pb_debounce *d, int64_t now, struct draws *dr,
		       struct pb_debounce_due *out)
{
	struct pb_debounce_due again;

	pb_debounce_poll(d, now, fixed_rand, dr, out);
	pb_debounce_poll(d, now, fixed_rand, dr, &again);
	ck_assert_int_eq(out->start, again.start);
	ck_assert_int_eq(out->next_at, again.next_at);
	if (out->start) {
		ck_assert_int_eq(out->reason, again.reason);
		ck_assert_int_eq(out->queued_at, again.queued_at);
	}
}

START_TEST(test_script)
{
	const struct dcase *c = &cases[_i];
	struct pb_debounce d;
	struct draws dr = { c->draw, 0 };
	int64_t last = INT64_MIN;
	int i;

	pb_debounce_init(&d, &c->p);
	if (c->n_seeds)
		pb_debounce_seed_starts(&d, c->seeds, c->n_seeds);
	for (i = 0; c->steps[i].op != OP_END; i++) {
		const struct step *s = &c->steps[i];
		struct pb_debounce_due out;

		ck_assert_msg(s->at >= last, "%s: step %d goes back in time", c->name, i);
		last = s->at;
		switch (s->op) {
		case OP_CHANGE:
		case OP_SAME:
			pb_debounce_change(&d, s->at, PB_REASON_CHANGE, s->op == OP_CHANGE);
			break;
		case OP_EXPIRE:
			pb_debounce_change(&d, s->at, PB_REASON_EXPIRY, 1);
			break;
		case OP_REQUEST:
			pb_debounce_request(&d, s->at, (enum pb_reason)s->arg);
			break;
		case OP_PAUSE:
		case OP_UNPAUSE:
			pb_debounce_pause(&d, s->op == OP_PAUSE);
			break;
		case OP_WAIT:
			poll_twice(&d, s->at, &dr, &out);
			ck_assert_msg(!out.start, "%s: step %d (at %lld): started (%s), expected a wait",
				      c->name, i, (long long)s->at, pb_reason_name(out.reason));
			ck_assert_msg(out.next_at == s->t,
				      "%s: step %d (at %lld): next_at %lld, expected %lld", c->name, i,
				      (long long)s->at, (long long)out.next_at, (long long)s->t);
			break;
		case OP_GO:
		case OP_DUE:
			poll_twice(&d, s->at, &dr, &out);
			ck_assert_msg(out.start, "%s: step %d (at %lld): no start (next_at %lld)",
				      c->name, i, (long long)s->at, (long long)out.next_at);
			ck_assert_msg(out.reason == s->reason, "%s: step %d: reason %s, expected %s",
				      c->name, i, pb_reason_name(out.reason), pb_reason_name(s->reason));
			ck_assert_msg(out.queued_at == s->t, "%s: step %d: queued_at %lld, expected %lld",
				      c->name, i, (long long)out.queued_at, (long long)s->t);
			if (s->op == OP_GO) {
				pb_debounce_started(&d, s->at);
				ck_assert(pb_debounce_running(&d));
			}
			break;
		case OP_OK:
		case OP_FAIL:
			ck_assert_msg(pb_debounce_running(&d), "%s: step %d: no run to end", c->name, i);
			pb_debounce_finished(&d, s->at, s->op == OP_OK, s->arg);
			ck_assert(!pb_debounce_running(&d));
			break;
		case OP_PENDING:
			ck_assert_msg(pb_debounce_pending(&d) == s->arg, "%s: step %d: pending %d",
				      c->name, i, pb_debounce_pending(&d));
			break;
		case OP_DRAWS:
			ck_assert_msg(dr.n == s->arg, "%s: step %d: %d draws, expected %d", c->name, i,
				      dr.n, s->arg);
			break;
		case OP_END:
			break;
		}
	}
}
END_TEST

START_TEST(test_reason_names)
{
	static const char *const names[] = { "startup", "change", "resume", "manual", "retry",
					     "expiry" };
	enum pb_reason r;
	int i;

	for (i = 0; i < PB_REASON__COUNT; i++) {
		ck_assert_str_eq(pb_reason_name((enum pb_reason)i), names[i]);
		ck_assert_int_eq(pb_reason_parse(names[i], &r), 0);
		ck_assert_int_eq(r, i);
	}
	ck_assert_int_eq(pb_reason_parse("Change", &r), -1);
	ck_assert_int_eq(pb_reason_parse("", &r), -1);
	ck_assert_int_eq(pb_reason_parse(NULL, &r), -1);
}
END_TEST

/* No rand function with splay 0: fine. */
START_TEST(test_no_rand)
{
	struct pb_debounce_params p = P_DEFAULT;
	struct pb_debounce d;
	struct pb_debounce_due out;

	pb_debounce_init(&d, &p);
	pb_debounce_request(&d, 10, PB_REASON_MANUAL);
	pb_debounce_poll(&d, 10, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 1);
	ck_assert_int_eq(out.reason, PB_REASON_MANUAL);
}
END_TEST

/* pb_debounce_retry_at: finish + base * 2^(n-1) after the n-th failure,
 * NEVER once the retries are given up, after a success and before any run. */
START_TEST(test_retry_at)
{
	struct pb_debounce_params p = { 2000, 30000, 0, 0, 0, 2, 1000 };
	struct pb_debounce d;

	pb_debounce_init(&d, &p);
	ck_assert_int_eq(pb_debounce_retry_at(&d), NEVER);
	pb_debounce_started(&d, 0);
	pb_debounce_finished(&d, 10, 0, 1);
	ck_assert_int_eq(pb_debounce_retry_at(&d), 1010);
	pb_debounce_started(&d, 1010);
	pb_debounce_finished(&d, 1020, 0, 1);
	ck_assert_int_eq(pb_debounce_retry_at(&d), 3020);
	pb_debounce_started(&d, 3020);
	pb_debounce_finished(&d, 3030, 0, 1);
	ck_assert_int_eq(pb_debounce_retry_at(&d), NEVER);
	pb_debounce_change(&d, 4000, PB_REASON_CHANGE, 1);
	pb_debounce_started(&d, 6000);
	pb_debounce_finished(&d, 6010, 1, 0);
	ck_assert_int_eq(pb_debounce_retry_at(&d), NEVER);
}
END_TEST

/* A reload keeps what is pending; a new quiet applies at once. */
START_TEST(test_set_params)
{
	struct pb_debounce_params p = P_DEFAULT;
	struct pb_debounce d;
	struct pb_debounce_due out;

	pb_debounce_init(&d, &p);
	pb_debounce_change(&d, 0, PB_REASON_CHANGE, 1);
	pb_debounce_poll(&d, 0, NULL, NULL, &out);
	ck_assert_int_eq(out.next_at, 2000);
	p.quiet_ms = 500;
	pb_debounce_set_params(&d, &p);
	pb_debounce_poll(&d, 100, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 0);
	ck_assert_int_eq(out.next_at, 500);
	ck_assert(pb_debounce_pending(&d));
}
END_TEST

/* A long history: only the newest starts count, in any order. */
START_TEST(test_seed_many)
{
	struct pb_debounce_params p = { 0, 0, 3, 1000, 0, 0, 0 };
	struct pb_debounce d;
	struct pb_debounce_due out;
	int64_t seeds[3000];
	int i;

	for (i = 0; i < 3000; i++)
		seeds[i] = (int64_t)((i * 7919) % 3000) - 3000;	/* -3000 .. -1, shuffled */
	pb_debounce_init(&d, &p);
	pb_debounce_seed_starts(&d, seeds, 3000);
	pb_debounce_request(&d, 0, PB_REASON_STARTUP);
	pb_debounce_poll(&d, 0, NULL, NULL, &out);
	/* the newest three are -1, -2, -3: the window frees at -3 + 1000 */
	ck_assert_int_eq(out.start, 0);
	ck_assert_int_eq(out.next_at, 997);
	pb_debounce_poll(&d, 997, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 1);
	pb_debounce_started(&d, 997);
	pb_debounce_finished(&d, 997, 1, 0);
	pb_debounce_request(&d, 997, PB_REASON_MANUAL);
	pb_debounce_poll(&d, 997, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 0);
	ck_assert_int_eq(out.next_at, 998);	/* window of 997, -1, -2 */
	pb_debounce_poll(&d, 998, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 1);
}
END_TEST

/* throttle.runs above the ring (1,024 starts): held to the ring, so a
 * full ring of starts inside the window still holds a run back (stricter,
 * never looser); a limit the ring cannot hold never means no limit. */
START_TEST(test_throttle_above_ring)
{
	struct pb_debounce_params p = { 0, 0, 5000, 10000, 0, 0, 0 };
	struct pb_debounce d;
	struct pb_debounce_due out;
	int64_t seeds[PB_DEBOUNCE_MAX_THROTTLE + 1];
	int i;

	for (i = 0; i <= PB_DEBOUNCE_MAX_THROTTLE; i++)
		seeds[i] = -1 - i;	/* -1 .. -1025: the newest 1,024 are kept */
	pb_debounce_init(&d, &p);
	pb_debounce_seed_starts(&d, seeds, PB_DEBOUNCE_MAX_THROTTLE + 1);
	pb_debounce_request(&d, 0, PB_REASON_MANUAL);
	pb_debounce_poll(&d, 0, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 0);
	ck_assert_int_eq(out.next_at, -PB_DEBOUNCE_MAX_THROTTLE + 10000);	/* -1024 + per */
	pb_debounce_poll(&d, -PB_DEBOUNCE_MAX_THROTTLE + 10000, NULL, NULL, &out);
	ck_assert_int_eq(out.start, 1);
}
END_TEST

static Suite *debounce_suite(void)
{
	Suite *s = suite_create("debounce");
	TCase *tc = tcase_create("rules");

	tcase_add_loop_test(tc, test_script, 0, N_CASES);
	tcase_add_test(tc, test_reason_names);
	tcase_add_test(tc, test_no_rand);
	tcase_add_test(tc, test_retry_at);
	tcase_add_test(tc, test_set_params);
	tcase_add_test(tc, test_seed_many);
	tcase_add_test(tc, test_throttle_above_ring);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(debounce_suite());
}
