/* providers.c — the live providers of provbus-consumer(1); see providers.h.
 *
 * Storage, sized for thousands of providers and a million apply calls
 * (replay):
 * - the providers: an array of pointers sorted by (key, federation,
 *   region, node, service), so a lookup is a binary search and the
 *   providers of one key are one run of the array (pb_providers_values);
 *   an insert moves pointers only;
 * - the leases: a binary min-heap on (expires_at, provider), each provider
 *   knowing its slot, so a renewal, a retire and the next expiry are
 *   O(log n);
 * - the last applied seq per (federation, node, service): a sorted
 *   array of pointers, searched the same way;
 * - a restore (pb_providers_put, tens of thousands of providers at a
 *   daemon's start) appends to both arrays unsorted; the first other call
 *   sorts them once, drops the duplicates and builds the heap (O(n log n)
 *   for the lot: inserting each in place moved O(n) pointers each, and
 *   the start of a daemon with 40,000 providers paid for it).
 * Nothing here reads a clock: now is passed in. */
#include "providers.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "strv.h"

#define NO_SLOT ((size_t)-1)

struct entry {
	struct pb_provider pv;
	size_t heap_slot;	/* index in the lease heap, NO_SLOT when not there */
	uint32_t vhash;		/* value_hash(pv.value), 0 for a tombstone */
	unsigned char in_slab;	/* carved from a slab (below), not malloc'd */
};

/* FNV-1a of a value: pb_providers_value_change compares these before the
 * strings (many values share a long "http://10.x.y." prefix) */
static uint32_t value_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct seq_entry {
	char federation[PB_IDENT_MAX + 1];
	char node[PB_IDENT_MAX + 1];
	char service[PB_SERVICE_MAX + 1];
	int64_t seq;
	unsigned char in_slab;
};

/* The counting index of pb_providers_value_change: for one filter (its
 * accepted regions) and public_only, the number of live providers per
 * (key, value) and per key (value NULL). Open addressing, linear probing,
 * deletion by backward shift. Kept up to date by every change of a
 * provider; built again (O(n)) when asked for another filter (a reload
 * that changed the regions or public_only). */
struct vc_slot {
	char *key;		/* NULL: empty; one allocation with value */
	char *value;		/* NULL: the key's total */
	uint32_t hash;
	uint32_t count;
};

struct vc_index {
	int valid;
	int public_only;
	int all;		/* every region accepted */
	char **regions;
	size_t n_regions;
	struct vc_slot *slots;
	size_t cap, used;	/* cap: 0 or a power of 2 */
};

struct pb_providers {
	struct entry **items;	/* sorted by entry_cmp */
	size_t n, cap;
	struct entry **heap;	/* leases of live providers */
	size_t n_heap, cap_heap;
	struct seq_entry **seqs;	/* sorted by (federation, node, service) */
	size_t n_seqs, cap_seqs;
	struct vc_index ix;
	/* items[n_sorted..n) and seqs[n_seqs_sorted..n_seqs) were appended by
	 * pb_providers_put and are not sorted yet (nor in the heap or the
	 * index): settle() */
	size_t n_sorted, n_seqs_sorted;
	int raw, seqs_raw;	/* the tails hold puts (duplicates possible) */
	size_t n_puts;		/* pb_providers_put calls so far */
	struct slab *slab;	/* the slab being filled, NULL: none */
};

/* ---- slabs: the storage of a restore's entries ----
 * A restore puts tens of thousands of providers at once, each an entry
 * (about 520 bytes) and a seq entry (about 270): 32 MB at 40,000, and a
 * page fault costs this VM about 15 µs, so their 8,000 faults were a
 * third of the restore's CPU (docs/BENCHMARKS-rounds.md, issue 19 round 4).
 * From the SLAB_AFTER-th put on, put carves them from blocks of
 * SLAB_BYTES aligned on SLAB_BYTES and marked MADV_HUGEPAGE: one fault
 * per block where the kernel gives transparent huge pages to madvised
 * memory, 4 KiB pages as before elsewhere. Each block counts its live
 * objects and is unmapped when the last one is freed (the block being
 * filled: when the set is freed). Objects are never reused, so fresh
 * block memory is zero, as calloc's. A small set never uses a block
 * (2 MB of memory for a few providers). */
#define SLAB_BYTES ((size_t)2 << 20)
#define SLAB_AFTER 4096
#define SLAB_ALIGN 16

struct slab {
	size_t live;		/* objects handed out and not freed */
	size_t used;		/* bytes handed out from the block's start */
};

static struct slab *slab_of(const void *obj)
{
	return (struct slab *)((uintptr_t)obj & ~(uintptr_t)(SLAB_BYTES - 1));
}

/* A new block aligned on SLAB_BYTES (twice that mapped, the rest given
 * back), or NULL. */
static struct slab *slab_map(void)
{
	char *m = mmap(NULL, 2 * SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	uintptr_t a, end;
	struct slab *s;

	if (m == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)m + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1);
	end = (uintptr_t)m + 2 * SLAB_BYTES;
	if (a > (uintptr_t)m)
		munmap(m, a - (uintptr_t)m);
	if (end > a + SLAB_BYTES)
		munmap((void *)(a + SLAB_BYTES), end - a - SLAB_BYTES);
	madvise((void *)a, SLAB_BYTES, MADV_HUGEPAGE);	/* advice: may be refused */
	s = (struct slab *)a;
	s->used = (sizeof(*s) + SLAB_ALIGN - 1) & ~(size_t)(SLAB_ALIGN - 1);
	s->live = 0;
	return s;
}

/* size zeroed bytes from the current block (a new one when it is full),
 * or NULL. */
