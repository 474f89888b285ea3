/* debounce.h — when to start a provision run (provbus-consumer(1)). Pure: no I/O,
 * no clock reads, no randomness of its own. Time (ms) is passed in, so
 * the daemon (real time) and `provbus-audit replay` (virtual time) run
 * this very code.
 *
 * Rules:
 * - A change (pb_debounce_change with dirty=1) arms the quiet timer; every
 *   further change re-arms it. The run is due at last_change + quiet_ms,
 *   or at first_change + max_wait_ms, whichever comes first.
 * - dirty=0 (the values are back to those of the last successful run:
 *   A -> B -> A) cancels a pending change: no run.
 * - Requests (startup, manual, resume) are due at once (no quiet).
 * - One at a time: nothing is due while a run is going; changes during a
 *   run make exactly one follow-up run, debounced the same way.
 * - Paused: nothing starts; state keeps accumulating.
 * - Throttle: at most throttle_runs starts in any throttle_per_ms window;
 *   a due run over the limit waits for the window (never dropped).
 * - Splay: once a run is due and allowed, it waits a further random delay
 *   in [0, splay_ms], drawn by the caller's rand function.
 * - Retry: a failed run is retried at finish + retry_base_ms * 2^(n-1),
 *   n = 1..retry_max; then given up (until the next change). Values stay
 *   pending meanwhile.
 * - Reason of a run: the first trigger still pending when it starts, with
 *   manual > startup > resume > retry > expiry > change when several are.
 */
#ifndef PB_DEBOUNCE_H
#define PB_DEBOUNCE_H

#include <stdint.h>

#include "pbtime.h"
#include "vocab.h"

/* enum pb_reason, pb_reason_name, pb_reason_parse: vocab.h */

struct pb_debounce_params {
	int64_t quiet_ms;
	int64_t max_wait_ms;
	int throttle_runs;	/* <= 0: no throttle */
	int64_t throttle_per_ms;
	int64_t splay_ms;
	int retry_max;
	int64_t retry_base_ms;
};

/* Returns a value in [0, max_ms]; ctx is the caller's. */
typedef int64_t (*pb_debounce_rand_fn)(void *ctx, int64_t max_ms);

#define PB_DEBOUNCE_MAX_THROTTLE 1024

/* Fields are private to debounce.c; the struct is visible so callers can
 * keep it on the stack. */
struct pb_debounce {
	struct pb_debounce_params p;
	int running, paused;
	int change_pending;	/* a dirty change waits for quiet/max-wait */
	int64_t first_change_at, last_change_at;
	int64_t last_change_seen;	/* time of the latest change() call, dirty or not */
	unsigned requests;	/* bitmask of 1u << reason for startup/manual/resume/expiry */
	int64_t requested_at;
	int retries;		/* failures in a row */
	int64_t retry_at;	/* PB_TIME_NEVER when none */
	int64_t due_since;	/* when the pending run first became due; NEVER when not due */
	int64_t splay_until;	/* NEVER until drawn */
	int64_t starts[PB_DEBOUNCE_MAX_THROTTLE];	/* ring of recent start times */
	int n_starts, starts_head;
	enum pb_reason change_reason;	/* change or expiry */
};

void pb_debounce_init(struct pb_debounce *d, const struct pb_debounce_params *p);
/* New parameters (a reload); pending state is kept. */
void pb_debounce_set_params(struct pb_debounce *d, const struct pb_debounce_params *p);

/* Restores the throttle window: start times of recent runs (any order). */
void pb_debounce_seed_starts(struct pb_debounce *d, const int64_t *starts, int n);

/* The values changed at now. reason is PB_REASON_CHANGE or
 * PB_REASON_EXPIRY; dirty says whether they now differ from the values of
 * the last successful run. */
void pb_debounce_change(struct pb_debounce *d, int64_t now, enum pb_reason reason, int dirty);

/* A run is asked for (startup, manual, resume): due at once. */
void pb_debounce_request(struct pb_debounce *d, int64_t now, enum pb_reason reason);

void pb_debounce_pause(struct pb_debounce *d, int paused);
/* Latches the instant the run became due when that is past (before an
 * input that changes the triggers: debounce.c says why). */
void pb_debounce_latch(struct pb_debounce *d, int64_t now);

/* What is pending between runs (the state a snapshot input carries,
 * lib/decide.h pb_decide_restore_running): the fields of struct
 * pb_debounce that are not its parameters, throttle ring, pause or
 * running flag. */
struct pb_debounce_pending {
	int change_pending, change_reason, retries;
	unsigned requests;
	int64_t first_change_at, last_change_at, last_change_seen, requested_at, retry_at,
		due_since, splay_until;
};
void pb_debounce_get_pending(const struct pb_debounce *d, struct pb_debounce_pending *out);
void pb_debounce_set_pending(struct pb_debounce *d, const struct pb_debounce_pending *in);

struct pb_debounce_due {
	int start;		/* 1: start a run now */
	enum pb_reason reason;	/* when start */
	int64_t queued_at;	/* when start: when it became due */
	int64_t next_at;	/* when !start: the next deadline, PB_TIME_NEVER for none */
};

/* What to do at now. Call again at next_at (or on any new input). Draws
 * the splay through rand (may be NULL when splay_ms is 0). */
void pb_debounce_poll(struct pb_debounce *d, int64_t now, pb_debounce_rand_fn rand, void *ctx,
		      struct pb_debounce_due *out);

/* When a due run waits for the throttle (after a poll): until when (ms);
 * else 0. */
int64_t pb_debounce_throttled_until(const struct pb_debounce *d, int64_t now);

/* The caller started the run poll said to start (clears what it covers). */
void pb_debounce_started(struct pb_debounce *d, int64_t now);

/* The run ended; ok = exit status 0. dirty: do the values now differ from
 * those of the last successful run (recomputed by the caller after
 * this run's outcome)? */
void pb_debounce_finished(struct pb_debounce *d, int64_t now, int ok, int dirty);

/* 1 when a run is pending (due or waiting for quiet/throttle/splay/retry). */
int pb_debounce_pending(const struct pb_debounce *d);
int pb_debounce_running(const struct pb_debounce *d);

/* When the failed run is retried (after pb_debounce_finished with ok=0):
 * the instant, or PB_TIME_NEVER when none is (retries given up, or the
 * last run did not fail). */
int64_t pb_debounce_retry_at(const struct pb_debounce *d);

#endif
