/* cache.c — what provbus-fleet keeps of its two streams between two
 * calls (fleet.h, docs/man/provbus-fleet.1, CACHE).
 *
 * A call reads the history stream from now − history_window_s; over a
 * million events that is the broker's delivery rate, tens of seconds.
 * The cache keeps what that read computed: every provider (tombstones
 * included, leases as applied: expiry is left to the verbs, as in a read),
 * the last seq of each (federation, node, service), and for each of them
 * the stream offset of the event that set it, with the offset of the last
 * message read and the SHA-256 of its body. The next call loads it, reads
 * the stream from that offset on (checking the message there is the one
 * read: else the stream was recreated or cut), asks the broker where a
 * read of the window would start now (stream.c), and prunes what was set
 * before that offset. The fleet stream likewise: each node's newest
 * presence, run and good run with their offsets (the newest of a window
 * is the newest overall, if it is in the window: a prune is always
 * exact there).
 *
 * Why a prune is the answer of a read of the window alone: a provider is
 * a function of the last event applied to it, and a seq floor that of the
 * last event applied for its (node, service) (an applied event's seq is
 * never below the floor). Dropping those set before the window start
 * leaves exactly what the events of the window build, as long as no event
 * of the window was judged stale because of one before it: without that
 * older event it would have been applied. Such a stale verdict is kept as
 * an interval (the offset of its cause, its own offset); a prune whose
 * window start falls inside one is refused (fl_prune returns -1), and the
 * caller reads the whole window again.
 *
 * File: JSON, written to a temporary file in the same folder and renamed
 * over the old one, mode 0600 (the values may be secrets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <amqp.h>

#include "envfile.h"
#include "fleet.h"
#include "jsondoc.h"
#include "log.h"
#include "pbtime.h"

#define CACHE_FORMAT 1
#define MAX_INTERVALS 4096

/* ---- a string -> two numbers map (open addressing, never shrinks) ---- */

struct tslot {
	char *key;		/* NULL: empty */
	int64_t a, b;
};

struct fl_tmap {
	struct tslot *slots;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct fl_tmap *fl_tmap_new(void)
{
	return calloc(1, sizeof(struct fl_tmap));
}

void fl_tmap_free(struct fl_tmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	free(m);
}

static struct tslot *slot_of(const struct fl_tmap *m, const char *key)
{
	size_t i = hash_str(key) & (m->cap - 1);

	while (m->slots[i].key && strcmp(m->slots[i].key, key))
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static int tmap_grow(struct fl_tmap *m)
{
	struct fl_tmap big = { calloc(m->cap ? 2 * m->cap : 256, sizeof(struct tslot)),
			       m->cap ? 2 * m->cap : 256, m->n };

	if (!big.slots)
		return -1;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			*slot_of(&big, m->slots[i].key) = m->slots[i];
	free(m->slots);
	*m = big;
	return 0;
}

int fl_tmap_put(struct fl_tmap *m, const char *key, int64_t a, int64_t b)
{
	struct tslot *s;

	if (2 * (m->n + 1) > m->cap && tmap_grow(m) < 0)
		return -1;
	s = slot_of(m, key);
	if (!s->key) {
		if (!(s->key = strdup(key)))
			return -1;
		m->n++;
	}
	s->a = a;
	s->b = b;
	return 0;
}

int fl_tmap_get(const struct fl_tmap *m, const char *key, int64_t *a, int64_t *b)
{
	const struct tslot *s;

	if (!m->cap)
		return 0;
	s = slot_of(m, key);
	if (!s->key)
		return 0;
	if (a)
		*a = s->a;
	if (b)
		*b = s->b;
	return 1;
}

static int slot_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct tslot *const *)a)->key, (*(const struct tslot *const *)b)->key);
}

/* The slots of m set at or after start (b), sorted by key: for the seq
 * floors, whose key order is that of lib/providers.c (\x1f sorts before
 * every character of a name), so that they are inserted there in order,
 * each at the end. NULL when out of memory (free() it). */
static const struct tslot **sorted_slots(const struct fl_tmap *m, int64_t start, size_t *n)
{
	const struct tslot **v = malloc((m->n + 1) * sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].b >= start)
			v[(*n)++] = &m->slots[i];
	qsort(v, *n, sizeof(*v), slot_cmp);
	return v;
}

/* The map's keys: fields joined by \x1f. */
void fl_tuple_key(char *out, size_t size, const char *fed, const char *region, const char *node,
		  const char *service, const char *key)
{
	if (region)
		snprintf(out, size, "%s\x1f%s\x1f%s\x1f%s\x1f%s", fed, region, node, service, key);
	else
		snprintf(out, size, "%s\x1f%s\x1f%s", fed, node, service);
}