static void *slab_alloc(struct pb_providers *p, size_t size)
{
	struct slab *s = p->slab;
	void *obj;

	size = (size + SLAB_ALIGN - 1) & ~(size_t)(SLAB_ALIGN - 1);
	if (!s || s->used + size > SLAB_BYTES) {
		if (!(s = slab_map()))
			return NULL;
		if (p->slab && !p->slab->live)
			munmap(p->slab, SLAB_BYTES);
		p->slab = s;
	}
	obj = (char *)s + s->used;
	s->used += size;
	s->live++;
	return obj;
}

static void slab_free(struct pb_providers *p, void *obj)
{
	struct slab *s = slab_of(obj);

	if (--s->live == 0 && s != p->slab)
		munmap(s, SLAB_BYTES);
}

static void entry_free(struct pb_providers *p, struct entry *e)
{
	free(e->pv.value);
	if (e->in_slab)
		slab_free(p, e);
	else
		free(e);
}

static void seq_free(struct pb_providers *p, struct seq_entry *s)
{
	if (s->in_slab)
		slab_free(p, s);
	else
		free(s);
}

/* An object of size for a put: from a slab once the set is large. */
static void *put_alloc(struct pb_providers *p, size_t size, unsigned char *in_slab)
{
	void *obj = p->n_puts >= SLAB_AFTER ? slab_alloc(p, size) : NULL;

	*in_slab = obj != NULL;
	return obj ? obj : calloc(1, size);
}

/* A provider new to the set goes to the tail too (pb_providers_apply),
 * up to TAIL_MAX, then the tail is merged in: one pass of the array per
 * TAIL_MAX new providers instead of one each (40,000 new providers of
 * one key moved 3 GB of pointers). The tail is searched linearly. */
#define TAIL_MAX 32

static void ix_drop(struct vc_index *ix);

struct pb_providers *pb_providers_new(void)
{
	return calloc(1, sizeof(struct pb_providers));
}

void pb_providers_free(struct pb_providers *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		entry_free(p, p->items[i]);
	for (i = 0; i < p->n_seqs; i++)
		seq_free(p, p->seqs[i]);
	if (p->slab)
		munmap(p->slab, SLAB_BYTES);	/* its objects were all freed above */
	free(p->items);
	free(p->heap);
	free(p->seqs);
	ix_drop(&p->ix);
	free(p);
}

/* Grows *arr (of pointers) to hold one more; 0 or -1. */
static int grow(void *arrp, size_t n, size_t *cap)
{
	void ***arr = arrp;
	size_t ncap;
	void **na;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	na = realloc(*arr, ncap * sizeof(**arr));
	if (!na)
		return -1;
	*arr = na;
	*cap = ncap;
	return 0;
}

/* Binary search of one of the sorted arrays (n elements): cmp_at(p, i,
 * key) compares key with element i, as strcmp does. 1 and *pos = its
 * index when found, else 0 and *pos = where it would go. */
static int search(const struct pb_providers *p, size_t n,
		  int (*cmp_at)(const struct pb_providers *p, size_t i, const void *key),
		  const void *key, size_t *pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_at(p, mid, key);

		if (c == 0) {
			*pos = mid;
			return 1;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*pos = lo;
	return 0;
}

/* ---- the providers, sorted by (key, federation, region, node, service) */

struct tuple {
	const char *federation, *region, *node, *service, *key;
};

static int tuple_cmp(const struct tuple *t, const struct pb_provider *pv)
{
	int c;

	if ((c = strcmp(t->key, pv->key)))
		return c;
	if ((c = strcmp(t->federation, pv->federation)))
		return c;
	if ((c = strcmp(t->region, pv->region)))
		return c;
	if ((c = strcmp(t->node, pv->node)))
		return c;
	return strcmp(t->service, pv->service);
}

static struct tuple tuple_of(const struct pb_provider *pv)
{
	struct tuple t = { pv->federation, pv->region, pv->node, pv->service, pv->key };

	return t;
}

static int item_cmp_at(const struct pb_providers *p, size_t i, const void *t)
{
	return tuple_cmp(t, &p->items[i]->pv);
}

/* 1 and *pos = its index when found (in the sorted part or the tail),
 * else 0. */
static int find(const struct pb_providers *p, const struct tuple *t, size_t *pos)
{
	if (search(p, p->n_sorted, item_cmp_at, t, pos))
		return 1;
	for (size_t i = p->n_sorted; i < p->n; i++)
		if (!tuple_cmp(t, &p->items[i]->pv)) {
			*pos = i;
			return 1;
		}
	return 0;
}

/* The first provider of key (or where it would be). */
static size_t key_lower_bound(const struct pb_providers *p, const char *key)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(p->items[mid]->pv.key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Only when the tail is empty (settled). */
static void remove_at(struct pb_providers *p, size_t pos)
{
	memmove(p->items + pos, p->items + pos + 1, (p->n - pos - 1) * sizeof(p->items[0]));
	p->n--;
	p->n_sorted--;
}

/* ---- the lease heap, min on (expires_at, tuple) */

static int heap_less(const struct entry *a, const struct entry *b)
{
	struct tuple ta;

	if (a->pv.expires_at != b->pv.expires_at)
		return a->pv.expires_at < b->pv.expires_at;
	ta = tuple_of(&a->pv);
	return tuple_cmp(&ta, &b->pv) < 0;
}

static void heap_set(struct pb_providers *p, size_t i, struct entry *e)
{
	p->heap[i] = e;
	e->heap_slot = i;
}

static void heap_up(struct pb_providers *p, size_t i)
{
	struct entry *e = p->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!heap_less(e, p->heap[parent]))
			break;
		heap_set(p, i, p->heap[parent]);
		i = parent;
	}
	heap_set(p, i, e);
}

