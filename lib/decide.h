/* decide.h — the consumer's decision core (provbus-consumer(1)):
 * from events, lease expiries, requests, reloads, catch-ups and finished
 * runs to verdicts, values and run starts.
 *
 * Pure and single-threaded: no sqlite, no AMQP, no clock, no randomness of
 * its own, no syscalls. Every input carries its instant (wall ms); the
 * splay's random draw comes in with pb_decide_poll, so the daemon, a
 * replay of its audit log and the simulation test all make the same
 * decisions from the same inputs.
 *
 * What it owns: the providers (lib/providers.h), the current values, the
 * values of the last successful run, the debounce (lib/debounce.h: quiet,
 * max wait, throttle, splay, retry, follow-up), one run at a time and its
 * lock-wait state, pause, the startup gate and the catch-up gates.
 *
 * Rules it adds to the debounce's:
 * - Nothing starts before the startup run is asked for
 *   (PB_REASON_STARTUP); until then value changes are not debounced: the
 *   startup run covers them.
 * - Nothing starts while a catch-up is owed: the full one (a new or lost
 *   queue) or one for keys a reload added. A reload that adds keys owes
 *   their catch-up before it recomputes anything, so no run can start with
 *   part of a new key's history.
 * - One run at a time: between pb_decide_started and pb_decide_finished
 *   (lock wait included) nothing else starts.
 * - A change is a difference between the values and those of the last
 *   successful run; A -> B -> A before a start is no change.
 *
 * Outputs: records through the sink given to pb_decide_new (verdicts,
 * expiries, value changes, notes: each at the instant of its input), the
 * start action and the next deadline from pb_decide_poll.
 *
 * Ownership: pointers in pb_decide_params (wants, filter, statics) are
 * borrowed and must stay valid until the next pb_decide_reload or
 * pb_decide_free. Records are valid only during the sink call. */
#ifndef PB_DECIDE_H
#define PB_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "debounce.h"
#include "event.h"
#include "manifest.h"
#include "providers.h"
#include "vocab.h"

struct pb_decide_params {
	struct pb_debounce_params deb;
	const struct pb_want *wants;	/* sorted by env */
	size_t n_wants;
	struct pb_filter filter;
	const struct pb_static *statics;	/* sorted by name */
	size_t n_statics;
	int public_only;
};

enum pb_decide_rec_kind {
	PB_DECIDE_REC_VERDICT,	/* ev judged: verdict, changed */
	PB_DECIDE_REC_EXPIRED,	/* pv's lease ran out: changed */
	PB_DECIDE_REC_VALUES,	/* the values changed: values, n_values, dirty */
	PB_DECIDE_REC_NOTE,	/* note_kind, text */
};

struct pb_decide_rec {
	enum pb_decide_rec_kind kind;
	int64_t at;
	const struct pb_event *ev;
	const struct pb_provider *pv;
	enum pb_verdict verdict;
	int changed;		/* the values changed with it */
	const struct pb_kv *values;
	size_t n_values;
	int dirty;		/* the values differ from those of the last good run */
	const char *note_kind;	/* "retry-exhausted", "pause", "resume", "catch-up-owed" */
	const char *text;
};

typedef void (*pb_decide_sink_fn)(void *ctx, const struct pb_decide_rec *r);

enum pb_decide_run_state {
	PB_DECIDE_IDLE = 0,
	PB_DECIDE_LOCK_WAIT,	/* started, its process waits for lock_file */
	PB_DECIDE_GOING,
};

struct pb_decide;

/* A new core at now with params; sink (may be NULL) gets every record.
 * NULL when out of memory. */
struct pb_decide *pb_decide_new(const struct pb_decide_params *p, pb_decide_sink_fn sink,
				void *sink_ctx);
void pb_decide_free(struct pb_decide *d);

/* ---- restoring the state a restart keeps (the audit log holds it) ----
 * Call these before any other input, then pb_decide_restored. */
int pb_decide_restore_provider(struct pb_decide *d, const struct pb_provider *pv);	/* 0/-1 */
/* The values of the last successful run (copied); 0/-1. */
int pb_decide_restore_ok_values(struct pb_decide *d, const struct pb_kv *kv, size_t n);
/* Start times of recent runs: the throttle window. */
void pb_decide_restore_starts(struct pb_decide *d, const int64_t *starts, int n);
/* Owed catch-ups as they were (full, or for these keys; copied); 0/-1. */
int pb_decide_restore_owed(struct pb_decide *d, int full, const char *const *keys, size_t n);
void pb_decide_restore_paused(struct pb_decide *d, int paused);
/* Computes the values from the restored providers (no record). 0/-1. */
int pb_decide_restored(struct pb_decide *d);
/* After pb_decide_restored, for a state taken from a running core with
 * no run going (a snapshot input) rather than a start: its startup run
 * was requested long ago, so changes arm the debounce at once;
 * fails_in_row failed runs since the last good one, splay_ms the last
 * splay drawn, and what was pending (NULL: nothing). */
void pb_decide_restore_running(struct pb_decide *d, int fails_in_row, int64_t splay_ms,
			       const struct pb_debounce_pending *pending);

/* ---- inputs ---- */

struct pb_decide_event {
	const struct pb_event *ev;	/* parsed and valid */
	int seen_before;		/* its id is in the audit log or the cache */
	int64_t seq_floor;		/* the highest seq the log holds for its (node,
					 * service); <= 0: none */
	int64_t apply_at;		/* its lease counts from here (history: its ts) */
};

