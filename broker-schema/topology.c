/* topology.c — loads and validates the topology file (docs/protocol.md §2) and
 * lists the broker objects it implies (docs/protocol.md §2).
 *
 * Every error is "FILE:LINE:COL: FIELD: message" (EX_DATAERR), the
 * position found again in the text by jsonpos; unknown fields are errors:
 * a typo in a topology must not pass silently. */
#include "topology.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsondoc.h"
#include "names.h"
#include "vocab.h"

#define TOPO_MAX_BYTES (4 * 1024 * 1024)
#define PATH_MAX_COMP 4

/* A path in the document: "nodes", "[2]", "federation". A key points
 * into the document (whole, however long); an index is kept as text. */
struct path {
	struct {
		const char *key;
		char idx[24];
	} comp[PATH_MAX_COMP];
	size_t n;
};

static const char *comp_name(const struct path *p, size_t i)
{
	return p->comp[i].key ? p->comp[i].key : p->comp[i].idx;
}

static struct path path_key(const struct path *parent, const char *key)
{
	struct path p = parent ? *parent : (struct path){ .n = 0 };

	if (p.n < PATH_MAX_COMP)
		p.comp[p.n++].key = key;
	return p;
}

static struct path path_index(const struct path *parent, size_t i)
{
	struct path p = *parent;

	if (p.n < PATH_MAX_COMP) {
		p.comp[p.n].key = NULL;
		snprintf(p.comp[p.n++].idx, sizeof(p.comp[0].idx), "[%zu]", i);
	}
	return p;
}

/* "nodes[1].federation" */
static void path_name(const struct path *p, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n && used < size; i++) {
		int w = snprintf(buf + used, size - used, "%s%s",
				 i && p->comp[i].key ? "." : "", comp_name(p, i));
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Sets "FILE:LINE:COL: FIELD: message" at the key of p (or its value when
 * at_value); the top level (empty p) is reported at 1:1, blank lines
 * before it or not. Returns -1. */
static int fail(struct pb_jsondoc *c, const struct path *p, int at_value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pb_jsondoc *c, const struct path *p, int at_value, const char *fmt, ...)
{
	const char *comp[PATH_MAX_COMP];
	char msg[PB_ERR_MAX], field[300];
	va_list ap;

	for (size_t i = 0; i < p->n; i++)
		comp[i] = comp_name(p, i);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!p->n)
		return pb_err_set(c->err, c->code, "%s:1:1: %s", c->file, msg);
	path_name(p, field, sizeof(field));
	return pb_jsondoc_fail(c, comp, p->n, at_value, "%s: %s", field, msg);
}

static int check_fields(struct pb_jsondoc *c, const struct path *p, json_t *obj,
			const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t i;
		for (i = 0; allowed[i] && strcmp(allowed[i], key); i++)
			;
		if (!allowed[i]) {
			struct path kp = path_key(p, key);
			char list[200] = "";
			for (i = 0; allowed[i]; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i ? ", " : "", allowed[i]);
			return fail(c, &kp, 0, "unknown field (known: %s)", list);
		}
	}
	return 0;
}

static int get_ident(struct pb_jsondoc *c, const struct path *p, json_t *v, char **out)
{
	if (!json_is_string(v))
		return fail(c, p, 1, "must be a string");
	if (!pb_name_ident_ok(json_string_value(v)))
		return fail(c, p, 1, "\"%s\" is not a valid name ([a-z0-9][a-z0-9-]{0,62})",
			    json_string_value(v));
	*out = strdup(json_string_value(v));
	return *out ? 0 : pb_err_set(c->err, EX_OSERR, "out of memory");
}

int topo_max_age_ok(const char *s)
{
	size_t n = strspn(s, "0123456789");
	int nonzero = 0;

	for (size_t i = 0; i < n; i++)
		nonzero |= s[i] != '0';
	return n > 0 && n <= 9 && nonzero && s[n] && strchr("YMDhms", s[n]) && !s[n + 1];
}

static const struct topo_federation *find_fed(const struct topology *t, const char *name)
{
	for (size_t i = 0; i < t->n_feds; i++)
		if (!strcmp(t->feds[i].name, name))
			return &t->feds[i];
	return NULL;
}

static int has_region(const struct topo_federation *f, const char *region)
{
	for (size_t i = 0; i < f->n_regions; i++)
		if (!strcmp(f->regions[i], region))
			return 1;
	return 0;
}

