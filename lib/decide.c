/* decide.c — the consumer's decision core; see decide.h.
 *
 * A thin layer over two pure modules: lib/providers.c judges events and
 * keeps the live providers, lib/debounce.c decides when a run starts. This
 * file keeps the values (current, last good, the running run's), turns
 * provider changes into debounced changes, and holds the gates the
 * debounce does not know: the startup request, owed catch-ups, one run at
 * a time with its lock wait. */
#include "decide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pb_decide {
	struct pb_decide_params p;
	struct pb_providers *prov;
	struct pb_debounce deb;
	pb_decide_sink_fn sink;
	void *sink_ctx;

	struct pb_kv *values;		/* current, sorted by env */
	size_t n_values;
	struct pb_kv *ok_values;	/* of the last successful run */
	size_t n_ok;
	int have_ok;
	struct pb_kv *run_values;	/* of the run going */
	size_t n_run;

	enum pb_decide_run_state run;
	int64_t lock_since;		/* PB_TIME_NEVER: not waiting */
	int fails_in_row;
	int startup_requested;
	int paused;
	int64_t splay_ms;		/* the last draw */

	int owe_full;
	char **owe_keys;		/* sorted */
	size_t n_owe;

	const char **dirty;		/* keys whose values are not computed yet */
	size_t n_dirty, cap_dirty;	/* (borrowed from p.wants) */
	int dirty_oom;			/* one could not be noted: compute all */
};

/* ---- small helpers ---- */

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pb_kv *)a)->name, ((const struct pb_kv *)b)->name);
}

struct pb_kv *pb_decide_kv_copy(const struct pb_kv *kv, size_t n)
{
	struct pb_kv *out = calloc(n ? n : 1, sizeof(*out));

	for (size_t i = 0; out && i < n; i++) {
		out[i].name = strdup(kv[i].name);
		out[i].value = strdup(kv[i].value);
		if (!out[i].name || !out[i].value) {
			pb_kv_free_array(out, i + 1);
			return NULL;
		}
	}
	return out;
}

static void emit(struct pb_decide *d, const struct pb_decide_rec *r)
{
	if (d->sink)
		d->sink(d->sink_ctx, r);
}

static void emit_note(struct pb_decide *d, int64_t now, const char *kind, const char *text)
{
	struct pb_decide_rec r = { .kind = PB_DECIDE_REC_NOTE, .at = now };

	r.note_kind = kind;
	r.text = text;
	emit(d, &r);
}

int pb_decide_dirty(const struct pb_decide *d)
{
	return !d->have_ok || !pb_kv_equal(d->values, d->n_values, d->ok_values, d->n_ok);
}

static int str_find(char *const *v, size_t n, const char *s, size_t *at)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid], s);

		if (!c) {
			*at = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return 0;
}

/* Adds s to the sorted owed keys; 0 or -1 (out of memory). */
static int owe_key(struct pb_decide *d, const char *s)
{
	size_t at;
	char **nv, *copy;

	if (str_find(d->owe_keys, d->n_owe, s, &at))
		return 0;
	if (!(copy = strdup(s)))
		return -1;
	if (!(nv = realloc(d->owe_keys, (d->n_owe + 1) * sizeof(*nv)))) {
		free(copy);
		return -1;
	}
	d->owe_keys = nv;
	memmove(nv + at + 1, nv + at, (d->n_owe - at) * sizeof(*nv));
	nv[at] = copy;
	d->n_owe++;
	return 0;
}

static void drop_owed_key(struct pb_decide *d, const char *s)
{
	size_t at;

	if (!str_find(d->owe_keys, d->n_owe, s, &at))
		return;
	free(d->owe_keys[at]);
	memmove(d->owe_keys + at, d->owe_keys + at + 1, (d->n_owe - at - 1) * sizeof(char *));
	d->n_owe--;
}

static void clear_owed_keys(struct pb_decide *d)
{
	for (size_t i = 0; i < d->n_owe; i++)
		free(d->owe_keys[i]);
	free(d->owe_keys);
	d->owe_keys = NULL;
	d->n_owe = 0;
}

/* ---- life ---- */