static void heap_down(struct pb_providers *p, size_t i)
{
	struct entry *e = p->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct entry *best = e;

		if (l < p->n_heap && heap_less(p->heap[l], best)) {
			m = l;
			best = p->heap[l];
		}
		if (r < p->n_heap && heap_less(p->heap[r], best))
			m = r;
		if (m == i)
			break;
		heap_set(p, i, p->heap[m]);
		i = m;
	}
	heap_set(p, i, e);
}

static void heap_remove(struct pb_providers *p, struct entry *e)
{
	size_t i = e->heap_slot;
	struct entry *last;

	if (i == NO_SLOT)
		return;
	e->heap_slot = NO_SLOT;
	last = p->heap[--p->n_heap];
	if (i == p->n_heap)
		return;
	heap_set(p, i, last);
	heap_up(p, i);
	heap_down(p, last->heap_slot);
}

/* Puts e in the heap or moves it after its expires_at changed; takes it
 * out when it has no lease (or is a tombstone). Heap capacity must have
 * been ensured when e may be added. */
static void heap_update(struct pb_providers *p, struct entry *e)
{
	if (e->pv.tombstone || e->pv.expires_at == PB_TIME_NEVER) {
		heap_remove(p, e);
		return;
	}
	if (e->heap_slot == NO_SLOT) {
		heap_set(p, p->n_heap++, e);
		heap_up(p, e->heap_slot);
		return;
	}
	heap_up(p, e->heap_slot);
	heap_down(p, e->heap_slot);
}

/* ---- the last applied seq per (federation, node, service) */

static int seq_cmp(const char *fed, const char *node, const char *service,
		   const struct seq_entry *s)
{
	int c;

	if ((c = strcmp(fed, s->federation)))
		return c;
	if ((c = strcmp(node, s->node)))
		return c;
	return strcmp(service, s->service);
}

struct seq_key {
	const char *fed, *node, *service;
};

static int seq_cmp_at(const struct pb_providers *p, size_t i, const void *key)
{
	const struct seq_key *k = key;

	return seq_cmp(k->fed, k->node, k->service, p->seqs[i]);
}

static int seq_find(const struct pb_providers *p, const char *fed, const char *node,
		    const char *service, size_t *pos)
{
	struct seq_key k = { fed, node, service };

	if (search(p, p->n_seqs_sorted, seq_cmp_at, &k, pos))
		return 1;
	for (size_t i = p->n_seqs_sorted; i < p->n_seqs; i++)
		if (!seq_cmp(fed, node, service, p->seqs[i])) {
			*pos = i;
			return 1;
		}
	return 0;
}

static void settle(const struct pb_providers *cp);
static void settle_raw(struct pb_providers *p);

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strnlen(src, size - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Raises the last seq of (fed, node, service) to seq; 0 or -1 (ENOMEM). */
static int seq_raise(struct pb_providers *p, const char *fed, const char *node,
		     const char *service, int64_t seq)
{
	struct seq_entry *s;
	size_t pos;

	if (seq_find(p, fed, node, service, &pos)) {
		if (p->seqs[pos]->seq < seq)
			p->seqs[pos]->seq = seq;
		return 0;
	}
	if (p->n_seqs - p->n_seqs_sorted >= TAIL_MAX)
		settle(p);	/* merges the tail in (no allocation) */
	if (grow(&p->seqs, p->n_seqs, &p->cap_seqs) < 0 || !(s = calloc(1, sizeof(*s))))
		return -1;
	copy_str(s->federation, sizeof(s->federation), fed);
	copy_str(s->node, sizeof(s->node), node);
	copy_str(s->service, sizeof(s->service), service);
	s->seq = seq;
	p->seqs[p->n_seqs++] = s;	/* to the tail */
	return 0;
}

/* ---- the providers restored by pb_providers_put, sorted in once */

/* Put order, for the duplicates of a tuple (the last put wins): while
 * settling, heap_slot holds each entry's index in items. */
static int settle_item_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
	struct tuple tx = tuple_of(&x->pv);
	int c = tuple_cmp(&tx, &y->pv);

	if (c)
		return c;
	return x->heap_slot < y->heap_slot ? -1 : x->heap_slot > y->heap_slot;
}

static int settle_seq_cmp(const void *a, const void *b)
{
	const struct seq_entry *x = *(const struct seq_entry *const *)a;
	const struct seq_entry *y = *(const struct seq_entry *const *)b;

	return seq_cmp(x->federation, x->node, x->service, y);
}

static int tail_item_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
	struct tuple tx = tuple_of(&x->pv);

	return tuple_cmp(&tx, &y->pv);
}

/* Merges the sorted tail [m, n) of arr into its sorted head [0, m),
 * from the back: for each tail element, the largest first, a binary
 * search of the head and one memmove of the head's elements above it
 * (the tail, at most TAIL_MAX, copied aside). */
static void merge_tail(void **arr, size_t m, size_t n, int (*cmp)(const void *, const void *))
{
	void *tail[TAIL_MAX];
	size_t t = n - m, hi = m, w = n;

	memcpy(tail, arr + m, t * sizeof(arr[0]));
	while (t > 0) {
		void *x = tail[--t];
		size_t lo = 0, h = hi;

		while (lo < h) {	/* the first head element above x */
			size_t mid = lo + (h - lo) / 2;

			if (cmp(&arr[mid], &x) > 0)
				h = mid;
			else
				lo = mid + 1;
		}
		memmove(arr + w - (hi - lo), arr + lo, (hi - lo) * sizeof(arr[0]));
		w -= hi - lo;
		hi = lo;
		arr[--w] = x;
	}
}

