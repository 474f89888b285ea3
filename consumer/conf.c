/* conf.c — a loaded configuration and what it implies (see consumer.h).
 *
 * The required keys and env vars come from every manifest of
 * services_dir. A manifest naming another federation still counts: the
 * daemon listens to its own node's federation only (docs/protocol.md §2: one
 * exchange per federation, a node belongs to one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumer.h"
#include "strv.h"

int cs_strv_has(const char *const *v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), pb_strv_cmp) != NULL;
}

/* The manifest that holds requirement r (for error messages). */
static const char *manifest_of(const struct pb_manifest_set *ms, const struct pb_require *r)
{
	for (size_t i = 0; i < ms->n; i++)
		for (size_t j = 0; j < ms->items[i]->n_requires; j++)
			if (&ms->items[i]->requires[j] == r)
				return ms->items[i]->path;
	return "?";
}

static int same_require(const struct pb_want *a, const struct pb_want *b)
{
	if (!a->key != !b->key)
		return 0;
	return a->key ? !strcmp(a->key, b->key) : !strcmp(a->literal, b->literal);
}

/* Collects the requires of every manifest: one want per env var. Two
 * manifests requiring one env var differently is an error naming both. */
static int build_wants(struct cs_conf *c, struct pb_err *err)
{
	const struct pb_require **src = NULL;
	size_t n = 0, cap = 0, i, u = 0;
	int rc = -1;

	for (i = 0; i < c->ms.n; i++)
		cap += c->ms.items[i]->n_requires;
	c->wants = calloc(cap ? cap : 1, sizeof(*c->wants));
	src = calloc(cap ? cap : 1, sizeof(*src));
	if (!c->wants || !src) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	for (i = 0; i < c->ms.n; i++) {
		const struct pb_manifest *m = c->ms.items[i];

		for (size_t j = 0; j < m->n_requires; j++) {
			c->wants[n].env = m->requires[j].env;
			c->wants[n].key = m->requires[j].key;
			c->wants[n].literal = m->requires[j].literal;
			src[n++] = &m->requires[j];
		}
	}
	/* insertion sort by env keeps each want next to its source */
	for (i = 1; i < n; i++) {
		struct pb_want w = c->wants[i];
		const struct pb_require *r = src[i];
		size_t j = i;

		while (j > 0 && strcmp(c->wants[j - 1].env, w.env) > 0) {
			c->wants[j] = c->wants[j - 1];
			src[j] = src[j - 1];
			j--;
		}
		c->wants[j] = w;
		src[j] = r;
	}
	for (i = 0; i < n; i++) {
		if (u && !strcmp(c->wants[u - 1].env, c->wants[i].env)) {
			if (!same_require(&c->wants[u - 1], &c->wants[i])) {
				pb_err_set(err, EX_CONFIG,
					   "%s and %s require %s differently: make the requires agree",
					   manifest_of(&c->ms, src[u - 1]), manifest_of(&c->ms, src[i]),
					   c->wants[i].env);
				goto out;
			}
			continue;
		}
		c->wants[u] = c->wants[i];
		src[u] = src[i];
		u++;
	}
	c->n_wants = u;
	rc = 0;
out:
	free(src);
	return rc;
}

static int add_binding(struct cs_conf *c, size_t *cap, const char *region, const char *kind,
		       const char *key)
{
	char *s;

	if (c->n_bindings == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		char **nb = realloc(c->bindings, ncap * sizeof(*nb));

		if (!nb)
			return -1;
		c->bindings = nb;
		*cap = ncap;
	}
	if (asprintf(&s, "%s.%s.%s", region, kind, key) < 0)
		return -1;
	c->bindings[c->n_bindings++] = s;
	return 0;
}

static int build_bindings(struct cs_conf *c, struct pb_err *err)
{
	size_t cap = 0;

	for (size_t r = 0; r < c->n_regions; r++)
		for (size_t k = 0; k < c->n_keys; k++)
			for (int kind = 0; kind < PB_KIND__COUNT; kind++)
				if (add_binding(c, &cap, c->regions[r],
						pb_kind_name((enum pb_kind)kind), c->keys[k]) < 0)
					return pb_err_set(err, EX_OSERR, "out of memory");
	if (c->n_bindings)
		qsort(c->bindings, c->n_bindings, sizeof(*c->bindings), pb_strv_cmp);
	return 0;
}