static int load_federations(struct pb_jsondoc *c, struct topology *t, json_t *feds)
{
	static const char *const fed_fields[] = { "regions", NULL };
	struct path fp = path_key(NULL, "federations");
	const char *name;
	json_t *f;

	if (!json_is_object(feds))
		return fail(c, &fp, 1, "must be an object: {\"NAME\": {\"regions\": [...]}}");
	if (json_object_size(feds) == 0)
		return fail(c, &fp, 1, "names no federation");
	t->feds = calloc(json_object_size(feds), sizeof(*t->feds));
	if (!t->feds)
		return pb_err_set(c->err, EX_OSERR, "out of memory");
	json_object_foreach(feds, name, f) {
		struct path p = path_key(&fp, name), rp = path_key(&p, "regions");
		struct topo_federation *tf = &t->feds[t->n_feds];
		json_t *regions, *r;
		size_t i;

		if (!pb_name_ident_ok(name))
			return fail(c, &p, 0, "\"%s\" is not a valid federation name ([a-z0-9][a-z0-9-]{0,62})",
				    name);
		if (!(tf->name = strdup(name)))
			return pb_err_set(c->err, EX_OSERR, "out of memory");
		t->n_feds++;
		if (!json_is_object(f))
			return fail(c, &p, 1, "must be an object: {\"regions\": [...]}");
		if (check_fields(c, &p, f, fed_fields))
			return -1;
		regions = json_object_get(f, "regions");
		if (!regions)
			return fail(c, &p, 0, "regions: missing (a list of region names)");
		if (!json_is_array(regions) || json_array_size(regions) == 0)
			return fail(c, &rp, 1, "must be a non-empty list of region names");
		tf->regions = calloc(json_array_size(regions), sizeof(char *));
		if (!tf->regions)
			return pb_err_set(c->err, EX_OSERR, "out of memory");
		json_array_foreach(regions, i, r) {
			struct path ip = path_index(&rp, i);
			char *region;
			if (get_ident(c, &ip, r, &region))
				return -1;
			if (has_region(tf, region)) {
				free(region);
				return fail(c, &ip, 1, "region %s listed twice", json_string_value(r));
			}
			tf->regions[tf->n_regions++] = region;
		}
	}
	return 0;
}

static int load_nodes(struct pb_jsondoc *c, struct topology *t, json_t *nodes)
{
	static const char *const node_fields[] = { "name", "federation", "region", NULL };
	static const char *const required[] = { "name", "federation", "region" };
	struct path np = path_key(NULL, "nodes");
	json_t *n;
	size_t i;

	if (!nodes)
		return 0;
	if (!json_is_array(nodes))
		return fail(c, &np, 1, "must be a list of {\"name\", \"federation\", \"region\"}");
	t->nodes = calloc(json_array_size(nodes) + 1, sizeof(*t->nodes));
	if (!t->nodes)
		return pb_err_set(c->err, EX_OSERR, "out of memory");
	json_array_foreach(nodes, i, n) {
		struct path p = path_index(&np, i);
		struct topo_node *tn = &t->nodes[t->n_nodes];
		char **dst[] = { &tn->name, &tn->federation, &tn->region };
		const struct topo_federation *f;

		if (!json_is_object(n))
			return fail(c, &p, 1, "must be an object {\"name\", \"federation\", \"region\"}");
		if (check_fields(c, &p, n, node_fields))
			return -1;
		t->n_nodes++;
		for (size_t k = 0; k < 3; k++) {
			struct path kp = path_key(&p, required[k]);
			json_t *v = json_object_get(n, required[k]);
			if (!v)
				return fail(c, &p, 1, "%s: missing", required[k]);
			if (get_ident(c, &kp, v, dst[k]))
				return -1;
		}
		if (!strcmp(tn->name, TOPO_OBSERVER)) {
			struct path kp = path_key(&p, "name");
			return fail(c, &kp, 1, "%s is the fleet view's read-only user: name the node otherwise",
				    TOPO_OBSERVER);
		}
		for (size_t k = 0; k + 1 < t->n_nodes; k++)
			if (!strcmp(t->nodes[k].name, tn->name)) {
				struct path kp = path_key(&p, "name");
				return fail(c, &kp, 1, "node %s listed twice (a node is one broker user)",
					    tn->name);
			}
		if (!(f = find_fed(t, tn->federation))) {
			struct path kp = path_key(&p, "federation");
			return fail(c, &kp, 1, "federation %s is not in \"federations\"", tn->federation);
		}
		if (!has_region(f, tn->region)) {
			struct path kp = path_key(&p, "region");
			return fail(c, &kp, 1, "region %s is not a region of federation %s", tn->region,
				    tn->federation);
		}
	}
	return 0;
}