struct pb_decide *pb_decide_new(const struct pb_decide_params *p, pb_decide_sink_fn sink,
				void *sink_ctx)
{
	struct pb_decide *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (!(d->prov = pb_providers_new())) {
		free(d);
		return NULL;
	}
	d->p = *p;
	d->sink = sink;
	d->sink_ctx = sink_ctx;
	d->lock_since = PB_TIME_NEVER;
	pb_debounce_init(&d->deb, &p->deb);
	return d;
}

void pb_decide_free(struct pb_decide *d)
{
	if (!d)
		return;
	pb_providers_free(d->prov);
	pb_kv_free_array(d->values, d->n_values);
	pb_kv_free_array(d->ok_values, d->n_ok);
	pb_kv_free_array(d->run_values, d->n_run);
	clear_owed_keys(d);
	free(d->dirty);
	free(d);
}

/* ---- restore ---- */

int pb_decide_restore_provider(struct pb_decide *d, const struct pb_provider *pv)
{
	return pb_providers_put(d->prov, pv) < 0 ? -1 : 0;
}

int pb_decide_restore_ok_values(struct pb_decide *d, const struct pb_kv *kv, size_t n)
{
	struct pb_kv *copy = pb_decide_kv_copy(kv, n);

	if (!copy)
		return -1;
	pb_kv_free_array(d->ok_values, d->n_ok);
	d->ok_values = copy;
	d->n_ok = n;
	d->have_ok = 1;
	return 0;
}

void pb_decide_restore_starts(struct pb_decide *d, const int64_t *starts, int n)
{
	pb_debounce_seed_starts(&d->deb, starts, n);
}

int pb_decide_restore_owed(struct pb_decide *d, int full, const char *const *keys, size_t n)
{
	d->owe_full = full ? 1 : 0;
	for (size_t i = 0; i < n; i++)
		if (owe_key(d, keys[i]) < 0)
			return -1;
	return 0;
}

void pb_decide_restore_running(struct pb_decide *d, int fails_in_row, int64_t splay_ms,
			       const struct pb_debounce_pending *pending)
{
	d->startup_requested = 1;
	d->fails_in_row = fails_in_row;
	d->splay_ms = splay_ms;
	if (pending)
		pb_debounce_set_pending(&d->deb, pending);
}

int64_t pb_decide_splay_ms(const struct pb_decide *d)
{
	return d->splay_ms;
}

void pb_decide_restore_paused(struct pb_decide *d, int paused)
{
	d->paused = paused ? 1 : 0;
	pb_debounce_pause(&d->deb, d->paused);
}

static int compute_values(const struct pb_decide *d, const struct pb_want *wants, size_t n_wants,
			  struct pb_kv **out, size_t *n)
{
	return pb_providers_values(d->prov, wants, n_wants, &d->p.filter, d->p.statics,
				   d->p.n_statics, d->p.public_only, out, n);
}

int pb_decide_restored(struct pb_decide *d)
{
	struct pb_kv *kv;
	size_t n;

	if (compute_values(d, d->p.wants, d->p.n_wants, &kv, &n) < 0)
		return -1;
	pb_kv_free_array(d->values, d->n_values);
	d->values = kv;
	d->n_values = n;
	return 0;
}

/* ---- values ---- */

/* Replaces the values with kv (taken); 1 when they changed. */
static int set_values(struct pb_decide *d, struct pb_kv *kv, size_t n)
{
	if (pb_kv_equal(kv, n, d->values, d->n_values)) {
		pb_kv_free_array(kv, n);
		return 0;
	}
	pb_kv_free_array(d->values, d->n_values);
	d->values = kv;
	d->n_values = n;
	return 1;
}

/* Before an input that changes the debounce's triggers: the instant the
 * run became due is latched as a poll would have (lib/debounce.c
 * pb_debounce_latch), when a poll would have reached the debounce. */
static void latch(struct pb_decide *d, int64_t now)
{
	if (d->run == PB_DECIDE_IDLE && d->startup_requested && !d->owe_full && !d->n_owe)
		pb_debounce_latch(&d->deb, now);
}

