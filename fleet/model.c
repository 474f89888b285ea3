/* model.c — what the streams say (fleet.h).
 *
 * Providers: every announcement of the history window goes through
 * pb_providers_apply without a filter (all keys, all regions), as a
 * catch-up applies it (at the event's ts, capped at now); a node's view
 * is then its own filter (keys, regions, public_only, from its presence)
 * over that set, which is what the consumer's own filtered set holds:
 * the filter decides only `foreign`, which changes nothing. The one thing
 * not repeated is the consumer's duplicate check by id: a duplicate
 * carries the same seq and value, so applying it again changes nothing
 * but the time a lease was last renewed.
 *
 * The values of a node are those of provbus-consumer(1): the live values of each
 * key joined, else its static value; presence carries only the SHA-256 of
 * each static value (it may be a secret), which is all `converged`
 * compares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "event.h"
#include "fleet.h"
#include "pbtime.h"
#include "report.h"
#include "strv.h"

void fl_init(struct fleet *f, const char *federation)
{
	memset(f, 0, sizeof(*f));
	f->federation = federation;
	f->prov = pb_providers_new();
	f->ptime = fl_tmap_new();
	f->seqs = fl_tmap_new();
	if (!f->ptime || !f->seqs) {
		pb_providers_free(f->prov);
		f->prov = NULL;	/* the caller's out-of-memory test */
	}
}

void fl_release(struct fleet *f)
{
	for (size_t i = 0; i < f->n_nodes; i++) {
		json_decref(f->nodes[i].presence);
		json_decref(f->nodes[i].last_run);
		json_decref(f->nodes[i].last_ok);
	}
	free(f->nodes);
	pb_providers_free(f->prov);
	fl_tmap_free(f->ptime);
	fl_tmap_free(f->seqs);
	free(f->stale);
	memset(f, 0, sizeof(*f));
}

static int64_t ts_or(const char *ts, int64_t now)
{
	int64_t at;
	struct pb_err e = PB_ERR_INIT;

	if (!ts || pb_time_parse_rfc3339(ts, &at, &e) < 0 || at > now)
		return now;
	return at;
}

void fl_take_event(struct fleet *f, const struct fl_msg *m, int64_t now)
{
	struct pb_event ev;
	struct pb_err e = PB_ERR_INIT;
	char tk[1024], sk[512];
	enum pb_verdict v;
	int64_t at, t;

	if (pb_event_parse(m->body, m->len, &ev, &e) < 0 ||
	    pb_event_check_route(&ev, m->exchange, m->routing_key, &e) < 0 ||
	    strcmp(ev.federation, f->federation)) {
		f->n_invalid++;
		return;
	}
	if (!f->trust_user_id && (!m->user_id || strcmp(m->user_id, ev.node))) {
		f->n_impostors++;
		return;
	}
	f->n_events++;
	f->changed = 1;
	at = ts_or(ev.ts, now);
	t = m->offset >= 0 ? m->offset : INT64_MAX;	/* no offset: never pruned */
	v = pb_providers_apply(f->prov, &ev, 0, NULL, at, NULL);
	/* for the cache: where each provider and seq floor was set, and why
	 * an event was stale (cache.c); other verdicts leave no trace */
	if (v != PB_VERDICT_APPLIED && v != PB_VERDICT_STALE)
		return;
	fl_tuple_key(tk, sizeof(tk), ev.federation, ev.region, ev.node, ev.service, ev.key);
	fl_tuple_key(sk, sizeof(sk), ev.federation, NULL, ev.node, ev.service, NULL);
	if (v == PB_VERDICT_APPLIED) {
		if (fl_tmap_put(f->ptime, tk, t, 0) < 0 || fl_tmap_put(f->seqs, sk, ev.seq, t) < 0)
			f->stale_lost = 1;
	} else if (v == PB_VERDICT_STALE) {
		int64_t seq, cause = t;

		if (!(fl_tmap_get(f->seqs, sk, &seq, &cause) && ev.seq < seq))
			fl_tmap_get(f->ptime, tk, &cause, NULL);	/* a tombstone's */
		fl_stale_note(f, cause, t);
	}
}

static struct fl_node *node_get(struct fleet *f, const char *name)
{
	size_t lo = 0, hi = f->n_nodes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(f->nodes[mid].name, name);

		if (!c)
			return &f->nodes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (f->n_nodes == f->cap_nodes) {
		size_t cap = f->cap_nodes ? 2 * f->cap_nodes : 64;
		struct fl_node *v = realloc(f->nodes, cap * sizeof(*v));

		if (!v)
			return NULL;
		f->nodes = v;
		f->cap_nodes = cap;
	}
	memmove(&f->nodes[lo + 1], &f->nodes[lo], (f->n_nodes - lo) * sizeof(*f->nodes));
	memset(&f->nodes[lo], 0, sizeof(*f->nodes));
	snprintf(f->nodes[lo].name, sizeof(f->nodes[lo].name), "%s", name);
	f->n_nodes++;
	return &f->nodes[lo];
}