/* A retention field: a RabbitMQ age, else the default. */
static int get_max_age(struct pb_jsondoc *c, json_t *root, const char *field, const char *def,
		       char **out)
{
	struct path ap = path_key(NULL, field);
	json_t *v = json_object_get(root, field);

	if (v && (!json_is_string(v) || !topo_max_age_ok(json_string_value(v))))
		return fail(c, &ap, 1, "%s%s%smust be a RabbitMQ age like \"7D\" or \"24h\": digits, then Y, M, D, h, m or s",
			    json_is_string(v) ? "\"" : "", json_is_string(v) ? json_string_value(v) : "",
			    json_is_string(v) ? "\": " : "");
	*out = strdup(v ? json_string_value(v) : def);
	return 0;
}

static char *read_file(const char *path, size_t *len, struct pb_err *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;

	if (!f) {
		pb_err_set(err, EX_NOINPUT,
			   "%s: cannot read the topology: %s (give the path of a topology file)",
			   path, strerror(errno));
		goto out;
	}
	buf = malloc(TOPO_MAX_BYTES + 1);
	if (!buf) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	n = fread(buf, 1, TOPO_MAX_BYTES + 1, f);
	if (ferror(f)) {
		pb_err_set(err, EX_NOINPUT, "%s: cannot read the topology: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else if (n > TOPO_MAX_BYTES) {
		pb_err_set(err, EX_DATAERR, "%s: larger than %d bytes", path, TOPO_MAX_BYTES);
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
out:
	if (f)
		fclose(f);
	return buf;
}

struct topology *topo_load(const char *path, struct pb_err *err)
{
	static const char *const top_fields[] = { "vhost", "history_max_age", "fleet_max_age",
						  "federations", "nodes", NULL };
	struct topology *t = calloc(1, sizeof(*t));
	struct pb_jsondoc c = { .file = path, .code = EX_DATAERR, .err = err };
	json_t *root = NULL, *v;
	char *text = NULL;
	int rc = -1;

	if (!t) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (!(text = read_file(path, &c.len, err)))
		goto out;
	c.text = text;
	root = pb_jsondoc_parse(&c);
	if (!root)
		goto out;
	struct path top = { .n = 0 };
	if (!json_is_object(root)) {
		fail(&c, &top, 0, "the topology must be a JSON object");
		goto out;
	}
	if (check_fields(&c, &top, root, top_fields))
		goto out;
	t->path = strdup(path);
	struct path vp = path_key(NULL, "vhost");
	v = json_object_get(root, "vhost");
	if (!v) {
		fail(&c, &top, 0, "vhost: missing (the RabbitMQ vhost, e.g. \"/provbus\")");
		goto out;
	}
	if (!json_is_string(v) || !json_string_length(v)) {
		fail(&c, &vp, 1, "must be a non-empty string");
		goto out;
	}
	t->vhost = strdup(json_string_value(v));
	if (get_max_age(&c, root, "history_max_age", TOPO_DEFAULT_MAX_AGE, &t->history_max_age) ||
	    get_max_age(&c, root, "fleet_max_age", TOPO_DEFAULT_FLEET_MAX_AGE, &t->fleet_max_age))
		goto out;
	v = json_object_get(root, "federations");
	if (!v) {
		fail(&c, &top, 0, "federations: missing ({\"NAME\": {\"regions\": [...]}})");
		goto out;
	}
	if (load_federations(&c, t, v) || load_nodes(&c, t, json_object_get(root, "nodes")))
		goto out;
	if (!t->path || !t->vhost || !t->history_max_age || !t->fleet_max_age) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	free(text);
	if (rc) {
		topo_free(t);
		t = NULL;
	}
	return t;
}

void topo_free(struct topology *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_feds; i++) {
		for (size_t k = 0; k < t->feds[i].n_regions; k++)
			free(t->feds[i].regions[k]);
		free(t->feds[i].regions);
		free(t->feds[i].name);
	}
	free(t->feds);
	for (size_t i = 0; i < t->n_nodes; i++) {
		free(t->nodes[i].name);
		free(t->nodes[i].federation);
		free(t->nodes[i].region);
	}
	free(t->nodes);
	free(t->vhost);
	free(t->history_max_age);
	free(t->fleet_max_age);
	free(t->path);
	free(t);
}

/* ---- objects ---- */

const char *topo_kind_name(enum topo_kind k)
{
	return k == TOPO_EXCHANGE ? "exchange" : k == TOPO_QUEUE ? "queue" : "binding";
}

static struct topo_obj *obj_exchange(struct topo_obj *o, const char *name, const char *type,
				     const char *alternate)
{
	memset(o, 0, sizeof(*o));
	o->kind = TOPO_EXCHANGE;
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->type, sizeof(o->type), "%s", type);
	o->alternate = alternate;
	return o + 1;
}