/* A seq floor's key (fl_tuple_key without region and key) back into its
 * fields: fed and node of PB_IDENT_MAX + 1 bytes, svc of
 * PB_SERVICE_MAX + 1 (the widths below). 0, or -1 when malformed. */
static int seq_key_split(const char *k, char *fed, char *node, char *svc)
{
	_Static_assert(PB_IDENT_MAX == 63 && PB_SERVICE_MAX == 128, "the widths below");
	return sscanf(k, "%63[^\x1f]\x1f%63[^\x1f]\x1f%128[^\x1f]", fed, node, svc) == 3 ? 0 : -1;
}

/* ---- the stale intervals and the prune ---- */

void fl_stale_note(struct fleet *f, int64_t cause, int64_t stale)
{
	struct fl_interval *v;

	if (f->n_stale == MAX_INTERVALS) {
		/* too many to keep apart: one interval covering them all */
		for (size_t i = 1; i < f->n_stale; i++) {
			if (f->stale[i].cause < f->stale[0].cause)
				f->stale[0].cause = f->stale[i].cause;
			if (f->stale[i].stale > f->stale[0].stale)
				f->stale[0].stale = f->stale[i].stale;
		}
		f->n_stale = 1;
	}
	if (f->n_stale == f->cap_stale) {
		size_t cap = f->cap_stale ? 2 * f->cap_stale : 16;

		if (!(v = realloc(f->stale, cap * sizeof(*v)))) {
			f->stale_lost = 1;
			return;
		}
		f->stale = v;
		f->cap_stale = cap;
	}
	f->stale[f->n_stale++] = (struct fl_interval){ cause, stale };
}

int fl_prune(struct fleet *f, int64_t start)
{
	struct pb_providers *np = NULL;
	struct fl_tmap *nt = NULL, *ns = NULL;
	const struct tslot **sv = NULL;
	char k[1024];
	size_t i, keep = 0, n_sv = 0;
	int rc = -1;

	for (i = 0; i < f->n_stale; i++)
		if (f->stale[i].cause < start && f->stale[i].stale >= start)
			return -1;
	if (f->stale_lost)
		return -1;
	for (i = 0; i < f->n_stale; i++)
		if (f->stale[i].stale >= start)
			f->stale[keep++] = f->stale[i];
	f->n_stale = keep;
	/* anything to drop? */
	keep = 0;
	for (i = 0; i < f->ptime->cap; i++)
		keep += f->ptime->slots[i].key && f->ptime->slots[i].a < start;
	for (i = 0; i < f->seqs->cap; i++)
		keep += f->seqs->slots[i].key && f->seqs->slots[i].b < start;
	if (!keep)
		return 0;
	f->pruned = 1;
	if (!(np = pb_providers_new()) || !(nt = fl_tmap_new()) || !(ns = fl_tmap_new()) ||
	    !(sv = sorted_slots(f->seqs, start, &n_sv)))
		goto out;
	/* the seq floors first, then the providers, each in the order of
	 * lib/providers.c: every insertion at the end */
	for (i = 0; i < n_sv; i++) {
		const struct tslot *s = sv[i];
		char fed[PB_IDENT_MAX + 1], node[PB_IDENT_MAX + 1], svc[PB_SERVICE_MAX + 1];

		if (seq_key_split(s->key, fed, node, svc) < 0 ||
		    pb_providers_seq_floor(np, fed, node, svc, s->a) < 0 ||
		    fl_tmap_put(ns, s->key, s->a, s->b) < 0)
			goto out;
	}
	for (i = 0; i < pb_providers_count(f->prov); i++) {
		const struct pb_provider *pv = pb_providers_at(f->prov, i);
		int64_t t = 0;

		fl_tuple_key(k, sizeof(k), pv->federation, pv->region, pv->node, pv->service,
			     pv->key);
		if (!fl_tmap_get(f->ptime, k, &t, NULL) || t < start)
			continue;
		if (pb_providers_put(np, pv) < 0 || fl_tmap_put(nt, k, t, 0) < 0)
			goto out;
	}
	pb_providers_free(f->prov);
	fl_tmap_free(f->ptime);
	fl_tmap_free(f->seqs);
	f->prov = np;
	f->ptime = nt;
	f->seqs = ns;
	np = NULL;
	nt = ns = NULL;
	rc = 0;
out:
	free(sv);
	pb_providers_free(np);
	fl_tmap_free(nt);
	fl_tmap_free(ns);
	return rc < 0 ? -2 : 0;
}