static void replace(json_t **slot, json_t *o)
{
	json_incref(o);
	json_decref(*slot);
	*slot = o;
}

void fl_take_report(struct fleet *f, const struct fl_msg *m, int64_t now)
{
	struct pb_err e = PB_ERR_INIT;
	json_t *o = pb_report_parse(m->body, m->len, m->exchange, m->routing_key, &e);
	const char *node, *kind;
	struct fl_node *n;
	int64_t off;

	if (!o || strcmp(pb_report_str(o, "federation"), f->federation)) {
		f->n_invalid++;
		goto out;
	}
	node = pb_report_str(o, "node");
	if (!f->trust_user_id && (!m->user_id || strcmp(m->user_id, node))) {
		f->n_impostors++;
		goto out;
	}
	if (!(n = node_get(f, node)))
		goto out;
	off = m->offset >= 0 ? m->offset : INT64_MAX;	/* no offset: never pruned */
	f->n_reports++;
	f->changed = 1;
	kind = pb_report_str(o, "kind");
	if (!strcmp(kind, PB_REPORT_PRESENCE)) {
		json_int_t ttl = json_integer_value(json_object_get(o, "ttl_s"));

		replace(&n->presence, o);
		n->lease_end = ts_or(pb_report_str(o, "ts"), now) + (int64_t)ttl * 1000;
		n->off_presence = off;
	} else {
		const char *st = pb_report_str(o, "status");

		replace(&n->last_run, o);
		n->off_run = off;
		if (st && !strcmp(st, "ok")) {
			replace(&n->last_ok, o);
			n->off_ok = off;
		}
	}
out:
	json_decref(o);
}

void fl_prune_reports(struct fleet *f, int64_t start)
{
	size_t k = 0;

	for (size_t i = 0; i < f->n_nodes; i++) {
		struct fl_node *n = &f->nodes[i];

		if (n->presence && n->off_presence < start) {
			json_decref(n->presence);
			n->presence = NULL;
			n->lease_end = 0;
			f->pruned = 1;
		}
		if (n->last_run && n->off_run < start) {
			json_decref(n->last_run);
			n->last_run = NULL;
			f->pruned = 1;
		}
		if (n->last_ok && n->off_ok < start) {
			json_decref(n->last_ok);
			n->last_ok = NULL;
			f->pruned = 1;
		}
		if (n->presence || n->last_run || n->last_ok)
			f->nodes[k++] = *n;
	}
	f->n_nodes = k;
}

enum fl_state fl_node_state(const struct fl_node *n, int64_t now)
{
	const char *st = n->presence ? pb_report_str(n->presence, "state") : NULL;

	if (st && !strcmp(st, "stopped"))
		return FL_STOPPED;
	if (!n->presence || now >= n->lease_end)
		return FL_STALE;
	return FL_ALIVE;
}

const char *fl_state_name(enum fl_state s)
{
	switch (s) {
	case FL_ALIVE: return "alive";
	case FL_STALE: return "stale";
	case FL_STOPPED: return "stopped";
	}
	return "?";
}

int fl_node_requires(const struct fl_node *n, const char *key)
{
	json_t *keys = n->presence ? json_object_get(n->presence, "keys") : NULL;
	size_t i;
	json_t *k;

	json_array_foreach(keys, i, k)
		if (json_is_string(k) && !strcmp(json_string_value(k), key))
			return 1;
	return 0;
}

/* A node's filter from its presence: borrowed strings in a heap array
 * (free(*keys), free(*regions)). */
struct nfilter {
	struct pb_filter f;
	const char **keys, **regions;
	int public_only;
};

static const char **strv_of(json_t *a, size_t *n)
{
	const char **v = calloc(json_array_size(a) + 1, sizeof(*v));
	size_t i, k = 0;
	json_t *s;

	if (!v)
		return NULL;
	json_array_foreach(a, i, s)
		if (json_is_string(s))
			v[k++] = json_string_value(s);
	qsort(v, k, sizeof(*v), pb_strv_cmp);
	*n = k;
	return v;
}

static int nfilter_init(struct nfilter *nf, const struct fleet *f, const struct fl_node *n)
{
	memset(nf, 0, sizeof(*nf));
	nf->f.federation = f->federation;
	nf->keys = strv_of(json_object_get(n->presence, "keys"), &nf->f.n_keys);
	nf->regions = strv_of(json_object_get(n->presence, "regions"), &nf->f.n_regions);
	nf->f.keys = nf->keys;
	nf->f.regions = nf->regions;
	nf->public_only = json_is_true(json_object_get(n->presence, "public_only"));
	return nf->keys && nf->regions ? 0 : -1;
}

static void nfilter_release(struct nfilter *nf)
{
	free(nf->keys);
	free(nf->regions);
}

static int region_ok(const struct pb_filter *f, const char *region)
{
	for (size_t i = 0; i < f->n_regions; i++)
		if (!strcmp(f->regions[i], "*") || !strcmp(f->regions[i], region))
			return 1;
	return 0;
}