/* The values moved at now: a record, and a debounced change once the
 * startup run is asked for (before, the startup run covers them). */
static void values_moved(struct pb_decide *d, int64_t now, enum pb_reason why)
{
	struct pb_decide_rec r = { .kind = PB_DECIDE_REC_VALUES, .at = now };
	int dirty = pb_decide_dirty(d);

	r.values = d->values;
	r.n_values = d->n_values;
	r.dirty = dirty;
	r.changed = 1;
	emit(d, &r);
	latch(d, now);
	if (d->startup_requested)
		pb_debounce_change(&d->deb, now, why, dirty);
}

/* Recomputes every value; 1 when they changed (-1: out of memory). */
static int recompute_all(struct pb_decide *d)
{
	struct pb_kv *kv;
	size_t n;

	if (compute_values(d, d->p.wants, d->p.n_wants, &kv, &n) < 0)
		return -1;
	return set_values(d, kv, n);
}

/* Recomputes the env vars that require key: the cost is the size of one
 * key's providers, not of the whole set. 1 when they changed. */
static int update_key(struct pb_decide *d, const char *key)
{
	struct pb_want *sub = NULL;
	struct pb_kv *part = NULL, *merged = NULL;
	size_t n_sub = 0, n_part = 0, n = 0, i, j;

	for (i = 0; i < d->p.n_wants; i++)
		n_sub += d->p.wants[i].key && !strcmp(d->p.wants[i].key, key);
	if (!n_sub)
		return 0;
	if (!(sub = malloc(n_sub * sizeof(*sub))))
		return -1;
	for (i = 0, n_sub = 0; i < d->p.n_wants; i++)
		if (d->p.wants[i].key && !strcmp(d->p.wants[i].key, key))
			sub[n_sub++] = d->p.wants[i];
	if (compute_values(d, sub, n_sub, &part, &n_part) < 0 ||
	    !(merged = calloc(d->n_values + n_part + 1, sizeof(*merged))))
		goto oom;
	/* the current values of every other env var, then the new ones */
	for (i = 0; i < d->n_values; i++) {
		for (j = 0; j < n_sub && strcmp(sub[j].env, d->values[i].name); j++)
			;
		if (j < n_sub)
			continue;
		merged[n].name = strdup(d->values[i].name);
		merged[n].value = strdup(d->values[i].value);
		n++;
		if (!merged[n - 1].name || !merged[n - 1].value)
			goto oom;
	}
	for (i = 0; i < n_part; i++) {
		merged[n++] = part[i];
		part[i].name = part[i].value = NULL;
	}
	pb_kv_free_array(part, n_part);
	free(sub);
	qsort(merged, n, sizeof(*merged), kv_cmp);
	return set_values(d, merged, n);
oom:
	pb_kv_free_array(part, n_part);
	pb_kv_free_array(merged, n);
	free(sub);
	return -1;
}

/* Notes that key's values must be computed (pb_decide_settle). */
static void mark_dirty(struct pb_decide *d, const char *key)
{
	const char *k = NULL;
	size_t i;

	for (i = 0; i < d->n_dirty; i++)
		if (!strcmp(d->dirty[i], key))
			return;
	for (i = 0; i < d->p.n_wants && !k; i++)	/* a pointer that outlives the event */
		if (d->p.wants[i].key && !strcmp(d->p.wants[i].key, key))
			k = d->p.wants[i].key;
	if (!k)
		return;
	if (d->n_dirty == d->cap_dirty) {
		size_t ncap = d->cap_dirty * 2 + 8;
		const char **nd = realloc(d->dirty, ncap * sizeof(*nd));

		if (!nd) {
			d->dirty_oom = 1;
			return;
		}
		d->dirty = nd;
		d->cap_dirty = ncap;
	}
	d->dirty[d->n_dirty++] = k;
}

void pb_decide_settle(struct pb_decide *d, int64_t now)
{
	int moved = 0;

	if (d->dirty_oom)
		moved = recompute_all(d) > 0;
	for (size_t i = 0; !d->dirty_oom && i < d->n_dirty; i++)
		moved |= update_key(d, d->dirty[i]) > 0;
	d->n_dirty = 0;
	d->dirty_oom = 0;
	if (moved)
		values_moved(d, now, PB_REASON_CHANGE);
}