/* An event received at now: judged (pb_providers_apply), a VERDICT record.
 * *changed (may be NULL) says whether the values change with it (exact);
 * they are computed, with a VALUES record and a debounced change, at the
 * batch's end (pb_decide_settle), or at once when the statics decide (a
 * key goes from no provider to some or back). Returns the verdict. */
enum pb_verdict pb_decide_event(struct pb_decide *d, int64_t now, const struct pb_decide_event *in,
				int *changed);

/* The end of a batch of events (the daemon: of each read from the
 * broker): the values of the keys the batch changed are computed, and a
 * change of them is debounced at now. Every other input does this first
 * at its own instant. */
void pb_decide_settle(struct pb_decide *d, int64_t now);

/* Timer: leases that ran out at or before now are removed (EXPIRED
 * records); a change of the values is debounced with reason expiry.
 * Returns the number removed. */
size_t pb_decide_expire(struct pb_decide *d, int64_t now);

/* A run is asked for: startup, manual or resume (resume does not unpause:
 * pb_decide_pause does). */
void pb_decide_request(struct pb_decide *d, int64_t now, enum pb_reason why);

/* pause (1) / resume (0); a resume queues a run (reason resume). A note
 * record when the state changes. */
void pb_decide_pause(struct pb_decide *d, int64_t now, int paused);

/* New parameters (pointers borrowed from now on). The keys in added (new
 * required keys, or every key when the accepted regions grew) owe a
 * catch-up before any run starts; then the values are recomputed. 0, or -1
 * when out of memory (then the catch-up of everything is owed). */
int pb_decide_reload(struct pb_decide *d, int64_t now, const struct pb_decide_params *p,
		     const char *const *added, size_t n_added);

/* The queue was found new or lost: the full catch-up is owed (the keys'
 * catch-ups are part of it). */
void pb_decide_owe_full(struct pb_decide *d, int64_t now);

/* A catch-up is done: the full one (full = 1), or the one for keys (the
 * keys owed that it read; copied). Expired leases are removed at once. */
void pb_decide_catchup_done(struct pb_decide *d, int64_t now, int full, const char *const *keys,
			    size_t n);

struct pb_decide_action {
	int start;		/* 1: start a run now with values (then pb_decide_started) */
	enum pb_reason reason;
	int64_t queued_at;	/* when it became due */
	const struct pb_kv *values;	/* borrowed: valid until the next input */
	size_t n_values;
	int splay_drawn;	/* 1: this poll drew the splay */
	int64_t splay_ms;	/* the draw (of the run being started or waited for) */
	int64_t throttled_until;	/* a due run waits for the throttle until then; 0 */
	int64_t next_at;	/* call pb_decide_poll again then (or on any input);
				 * PB_TIME_NEVER: nothing to wait for */
	int64_t run_at;		/* of next_at, the debounce's part: when the
				 * pending run is due (NEVER: not known yet) */
};

/* What to do at now. rnd is a random number; the splay, when one must be
 * drawn, is rnd % (splay_ms + 1) (recorded by the caller: splay_drawn).
 * Idempotent at one instant once the splay is drawn. next_at includes the
 * next lease expiry. */
void pb_decide_poll(struct pb_decide *d, int64_t now, uint64_t rnd, struct pb_decide_action *out);

/* The run the last poll said to start did start at now (its row is in the
 * log): it covers what was pending; its values are the current values.
 * -1 when out of memory (nothing changed). */
int pb_decide_started(struct pb_decide *d, int64_t now);
/* Its process waits for the lock (first call: the wait starts). */
void pb_decide_lock_wait(struct pb_decide *d, int64_t now);
/* Its process started; returns how long it waited for the lock (ms). */
int64_t pb_decide_lock_taken(struct pb_decide *d, int64_t now);
/* The run ended at now with status st (lib/vocab.h). ok: its values
 * become the last good ones. failed: a retry is armed, or a
 * retry-exhausted note when given up. interrupted (the daemon stopped):
 * not counted as a failure, but a retry is armed like one (the startup
 * run of the next start covers it anyway). running: ignored. */
void pb_decide_finished(struct pb_decide *d, int64_t now, enum pb_run_status st);

/* ---- reading the state ---- */

enum pb_decide_run_state pb_decide_run_state(const struct pb_decide *d);
int pb_decide_pending(const struct pb_decide *d);	/* a run is due or waiting */
int pb_decide_dirty(const struct pb_decide *d);	/* values differ from the last good run's */
int pb_decide_paused(const struct pb_decide *d);
int pb_decide_startup_requested(const struct pb_decide *d);
/* A catch-up is owed: 0 none, else 1 (*full set, *keys / *n the keys owed,
 * borrowed). Any argument may be NULL. */
int pb_decide_owed(const struct pb_decide *d, int *full, const char *const **keys, size_t *n);
const struct pb_kv *pb_decide_values(const struct pb_decide *d, size_t *n);
/* NULL (and *n = 0) before any successful run. */
const struct pb_kv *pb_decide_ok_values(const struct pb_decide *d, size_t *n);
/* The running run's values (NULL when idle). */
const struct pb_kv *pb_decide_run_values(const struct pb_decide *d, size_t *n);
int pb_decide_fails_in_row(const struct pb_decide *d);
int64_t pb_decide_splay_ms(const struct pb_decide *d);	/* the last splay drawn */
/* The retry's instant, PB_TIME_NEVER for none. */
int64_t pb_decide_retry_at(const struct pb_decide *d);
struct pb_providers *pb_decide_providers(struct pb_decide *d);
const struct pb_debounce *pb_decide_debounce(const struct pb_decide *d);

/* Utilities on sorted kv arrays. */
struct pb_kv *pb_decide_kv_copy(const struct pb_kv *kv, size_t n);	/* NULL when out of memory */

#endif
