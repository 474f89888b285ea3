/* ingest.c — from deliveries to verdicts, audit rows and values
 * (docs/protocol.md §4, provbus-consumer(1)).
 *
 * A delivery is judged at once (the providers change in memory, so the
 * next delivery of the same batch sees them) and leaves a row in the
 * batch; cs_flush writes the batch in one transaction, then rejects the
 * invalid deliveries and acks the rest with one multiple ack. If the
 * commit fails (disk full), nothing is acked: the rows wait in memory —
 * at most the prefetch of each consumer, since the broker sends no more
 * until we ack — and the commit is retried every second. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "consumer.h"
#include "envfile.h"
#include "log.h"
#include "names.h"
#include "pbtime.h"

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void cs_log_db_error(struct consumer *c, const struct pb_err *e)
{
	int64_t mono = pb_mono_ms();

	if (!c->commit_err_logged || mono - c->commit_err_logged >= CS_ERR_LOG_EVERY_MS) {
		pb_log_err("%s%s", e->msg,
			   e->code == EX_CANTCREAT ? " (disk full? free space: nothing is acked "
						     "meanwhile, the broker keeps the events)" : "");
		c->commit_err_logged = mono;
	}
}

struct pb_kv *cs_kv_copy(const struct pb_kv *kv, size_t n)
{
	return pb_decide_kv_copy(kv, n);
}

char *cs_kv_json(const struct pb_kv *kv, size_t n)
{
	json_t *o = json_object();
	char *s;

	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, kv[i].name, json_string(kv[i].value));
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pb_kv *)a)->name, ((const struct pb_kv *)b)->name);
}

int cs_kv_from_json(const char *json, struct pb_kv **out, size_t *n)
{
	json_t *o = json_loads(json, 0, NULL), *v;
	const char *k;
	struct pb_kv *kv;
	size_t i = 0;

	*out = NULL;
	*n = 0;
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	kv = calloc(json_object_size(o) + 1, sizeof(*kv));
	if (!kv) {
		json_decref(o);
		return -1;
	}
	json_object_foreach(o, k, v) {
		if (!json_is_string(v))
			continue;
		kv[i].name = strdup(k);
		kv[i].value = strdup(json_string_value(v));
		if (!kv[i].name || !kv[i].value) {
			pb_kv_free_array(kv, i + 1);
			json_decref(o);
			return -1;
		}
		i++;
	}
	json_decref(o);
	qsort(kv, i, sizeof(*kv), kv_cmp);
	*out = kv;
	*n = i;
	return 0;
}

/* ---- values: the core's ---- */

/* The run [*first, *end) of key's providers (tombstones included) in
 * the sorted set: two binary searches, O(log n). */