/* ---- inputs ---- */

enum pb_verdict pb_decide_event(struct pb_decide *d, int64_t now, const struct pb_decide_event *in,
				int *changed)
{
	const struct pb_event *ev = in->ev;
	struct pb_decide_rec r = { .kind = PB_DECIDE_REC_VERDICT, .at = now };
	int live_changed = 0, moved = 0, delta = -1;
	enum pb_verdict v;

	/* stale is judged from the highest seq the audit log holds too: a
	 * provider removed and then pruned from the log leaves no other trace */
	if (!in->seen_before && in->seq_floor > 0 && in->seq_floor != INT64_MAX)
		pb_providers_seq_floor(d->prov, ev->federation, ev->node, ev->service, in->seq_floor);
	if (!in->seen_before)
		delta = pb_providers_value_change(d->prov, ev, &d->p.filter, d->p.public_only,
						  SIZE_MAX);
	v = pb_providers_apply(d->prov, ev, in->seen_before, &d->p.filter, in->apply_at,
			       &live_changed);
	/* delta 0: the joined values of the key stay; 1: they move (both
	 * exact, O(1)), computed at the batch's end (pb_decide_settle: a
	 * computation is O(k log k) in the key's k providers); -1: the key
	 * goes from no live provider to some or back, and the statics decide:
	 * computed now */
	if (v == PB_VERDICT_APPLIED && live_changed && delta == 1) {
		mark_dirty(d, ev->key);
		moved = 1;
	} else if (v == PB_VERDICT_APPLIED && live_changed && delta != 0) {
		pb_decide_settle(d, now);
		moved = update_key(d, ev->key) > 0;
		if (moved)
			values_moved(d, now, PB_REASON_CHANGE);
	}
	r.ev = ev;
	r.verdict = v;
	r.changed = moved;
	emit(d, &r);
	if (changed)
		*changed = moved;
	return v;
}

/* The expired providers are kept until the values are recomputed, so
 * their records can say whether the values changed. */
struct expired {
	struct pb_decide *d;
	int64_t now;
	struct pb_provider *pv;
	size_t n, cap;
};

static void on_expired(const struct pb_provider *pv, void *ctx)
{
	struct expired *x = ctx;
	struct pb_provider *np = x->pv;
	char *value = NULL;

	if (x->n == x->cap && (np = realloc(x->pv, (x->cap * 2 + 8) * sizeof(*np)))) {
		x->pv = np;
		x->cap = x->cap * 2 + 8;
	}
	if (x->n == x->cap || (pv->value && !(value = strdup(pv->value)))) {
		/* out of memory: recorded at once, "changed" assumed */
		struct pb_decide_rec r = { .kind = PB_DECIDE_REC_EXPIRED, .at = x->now };

		r.pv = pv;
		r.verdict = PB_VERDICT_EXPIRED;
		r.changed = 1;
		emit(x->d, &r);
		return;
	}
	x->pv[x->n] = *pv;
	x->pv[x->n++].value = value;
}

size_t pb_decide_expire(struct pb_decide *d, int64_t now)
{
	struct expired x = { d, now, NULL, 0, 0 };
	size_t n, i;
	int moved;

	pb_decide_settle(d, now);
	if (pb_providers_next_expiry(d->prov) > now)
		return 0;
	n = pb_providers_expire(d->prov, now, on_expired, &x);
	moved = n && recompute_all(d) > 0;
	for (i = 0; i < x.n; i++) {
		struct pb_decide_rec r = { .kind = PB_DECIDE_REC_EXPIRED, .at = now };

		r.pv = &x.pv[i];
		r.verdict = PB_VERDICT_EXPIRED;
		r.changed = moved;
		emit(d, &r);
		free(x.pv[i].value);
	}
	free(x.pv);
	if (moved)
		values_moved(d, now, PB_REASON_EXPIRY);
	return n;
}

