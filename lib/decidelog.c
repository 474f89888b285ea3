#include "decidelog.h"

#include <stdlib.h>
#include <string.h>

struct pb_decide_params_store {
	char **strs;		/* every string the params point to */
	size_t n_strs;
	struct pb_want *wants;
	struct pb_static *statics;
	const char **keys, **regions;
};

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

json_t *pb_decide_params_to_json(const struct pb_decide_params *p)
{
	json_t *o = json_pack("{s:I,s:I,s:i,s:I,s:I,s:i,s:I,s:i}", "quiet_ms",
			      (json_int_t)p->deb.quiet_ms, "max_wait_ms",
			      (json_int_t)p->deb.max_wait_ms, "throttle_runs", p->deb.throttle_runs,
			      "throttle_per_s", (json_int_t)(p->deb.throttle_per_ms / 1000),
			      "splay_ms", (json_int_t)p->deb.splay_ms, "retry_max", p->deb.retry_max,
			      "retry_base_ms", (json_int_t)p->deb.retry_base_ms, "public_only",
			      p->public_only != 0);
	json_t *wants = json_array(), *statics = json_array();
	int bad = !o || !wants || !statics;

	for (size_t i = 0; !bad && i < p->n_wants; i++)
		bad = json_array_append_new(wants, json_pack("[s,o,o]", p->wants[i].env,
							     str_or_null(p->wants[i].key),
							     str_or_null(p->wants[i].literal))) < 0;
	for (size_t i = 0; !bad && i < p->n_statics; i++)
		bad = json_array_append_new(statics, json_pack("[s,s]", p->statics[i].name,
							       p->statics[i].value)) < 0;
	if (!bad)
		bad = json_object_set_new(o, "wants", wants) < 0 ||
		      json_object_set_new(o, "statics", statics) < 0 ||
		      json_object_set_new(o, "federation", str_or_null(p->filter.federation)) < 0 ||
		      json_object_set_new(o, "keys", strv_json(p->filter.keys, p->filter.n_keys)) < 0 ||
		      json_object_set_new(o, "regions",
					  strv_json(p->filter.regions, p->filter.n_regions)) < 0;
	else {
		json_decref(wants);
		json_decref(statics);
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void pb_decide_params_store_free(struct pb_decide_params_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_strs; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->wants);
	free(s->statics);
	free(s->keys);
	free(s->regions);
	free(s);
}

/* A copy of o's string (NULL for anything else), kept in s; *oom on failure. */
static char *keep(struct pb_decide_params_store *s, const json_t *o, int *oom)
{
	char *c;

	if (!json_is_string(o))
		return NULL;
	if (!(c = strdup(json_string_value(o)))) {
		*oom = 1;
		return NULL;
	}
	s->strs[s->n_strs++] = c;
	return c;
}

static int64_t int_or(const json_t *o, const char *name, int64_t dflt)
{
	const json_t *v = json_object_get(o, name);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static size_t arr_len(const json_t *o, const char *name)
{
	return json_array_size(json_object_get(o, name));
}

void pb_decide_deb_from_json(const json_t *o, struct pb_debounce_params *out)
{
	out->quiet_ms = int_or(o, "quiet_ms", 2000);
	out->max_wait_ms = int_or(o, "max_wait_ms", 30000);
	out->throttle_runs = (int)int_or(o, "throttle_runs", 6);
	out->throttle_per_ms = int_or(o, "throttle_per_s", 600) * 1000;
	out->splay_ms = int_or(o, "splay_ms", 0);
	out->retry_max = (int)int_or(o, "retry_max", 5);
	out->retry_base_ms = int_or(o, "retry_base_ms", 1000);
}

int pb_decide_params_from_json(const json_t *o, struct pb_decide_params *out,
			       struct pb_decide_params_store **store)
{
	struct pb_decide_params_store *s = calloc(1, sizeof(*s));
	size_t nw = arr_len(o, "wants"), ns = arr_len(o, "statics"), nk = arr_len(o, "keys"),
	       nr = arr_len(o, "regions"), i;
	int oom = 0;

	*store = NULL;
	memset(out, 0, sizeof(*out));
	/* provbus.json(5)'s defaults for what is missing */
	pb_decide_deb_from_json(o, &out->deb);
	out->public_only = int_or(o, "public_only", 0) != 0;
	if (!s)
		return -1;
	s->strs = calloc(3 * nw + 2 * ns + nk + nr + 1, sizeof(*s->strs));
	s->wants = calloc(nw + 1, sizeof(*s->wants));
	s->statics = calloc(ns + 1, sizeof(*s->statics));
	s->keys = calloc(nk + 1, sizeof(*s->keys));
	s->regions = calloc(nr + 1, sizeof(*s->regions));
	if (!s->strs || !s->wants || !s->statics || !s->keys || !s->regions)
		goto oom;
	for (i = 0; i < nw; i++) {
		const json_t *w = json_array_get(json_object_get(o, "wants"), i);

		s->wants[i].env = keep(s, json_array_get(w, 0), &oom);
		s->wants[i].key = keep(s, json_array_get(w, 1), &oom);
		s->wants[i].literal = keep(s, json_array_get(w, 2), &oom);
	}
	for (i = 0; i < ns; i++) {
		const json_t *w = json_array_get(json_object_get(o, "statics"), i);

		s->statics[i].name = keep(s, json_array_get(w, 0), &oom);
		s->statics[i].value = keep(s, json_array_get(w, 1), &oom);
	}
	for (i = 0; i < nk; i++)
		s->keys[i] = keep(s, json_array_get(json_object_get(o, "keys"), i), &oom);
	for (i = 0; i < nr; i++)
		s->regions[i] = keep(s, json_array_get(json_object_get(o, "regions"), i), &oom);
	if (oom)
		goto oom;
	out->wants = s->wants;
	out->n_wants = nw;
	out->statics = s->statics;
	out->n_statics = ns;
	out->filter.federation = keep(s, json_object_get(o, "federation"), &oom);
	out->filter.keys = s->keys;
	out->filter.n_keys = nk;
	out->filter.regions = s->regions;
	out->filter.n_regions = nr;
	if (oom)
		goto oom;
	*store = s;
	return 0;
oom:
	pb_decide_params_store_free(s);
	return -1;
}

/* ---- a snapshot's pending debounce state ---- */

#define PENDING_TIMES(X) \
	X(first_change_at) X(last_change_at) X(requested_at) X(retry_at) X(due_since) X(splay_until)

json_t *pb_debounce_pending_to_json(const struct pb_debounce_pending *p)
{
	json_t *o = json_pack("{s:i,s:i,s:i,s:I,s:I}", "change_pending", p->change_pending,
			      "change_reason", p->change_reason, "retries", p->retries, "requests",
			      (json_int_t)p->requests, "last_change_seen", (json_int_t)p->last_change_seen);

#define PUT(f)                                                                        \
	if (o && json_object_set_new(o, #f, json_integer((json_int_t)p->f)) < 0) { \
		json_decref(o);                                                       \
		o = NULL;                                                             \
	}
	PENDING_TIMES(PUT)
#undef PUT
	return o;
}

static int64_t pending_int(const json_t *o, const char *name, int64_t none)
{
	const json_t *v = json_object_get(o, name);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : none;
}

void pb_debounce_pending_from_json(const json_t *o, struct pb_debounce_pending *out)
{
	out->change_pending = (int)pending_int(o, "change_pending", 0);
	out->change_reason = (int)pending_int(o, "change_reason", PB_REASON_CHANGE);
	out->retries = (int)pending_int(o, "retries", 0);
	out->requests = (unsigned)pending_int(o, "requests", 0);
	out->last_change_seen = pending_int(o, "last_change_seen", INT64_MIN);
#define GET(f) out->f = pending_int(o, #f, PB_TIME_NEVER);
	PENDING_TIMES(GET)
#undef GET
}