const struct pb_provider **fl_node_providers(struct fleet *f, const struct fl_node *n,
					     int64_t now, size_t *count)
{
	const struct pb_provider **v;
	struct nfilter nf;
	size_t k = 0;

	*count = 0;
	pb_providers_expire(f->prov, now, NULL, NULL);
	if (!n->presence || nfilter_init(&nf, f, n) < 0)
		return calloc(1, sizeof(*v));
	v = calloc(pb_providers_count(f->prov) + 1, sizeof(*v));
	for (size_t i = 0; v && i < pb_providers_count(f->prov); i++) {
		const struct pb_provider *pv = pb_providers_at(f->prov, i);

		if (pv->tombstone || !region_ok(&nf.f, pv->region) ||
		    !bsearch(&(const char *){ pv->key }, nf.f.keys, nf.f.n_keys, sizeof(char *),
			     pb_strv_cmp))
			continue;
		v[k++] = pv;
	}
	nfilter_release(&nf);
	*count = k;
	return v;
}

/* The digest each of the node's keys should have today: {KEY: hex|null}. */
static json_t *expected_digests(struct fleet *f, const struct fl_node *n, int64_t now)
{
	json_t *statics = json_object_get(n->presence, "static"), *out = NULL;
	struct pb_want *wants = NULL;
	struct pb_kv *kv = NULL;
	size_t n_kv = 0;
	struct nfilter nf;

	pb_providers_expire(f->prov, now, NULL, NULL);
	if (nfilter_init(&nf, f, n) < 0)
		return NULL;
	if (!(wants = calloc(nf.f.n_keys + 1, sizeof(*wants))))
		goto out;
	for (size_t i = 0; i < nf.f.n_keys; i++)
		wants[i] = (struct pb_want){ nf.f.keys[i], nf.f.keys[i], NULL };
	if (pb_providers_values(f->prov, wants, nf.f.n_keys, &nf.f, NULL, 0, nf.public_only, &kv,
				&n_kv) < 0)
		goto out;
	if (!(out = pb_report_digests(wants, nf.f.n_keys, kv, n_kv)))
		goto out;
	for (size_t i = 0; i < nf.f.n_keys; i++) {
		json_t *st = json_object_get(statics, nf.f.keys[i]);

		if (json_is_null(json_object_get(out, nf.f.keys[i])) && json_is_string(st))
			json_object_set(out, nf.f.keys[i], st);
	}
out:
	pb_kv_free_array(kv, n_kv);
	free(wants);
	nfilter_release(&nf);
	return out;
}

static int same_digest(json_t *a, json_t *b)
{
	if (json_is_string(a) && json_is_string(b))
		return !strcmp(json_string_value(a), json_string_value(b));
	return (!a || json_is_null(a)) && (!b || json_is_null(b));
}

/* A connected consumer sends a presence every interval_s: one none came
 * for one and a half of them has lost the broker (its presence cannot say
 * so: the report goes over the broker), though its lease still runs. */
static int presence_overdue(const struct fl_node *n, int64_t now)
{
	json_int_t every = json_integer_value(json_object_get(n->presence, "interval_s"));

	return every > 0 && now - ts_or(pb_report_str(n->presence, "ts"), now) > every * 1500;
}

const char *fl_converged(struct fleet *f, const struct fl_node *n, const char *const *keys,
			 size_t n_keys, int64_t now, int *concerned)
{
	json_t *want, *got, *nk = n->presence ? json_object_get(n->presence, "keys") : NULL;
	const char *why = NULL, *st;
	int match = 1;
	size_t i, checked = 0;
	json_t *k;

	*concerned = 0;
	if (fl_node_state(n, now) != FL_ALIVE)
		return NULL;	/* only live consumers count */
	for (i = 0; i < n_keys; i++)
		*concerned |= fl_node_requires(n, keys[i]);
	if (!n_keys)
		*concerned = json_array_size(nk) > 0;
	if (!*concerned)
		return NULL;
	if (!(want = expected_digests(f, n, now)))
		return "still pending";	/* out of memory: no claim of success */
	got = n->last_ok ? json_object_get(n->last_ok, "digests") : NULL;
	json_array_foreach(nk, i, k) {
		const char *key = json_string_value(k);
		int asked = !n_keys;

		for (size_t j = 0; key && j < n_keys && !asked; j++)
			asked = !strcmp(keys[j], key);
		if (!key || !asked)
			continue;
		checked++;
		if (!got || !same_digest(json_object_get(want, key), json_object_get(got, key)))
			match = 0;
	}
	json_decref(want);
	if (match && got && checked)
		return NULL;
	st = n->last_run ? pb_report_str(n->last_run, "status") : NULL;
	if (json_is_true(json_object_get(n->presence, "paused")))
		why = "paused";
	else if (json_is_null(json_object_get(n->presence, "connected_since")) ||
		 presence_overdue(n, now))
		why = "not connected";
	else if (n->last_run && n->last_run != n->last_ok && st && strcmp(st, "ok"))
		why = "last run failed";
	else
		why = "still pending";
	return why;
}