/* The accepted regions: consumer.regions, or just "*" when it is there. */
static int build_regions(struct cs_conf *c, struct pb_err *err)
{
	const struct pb_consumer_conf *cc = &c->cfg->consumer;
	size_t i, n = cc->n_regions;

	c->regions = calloc(n ? n : 1, sizeof(*c->regions));
	if (!c->regions)
		return pb_err_set(err, EX_OSERR, "out of memory");
	if (!n) {
		c->regions[0] = c->cfg->region;
		c->n_regions = 1;
		return 0;
	}
	for (i = 0; i < n; i++)
		if (!strcmp(cc->regions[i], "*")) {
			c->regions[0] = "*";
			c->n_regions = 1;
			return 0;
		}
	for (i = 0; i < n; i++)
		c->regions[i] = cc->regions[i];
	c->n_regions = n;
	qsort(c->regions, n, sizeof(*c->regions), pb_strv_cmp);
	return 0;
}

int cs_conf_load(const char *path, struct cs_conf *out, struct pb_err *err)
{
	struct cs_conf c;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	if (!(c.cfg = pb_config_load(path, err)))
		goto out;
	if (pb_manifest_load_dir(c.cfg->services_dir, c.cfg->federation, 1, &c.ms, err) < 0)
		goto out;
	c.keys = pb_manifest_set_required_keys(&c.ms, &c.n_keys);
	if (!c.keys) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (build_wants(&c, err) < 0 || build_regions(&c, err) < 0 || build_bindings(&c, err) < 0)
		goto out;
	c.filter.federation = c.cfg->federation;
	c.filter.keys = c.keys;
	c.filter.n_keys = c.n_keys;
	c.filter.regions = c.regions;
	c.filter.n_regions = c.n_regions;
	*out = c;
	memset(&c, 0, sizeof(c));
	rc = 0;
out:
	cs_conf_release(&c);
	return rc;
}

void cs_conf_release(struct cs_conf *c)
{
	pb_strv_free(c->bindings, c->n_bindings);
	free(c->regions);
	free(c->wants);
	free(c->keys);
	pb_manifest_set_release(&c->ms);
	pb_config_free(c->cfg);
	memset(c, 0, sizeof(*c));
}

void cs_conf_params(const struct cs_conf *c, struct pb_debounce_params *p)
{
	const struct pb_consumer_conf *cc = &c->cfg->consumer;

	memset(p, 0, sizeof(*p));
	p->quiet_ms = cc->quiet_ms;
	p->max_wait_ms = cc->max_wait_ms;
	p->throttle_runs = cc->throttle_runs;
	p->throttle_per_ms = cc->throttle_per_s * 1000;
	p->splay_ms = cc->splay_ms;
	p->retry_max = cc->retry_max;
	p->retry_base_ms = cc->retry_base_ms;
}

void cs_conf_decide_params(const struct cs_conf *c, struct pb_decide_params *p)
{
	const struct pb_consumer_conf *cc = &c->cfg->consumer;

	memset(p, 0, sizeof(*p));
	cs_conf_params(c, &p->deb);
	p->wants = c->wants;
	p->n_wants = c->n_wants;
	p->filter = c->filter;
	p->statics = cc->statics;
	p->n_statics = cc->n_statics;
	p->public_only = cc->public_only;
}

char *cs_conf_params_json(const struct cs_conf *c, const char *event)
{
	const struct pb_consumer_conf *cc = &c->cfg->consumer;
	json_t *o = json_pack("{s:I,s:I,s:i,s:I,s:I,s:i,s:I,s:s}", "quiet_ms",
			      (json_int_t)cc->quiet_ms, "max_wait_ms", (json_int_t)cc->max_wait_ms,
			      "throttle_runs", cc->throttle_runs, "throttle_per_s",
			      (json_int_t)cc->throttle_per_s, "splay_ms", (json_int_t)cc->splay_ms,
			      "retry_max", cc->retry_max, "retry_base_ms",
			      (json_int_t)cc->retry_base_ms, "event", event);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}
