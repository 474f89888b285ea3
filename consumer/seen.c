/* seen.c — a bounded set of recent event ids, in front of the audit log's
 * duplicate check (its events_dedupe index).
 *
 * Fixed memory: a ring of `capacity` slots (the oldest is evicted first)
 * chained into 2 * capacity hash buckets, in one zeroed mapping
 * (pb_lazy_calloc) that only the slots and buckets written make resident:
 * none while the daemon has judged no event, all of it after about
 * `capacity` events. Links are slot index + 1, 0 for none, so that the
 * zeroed table is the empty one. It answers "seen" for the ids of
 * rows not committed yet (a redelivery inside one batch) and saves the
 * sqlite lookup for recent ones; anything older is looked up in the audit log.
 * The capacity must exceed the rows one batch can hold, so no id of an
 * uncommitted row is ever evicted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "lazymem.h"
#include "names.h"

#define SEEN_ID_MAX 64

struct slot {
	char id[SEEN_ID_MAX + 1];
	int32_t next;		/* next slot in the bucket + 1, 0: none */
	uint32_t bucket;
	int used;
};

struct cs_seen {
	struct slot *slots;
	int32_t *buckets;	/* first slot of each + 1, 0: empty; after the slots */
	size_t cap, n_buckets, head, map_size;
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

struct cs_seen *cs_seen_new(size_t capacity)
{
	struct cs_seen *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = capacity ? capacity : 1;
	s->n_buckets = 2 * s->cap;
	s->map_size = s->cap * sizeof(*s->slots) + s->n_buckets * sizeof(*s->buckets);
	if (!(s->slots = pb_lazy_calloc(s->map_size))) {
		free(s);
		return NULL;
	}
	s->buckets = (int32_t *)(s->slots + s->cap);
	return s;
}

void cs_seen_free(struct cs_seen *s)
{
	if (!s)
		return;
	pb_lazy_free(s->slots, s->map_size);
	free(s);
}

int cs_seen_has(const struct cs_seen *s, const char *id)
{
	int32_t i = s->buckets[hash(id) % s->n_buckets];

	while (i > 0) {
		if (!strcmp(s->slots[i - 1].id, id))
			return 1;
		i = s->slots[i - 1].next;
	}
	return 0;
}

static void unlink_slot(struct cs_seen *s, int32_t victim)
{
	int32_t *p = &s->buckets[s->slots[victim].bucket];

	while (*p > 0 && *p != victim + 1)
		p = &s->slots[*p - 1].next;
	if (*p == victim + 1)
		*p = s->slots[victim].next;
	s->slots[victim].used = 0;
}

void cs_seen_add(struct cs_seen *s, const char *id)
{
	int32_t i = (int32_t)s->head;
	struct slot *sl = &s->slots[i];
	size_t len = strlen(id);

	if (len > SEEN_ID_MAX || cs_seen_has(s, id))
		return;
	if (sl->used)
		unlink_slot(s, i);
	memcpy(sl->id, id, len + 1);
	sl->bucket = hash(id) % s->n_buckets;
	sl->next = s->buckets[sl->bucket];
	sl->used = 1;
	s->buckets[sl->bucket] = i + 1;
	s->head = (s->head + 1) % s->cap;
}

/* ---- the seq marks ----
 *
 * In front of the same lookup: a copy of an event repeats its node,
 * service and seq, so an event whose seq is above every seq the audit log
 * holds for its (node, service) cannot be a copy. (An id re-sent with a
 * new, higher seq is not a copy a broker or a spool makes: past the id
 * cache it is judged as new. At or below the mark the lookup matches the
 * id whatever its seq, so a copy is a duplicate before it can be stale.) A mark is that
 * highest seq, read from the log once (pb_audit_max_seq) and raised by
 * every event judged after; an event above its mark needs no lookup,
 * which is every event of a node announcing in order. A mark is only
 * ever created from the log and only ever raised, so it is never below
 * the truth (rows not committed yet are in the id cache, asked first).
 * Fixed memory: at most MARKS_CAP marks, all dropped when the table is
 * 3/4 full (they are read again when needed); the table is a zeroed
 * mapping (pb_lazy_calloc), resident as marks are set. */
#define MARKS_CAP 1024
#define MARK_KEY_MAX (PB_IDENT_MAX + PB_SERVICE_MAX + 2)

struct mark {
	char *key;		/* "NODE\nSERVICE", NULL for a free slot */
	int64_t max;
};

struct cs_marks {
	struct mark slots[MARKS_CAP];
	size_t n;
};

struct cs_marks *cs_marks_new(void)
{
	return pb_lazy_calloc(sizeof(struct cs_marks));
}

static void marks_clear(struct cs_marks *m)
{
	for (size_t i = 0; i < MARKS_CAP; i++) {
		free(m->slots[i].key);
		m->slots[i].key = NULL;
	}
	m->n = 0;
}

void cs_marks_free(struct cs_marks *m)
{
	if (!m)
		return;
	marks_clear(m);
	pb_lazy_free(m, sizeof(*m));
}

/* The slot of (node, service): its mark, or the free slot where it
 * would go; NULL when the key does not fit. */
static struct mark *mark_slot(const struct cs_marks *m, const char *node, const char *service,
			      char *key)
{
	int n = snprintf(key, MARK_KEY_MAX, "%s\n%s", node, service);
	size_t i;

	if (n < 0 || n >= MARK_KEY_MAX)
		return NULL;
	for (i = hash(key) % MARKS_CAP;; i = (i + 1) % MARKS_CAP) {
		const struct mark *s = &m->slots[i];

		if (!s->key || !strcmp(s->key, key))
			return (struct mark *)s;	/* never full: cleared at 3/4 */
	}
}

int cs_marks_get(const struct cs_marks *m, const char *node, const char *service, int64_t *max)
{
	char key[MARK_KEY_MAX];
	const struct mark *s = mark_slot(m, node, service, key);

	if (!s || !s->key)
		return 0;
	*max = s->max;
	return 1;
}

void cs_marks_set(struct cs_marks *m, const char *node, const char *service, int64_t max)
{
	char key[MARK_KEY_MAX];
	struct mark *s = mark_slot(m, node, service, key);

	if (!s)
		return;
	if (!s->key) {
		if (m->n + 1 > MARKS_CAP * 3 / 4) {
			marks_clear(m);
			s = mark_slot(m, node, service, key);
		}
		if (!(s->key = strdup(key)))
			return;
		m->n++;
	}
	s->max = max;
}

void cs_marks_raise(struct cs_marks *m, const char *node, const char *service, int64_t seq)
{
	char key[MARK_KEY_MAX];
	struct mark *s = mark_slot(m, node, service, key);

	if (s && s->key && seq > s->max)
		s->max = seq;
}