void pb_decide_request(struct pb_decide *d, int64_t now, enum pb_reason why)
{
	latch(d, now);
	if (why == PB_REASON_STARTUP)
		d->startup_requested = 1;
	pb_debounce_request(&d->deb, now, why);
}

void pb_decide_pause(struct pb_decide *d, int64_t now, int paused)
{
	paused = paused ? 1 : 0;
	latch(d, now);
	if (d->paused != paused)
		emit_note(d, now, paused ? "pause" : "resume", paused ? "runs held" : "runs let go");
	d->paused = paused;
	pb_debounce_pause(&d->deb, paused);
	if (!paused)
		pb_decide_request(d, now, PB_REASON_RESUME);
}

int pb_decide_reload(struct pb_decide *d, int64_t now, const struct pb_decide_params *p,
		     const char *const *added, size_t n_added)
{
	int rc = 0;

	pb_decide_settle(d, now);	/* the dirty keys point into the old params */
	latch(d, now);			/* before the new quiet, max-wait, owed keys */
	/* the catch-up is owed before anything is recomputed: no run can
	 * start with part of a new key's history */
	for (size_t i = 0; i < n_added; i++)
		if (owe_key(d, added[i]) < 0) {
			d->owe_full = 1;	/* stricter, never looser */
			rc = -1;
		}
	d->p = *p;
	pb_debounce_set_params(&d->deb, &p->deb);
	if (recompute_all(d) > 0)
		values_moved(d, now, PB_REASON_CHANGE);
	return rc;
}

void pb_decide_owe_full(struct pb_decide *d, int64_t now)
{
	latch(d, now);
	d->owe_full = 1;
	clear_owed_keys(d);
}

void pb_decide_catchup_done(struct pb_decide *d, int64_t now, int full, const char *const *keys,
			    size_t n)
{
	/* leases that ran out before the catch-up ended */
	pb_decide_expire(d, now);
	if (full)
		d->owe_full = 0;
	for (size_t i = 0; i < n; i++)
		drop_owed_key(d, keys[i]);
}

struct splay_draw {
	uint64_t rnd;
	int drawn;
	int64_t ms;
};

