/* debounce.c — when to start a provision run (provbus-consumer(1)); see debounce.h.
 *
 * Everything here is a function of the calls made and the times passed
 * in: no clock, no randomness of its own (the splay is drawn through the
 * caller's function), no I/O. The daemon and `provbus-audit replay` must
 * make the same decisions from the same inputs.
 *
 * Triggers that can be pending at once: a change (due at
 * min(last + quiet, first + max_wait)), requests (startup, manual,
 * resume, ...: due when asked for) and a retry (due at retry_at). The run
 * becomes due at the earliest of them; from then on it stays due
 * (due_since) until it starts, so later changes do not postpone it; it
 * then waits for the throttle window, then for the splay, and starts. A
 * start covers every pending trigger. */
#include "debounce.h"

#include <string.h>

/* Which reason names a run when several triggers are pending. */
static const enum pb_reason reason_priority[PB_REASON__COUNT] = {
	PB_REASON_MANUAL, PB_REASON_STARTUP, PB_REASON_RESUME,
	PB_REASON_RETRY, PB_REASON_EXPIRY, PB_REASON_CHANGE,
};

/* a + b without overflow past PB_TIME_NEVER (b >= 0 expected). */
static int64_t time_add(int64_t a, int64_t b)
{
	if (a == PB_TIME_NEVER || b == PB_TIME_NEVER)
		return PB_TIME_NEVER;
	if (b > 0 && a > PB_TIME_NEVER - b)
		return PB_TIME_NEVER;
	return a + b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void clear_change(struct pb_debounce *d)
{
	d->change_pending = 0;
	d->first_change_at = PB_TIME_NEVER;
	d->last_change_at = PB_TIME_NEVER;
	d->change_reason = PB_REASON_CHANGE;
}

/* The run is no longer due (nothing pending, or it started). */
static void clear_due(struct pb_debounce *d)
{
	d->due_since = PB_TIME_NEVER;
	d->splay_until = PB_TIME_NEVER;
}

void pb_debounce_init(struct pb_debounce *d, const struct pb_debounce_params *p)
{
	memset(d, 0, sizeof(*d));
	d->p = *p;
	clear_change(d);
	d->last_change_seen = INT64_MIN;
	d->requested_at = PB_TIME_NEVER;
	d->retry_at = PB_TIME_NEVER;
	clear_due(d);
}

void pb_debounce_set_params(struct pb_debounce *d, const struct pb_debounce_params *p)
{
	d->p = *p;
}

/* i-th most recent start (0 = the newest); i < n_starts. */
static int64_t start_back(const struct pb_debounce *d, int i)
{
	int idx = (d->starts_head - 1 - i) % PB_DEBOUNCE_MAX_THROTTLE;

	if (idx < 0)
		idx += PB_DEBOUNCE_MAX_THROTTLE;
	return d->starts[idx];
}

static void push_start(struct pb_debounce *d, int64_t t)
{
	d->starts[d->starts_head] = t;
	d->starts_head = (d->starts_head + 1) % PB_DEBOUNCE_MAX_THROTTLE;
	if (d->n_starts < PB_DEBOUNCE_MAX_THROTTLE)
		d->n_starts++;
}

/* Keeps the ring sorted oldest first: merges the seeds into the starts
 * already known, keeping the newest PB_DEBOUNCE_MAX_THROTTLE. Only the
 * newest throttle_runs matter, but keeping more lets a reload raise the
 * limit without forgetting the window. */
void pb_debounce_seed_starts(struct pb_debounce *d, const int64_t *starts, int n)
{
	int64_t tmp[PB_DEBOUNCE_MAX_THROTTLE];
	int cnt = 0, i, j;

	for (i = d->n_starts - 1; i >= 0; i--)
		tmp[cnt++] = start_back(d, i);
	/* tmp is ascending when starts were pushed in time order; sort to be sure */
	for (i = 1; i < cnt; i++) {
		int64_t v = tmp[i];

		for (j = i; j > 0 && tmp[j - 1] > v; j--)
			tmp[j] = tmp[j - 1];
		tmp[j] = v;
	}
	for (i = 0; i < n; i++) {
		int64_t v = starts[i];

		if (cnt == PB_DEBOUNCE_MAX_THROTTLE) {
			if (v <= tmp[0])
				continue;	/* older than all we keep */
			memmove(tmp, tmp + 1, (size_t)(cnt - 1) * sizeof(tmp[0]));
			cnt--;
		}
		for (j = cnt; j > 0 && tmp[j - 1] > v; j--)
			tmp[j] = tmp[j - 1];
		tmp[j] = v;
		cnt++;
	}
	memcpy(d->starts, tmp, (size_t)cnt * sizeof(tmp[0]));
	d->n_starts = cnt;
	d->starts_head = cnt % PB_DEBOUNCE_MAX_THROTTLE;
}

static int64_t change_due(const struct pb_debounce *d)
{
	if (!d->change_pending)
		return PB_TIME_NEVER;
	return min64(time_add(d->last_change_at, d->p.quiet_ms),
		     time_add(d->first_change_at, d->p.max_wait_ms));
}

/* When the earliest pending trigger is due; PB_TIME_NEVER for none. */
static int64_t earliest_due(const struct pb_debounce *d)
{
	int64_t t = change_due(d);

	if (d->requests)
		t = min64(t, d->requested_at);
	return min64(t, d->retry_at);
}

/* The run became due (due_since) at the earliest pending trigger, once
 * that is past. A poll latches it; so must every input before it changes
 * the triggers (the caller's: a change, a request, a pause, new
 * parameters, a catch-up owed): the latched instant is then the same
 * whether or not the daemon happened to poll in between, which replay
 * cannot know (only the polls that start a run or draw a splay are
 * recorded). Not while running or paused, as a poll does not (nor, the
 * caller's part, whenever its poll would not: lib/decide.c latch). */
void pb_debounce_latch(struct pb_debounce *d, int64_t now)
{
	int64_t due;

	if (d->running || d->paused || d->due_since != PB_TIME_NEVER)
		return;
	due = earliest_due(d);
	if (due != PB_TIME_NEVER && due <= now)
		d->due_since = due;
}

int pb_debounce_pending(const struct pb_debounce *d)
{
	return d->change_pending || d->requests || d->retry_at != PB_TIME_NEVER;
}

int pb_debounce_running(const struct pb_debounce *d)
{
	return d->running;
}

int64_t pb_debounce_retry_at(const struct pb_debounce *d)
{
	return d->retry_at;
}

void pb_debounce_change(struct pb_debounce *d, int64_t now, enum pb_reason reason, int dirty)
{
	d->last_change_seen = now;
	if (!dirty) {
		clear_change(d);
		/* the run stays due only if something else still is */
		if (earliest_due(d) > now)
			clear_due(d);
		return;
	}
	if (reason != PB_REASON_EXPIRY)
		reason = PB_REASON_CHANGE;
	if (!d->change_pending) {
		d->change_pending = 1;
		d->first_change_at = now;
		d->change_reason = reason;
	} else {
		/* The quiet timer already fired: the run is due and a late
		 * change does not push it back. */
		int64_t due = change_due(d);

		if (d->due_since == PB_TIME_NEVER && due <= now)
			d->due_since = due;
		if (reason == PB_REASON_EXPIRY)
			d->change_reason = PB_REASON_EXPIRY;
	}
	d->last_change_at = now;
}

void pb_debounce_request(struct pb_debounce *d, int64_t now, enum pb_reason reason)
{
	if ((int)reason < 0 || reason >= PB_REASON__COUNT)
		return;
	if (!d->requests || now < d->requested_at)
		d->requested_at = now;
	d->requests |= 1u << reason;
}

void pb_debounce_pause(struct pb_debounce *d, int paused)
{
	d->paused = paused ? 1 : 0;
}

/* struct pb_debounce_pending's members that are copied as they are */
#define PENDING_FIELDS(X)                                                                \
	X(change_pending) X(retries) X(first_change_at) X(last_change_at) X(last_change_seen) \
	X(requested_at) X(retry_at) X(due_since) X(splay_until)

void pb_debounce_get_pending(const struct pb_debounce *d, struct pb_debounce_pending *out)
{
#define COPY(f) out->f = d->f;
	PENDING_FIELDS(COPY)
#undef COPY
	out->change_reason = (int)d->change_reason;
	out->requests = d->requests;
}

void pb_debounce_set_pending(struct pb_debounce *d, const struct pb_debounce_pending *in)
{
#define COPY(f) d->f = in->f;
	PENDING_FIELDS(COPY)
#undef COPY
	d->change_pending = d->change_pending != 0;
	d->change_reason = in->change_reason == (int)PB_REASON_EXPIRY ? PB_REASON_EXPIRY
								       : PB_REASON_CHANGE;
	d->requests = in->requests & ((1u << PB_REASON__COUNT) - 1);
}

/* The reason of a start: the pending trigger of highest priority. */
static enum pb_reason pick_reason(const struct pb_debounce *d)
{
	unsigned pending = d->requests;
	int i;

	if (d->retry_at != PB_TIME_NEVER)
		pending |= 1u << PB_REASON_RETRY;
	if (d->change_pending)
		pending |= 1u << d->change_reason;
	for (i = 0; i < PB_REASON__COUNT; i++)
		if (pending & (1u << reason_priority[i]))
			return reason_priority[i];
	return PB_REASON_CHANGE;
}

/* The earliest time a start is allowed by the throttle: the newest
 * throttle_runs starts must all be older than now - per. Limits above
 * the ring size are held to the ring size (stricter, never looser). */
static int64_t throttle_until(const struct pb_debounce *d)
{
	int runs = d->p.throttle_runs;

	if (runs <= 0 || d->p.throttle_per_ms <= 0)
		return INT64_MIN;
	if (runs > PB_DEBOUNCE_MAX_THROTTLE)
		runs = PB_DEBOUNCE_MAX_THROTTLE;
	if (d->n_starts < runs)
		return INT64_MIN;
	return time_add(start_back(d, runs - 1), d->p.throttle_per_ms);
}

void pb_debounce_poll(struct pb_debounce *d, int64_t now, pb_debounce_rand_fn rand, void *ctx,
		      struct pb_debounce_due *out)
{
	int64_t due, allowed;

	out->start = 0;
	out->reason = PB_REASON_CHANGE;
	out->queued_at = PB_TIME_NEVER;
	out->next_at = PB_TIME_NEVER;
	if (d->running || d->paused)
		return;		/* the caller polls again on finish/resume */
	due = earliest_due(d);
	if (due == PB_TIME_NEVER) {
		clear_due(d);
		return;
	}
	if (d->due_since == PB_TIME_NEVER) {
		if (now < due) {
			out->next_at = due;
			return;
		}
		d->due_since = due;
	}
	allowed = throttle_until(d);
	if (now < allowed) {
		out->next_at = allowed;
		return;
	}
	if (d->splay_until == PB_TIME_NEVER) {
		int64_t r = 0;

		if (d->p.splay_ms > 0 && rand) {
			r = rand(ctx, d->p.splay_ms);
			if (r < 0)
				r = 0;
			if (r > d->p.splay_ms)
				r = d->p.splay_ms;
		}
		d->splay_until = time_add(now, r);
	}
	if (now < d->splay_until) {
		out->next_at = d->splay_until;
		return;
	}
	out->start = 1;
	out->reason = pick_reason(d);
	out->queued_at = d->due_since;
}

int64_t pb_debounce_throttled_until(const struct pb_debounce *d, int64_t now)
{
	int64_t allowed;

	if (d->running || d->paused || d->due_since == PB_TIME_NEVER)
		return 0;
	allowed = throttle_until(d);
	return now < allowed ? allowed : 0;
}

void pb_debounce_started(struct pb_debounce *d, int64_t now)
{
	d->running = 1;
	push_start(d, now);
	clear_change(d);
	d->requests = 0;
	d->requested_at = PB_TIME_NEVER;
	d->retry_at = PB_TIME_NEVER;
	clear_due(d);
}

/* base * 2^(n-1), saturating. */
static int64_t backoff(int64_t base, int n)
{
	int64_t delay = base > 0 ? base : 0;
	int i;

	for (i = 1; i < n && delay > 0; i++) {
		if (delay > INT64_MAX / 2)
			return INT64_MAX;
		delay *= 2;
	}
	return delay;
}

void pb_debounce_finished(struct pb_debounce *d, int64_t now, int ok, int dirty)
{
	int64_t run_start = d->n_starts ? start_back(d, 0) : INT64_MIN;
	int changed_during_run = d->last_change_seen > run_start;

	d->running = 0;
	if (ok) {
		d->retries = 0;
	} else if (++d->retries <= d->p.retry_max) {
		d->retry_at = time_add(now, backoff(d->p.retry_base_ms, d->retries));
	} else {
		d->retries = 0;	/* given up until the next change */
	}
	if (!dirty) {
		if (d->change_pending) {
			clear_change(d);
			if (earliest_due(d) > now)
				clear_due(d);
		}
	} else if (!d->change_pending && (ok || changed_during_run)) {
		/* The values moved on while the run went: one follow-up,
		 * debounced from the latest change. After a failure a
		 * retry (or giving up) covers the values the run had;
		 * only a change seen during the run arms another one. */
		int64_t at = changed_during_run ? d->last_change_seen : now;

		d->change_pending = 1;
		d->first_change_at = at;
		d->last_change_at = at;
		d->change_reason = PB_REASON_CHANGE;
	}
	if (!pb_debounce_pending(d))
		clear_due(d);
}