/* The providers' tail of pb_providers_apply (unique, already in the heap
 * and the index): sorted and merged in. */
static void settle_item_tail(struct pb_providers *p)
{
	if (p->n_sorted != p->n) {
		qsort(p->items + p->n_sorted, p->n - p->n_sorted, sizeof(p->items[0]), tail_item_cmp);
		merge_tail((void **)p->items, p->n_sorted, p->n, tail_item_cmp);
		p->n_sorted = p->n;
	}
}

/* The tails of pb_providers_apply, both arrays. */
static void settle_tails(struct pb_providers *p)
{
	settle_item_tail(p);
	if (p->n_seqs_sorted != p->n_seqs) {
		qsort(p->seqs + p->n_seqs_sorted, p->n_seqs - p->n_seqs_sorted, sizeof(p->seqs[0]),
		      settle_seq_cmp);
		merge_tail((void **)p->seqs, p->n_seqs_sorted, p->n_seqs, settle_seq_cmp);
		p->n_seqs_sorted = p->n_seqs;
	}
}

static void settle(const struct pb_providers *cp)
{
	struct pb_providers *p = (struct pb_providers *)cp;	/* const to callers: the set
								 * it holds does not change */

	if (p->n_sorted == p->n && p->n_seqs_sorted == p->n_seqs)
		return;
	if (p->raw || p->seqs_raw)
		settle_raw(p);
	else
		settle_tails(p);
}

/* Sorts what pb_providers_put appended into the arrays, keeps the last of
 * each tuple and the highest seq of each (federation, node, service),
 * builds the lease heap again (O(n)) and drops the counting index (built
 * again when next asked). Allocates nothing (put reserved the room), so
 * it cannot fail. Called first by every function but put. The apply tails
 * are merged with it. */
static void settle_raw(struct pb_providers *p)
{
	size_t i, k;

	if (p->raw) {
		p->raw = 0;
		for (i = 0; i < p->n; i++)
			p->items[i]->heap_slot = i;
		qsort(p->items, p->n, sizeof(p->items[0]), settle_item_cmp);
		for (i = k = 0; i < p->n; i++) {
			struct entry *e = p->items[i];

			if (i + 1 < p->n) {
				struct tuple t = tuple_of(&e->pv);

				if (!tuple_cmp(&t, &p->items[i + 1]->pv)) {
					entry_free(p, e);	/* a later put replaced it */
					continue;
				}
			}
			p->items[k++] = e;
		}
		p->n = p->n_sorted = k;
		p->n_heap = 0;
		for (i = 0; i < p->n; i++) {
			struct entry *e = p->items[i];

			e->heap_slot = NO_SLOT;
			if (!e->pv.tombstone && e->pv.expires_at != PB_TIME_NEVER)
				heap_set(p, p->n_heap++, e);
		}
		for (i = p->n_heap / 2; i-- > 0;)
			heap_down(p, i);
		ix_drop(&p->ix);
	} else {
		settle_item_tail(p);	/* only an apply tail */
	}
	if (p->n_seqs_sorted != p->n_seqs) {
		p->seqs_raw = 0;
		qsort(p->seqs, p->n_seqs, sizeof(p->seqs[0]), settle_seq_cmp);
		for (i = k = 0; i < p->n_seqs; i++) {
			struct seq_entry *s = p->seqs[i];

			if (k && !settle_seq_cmp(&p->seqs[k - 1], &s)) {
				if (p->seqs[k - 1]->seq < s->seq)
					p->seqs[k - 1]->seq = s->seq;
				seq_free(p, s);
				continue;
			}
			p->seqs[k++] = s;
		}
		p->n_seqs = p->n_seqs_sorted = k;
	}
}

/* ---- the filter */

static int region_accepted(const struct pb_filter *f, const char *region)
{
	size_t i;

	if (!f)
		return 1;
	for (i = 0; i < f->n_regions; i++)
		if (strcmp(f->regions[i], "*") == 0 || strcmp(f->regions[i], region) == 0)
			return 1;
	return 0;
}

static int key_required(const struct pb_filter *f, const char *key)
{
	if (!f)
		return 1;
	if (!f->n_keys)
		return 0;
	return bsearch(&key, f->keys, f->n_keys, sizeof(f->keys[0]), pb_strv_cmp) != NULL;
}

static int filter_accepts(const struct pb_filter *f, const struct pb_event *ev)
{
	if (!f)
		return 1;
	if (f->federation && strcmp(f->federation, ev->federation) != 0)
		return 0;
	return key_required(f, ev->key) && region_accepted(f, ev->region);
}

/* ---- the counting index (see struct vc_index) */