void cs_key_range(const struct consumer *c, const char *key, size_t *first, size_t *end)
{
	const struct pb_providers *p = pb_decide_providers(c->core);
	size_t n = pb_providers_count(p), lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(pb_providers_at(p, mid)->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(pb_providers_at(p, mid)->key, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*end = lo;
}

/* The end of a batch of events (each pump, each commit): the core
 * computes the values of the keys it changed (once per batch: a
 * computation costs O(k log k) in the key's k providers, and per event it
 * dominated a drain: docs/BENCHMARKS.md). */
void cs_values_resolve(struct consumer *c, int64_t now)
{
	pb_decide_settle(c->core, now);
	if (c->unsettled) {
		c->unsettled = 0;
		cs_input(c, now, "settle", 0, NULL);
	}
}

static void record_expired(struct consumer *c, const struct pb_decide_rec *x);

/* The core's records: expired leases become rows of the batch, notes go
 * to the audit log; verdicts are written by judge() (it has the AMQP
 * fields), value changes are in the runs' rows. */
void cs_core_record(void *ctx, const struct pb_decide_rec *x)
{
	struct consumer *c = ctx;
	struct pb_err e = PB_ERR_INIT;

	switch (x->kind) {
	case PB_DECIDE_REC_EXPIRED:
		record_expired(c, x);
		break;
	case PB_DECIDE_REC_NOTE:
		/* retry-exhausted comes as the run ends: it is that run's */
		if (pb_audit_add_note(c->aw, pb_now_ms(),
				      !strcmp(x->note_kind, "retry-exhausted") ? c->run.id : 0,
				      x->note_kind, x->text, &e) < 0)
			cs_log_db_error(c, &e);
		break;
	case PB_DECIDE_REC_VERDICT:
	case PB_DECIDE_REC_VALUES:
		break;
	}
}

/* ---- the batch ---- */

static void rec_release(struct cs_rec *r)
{
	free((char *)r->row.msg_id);
	free((char *)r->row.federation);
	free((char *)r->row.region);
	free((char *)r->row.node);
	free((char *)r->row.service);
	free((char *)r->row.key);
	free((char *)r->row.value);
	free((char *)r->row.detail);
	free((char *)r->row.exchange);
	free((char *)r->row.routing_key);
	free(r->in_text);
	memset(r, 0, sizeof(*r));
}

void cs_pend_release(struct consumer *c)
{
	for (size_t i = 0; i < c->n_pend; i++)
		rec_release(&c->pend[i]);
	free(c->pend);
	c->pend = NULL;
	c->n_pend = c->cap_pend = 0;
}

static void mark_pending(struct consumer *c)
{
	if (!c->pend_since)
		c->pend_since = pb_mono_ms();
}

static struct cs_rec *rec_new(struct consumer *c)
{
	struct cs_rec *r;

	if (c->n_pend == c->cap_pend) {
		size_t ncap = c->cap_pend ? c->cap_pend * 2 : 64;
		struct cs_rec *np = realloc(c->pend, ncap * sizeof(*np));

		if (!np)
			return NULL;
		c->pend = np;
		c->cap_pend = ncap;
	}
	r = &c->pend[c->n_pend++];
	memset(r, 0, sizeof(*r));
	r->row.seq = r->row.ttl_s = -1;
	r->row.public = -1;
	mark_pending(c);
	return r;
}

/* Fills the row's event fields from ev (copies). */
static void rec_event(struct cs_rec *r, const struct pb_event *ev)
{
	r->row.msg_id = strdup(ev->id);
	r->row.kind = pb_kind_name(ev->kind);
	r->row.federation = strdup(ev->federation);
	r->row.region = strdup(ev->region);
	r->row.node = strdup(ev->node);
	r->row.service = strdup(ev->service);
	r->row.key = strdup(ev->key);
	r->row.value = ev->has_value ? strndup(ev->value, ev->value_len) : NULL;
	r->row.seq = ev->seq;
	r->row.ttl_s = ev->ttl_s;
	r->row.public = ev->public != 0;
}

/* *last: the highest events.id written so far (for the inputs rows). */
static int write_rec(struct consumer *c, const struct cs_rec *r, int superseded,
		     int64_t *last, struct pb_err *e)
{
	const struct pb_audit_event *w = &r->row;
	int64_t id;

	if (r->in_kind)
		return pb_audit_add_input(c->aw, w->received_at, *last, r->in_kind, r->in_n,
					  r->in_text, e);
	if ((id = pb_audit_add_event(c->aw, w, e)) < 0)
		return -1;
	*last = id;
	if (r->prov_op == PROV_UPSERT && !superseded)
		return pb_audit_put_provider(c->aw, w->federation, w->region, w->node, w->service,
					     w->key, w->value, r->pv_public, r->pv_seq,
					     r->pv_expires_at, r->pv_updated_at, r->pv_tombstone, e);
	if (r->prov_op == PROV_DELETE && !superseded)
		return pb_audit_del_provider(c->aw, w->federation, w->region, w->node, w->service,
					     w->key, e);
	return 0;
}

static uint64_t provider_hash(const struct pb_audit_event *w)
{
	const char *part[] = { w->federation, w->region, w->node, w->service, w->key };
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(part) / sizeof(*part); i++) {
		for (const char *p = part[i] ? part[i] : ""; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;	/* the field boundary */
	}
	return h;
}

static int str_eq(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

static int same_provider(const struct pb_audit_event *a, const struct pb_audit_event *b)
{
	return str_eq(a->federation, b->federation) && str_eq(a->region, b->region) &&
	       str_eq(a->node, b->node) && str_eq(a->service, b->service) && str_eq(a->key, b->key);
}

/* Marks in sup[i] the rows whose provider write a later row of the batch
 * overwrites: only the last state of each provider is written (the
 * upserts were a visible share of a drain's CPU when a batch holds many
 * events of each provider: docs/BENCHMARKS.md). Without memory for the
 * table every write is made, which is also right. */
static void mark_superseded(const struct consumer *c, unsigned char *sup)
{
	size_t n = c->n_pend, cap = 16, i;
	uint32_t *slot;

	while (cap < 2 * n)
		cap *= 2;
	slot = malloc(cap * sizeof(*slot));
	if (!slot)
		return;
	for (i = 0; i < cap; i++)
		slot[i] = UINT32_MAX;
	for (i = n; i-- > 0;) {
		const struct cs_rec *r = &c->pend[i];
		size_t j;

		if (r->prov_op == PROV_NONE)
			continue;
		for (j = provider_hash(&r->row) & (cap - 1); slot[j] != UINT32_MAX; j = (j + 1) & (cap - 1))
			if (same_provider(&c->pend[slot[j]].row, &r->row))
				break;
		if (slot[j] != UINT32_MAX)
			sup[i] = 1;
		else
			slot[j] = (uint32_t)i;
	}
	free(slot);
}

static int commit_pending(struct consumer *c, struct pb_err *e)
{
	unsigned char *sup = calloc(c->n_pend ? c->n_pend : 1, 1);
	int64_t last = 0;
	size_t i;

	if (sup)
		mark_superseded(c, sup);
	/* a read transaction may be open already (seen_before) */
	if (!pb_audit_in_tx(c->aw) && pb_audit_begin(c->aw, e) < 0)
		goto fail_free;
	/* the inputs rows need the events.id before them: one lookup when
	 * the batch has one */
	for (i = 0; i < c->n_pend; i++)
		if (c->pend[i].in_kind) {
			if ((last = pb_audit_max_event_id(c->aw, e)) < 0)
				goto fail;
			break;
		}
	for (i = 0; i < c->n_pend; i++)
		if (write_rec(c, &c->pend[i], sup && sup[i], &last, e) < 0)
			goto fail;
	if (pb_audit_commit(c->aw, e) < 0)
		goto fail;
	free(sup);
	for (i = 0; i < c->n_pend; i++)
		rec_release(&c->pend[i]);
	c->n_pend = 0;
	/* a burst may have grown the array: give it back */
	if (c->cap_pend > 4 * CS_BATCH_MAX) {
		free(c->pend);
		c->pend = NULL;
		c->cap_pend = 0;
	}
	return 0;
fail:
	pb_audit_rollback(c->aw);
fail_free:
	free(sup);
	return -1;
}

static int unacked(const struct consumer *c)
{
	return c->acks[CS_LIVE_CHANNEL].n_unacked || c->acks[CS_HIST_CHANNEL].n_unacked;
}

int cs_flush(struct consumer *c, int force)
{
	struct pb_err e = PB_ERR_INIT;
	int64_t mono = pb_mono_ms();
	size_t n;

	cs_values_resolve(c, pb_now_ms());	/* the rows' changed flags */
	n = c->n_pend;

	if (!n && pb_audit_in_tx(c->aw) && pb_audit_commit(c->aw, &e) < 0)
		pb_audit_rollback(c->aw);	/* only lookups were made in it */
	if (!n && !unacked(c)) {
		c->pend_since = 0;
		return 0;
	}
	if (n && c->db_failing && !force && mono < c->commit_retry_at)
		return -1;
	if (n && commit_pending(c, &e) < 0) {
		c->db_failing = 1;
		c->commit_retry_at = mono + CS_COMMIT_RETRY_MS;
		cs_log_db_error(c, &e);
		return -1;
	}
	if (n && c->db_failing) {
		pb_log_notice("audit log writable again: committed %zu rows", n);
		c->db_failing = 0;
		c->commit_err_logged = 0;
	}
	c->pend_since = 0;
	cs_acks_flush(c);
	return 0;
}

int64_t cs_flush_next(struct consumer *c)
{
	if (!c->pend_since)
		return INT64_MAX;
	if (c->db_failing)
		return c->commit_retry_at;
	return c->pend_since + CS_BATCH_DELAY_MS;
}

int cs_input(struct consumer *c, int64_t at, const char *kind, int64_t n, char *text)
{
	struct cs_rec *r = rec_new(c);

	if (!r) {
		pb_log_err("out of memory for an audit row: input %s", kind);
		free(text);
		return -1;
	}
	r->row.received_at = at;
	r->in_kind = kind;
	r->in_n = n;
	r->in_text = text;
	return 0;
}

/* ---- judging ---- */

/* changed: 1/0 as the audit row says (it changed the values, not merely
 * the providers: under public_only a private provider changes nothing),
 * -1 when it is decided with the batch (a key with many providers). */
static void log_event(const struct pb_event *ev, enum pb_verdict v, int redelivered,
		      enum pb_source source, int changed)
{
	int level = source == PB_SOURCE_HISTORY ? PB_LOG_DEBUG : PB_LOG_INFO;

	if (!pb_log_enabled(level))
		return;
	pb_log(level,
	       "event id=%s verdict=%s kind=%s key=%s region=%s node=%s service=%s seq=%lld "
	       "redelivered=%d source=%s changed=%s",
	       ev->id, pb_verdict_name(v), pb_kind_name(ev->kind), ev->key, ev->region, ev->node,
	       ev->service, (long long)ev->seq, redelivered, pb_source_name(source),
	       changed < 0 ? "batch" : changed ? "1" : "0");
}

/* Judges a parsed, valid event (the core) and queues its row. apply_now is
 * the time its lease counts from. Returns the verdict. */
static enum pb_verdict judge(struct consumer *c, const struct pb_event *ev, int seen,
			     int redelivered, enum pb_source source, const char *exchange,
			     const char *routing_key, int64_t now, int64_t apply_now)
{
	struct pb_decide_event in = { ev, seen, 0, apply_now };
	int changed = 0;
	int64_t mark;
	enum pb_verdict v;
	struct cs_rec *r;

	/* stale is judged from the highest seq the audit log holds for the
	 * (node, service) too, not only from the providers in memory: a
	 * provider removed (lease) and then restarted or pruned from the log
	 * leaves no other trace of it (provbus-consumer(1) retention) */
	if (!seen && cs_marks_get(c->marks, ev->node, ev->service, &mark))
		in.seq_floor = mark;
	v = pb_decide_event(c->core, now, &in, &changed);
	c->unsettled++;
	c->counts[v]++;
	if (v != PB_VERDICT_DUPLICATE)
		cs_seen_add(c->seen, ev->id);
	cs_marks_raise(c->marks, ev->node, ev->service, ev->seq);
	r = rec_new(c);
	if (!r) {
		pb_log_err("out of memory for an audit row: event id=%s", ev->id);
		return v;
	}
	rec_event(r, ev);
	r->row.received_at = now;
	r->row.verdict = pb_verdict_name(v);
	r->row.redelivered = redelivered;
	r->row.source = pb_source_name(source);
	r->row.exchange = dup_or_null(exchange);
	r->row.routing_key = dup_or_null(routing_key);
	r->row.changed = changed;
	r->row.lease_from = apply_now != now ? apply_now : 0;
	if (v == PB_VERDICT_APPLIED) {
		r->prov_op = PROV_UPSERT;
		r->pv_public = ev->public != 0;
		r->pv_tombstone = ev->kind == PB_KIND_RETIRE;
		r->pv_seq = ev->seq;
		r->pv_expires_at = ev->kind == PB_KIND_PROVIDES && ev->ttl_s > 0
					   ? apply_now + ev->ttl_s * 1000 : PB_TIME_NEVER;
		r->pv_updated_at = apply_now;
	}
	log_event(ev, v, redelivered, source, changed);
	return v;
}

/* 1 when the event's id was judged before (the cache, else the audit
 * log's events_dedupe index). */
static int seen_before(struct consumer *c, const struct pb_event *ev)
{
	struct pb_err e = PB_ERR_INIT;
	int64_t max;
	int r;

	if (cs_seen_has(c->seen, ev->id))
		return 1;
	/* inside the batch's transaction: one file lock for all the lookups
	 * of a batch instead of one each (one each was about half the cost
	 * of an event: docs/BENCHMARKS.md); the commit ends it */
	if (pb_audit_begin_read(c->aw, &e) < 0)
		cs_log_db_error(c, &e);
	/* above the highest seq of its (node, service): new (seen.c) */
	if (!cs_marks_get(c->marks, ev->node, ev->service, &max)) {
		if (pb_audit_max_seq(c->aw, ev->node, ev->service, &max, &e) == 0)
			cs_marks_set(c->marks, ev->node, ev->service, max);
		else
			max = INT64_MAX;	/* unknown: look the id up */
	}
	if (ev->seq > max)
		return 0;
	r = pb_audit_seen(c->aw, ev->node, ev->service, ev->seq, ev->id, &e);
	if (r < 0) {
		/* judging it again is harmless: applying an event twice
		 * changes nothing; losing it would not be */
		cs_log_db_error(c, &e);
		return 0;
	}
	return r;
}

static int content_type_ok(const char *ct)
{
	size_t n = strcspn(ct, "; \t");

	return n == 16 && !strncasecmp(ct, "application/json", 16);
}

/* The id of an invalid message, for its row: the body's "id" when it is a
 * short string, else the AMQP message_id, else none. */
static char *invalid_msg_id(const struct cs_msg *m)
{
	json_t *o = NULL;
	const char *id = NULL;
	char *out = NULL;

	if (m->size <= PB_EVENT_MAX_BYTES && (o = json_loadb(m->body, m->size, JSON_ALLOW_NUL, NULL)) &&
	    json_is_object(o))
		id = json_string_value(json_object_get(o, "id"));
	if (id && strlen(id) <= 64 && pb_value_ok(id, strlen(id)))
		out = strdup(id);
	else if (m->message_id[0] && pb_value_ok(m->message_id, strlen(m->message_id)))
		out = strdup(m->message_id);
	json_decref(o);
	return out;
}

static void record_invalid(struct consumer *c, const struct cs_msg *m, const struct pb_event *ev,
			   const char *detail, int64_t now)
{
	struct cs_rec *r = rec_new(c);
	char *id;

	c->counts[PB_VERDICT_INVALID]++;
	if (!r) {
		pb_log_err("out of memory for an audit row: invalid message");
		return;
	}
	if (ev)
		rec_event(r, ev);
	else
		r->row.msg_id = invalid_msg_id(m);
	id = (char *)r->row.msg_id;
	r->row.received_at = now;
	r->row.verdict = pb_verdict_name(PB_VERDICT_INVALID);
	r->row.detail = strdup(detail);
	r->row.redelivered = m->redelivered;
	r->row.source = pb_source_name(PB_SOURCE_LIVE);
	r->row.exchange = strdup(m->exchange);
	r->row.routing_key = strdup(m->routing_key);
	pb_log_notice("event id=%s verdict=invalid routing_key=%s size=%llu redelivered=%d "
		      "detail=\"%s\" (dead-lettered to provbus.dead)", id ? id : "-",
		      m->routing_key, (unsigned long long)m->size, m->redelivered, detail);
}

static void add_reject(struct cs_acks *a, uint64_t tag)
{
	if (a->n_rejects == a->cap_rejects) {
		size_t ncap = a->cap_rejects ? a->cap_rejects * 2 : 64;
		uint64_t *nr = realloc(a->rejects, ncap * sizeof(*nr));

		if (!nr)
			return;	/* it stays unacked: redelivered after a reconnect */
		a->rejects = nr;
		a->cap_rejects = ncap;
	}
	a->rejects[a->n_rejects++] = tag;
}

/* With verify_sender: the broker vouches for user_id (it refuses one that
 * is not the connection's user), so an event whose user_id is missing or
 * is not its node was sent by someone else, or injected into provbus.dlx
 * and shovelled back. */
static int sender_ok(const struct cs_msg *m, const struct pb_event *ev, char *detail, size_t size)
{
	char shown[sizeof(m->user_id) * 4];

	if (m->has_user_id && !strcmp(m->user_id, ev->node))
		return 1;
	if (m->has_user_id && pb_value_ok(m->user_id, strlen(m->user_id)))
		snprintf(shown, sizeof(shown), "%s", m->user_id);
	else
		snprintf(shown, sizeof(shown), m->has_user_id ? "(not printable)" : "(none)");
	snprintf(detail, size, "sender %s is not node %s", shown, ev->node);
	return 0;
}

/* Checks a message against docs/protocol.md §4. Returns 0 with ev filled, or -1 with
 * detail (and *parsed = 1 when the body itself was fine). */
static int validate(const struct consumer *c, const struct cs_msg *m, struct pb_event *ev,
		    int *parsed, char *detail, size_t size)
{
	struct pb_err e = PB_ERR_INIT;

	*parsed = 0;
	if (m->size > PB_EVENT_MAX_BYTES) {
		snprintf(detail, size, "message of %llu bytes is over the limit of %d bytes",
			 (unsigned long long)m->size, PB_EVENT_MAX_BYTES);
		return -1;
	}
	if (m->has_content_type && !content_type_ok(m->content_type)) {
		snprintf(detail, size, "content type '%s': want application/json", m->content_type);
		return -1;
	}
	if (pb_event_parse(m->body, m->size, ev, &e) < 0) {
		snprintf(detail, size, "%s", e.msg);
		return -1;
	}
	*parsed = 1;
	if (pb_event_check_route(ev, m->exchange, m->routing_key, &e) < 0) {
		snprintf(detail, size, "%s", e.msg);
		return -1;
	}
	if (c->conf.cfg->consumer.verify_sender && !sender_ok(m, ev, detail, size))
		return -1;
	return 0;
}

void cs_ingest_live(struct consumer *c, struct cs_msg *m)
{
	static struct pb_event ev;	/* 4.7 KB: not on the stack of every call */
	struct cs_acks *a = &c->acks[CS_LIVE_CHANNEL];
	char detail[PB_ERR_MAX + 64];
	int64_t now = pb_now_ms();
	int parsed;

	a->n_unacked++;
	mark_pending(c);
	if (validate(c, m, &ev, &parsed, detail, sizeof(detail)) < 0) {
		record_invalid(c, m, parsed ? &ev : NULL, detail, now);
		add_reject(a, m->tag);
		return;
	}
	judge(c, &ev, seen_before(c, &ev), m->redelivered, PB_SOURCE_LIVE, m->exchange, m->routing_key,
	      now, now);
	a->max_valid = m->tag;
}

/* ---- history ---- */

static int history_wants(const struct consumer *c, const struct pb_event *ev)
{
	const struct pb_filter *f = &c->conf.filter;

	if (strcmp(ev->federation, f->federation) ||
	    !cs_strv_has(f->keys, f->n_keys, ev->key) ||
	    !pb_config_accepts_region(c->conf.cfg, ev->region))
		return 0;
	if (!c->hist_full &&
	    !cs_strv_has((const char *const *)c->hist_keys, c->n_hist_keys, ev->key))
		return 0;
	return 1;
}

/* A history message: the stream holds the whole federation, so what this
 * node does not accept, what does not parse (it was dead-lettered by the
 * nodes that received it live) and what was judged before are skipped
 * without a row; the rest is judged as if it arrived now, its lease
 * counted from its own time. Every message is acked: on a stream an ack
 * is credit. */
void cs_ingest_history(struct consumer *c, struct cs_msg *m)
{
	static struct pb_event ev;
	char detail[PB_ERR_MAX + 64];
	int64_t now = pb_now_ms(), at;
	struct pb_err e = PB_ERR_INIT;
	int parsed;

	c->hist_last_msg = pb_mono_ms();
	if (m->has_offset)
		pb_stream_end_main(&c->hist_end, m->offset, c->hist_last_msg);
	else
		pb_stream_end_alive(&c->hist_end, c->hist_last_msg);
	c->hist_read++;
	c->acks[CS_HIST_CHANNEL].n_unacked++;
	c->acks[CS_HIST_CHANNEL].max_valid = m->tag;
	mark_pending(c);
	if (m->has_offset) {
		if (m->offset < c->hist_min_offset)
			return;
		if (m->offset + 1 > c->hist_next_offset)
			c->hist_next_offset = m->offset + 1;
	}
	if (validate(c, m, &ev, &parsed, detail, sizeof(detail)) < 0 || !history_wants(c, &ev) ||
	    seen_before(c, &ev)) {
		c->history_skipped++;
		return;
	}
	if (pb_time_parse_rfc3339(ev.ts, &at, &e) < 0 || at > now)
		at = now;
	if (judge(c, &ev, 0, 0, PB_SOURCE_HISTORY, m->exchange, m->routing_key, now, at) ==
	    PB_VERDICT_APPLIED)
		c->hist_applied++;
}

void cs_history_done(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	int64_t now = pb_now_ms();

	cs_flush(c, 1);
	if (c->hist_next_offset > 0 &&
	    pb_audit_offset_set(c->aw, c->stream, c->hist_next_offset, now, &e) < 0)
		cs_log_db_error(c, &e);
	if (pb_audit_add_note(c->aw, now, 0, "catch-up", NULL, &e) < 0)
		cs_log_db_error(c, &e);
	cs_values_resolve(c, now);
	/* leases that ran out before the catch-up ended */
	cs_expire(c, now);
}

/* ---- leases ---- */

/* A lease ran out (the core's record): a row of the batch. */
static void record_expired(struct consumer *c, const struct pb_decide_rec *x)
{
	const struct pb_provider *pv = x->pv;
	struct cs_rec *r = rec_new(c);
	char detail[160], ts[PB_TIME_BUF];

	c->counts[PB_VERDICT_EXPIRED]++;
	if (!r)
		return;
	snprintf(detail, sizeof(detail), "lease ran out at %s", pb_time_format(pv->expires_at, ts));
	r->row.received_at = x->at;
	r->row.federation = strdup(pv->federation);
	r->row.region = strdup(pv->region);
	r->row.node = strdup(pv->node);
	r->row.service = strdup(pv->service);
	r->row.key = strdup(pv->key);
	r->row.value = dup_or_null(pv->value);
	r->row.seq = pv->seq;
	r->row.public = pv->public != 0;
	r->row.verdict = pb_verdict_name(PB_VERDICT_EXPIRED);
	r->row.detail = strdup(detail);
	r->row.source = pb_source_name(PB_SOURCE_DAEMON);
	r->row.changed = x->changed;
	r->prov_op = PROV_DELETE;
	pb_log_info("event verdict=expired key=%s region=%s node=%s service=%s seq=%lld source=daemon",
		    pv->key, pv->region, pv->node, pv->service, (long long)pv->seq);
}

void cs_expire(struct consumer *c, int64_t now)
{
	size_t n;

	cs_values_resolve(c, now);	/* the settle it makes first: recorded */
	if ((n = pb_decide_expire(c->core, now)) > 0)
		cs_input(c, now, "expire", (int64_t)n, NULL);
}

char *cs_strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

/* ---- restoring the state at start ---- */

static int restore_provider(const struct pb_audit_provider *a, void *ctx)
{
	struct consumer *c = ctx;
	struct pb_provider pv;

	memset(&pv, 0, sizeof(pv));
	snprintf(pv.federation, sizeof(pv.federation), "%s", a->federation);
	snprintf(pv.region, sizeof(pv.region), "%s", a->region);
	snprintf(pv.node, sizeof(pv.node), "%s", a->node);
	snprintf(pv.service, sizeof(pv.service), "%s", a->service);
	snprintf(pv.key, sizeof(pv.key), "%s", a->key);
	pv.value = (char *)a->value;
	pv.public = a->public;
	pv.seq = a->seq;
	pv.expires_at = a->expires_at;
	pv.updated_at = a->updated_at;
	pv.tombstone = a->tombstone;
	return pb_decide_restore_provider(c->core, &pv);
}

/* The providers and the last good run's values, from the audit log, into
 * the core (pb_decide_restored follows in cs_runs_init). */
int cs_restore(struct consumer *c, struct pb_err *err)
{
	struct pb_kv *ok = NULL;
	size_t n_ok = 0;
	char *json = NULL;
	int rc = -1;

	if (pb_audit_each_provider(c->aw, restore_provider, c, err) != 0) {
		if (!err->code)
			pb_err_set(err, EX_OSERR, "restoring the providers: out of memory");
		goto out;
	}
	if (pb_audit_last_ok_values(c->aw, &json, err) < 0)
		goto out;
	if (json) {
		if (cs_kv_from_json(json, &ok, &n_ok) < 0)
			pb_log_warn("audit log %s: the last successful run's values_after is not a "
				    "JSON object: treating every value as changed", c->db_path);
		else if (pb_decide_restore_ok_values(c->core, ok, n_ok) < 0)
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	pb_err_set(err, EX_OSERR, "restoring the last good values: out of memory");
out:
	pb_kv_free_array(ok, n_ok);
	free(json);
	return rc;
}