static struct topo_obj *obj_queue(struct topo_obj *o, const char *name, const char *type,
				  const char *max_age, int64_t max_length)
{
	memset(o, 0, sizeof(*o));
	o->kind = TOPO_QUEUE;
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->type, sizeof(o->type), "%s", type);
	o->max_age = max_age;
	o->max_length = max_length;
	return o + 1;
}

static struct topo_obj *obj_binding(struct topo_obj *o, const char *source, const char *queue,
				    const char *key)
{
	memset(o, 0, sizeof(*o));
	o->kind = TOPO_BINDING;
	snprintf(o->source, sizeof(o->source), "%s", source);
	snprintf(o->name, sizeof(o->name), "%s", queue);
	snprintf(o->key, sizeof(o->key), "%s", key);
	return o + 1;
}

void topo_policies(const struct topology *t, struct topo_policy out[TOPO_N_POLICIES])
{
	/* federation names are [a-z0-9-]: the patterns match the streams
	 * and nothing else (a node queue has one more component) */
	out[0] = (struct topo_policy){ TOPO_HISTORY_POLICY, "^provbus\\.[a-z0-9-]+\\.history$",
				       t->history_max_age };
	out[1] = (struct topo_policy){ TOPO_FLEET_POLICY, "^provbus\\.[a-z0-9-]+\\.fleet$",
				       t->fleet_max_age };
}

size_t topo_objects(const struct topology *t, struct topo_obj **out)
{
	struct topo_obj *objs = calloc(6 + (5 + PB_KIND__COUNT) * t->n_feds, sizeof(*objs)), *o = objs;

	*out = objs;
	if (!objs)
		return (size_t)-1;
	/* the shared objects first: provbus.F names provbus.unrouted as its
	 * alternate exchange */
	o = obj_exchange(o, TOPO_UNROUTED, "fanout", NULL);
	o = obj_queue(o, TOPO_UNROUTED, "classic", NULL, TOPO_UNROUTED_MAX_LEN);
	o = obj_binding(o, TOPO_UNROUTED, TOPO_UNROUTED, "");
	o = obj_exchange(o, TOPO_DLX, "fanout", NULL);
	o = obj_queue(o, TOPO_DEAD, "classic", NULL, 0);
	o = obj_binding(o, TOPO_DLX, TOPO_DEAD, "");
	for (size_t i = 0; i < t->n_feds; i++) {
		char ex[160], hist[160], fleet[160];
		snprintf(ex, sizeof(ex), "provbus.%s", t->feds[i].name);
		snprintf(hist, sizeof(hist), "provbus.%s.history", t->feds[i].name);
		snprintf(fleet, sizeof(fleet), "provbus.%s.fleet", t->feds[i].name);
		o = obj_exchange(o, ex, "topic", TOPO_UNROUTED);
		/* events to the history, reports to the fleet stream: a new
		 * node's catch-up never reads reports; any other kind goes
		 * to provbus.unrouted */
		o = obj_queue(o, hist, "stream", NULL, 0);
		for (int k = 0; k < PB_KIND__COUNT; k++) {
			char key[64];

			snprintf(key, sizeof(key), "*.%s.*", pb_kind_name((enum pb_kind)k));
			o = obj_binding(o, ex, hist, key);
		}
		o = obj_queue(o, fleet, "stream", NULL, 0);
		o = obj_binding(o, ex, fleet, "*.presence.*");
		o = obj_binding(o, ex, fleet, "*.run.*");
	}
	return (size_t)(o - objs);
}