static uint32_t vc_hash(const char *key, const char *value)
{
	uint32_t h = value_hash(key);

	if (value) {
		h = (h ^ 0xffu) * 16777619u;
		for (; *value; value++)
			h = (h ^ (unsigned char)*value) * 16777619u;
	} else {
		h ^= 0x5bd1e995u;
	}
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

static int vc_same(const struct vc_slot *sl, uint32_t h, const char *key, const char *value)
{
	if (sl->hash != h || strcmp(sl->key, key) != 0)
		return 0;
	if (!sl->value || !value)
		return sl->value == value;
	return strcmp(sl->value, value) == 0;
}

/* The slot of (key, value), or where it would go (an empty slot). */
static size_t vc_find(const struct vc_index *ix, uint32_t h, const char *key, const char *value)
{
	size_t mask = ix->cap - 1, i = h & mask;

	while (ix->slots[i].key && !vc_same(&ix->slots[i], h, key, value))
		i = (i + 1) & mask;
	return i;
}

static uint32_t vc_count(const struct vc_index *ix, const char *key, const char *value)
{
	size_t i;

	if (!ix->cap)
		return 0;
	i = vc_find(ix, vc_hash(key, value), key, value);
	return ix->slots[i].key ? ix->slots[i].count : 0;
}

static int vc_grow(struct vc_index *ix)
{
	size_t ncap = ix->cap ? ix->cap * 2 : 64, i;
	struct vc_slot *ns = calloc(ncap, sizeof(*ns)), *old = ix->slots;

	if (!ns)
		return -1;
	for (i = 0; i < ix->cap; i++) {
		size_t j;

		if (!old[i].key)
			continue;
		j = old[i].hash & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = old[i];
	}
	free(old);
	ix->slots = ns;
	ix->cap = ncap;
	return 0;
}

/* count(key, value) += 1; 0 or -1 (ENOMEM) */
static int vc_inc(struct vc_index *ix, const char *key, const char *value)
{
	uint32_t h = vc_hash(key, value);
	size_t i, kl, vl;
	struct vc_slot *sl;

	if ((ix->used + 1) * 2 > ix->cap && vc_grow(ix) < 0)
		return -1;
	sl = &ix->slots[i = vc_find(ix, h, key, value)];
	if (sl->key) {
		sl->count++;
		return 0;
	}
	kl = strlen(key);
	vl = value ? strlen(value) : 0;
	if (!(sl->key = malloc(kl + 1 + (value ? vl + 1 : 0))))
		return -1;
	memcpy(sl->key, key, kl + 1);
	sl->value = NULL;
	if (value) {
		sl->value = sl->key + kl + 1;
		memcpy(sl->value, value, vl + 1);
	}
	sl->hash = h;
	sl->count = 1;
	ix->used++;
	return 0;
}

/* count(key, value) -= 1; the slot goes at 0 (backward shift) */
static void vc_dec(struct vc_index *ix, const char *key, const char *value)
{
	size_t mask, i, j;

	if (!ix->cap)
		return;
	mask = ix->cap - 1;
	i = vc_find(ix, vc_hash(key, value), key, value);
	if (!ix->slots[i].key || --ix->slots[i].count > 0)
		return;
	free(ix->slots[i].key);
	ix->slots[i].key = NULL;
	ix->used--;
	for (j = (i + 1) & mask; ix->slots[j].key; j = (j + 1) & mask) {
		size_t home = ix->slots[j].hash & mask;

		/* j's entry may move to i when its home is not in (i, j] */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		ix->slots[i] = ix->slots[j];
		ix->slots[j].key = NULL;
		i = j;
	}
}

static void ix_drop(struct vc_index *ix)
{
	size_t i;

	for (i = 0; i < ix->cap; i++)
		free(ix->slots[i].key);
	free(ix->slots);
	for (i = 0; i < ix->n_regions; i++)
		free(ix->regions[i]);
	free(ix->regions);
	memset(ix, 0, sizeof(*ix));
}

/* 1 when pv counts in the index */
static int ix_live(const struct vc_index *ix, const struct pb_provider *pv)
{
	size_t i;

	if (pv->tombstone || !pv->value || (ix->public_only && !pv->public))
		return 0;
	if (ix->all)
		return 1;
	for (i = 0; i < ix->n_regions; i++)
		if (strcmp(ix->regions[i], pv->region) == 0)
			return 1;
	return 0;
}

/* Before e changes or goes: its share out of the index. */
static void ix_sub(struct pb_providers *p, const struct entry *e)
{
	if (!p->ix.valid || !ix_live(&p->ix, &e->pv))
		return;
	vc_dec(&p->ix, e->pv.key, e->pv.value);
	vc_dec(&p->ix, e->pv.key, NULL);
}

/* After e changed: its share in. Out of memory drops the index (built
 * again on the next question). */
static void ix_add(struct pb_providers *p, const struct entry *e)
{
	if (!p->ix.valid || !ix_live(&p->ix, &e->pv))
		return;
	if (vc_inc(&p->ix, e->pv.key, e->pv.value) < 0 ||
	    vc_inc(&p->ix, e->pv.key, NULL) < 0)
		ix_drop(&p->ix);
}

static int all_regions(const struct pb_filter *f);

/* 1 when the index answers for (f, public_only) */
static int ix_matches(const struct vc_index *ix, const struct pb_filter *f, int public_only)
{
	size_t i;

	if (!ix->valid || ix->public_only != (public_only != 0))
		return 0;
	if (all_regions(f))
		return ix->all;
	if (ix->all || ix->n_regions != f->n_regions)
		return 0;
	for (i = 0; i < f->n_regions; i++)
		if (strcmp(ix->regions[i], f->regions[i]) != 0)
			return 0;
	return 1;
}

/* Builds the index for (f, public_only) from every provider; 0 or -1. */
static int ix_build(struct pb_providers *p, const struct pb_filter *f, int public_only)
{
	struct vc_index *ix = &p->ix;
	size_t i;

	ix_drop(ix);
	ix->public_only = public_only != 0;
	ix->all = all_regions(f);
	if (!ix->all && f->n_regions) {
		if (!(ix->regions = calloc(f->n_regions, sizeof(*ix->regions))))
			goto fail;
		for (i = 0; i < f->n_regions; i++, ix->n_regions++)
			if (!(ix->regions[i] = strdup(f->regions[i])))
				goto fail;
	}
	ix->valid = 1;
	for (i = 0; i < p->n && ix->valid; i++)
		ix_add(p, p->items[i]);
	if (ix->valid)
		return 0;
fail:
	ix_drop(ix);
	return -1;
}

/* ---- apply */

static int64_t lease_end(int64_t now, int64_t ttl_s)
{
	if (ttl_s <= 0)
		return PB_TIME_NEVER;
	if (ttl_s > (PB_TIME_NEVER - (now > 0 ? now : 0)) / 1000 - 1)
		return PB_TIME_NEVER - 1;	/* a lease, very long */
	return now + ttl_s * 1000;
}

/* A new entry for t, malloc'd, or from a slab when e is given (zeroed
 * memory for it). */
static struct entry *entry_new(const struct tuple *t, struct entry *e)
{
	if (!e && !(e = calloc(1, sizeof(*e))))
		return NULL;
	copy_str(e->pv.federation, sizeof(e->pv.federation), t->federation);
	copy_str(e->pv.region, sizeof(e->pv.region), t->region);
	copy_str(e->pv.node, sizeof(e->pv.node), t->node);
	copy_str(e->pv.service, sizeof(e->pv.service), t->service);
	copy_str(e->pv.key, sizeof(e->pv.key), t->key);
	e->pv.expires_at = PB_TIME_NEVER;
	e->pv.tombstone = 1;
	e->heap_slot = NO_SLOT;
	return e;
}

/* Makes room for one more provider, lease and seq entry, so the update
 * itself cannot fail half-way; 0 or -1. */
static int reserve(struct pb_providers *p)
{
	if (grow(&p->items, p->n, &p->cap) < 0 || grow(&p->heap, p->n_heap, &p->cap_heap) < 0 ||
	    grow(&p->seqs, p->n_seqs, &p->cap_seqs) < 0)
		return -1;
	return 0;
}

int pb_providers_seq_floor(struct pb_providers *p, const char *fed, const char *node,
			   const char *service, int64_t seq)
{
	if (p->raw || p->seqs_raw)
		settle_raw(p);
	return seq_raise(p, fed, node, service, seq);
}

/* Out of memory is reported as PB_VERDICT_INVALID with nothing changed:
 * the event could not be taken in. */
enum pb_verdict pb_providers_apply(struct pb_providers *p, const struct pb_event *ev,
				   int seen_before, const struct pb_filter *f, int64_t now,
				   int *changed)
{
	struct tuple t = { ev->federation, ev->region, ev->node, ev->service, ev->key };
	struct entry *e = NULL;
	char *value = NULL;
	size_t pos, spos;
	int found, live_changed = 0;
	enum pb_verdict v = PB_VERDICT_INVALID;

	if (p->raw || p->seqs_raw)
		settle_raw(p);
	if (changed)
		*changed = 0;
	if (seen_before) {
		v = PB_VERDICT_DUPLICATE;
		goto out;
	}
	if (seq_find(p, ev->federation, ev->node, ev->service, &spos) &&
	    ev->seq < p->seqs[spos]->seq) {
		v = PB_VERDICT_STALE;
		goto out;
	}
	found = find(p, &t, &pos);
	if (found)
		e = p->items[pos];
	if (ev->kind == PB_KIND_PROVIDES && e && e->pv.tombstone && ev->seq <= e->pv.seq) {
		v = PB_VERDICT_STALE;	/* retired at or after this announcement */
		goto out;
	}
	if (!filter_accepts(f, ev)) {
		v = PB_VERDICT_FOREIGN;
		goto out;
	}
	/* applied: take every allocation first */
	if (reserve(p) < 0)
		goto out;
	if (ev->kind == PB_KIND_PROVIDES && !(value = strndup(ev->value, ev->value_len)))
		goto out;
	if (!e) {
		if (!(e = entry_new(&t, NULL)))
			goto out;
		if (p->n - p->n_sorted >= TAIL_MAX)
			settle(p);	/* merges the tail in (no allocation) */
		p->items[p->n++] = e;	/* to the tail */
	}
	if (seq_raise(p, ev->federation, ev->node, ev->service, ev->seq) < 0)
		goto out;	/* cannot happen: room reserved */
	ix_sub(p, e);
	if (ev->kind == PB_KIND_PROVIDES) {
		live_changed = e->pv.tombstone || e->pv.public != (ev->public != 0) ||
			       strcmp(e->pv.value, value) != 0;
		free(e->pv.value);
		e->pv.value = value;
		e->vhash = value_hash(value);
		value = NULL;
		e->pv.public = ev->public != 0;
		e->pv.tombstone = 0;
		e->pv.expires_at = lease_end(now, ev->ttl_s);
	} else {
		live_changed = !e->pv.tombstone;
		free(e->pv.value);
		e->pv.value = NULL;
		e->vhash = 0;
		e->pv.tombstone = 1;
		e->pv.expires_at = PB_TIME_NEVER;
	}
	if (ev->seq > e->pv.seq || ev->kind == PB_KIND_PROVIDES)
		e->pv.seq = ev->seq;
	e->pv.updated_at = now;
	heap_update(p, e);
	ix_add(p, e);
	if (changed)
		*changed = live_changed;
	v = PB_VERDICT_APPLIED;
out:
	free(value);
	return v;
}

/* Appends: settle() sorts them in (see the top of the file). */
int pb_providers_put(struct pb_providers *p, const struct pb_provider *pv)
{
	struct tuple t = tuple_of(pv);
	struct entry *e = NULL;
	struct seq_entry *sq = NULL;
	int tomb = pv->tombstone || !pv->value;
	unsigned char e_slab = 0, sq_slab = 0;

	/* room for the heap too: settle() may put every provider in it */
	if (grow(&p->items, p->n, &p->cap) < 0 || grow(&p->heap, p->n, &p->cap_heap) < 0 ||
	    grow(&p->seqs, p->n_seqs, &p->cap_seqs) < 0 ||
	    !(e = put_alloc(p, sizeof(*e), &e_slab)) || !(sq = put_alloc(p, sizeof(*sq), &sq_slab)) ||
	    (!tomb && !(e->pv.value = strdup(pv->value)))) {
		if (e) {
			e->in_slab = e_slab;
			entry_free(p, e);
		}
		if (sq) {
			sq->in_slab = sq_slab;
			seq_free(p, sq);
		}
		errno = ENOMEM;
		return -1;
	}
	p->n_puts++;
	entry_new(&t, e);
	e->in_slab = e_slab;
	sq->in_slab = sq_slab;
	e->vhash = value_hash(e->pv.value);
	e->pv.public = pv->public != 0;
	e->pv.seq = pv->seq;
	e->pv.tombstone = tomb;
	e->pv.expires_at = tomb ? PB_TIME_NEVER : pv->expires_at;
	e->pv.updated_at = pv->updated_at;
	p->items[p->n++] = e;
	p->raw = p->seqs_raw = 1;
	copy_str(sq->federation, sizeof(sq->federation), pv->federation);
	copy_str(sq->node, sizeof(sq->node), pv->node);
	copy_str(sq->service, sizeof(sq->service), pv->service);
	sq->seq = pv->seq;
	p->seqs[p->n_seqs++] = sq;
	return 0;
}

size_t pb_providers_expire(struct pb_providers *p, int64_t now,
			   void (*cb)(const struct pb_provider *pv, void *ctx), void *ctx)
{
	size_t removed = 0;

	if (p->raw || p->seqs_raw || (p->n_heap && p->heap[0]->pv.expires_at <= now))
		settle(p);	/* removals need the sorted array */
	while (p->n_heap && p->heap[0]->pv.expires_at <= now) {
		struct entry *e = p->heap[0];
		struct tuple t = tuple_of(&e->pv);
		size_t pos;

		if (cb)
			cb(&e->pv, ctx);
		ix_sub(p, e);
		heap_remove(p, e);
		if (find(p, &t, &pos))
			remove_at(p, pos);
		entry_free(p, e);
		removed++;
	}
	return removed;
}

int64_t pb_providers_next_expiry(const struct pb_providers *p)
{
	if (p->raw || p->seqs_raw)
		settle(p);	/* the heap of what put appended (the apply tails are in it) */
	return p->n_heap ? p->heap[0]->pv.expires_at : PB_TIME_NEVER;
}

size_t pb_providers_count(const struct pb_providers *p)
{
	settle(p);
	return p->n;
}

const struct pb_provider *pb_providers_at(const struct pb_providers *p, size_t i)
{
	settle(p);
	return i < p->n ? &p->items[i]->pv : NULL;
}

/* ---- values */

static int static_cmp(const void *k, const void *s)
{
	return strcmp(k, ((const struct pb_static *)s)->name);
}

static const char *static_value(const struct pb_static *statics, size_t n, const char *key)
{
	const struct pb_static *s;

	if (!n)
		return NULL;
	s = bsearch(key, statics, n, sizeof(*statics), static_cmp);
	return s ? s->value : NULL;
}

/* 1 when pv counts in its key's live values */
static int is_live(const struct pb_provider *pv, const struct pb_filter *f, int public_only)
{
	return !pv->tombstone && (!public_only || pv->public) && region_accepted(f, pv->region);
}

/* The joined live values of key, or NULL (*none = 1) when there is no
 * live provider; NULL with *none = 0 is ENOMEM. vals is scratch room
 * for p->n pointers. */
static char *live_values(const struct pb_providers *p, const char *key,
			 const struct pb_filter *f, int public_only, const char **vals,
			 int *none)
{
	size_t i, n = 0, u = 0, len = 0;
	char *out, *w;

	*none = 0;
	for (i = key_lower_bound(p, key); i < p->n && strcmp(p->items[i]->pv.key, key) == 0; i++) {
		const struct pb_provider *pv = &p->items[i]->pv;

		if (!is_live(pv, f, public_only))
			continue;
		vals[n++] = pv->value;
	}
	if (!n) {
		*none = 1;
		return NULL;
	}
	qsort(vals, n, sizeof(vals[0]), pb_strv_cmp);
	for (i = 0; i < n; i++) {
		if (u && strcmp(vals[u - 1], vals[i]) == 0)
			continue;
		vals[u++] = vals[i];
		len += strlen(vals[i]) + 1;
	}
	if (!(out = malloc(len)))
		return NULL;
	for (i = 0, w = out; i < u; i++) {
		size_t l = strlen(vals[i]);

		if (i)
			*w++ = ',';
		memcpy(w, vals[i], l);
		w += l;
	}
	*w = '\0';
	return out;
}

static int kv_cmp(const void *a, const void *b)
{
	const struct pb_kv *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* 1 when f accepts every region ("*", or no filter) */
static int all_regions(const struct pb_filter *f)
{
	for (size_t i = 0; f && i < f->n_regions; i++)
		if (!strcmp(f->regions[i], "*"))
			return 1;
	return !f;
}

/* The end of key's providers, from their first one. */
static size_t key_upper_bound(const struct pb_providers *p, size_t lo, const char *key)
{
	size_t hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(p->items[mid]->pv.key, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int pb_providers_value_change_scan(const struct pb_providers *p, const struct pb_event *ev,
				   const struct pb_filter *f, int public_only, size_t max_providers)
{
	struct tuple t = { ev->federation, ev->region, ev->node, ev->service, ev->key };
	const char *old = NULL;
	size_t pos, i, end, others = 0;
	int new_live, others_old = 0, others_new = 0, all = all_regions(f);
	uint32_t old_hash = 0, new_hash;

	settle(p);
	i = key_lower_bound(p, ev->key);
	end = key_upper_bound(p, i, ev->key);
	if (end - i > max_providers)
		return -2;
	new_hash = value_hash(ev->value);
	if (find(p, &t, &pos) && is_live(&p->items[pos]->pv, f, public_only)) {
		old = p->items[pos]->pv.value;
		old_hash = p->items[pos]->vhash;
	}
	/* (a value never holds a NUL: ev->value is a C string) */
	new_live = ev->kind == PB_KIND_PROVIDES && ev->has_value && (!public_only || ev->public) &&
		   region_accepted(f, ev->region);
	for (; i < end; i++) {
		const struct entry *e = p->items[i];
		const struct pb_provider *pv = &e->pv;

		if (pv->tombstone || (public_only && !pv->public) || (old && pv->value == old) ||
		    (!all && !region_accepted(f, pv->region)))
			continue;	/* not live, or the event's own provider */
		others++;
		if (old && !others_old)
			others_old = e->vhash == old_hash && !strcmp(pv->value, old);
		if (new_live && !others_new)
			others_new = e->vhash == new_hash && !strcmp(pv->value, ev->value);
	}
	if (!others && !!old != new_live)
		return -1;	/* none <-> some: the statics decide */
	if (old && new_live && !strcmp(old, ev->value))
		return 0;	/* the same value stays */
	return (old && !others_old) || (new_live && !others_new);
}

/* The same answer as the scan above, from the counting index: O(1) in the
 * key's providers (two binary searches of the provider array for the
 * max_providers check and the event's own provider, and three hash
 * lookups). */
int pb_providers_value_change(struct pb_providers *p, const struct pb_event *ev,
			      const struct pb_filter *f, int public_only, size_t max_providers)
{
	struct tuple t = { ev->federation, ev->region, ev->node, ev->service, ev->key };
	const char *old = NULL;
	size_t pos, i;
	uint32_t total, n_old = 0, n_new = 0;
	int new_live;

	if (p->raw || p->seqs_raw || max_providers != SIZE_MAX)
		settle(p);	/* (the tails of apply are searched as they are) */
	if (max_providers != SIZE_MAX) {
		i = key_lower_bound(p, ev->key);
		if (key_upper_bound(p, i, ev->key) - i > max_providers)
			return -2;
	}
	if (!ix_matches(&p->ix, f, public_only) && ix_build(p, f, public_only) < 0)
		return pb_providers_value_change_scan(p, ev, f, public_only, SIZE_MAX);
	if (find(p, &t, &pos) && is_live(&p->items[pos]->pv, f, public_only))
		old = p->items[pos]->pv.value;
	new_live = ev->kind == PB_KIND_PROVIDES && ev->has_value && (!public_only || ev->public) &&
		   region_accepted(f, ev->region);
	total = vc_count(&p->ix, ev->key, NULL) - (old != NULL);	/* the others */
	if (old)
		n_old = vc_count(&p->ix, ev->key, old) - 1;
	if (new_live) {
		n_new = vc_count(&p->ix, ev->key, ev->value);
		if (old && !strcmp(old, ev->value))
			n_new--;
	}
	if (!total && !!old != new_live)
		return -1;	/* none <-> some: the statics decide */
	if (old && new_live && !strcmp(old, ev->value))
		return 0;	/* the same value stays */
	return (old && !n_old) || (new_live && !n_new);
}

int pb_providers_values(const struct pb_providers *p, const struct pb_want *wants, size_t n_wants,
			const struct pb_filter *f, const struct pb_static *statics,
			size_t n_statics, int public_only, struct pb_kv **out, size_t *n_out)
{
	struct pb_kv *kv = NULL;
	const char **vals = NULL;
	size_t i, n = 0;
	int rc = -1;

	settle(p);
	*out = NULL;
	*n_out = 0;
	if (!n_wants)
		return 0;
	if (!(kv = calloc(n_wants, sizeof(*kv))) ||
	    !(vals = malloc((p->n ? p->n : 1) * sizeof(*vals))))
		goto out;
	for (i = 0; i < n_wants; i++) {
		const struct pb_want *w = &wants[i];
		char *value = NULL;

		if (!w->key) {
			if (!w->literal)
				continue;
			value = strdup(w->literal);
		} else {
			int none;
			const char *st;

			value = live_values(p, w->key, f, public_only, vals, &none);
			if (!value && !none)
				goto out;
			if (!value) {
				if (!(st = static_value(statics, n_statics, w->key)))
					continue;	/* neither: left out */
				value = strdup(st);
			}
		}
		if (!value)
			goto out;
		kv[n].value = value;
		if (!(kv[n].name = strdup(w->env))) {
			n++;
			goto out;
		}
		n++;
	}
	qsort(kv, n, sizeof(*kv), kv_cmp);
	if (n == 0) {
		free(kv);
		kv = NULL;
	}
	*out = kv;
	*n_out = n;
	kv = NULL;
	rc = 0;
out:
	if (kv)
		pb_kv_free_array(kv, n);
	free(vals);
	if (rc < 0)
		errno = ENOMEM;
	return rc;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int pb_kv_equal(const struct pb_kv *a, size_t na, const struct pb_kv *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!str_eq(a[i].name, b[i].name) || !str_eq(a[i].value, b[i].value))
			return 0;
	return 1;
}