/* ---- the file ---- */

static void put_enc(char *out, size_t size, size_t *len, const char *s)
{
	for (; *s && *len + 4 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == '_')
			out[(*len)++] = (char)c;
		else
			*len += (size_t)snprintf(out + *len, size - *len, "%%%02X", c);
	}
	out[*len] = '\0';
}

int fl_cache_path(char *out, size_t size, const char *url, const char *vhost_override,
		  const char *federation, int any_sender, char *ident, size_t ident_size)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	struct amqp_connection_info ci;
	char *copy = strdup(url ? url : "");
	char name[600];
	size_t len = 0;
	int n;

	if (!copy)
		return -1;
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		free(copy);
		return -1;
	}
	/* a call that counts every sender keeps a cache of its own: what it
	 * counted is not what a verifying call may (nor the other way round) */
	snprintf(ident, ident_size, "%s:%d/%s%s", ci.host, ci.port,
		 vhost_override ? vhost_override : ci.vhost, any_sender ? " any-sender" : "");
	free(copy);
	put_enc(name, sizeof(name), &len, "fleet-");
	put_enc(name, sizeof(name), &len, ident);
	put_enc(name, sizeof(name), &len, "-");
	put_enc(name, sizeof(name), &len, federation);
	if (xdg && *xdg == '/')
		n = snprintf(out, size, "%s/provbus/%s.json", xdg, name);
	else if (home && *home == '/')
		n = snprintf(out, size, "%s/.cache/provbus/%s.json", home, name);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static json_t *provider_json(const struct pb_provider *pv, int64_t t)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:b,s:I}", "federation",
			      pv->federation, "region", pv->region, "node", pv->node, "service",
			      pv->service, "key", pv->key, "public", pv->public, "seq",
			      (json_int_t)pv->seq, "expires_at", (json_int_t)pv->expires_at,
			      "updated_at", (json_int_t)pv->updated_at, "tombstone", pv->tombstone,
			      "offset", (json_int_t)t);

	if (o && pv->value && json_object_set_new(o, "value", json_string(pv->value)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *stream_pos(const struct fl_cache_pos *pos, int i)
{
	if (pos->offset[i] < 0)
		return json_null();
	return json_pack("{s:I,s:s}", "offset", (json_int_t)pos->offset[i], "digest",
			 pos->digest[i]);
}

static json_t *node_json(const struct fl_node *n)
{
	return json_pack("{s:s,s:O?,s:I,s:I,s:O?,s:I,s:O?,s:I}", "node", n->name, "presence",
			 n->presence, "presence_offset", (json_int_t)n->off_presence, "lease_end",
			 (json_int_t)n->lease_end, "last_run", n->last_run, "run_offset",
			 (json_int_t)n->off_run, "last_ok", n->last_ok, "ok_offset",
			 (json_int_t)n->off_ok);
}

int fl_cache_save(const struct fleet *f, const char *path, const char *ident, int64_t window_s,
		  const struct fl_cache_pos *pos, struct pb_err *err)
{
	json_t *doc, *provs = json_array(), *seqs = json_array(), *stale = json_array();
	json_t *nodes = json_array();
	char dir[4096], *slash, *text = NULL, *line = NULL;
	int rc = -1;
	size_t len;
	const struct tslot **sv = NULL;
	size_t n_sv = 0;

	doc = json_pack("{s:i,s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "provbus_fleet_cache",
			CACHE_FORMAT, "version", PB_VERSION, "federation", f->federation, "broker",
			ident, "window_s", (json_int_t)window_s, "history", stream_pos(pos, 0),
			"fleet", stream_pos(pos, 1), "providers", provs, "seqs", seqs, "stale",
			stale, "nodes", nodes);
	if (!doc)
		return pb_err_set(err, EX_OSERR, "out of memory");
	for (size_t i = 0; pos->offset[1] >= 0 && i < f->n_nodes; i++)
		if (json_array_append_new(nodes, node_json(&f->nodes[i])) < 0)
			goto nomem;
	for (size_t i = 0; i < pb_providers_count(f->prov); i++) {
		const struct pb_provider *pv = pb_providers_at(f->prov, i);
		char k[1024];
		int64_t t = 0;

		fl_tuple_key(k, sizeof(k), pv->federation, pv->region, pv->node, pv->service,
			     pv->key);
		fl_tmap_get(f->ptime, k, &t, NULL);
		if (json_array_append_new(provs, provider_json(pv, t)) < 0)
			goto nomem;
	}
	if (!(sv = sorted_slots(f->seqs, INT64_MIN, &n_sv)))
		goto nomem;
	for (size_t i = 0; i < n_sv; i++)
		if (json_array_append_new(seqs, json_pack("[s,I,I]", sv[i]->key, (json_int_t)sv[i]->a,
							  (json_int_t)sv[i]->b)) < 0)
			goto nomem;
	for (size_t i = 0; i < f->n_stale; i++)
		if (json_array_append_new(stale, json_pack("[I,I]", (json_int_t)f->stale[i].cause,
							   (json_int_t)f->stale[i].stale)) < 0)
			goto nomem;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')))
		*slash = '\0';
	/* the folder and its parent (~/.cache), private */
	if ((slash = strrchr(dir, '/'))) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			pb_err_set(err, EX_CANTCREAT, "%s: %s", dir, strerror(errno));
			goto out;
		}
		*slash = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		pb_err_set(err, EX_CANTCREAT, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (!(text = json_dumps(doc, JSON_COMPACT)) || !(line = realloc(text, strlen(text) + 2)))
		goto nomem;
	text = NULL;
	len = strlen(line);
	line[len++] = '\n';
	line[len] = '\0';
	/* temp file, fsync, mode 0600, rename, fsync of the folder */
	rc = pb_file_write_atomic(path, line, len, 0600, err);
	goto out;
nomem:
	pb_err_set(err, EX_OSERR, "out of memory");
out:
	free(text);
	free(line);
	free(sv);
	json_decref(doc);
	return rc;
}

static int copy_field(char *dst, size_t size, json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	if (!s || strlen(s) >= size)
		return -1;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int load_pos(json_t *doc, const char *name, struct fl_cache_pos *pos, int i)
{
	json_t *v = json_object_get(doc, name);
	const char *s = json_string_value(json_object_get(v, "digest"));

	pos->offset[i] = -1;
	if (json_is_null(v))
		return 0;
	if (!json_is_integer(json_object_get(v, "offset")) || !s ||
	    strlen(s) != PB_SHA256_HEX_LEN)
		return -1;
	pos->offset[i] = json_integer_value(json_object_get(v, "offset"));
	memcpy(pos->digest[i], s, PB_SHA256_HEX_LEN + 1);
	return pos->offset[i] >= 0 ? 0 : -1;
}

/* The nodes, as saved (sorted by name, as f keeps them). */
static int load_nodes(struct fleet *f, json_t *a)
{
	size_t i;
	json_t *o;

	if (!json_is_array(a))
		return -1;
	if (json_array_size(a) && !(f->nodes = calloc(json_array_size(a), sizeof(*f->nodes))))
		return -1;
	f->cap_nodes = json_array_size(a);
	json_array_foreach(a, i, o) {
		struct fl_node *n = &f->nodes[f->n_nodes];
		const char *name = json_string_value(json_object_get(o, "node"));
		/* absent or null: none */
		json_t *p = pb_jsondoc_member(o, "presence"), *r = pb_jsondoc_member(o, "last_run");
		json_t *k = pb_jsondoc_member(o, "last_ok");

		if (!name || strlen(name) > PB_IDENT_MAX ||
		    (f->n_nodes && strcmp(f->nodes[f->n_nodes - 1].name, name) >= 0) ||
		    (p && !json_is_object(p)) || (r && !json_is_object(r)) || (k && !json_is_object(k)))
			return -1;
		snprintf(n->name, sizeof(n->name), "%s", name);
		n->presence = json_incref(p);
		n->last_run = json_incref(r);
		n->last_ok = json_incref(k);
		n->lease_end = json_integer_value(json_object_get(o, "lease_end"));
		n->off_presence = json_integer_value(json_object_get(o, "presence_offset"));
		n->off_run = json_integer_value(json_object_get(o, "run_offset"));
		n->off_ok = json_integer_value(json_object_get(o, "ok_offset"));
		f->n_nodes++;
	}
	return 0;
}

int fl_cache_load(struct fleet *f, const char *path, const char *ident, int64_t window_s,
		  struct fl_cache_pos *pos, char *why, size_t why_size)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je), *a;
	const char *s;
	size_t i;
	int rc = -1;

	if (!doc) {
		if (errno == ENOENT && access(path, F_OK) < 0)
			snprintf(why, why_size, "no cache %s yet", path);
		else
			snprintf(why, why_size, "cache %s unreadable (%s): not used", path, je.text);
		return -1;
	}
	if (json_integer_value(json_object_get(doc, "provbus_fleet_cache")) != CACHE_FORMAT ||
	    !(s = json_string_value(json_object_get(doc, "version"))) || strcmp(s, PB_VERSION)) {
		snprintf(why, why_size, "cache %s: another version: not used", path);
		goto out;
	}
	if (!(s = json_string_value(json_object_get(doc, "federation"))) ||
	    strcmp(s, f->federation) ||
	    !(s = json_string_value(json_object_get(doc, "broker"))) || strcmp(s, ident)) {
		snprintf(why, why_size, "cache %s: another federation or broker: not used", path);
		goto out;
	}
	if (json_integer_value(json_object_get(doc, "window_s")) != window_s) {
		snprintf(why, why_size, "cache %s: another history_window_s: not used", path);
		goto out;
	}
	if (load_pos(doc, "history", pos, 0) < 0 || pos->offset[0] < 0 ||
	    load_pos(doc, "fleet", pos, 1) < 0) {
		snprintf(why, why_size, "cache %s: no stream offset: not used", path);
		goto out;
	}
	snprintf(why, why_size, "cache %s: a provider, seq or node is malformed: not used", path);
	if (pos->offset[1] >= 0 && load_nodes(f, json_object_get(doc, "nodes")) < 0)
		goto out;
	/* the seq floors first (saved in order), then the providers (likewise):
	 * lib/providers.c inserts each at the end */
	json_array_foreach(json_object_get(doc, "seqs"), i, a) {
		char fed[PB_IDENT_MAX + 1], node[PB_IDENT_MAX + 1], svc[PB_SERVICE_MAX + 1];

		s = json_string_value(json_array_get(a, 0));
		if (!s || seq_key_split(s, fed, node, svc) < 0 ||
		    !json_is_integer(json_array_get(a, 1)) || !json_is_integer(json_array_get(a, 2)) ||
		    pb_providers_seq_floor(f->prov, fed, node, svc,
					   json_integer_value(json_array_get(a, 1))) < 0 ||
		    fl_tmap_put(f->seqs, s, json_integer_value(json_array_get(a, 1)),
				json_integer_value(json_array_get(a, 2))) < 0)
			goto out;
	}
	json_array_foreach(json_object_get(doc, "providers"), i, a) {
		struct pb_provider pv;
		json_t *val = json_object_get(a, "value");
		char k[1024];

		memset(&pv, 0, sizeof(pv));
		if (copy_field(pv.federation, sizeof(pv.federation), a, "federation") < 0 ||
		    copy_field(pv.region, sizeof(pv.region), a, "region") < 0 ||
		    copy_field(pv.node, sizeof(pv.node), a, "node") < 0 ||
		    copy_field(pv.service, sizeof(pv.service), a, "service") < 0 ||
		    copy_field(pv.key, sizeof(pv.key), a, "key") < 0 ||
		    !json_is_integer(json_object_get(a, "seq")) ||
		    !json_is_integer(json_object_get(a, "offset")) || (val && !json_is_string(val)))
			goto out;
		pv.value = (char *)json_string_value(val);
		pv.public = json_is_true(json_object_get(a, "public"));
		pv.tombstone = json_is_true(json_object_get(a, "tombstone")) || !pv.value;
		pv.seq = json_integer_value(json_object_get(a, "seq"));
		pv.expires_at = json_integer_value(json_object_get(a, "expires_at"));
		pv.updated_at = json_integer_value(json_object_get(a, "updated_at"));
		fl_tuple_key(k, sizeof(k), pv.federation, pv.region, pv.node, pv.service, pv.key);
		if (pb_providers_put(f->prov, &pv) < 0 ||
		    fl_tmap_put(f->ptime, k, json_integer_value(json_object_get(a, "offset")), 0) < 0)
			goto out;
	}
	json_array_foreach(json_object_get(doc, "stale"), i, a) {
		if (!json_is_integer(json_array_get(a, 0)) || !json_is_integer(json_array_get(a, 1)))
			goto out;
		fl_stale_note(f, json_integer_value(json_array_get(a, 0)),
			      json_integer_value(json_array_get(a, 1)));
	}
	snprintf(why, why_size, "cache %s: %zu providers up to offset %lld, %zu nodes up to offset %lld",
		 path, pb_providers_count(f->prov), (long long)pos->offset[0], f->n_nodes,
		 (long long)pos->offset[1]);
	rc = 0;
out:
	json_decref(doc);
	return rc;
}
