/* seen.c — a bounded set of recent event ids, in front of the audit log's
 * duplicate check (its events_dedupe index).
 *
 * Fixed memory: a ring of `capacity` slots (the oldest is evicted first)
 * chained into 2 * capacity hash buckets. It answers "seen" for the ids of
 * rows not committed yet (a redelivery inside one batch) and saves the
 * sqlite lookup for recent ones; anything older is looked up in the audit log.
 * The capacity must exceed the rows one batch can hold, so no id of an
 * uncommitted row is ever evicted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"

#define SEEN_ID_MAX 64

struct slot {
	char id[SEEN_ID_MAX + 1];
	int32_t next;		/* next slot in the bucket, -1 */
	uint32_t bucket;
	int used;
};

struct cs_seen {
	struct slot *slots;
	int32_t *buckets;
	size_t cap, n_buckets, head;
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
	s->slots = calloc(s->cap, sizeof(*s->slots));
	s->buckets = malloc(s->n_buckets * sizeof(*s->buckets));
	if (!s->slots || !s->buckets) {
		cs_seen_free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n_buckets; i++)
		s->buckets[i] = -1;
	return s;
}

void cs_seen_free(struct cs_seen *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s->buckets);
	free(s);
}

int cs_seen_has(const struct cs_seen *s, const char *id)
{
	int32_t i = s->buckets[hash(id) % s->n_buckets];

	while (i >= 0) {
		if (!strcmp(s->slots[i].id, id))
			return 1;
		i = s->slots[i].next;
	}
	return 0;
}

static void unlink_slot(struct cs_seen *s, int32_t victim)
{
	int32_t *p = &s->buckets[s->slots[victim].bucket];

	while (*p >= 0 && *p != victim)
		p = &s->slots[*p].next;
	if (*p == victim)
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
	s->buckets[sl->bucket] = i;
	s->head = (s->head + 1) % s->cap;
}