static int64_t splay_rand(void *ctx, int64_t max_ms)
{
	struct splay_draw *s = ctx;

	s->drawn = 1;
	s->ms = max_ms > 0 ? (int64_t)(s->rnd % (uint64_t)(max_ms + 1)) : 0;
	return s->ms;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

void pb_decide_poll(struct pb_decide *d, int64_t now, uint64_t rnd, struct pb_decide_action *out)
{
	struct splay_draw s = { rnd, 0, 0 };
	struct pb_debounce_due due;

	pb_decide_settle(d, now);
	memset(out, 0, sizeof(*out));
	out->reason = PB_REASON_CHANGE;
	out->queued_at = PB_TIME_NEVER;
	out->splay_ms = d->splay_ms;
	out->next_at = pb_providers_next_expiry(d->prov);
	out->run_at = PB_TIME_NEVER;
	/* one at a time; nothing before the startup request; nothing while a
	 * catch-up is owed (its end is an input: the caller polls again) */
	if (d->run != PB_DECIDE_IDLE || !d->startup_requested || d->owe_full || d->n_owe)
		return;
	pb_debounce_poll(&d->deb, now, splay_rand, &s, &due);
	if (s.drawn) {
		out->splay_drawn = 1;
		out->splay_ms = d->splay_ms = s.ms;
	}
	out->throttled_until = pb_debounce_throttled_until(&d->deb, now);
	out->run_at = due.next_at;
	out->next_at = min64(out->next_at, due.next_at);
	if (!due.start)
		return;
	out->start = 1;
	out->reason = due.reason;
	out->queued_at = due.queued_at;
	out->values = d->values;
	out->n_values = d->n_values;
}

int pb_decide_started(struct pb_decide *d, int64_t now)
{
	struct pb_kv *copy;

	pb_decide_settle(d, now);
	if (!(copy = pb_decide_kv_copy(d->values, d->n_values)))
		return -1;
	pb_kv_free_array(d->run_values, d->n_run);
	d->run_values = copy;
	d->n_run = d->n_values;
	d->run = PB_DECIDE_GOING;
	d->lock_since = PB_TIME_NEVER;
	pb_debounce_started(&d->deb, now);
	return 0;
}

void pb_decide_lock_wait(struct pb_decide *d, int64_t now)
{
	if (d->run == PB_DECIDE_IDLE)
		return;
	if (d->lock_since == PB_TIME_NEVER)
		d->lock_since = now;
	d->run = PB_DECIDE_LOCK_WAIT;
}

int64_t pb_decide_lock_taken(struct pb_decide *d, int64_t now)
{
	int64_t waited = d->lock_since == PB_TIME_NEVER ? 0 : now - d->lock_since;

	if (d->run != PB_DECIDE_IDLE)
		d->run = PB_DECIDE_GOING;
	return waited;
}

void pb_decide_finished(struct pb_decide *d, int64_t now, enum pb_run_status st)
{
	int ok = 0;

	if (d->run == PB_DECIDE_IDLE || st == PB_RUN_RUNNING)
		return;
	pb_decide_settle(d, now);
	switch (st) {
	case PB_RUN_OK:
		ok = 1;
		pb_kv_free_array(d->ok_values, d->n_ok);
		d->ok_values = d->run_values;
		d->n_ok = d->n_run;
		d->have_ok = 1;
		d->run_values = NULL;
		d->n_run = 0;
		d->fails_in_row = 0;
		break;
	case PB_RUN_FAILED:
		d->fails_in_row++;
		break;
	case PB_RUN_INTERRUPTED:
		break;
	case PB_RUN_RUNNING:
	case PB_RUN__COUNT:
		return;
	}
	pb_kv_free_array(d->run_values, d->n_run);
	d->run_values = NULL;
	d->n_run = 0;
	d->run = PB_DECIDE_IDLE;
	d->lock_since = PB_TIME_NEVER;
	pb_debounce_finished(&d->deb, now, ok, pb_decide_dirty(d));
	if (st == PB_RUN_FAILED && pb_debounce_retry_at(&d->deb) == PB_TIME_NEVER) {
		char text[96];

		snprintf(text, sizeof(text),
			 "%d failed runs in a row: no more retries until the next change",
			 d->fails_in_row);
		emit_note(d, now, "retry-exhausted", text);
	}
}

/* ---- reading ---- */

enum pb_decide_run_state pb_decide_run_state(const struct pb_decide *d)
{
	return d->run;
}

int pb_decide_pending(const struct pb_decide *d)
{
	return pb_debounce_pending(&d->deb);
}

int pb_decide_paused(const struct pb_decide *d)
{
	return d->paused;
}

int pb_decide_startup_requested(const struct pb_decide *d)
{
	return d->startup_requested;
}

int pb_decide_owed(const struct pb_decide *d, int *full, const char *const **keys, size_t *n)
{
	if (full)
		*full = d->owe_full;
	if (keys)
		*keys = (const char *const *)d->owe_keys;
	if (n)
		*n = d->n_owe;
	return d->owe_full || d->n_owe;
}

const struct pb_kv *pb_decide_values(const struct pb_decide *d, size_t *n)
{
	*n = d->n_values;
	return d->values;
}

const struct pb_kv *pb_decide_ok_values(const struct pb_decide *d, size_t *n)
{
	*n = d->have_ok ? d->n_ok : 0;
	return d->have_ok ? d->ok_values : NULL;
}

const struct pb_kv *pb_decide_run_values(const struct pb_decide *d, size_t *n)
{
	*n = d->run == PB_DECIDE_IDLE ? 0 : d->n_run;
	return d->run == PB_DECIDE_IDLE ? NULL : d->run_values;
}

int pb_decide_fails_in_row(const struct pb_decide *d)
{
	return d->fails_in_row;
}

int64_t pb_decide_retry_at(const struct pb_decide *d)
{
	return pb_debounce_retry_at(&d->deb);
}

struct pb_providers *pb_decide_providers(struct pb_decide *d)
{
	return d->prov;
}

const struct pb_debounce *pb_decide_debounce(const struct pb_decide *d)
{
	return &d->deb;
}
