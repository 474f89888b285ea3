/* manifest.c — service manifests of provbus-manifest(5), their provides templates,
 * and the required keys of a set of them.
 *
 * Manifests are Chef data bags too, so fields this file does not know
 * (run_list, ...) are ignored; the ones it knows are checked, and a
 * failure is "FILE:LINE:COLUMN: message" (EX_DATAERR), the position found
 * again in the text by jsonpos. */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsondoc.h"
#include "names.h"
#include "strv.h"

#define MANIFEST_MAX_BYTES (1024 * 1024)

/* Fails with "FILE:LINE:COL: message" at member k1 (or k1.k2): at its key,
 * or at its value when at_value. With k1 NULL, at the top object. */
static int fail(struct pb_jsondoc *c, const char *k1, const char *k2, int at_value,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(struct pb_jsondoc *c, const char *k1, const char *k2, int at_value,
		const char *fmt, ...)
{
	const char *path[2] = { k1, k2 };
	va_list ap;

	va_start(ap, fmt);
	pb_jsondoc_vfail(c, path, k1 ? (k2 ? 2 : 1) : 0, at_value, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct pb_jsondoc *c)
{
	return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
}

/* A scalar as text: "x" -> x, 8080 -> 8080, 1.5 -> 1.5, true -> true.
 * NULL for other types (or no memory). */
static char *scalar_text(const json_t *v)
{
	char buf[64];
	double d;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		/* the shortest of %.15g / %.17g that reads back as the same number */
		d = json_real_value(v);
		snprintf(buf, sizeof(buf), "%.15g", d);
		if (strtod(buf, NULL) != d)
			snprintf(buf, sizeof(buf), "%.17g", d);
		return strdup(buf);
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	default:
		return NULL;
	}
}

static int is_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

static int has_nul(const json_t *v)
{
	return json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v);
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct pb_kv *)a)->name, ((const struct pb_kv *)b)->name);
}

static int cmp_require(const void *a, const void *b)
{
	return strcmp(((const struct pb_require *)a)->env, ((const struct pb_require *)b)->env);
}

/* An optional object member; *out is NULL when absent. */
static int get_object(struct pb_jsondoc *c, json_t *root, const char *key, json_t **out)
{
	json_t *v = pb_jsondoc_member(root, key);

	*out = NULL;
	if (v && !json_is_object(v))
		return fail(c, key, NULL, 1, "field '%s': want an object, got %s", key,
			    pb_jsondoc_kind(v));
	*out = v;
	return 0;
}

static int bad_name(struct pb_jsondoc *c, const char *field, const char *name)
{
	return fail(c, field, name, 0,
		    "field '%s': '%.128s' is not a valid name (want ^[A-Z_][A-Z0-9_]{0,127}$)",
		    field, name);
}

static int load_environment(struct pb_jsondoc *c, json_t *root, struct pb_manifest *m)
{
	const char *name;
	json_t *obj, *v;

	if (get_object(c, root, "environment", &obj) < 0)
		return -1;
	if (!obj || json_object_size(obj) == 0)
		return 0;
	m->environment = calloc(json_object_size(obj), sizeof(*m->environment));
	if (!m->environment)
		return oom(c);
	json_object_foreach(obj, name, v) {
		struct pb_kv *kv = &m->environment[m->n_environment];

		if (!pb_name_key_ok(name))
			return bad_name(c, "environment", name);
		if (!is_scalar(v))
			return fail(c, "environment", name, 1,
				    "field 'environment.%s': want a string, a number or a boolean, got %s",
				    name, pb_jsondoc_kind(v));
		if (has_nul(v))
			return fail(c, "environment", name, 1,
				    "field 'environment.%s': a value with a NUL byte", name);
		kv->name = strdup(name);
		kv->value = scalar_text(v);
		m->n_environment++;
		if (!kv->name || !kv->value)
			return oom(c);
	}
	qsort(m->environment, m->n_environment, sizeof(*m->environment), cmp_kv);
	return 0;
}

/* "{KEY}" -> a reference; text with no brace -> a literal; anything else
 * (text and a reference, two references, a lone brace) is an error. */
static int parse_require(struct pb_jsondoc *c, const char *env, json_t *v, struct pb_require *r)
{
	const char *s;
	char why[80];
	size_t len;

	if (!is_scalar(v))
		return fail(c, "requires", env, 1,
			    "field 'requires.%s': want \"{KEY}\" or a literal value, got %s", env,
			    pb_jsondoc_kind(v));
	if (has_nul(v))
		return fail(c, "requires", env, 1, "field 'requires.%s': a value with a NUL byte",
			    env);
	if (!json_is_string(v) || !strpbrk(json_string_value(v), "{}")) {
		r->literal = scalar_text(v);
		if (!r->literal)
			return oom(c);
		if (pb_value_check(r->literal, strlen(r->literal), why, sizeof(why)))
			return fail(c, "requires", env, 1, "field 'requires.%s': %s", env, why);
		return 0;
	}
	s = json_string_value(v);
	len = strlen(s);
	if (len < 2 || s[0] != '{' || s[len - 1] != '}' || strpbrk(s + 1, "{}") != s + len - 1)
		return fail(c, "requires", env, 1,
			    "field 'requires.%s': '%.100s' is not one {KEY} reference: requires takes exactly one {KEY} and nothing else, or a literal value without braces",
			    env, s);
	r->key = strndup(s + 1, len - 2);
	if (!r->key)
		return oom(c);
	if (!pb_name_key_ok(r->key))
		return fail(c, "requires", env, 1,
			    "field 'requires.%s': '%.100s' does not name a valid key (want {KEY} with KEY ^[A-Z_][A-Z0-9_]{0,127}$)",
			    env, s);
	return 0;
}

static int load_requires(struct pb_jsondoc *c, json_t *root, struct pb_manifest *m)
{
	const char *env;
	json_t *obj, *v;

	if (get_object(c, root, "requires", &obj) < 0)
		return -1;
	if (!obj || json_object_size(obj) == 0)
		return 0;
	m->requires = calloc(json_object_size(obj), sizeof(*m->requires));
	if (!m->requires)
		return oom(c);
	json_object_foreach(obj, env, v) {
		struct pb_require *r = &m->requires[m->n_requires];

		if (!pb_name_key_ok(env))
			return bad_name(c, "requires", env);
		r->env = strdup(env);
		m->n_requires++;
		if (!r->env)
			return oom(c);
		if (parse_require(c, env, v, r) < 0)
			return -1;
	}
	qsort(m->requires, m->n_requires, sizeof(*m->requires), cmp_require);
	return 0;
}

static int load_provides(struct pb_jsondoc *c, json_t *root, struct pb_manifest *m)
{
	const char *key;
	json_t *obj, *v;

	if (get_object(c, root, "provides", &obj) < 0)
		return -1;
	if (!obj || json_object_size(obj) == 0)
		return 0;
	m->provides = calloc(json_object_size(obj), sizeof(*m->provides));
	if (!m->provides)
		return oom(c);
	json_object_foreach(obj, key, v) {
		struct pb_kv *kv = &m->provides[m->n_provides];

		if (!pb_name_key_ok(key))
			return bad_name(c, "provides", key);
		if (!json_is_string(v))
			return fail(c, "provides", key, 1,
				    "field 'provides.%s': want a template string, got %s", key,
				    pb_jsondoc_kind(v));
		if (has_nul(v))
			return fail(c, "provides", key, 1,
				    "field 'provides.%s': a value with a NUL byte", key);
		kv->name = strdup(key);
		kv->value = strdup(json_string_value(v));
		m->n_provides++;
		if (!kv->name || !kv->value)
			return oom(c);
	}
	qsort(m->provides, m->n_provides, sizeof(*m->provides), cmp_kv);
	return 0;
}

static int load_fields(struct pb_jsondoc *c, json_t *root, const char *default_federation,
		       struct pb_manifest *m)
{
	json_t *v;

	v = pb_jsondoc_member(root, "id");
	if (!v)
		return fail(c, NULL, NULL, 1, "missing required field 'id'");
	if (!json_is_string(v))
		return fail(c, "id", NULL, 1, "field 'id': want a string, got %s",
			    pb_jsondoc_kind(v));
	if (!pb_name_service_ok(json_string_value(v)) || has_nul(v))
		return fail(c, "id", NULL, 1,
			    "field 'id': '%.128s' is not a valid service id (want [A-Za-z0-9][A-Za-z0-9_.-]{0,127})",
			    json_string_value(v));
	if (!(m->id = strdup(json_string_value(v))))
		return oom(c);

	v = pb_jsondoc_member(root, "federation");
	if (v) {
		if (!json_is_string(v))
			return fail(c, "federation", NULL, 1, "field 'federation': want a string, got %s",
				    pb_jsondoc_kind(v));
		if (!pb_name_ident_ok(json_string_value(v)) || has_nul(v))
			return fail(c, "federation", NULL, 1,
				    "field 'federation': '%.100s' is not a valid name (want [a-z0-9][a-z0-9-]{0,62})",
				    json_string_value(v));
		m->federation = strdup(json_string_value(v));
	} else if (default_federation) {
		m->federation = strdup(default_federation);
	}
	if ((v || default_federation) && !m->federation)
		return oom(c);

	v = pb_jsondoc_member(root, "local_port");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65535)
			return fail(c, "local_port", NULL, 1,
				    "field 'local_port': want an integer from 1 to 65535, got %s",
				    json_is_integer(v) ? "one out of range" : pb_jsondoc_kind(v));
		m->local_port = (long)json_integer_value(v);
	}

	v = pb_jsondoc_member(root, "public");
	if (v) {
		if (!json_is_boolean(v))
			return fail(c, "public", NULL, 1, "field 'public': want true or false, got %s",
				    pb_jsondoc_kind(v));
		m->public = json_is_true(v);
	}

	if (load_environment(c, root, m) < 0 || load_requires(c, root, m) < 0 ||
	    load_provides(c, root, m) < 0)
		return -1;
	return 0;
}

struct pb_manifest *pb_manifest_load(const char *path, const char *default_federation,
				     struct pb_err *err)
{
	struct pb_jsondoc c = { .file = path, .code = EX_DATAERR, .err = err };
	struct pb_manifest *m = NULL;
	json_t *root;
	char *text;
	int ok = 0;

	root = pb_jsondoc_load(&c, MANIFEST_MAX_BYTES, "manifest", NULL, "a service manifest",
			       &text);
	if (!root)
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		pb_err_set(err, EX_OSERR, "%s: out of memory", path);
		goto out;
	}
	m->local_port = -1;
	if (load_fields(&c, root, default_federation, m) < 0)
		goto out;
	ok = 1;
out:
	json_decref(root);
	free(text);
	if (!ok) {
		pb_manifest_free(m);
		m = NULL;
	}
	return m;
}

void pb_kv_free_array(struct pb_kv *kv, size_t n)
{
	size_t i;

	if (!kv)
		return;
	for (i = 0; i < n; i++) {
		free(kv[i].name);
		free(kv[i].value);
	}
	free(kv);
}

void pb_manifest_free(struct pb_manifest *m)
{
	size_t i;

	if (!m)
		return;
	free(m->path);
	free(m->id);
	free(m->federation);
	pb_kv_free_array(m->environment, m->n_environment);
	for (i = 0; i < m->n_requires; i++) {
		free(m->requires[i].env);
		free(m->requires[i].key);
		free(m->requires[i].literal);
	}
	free(m->requires);
	pb_kv_free_array(m->provides, m->n_provides);
	free(m);
}

/* --- sets ------------------------------------------------------------- */

/* By id, then by path, so a duplicate is always reported the same way. */
static int cmp_manifest(const void *a, const void *b)
{
	const struct pb_manifest *x = *(struct pb_manifest *const *)a;
	const struct pb_manifest *y = *(struct pb_manifest *const *)b;
	int r = strcmp(x->id, y->id);

	return r ? r : strcmp(x->path, y->path);
}

static int is_manifest_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".json") == 0;
}

/* The sorted names of dir's "*.json" entries. */
static int list_dir(const char *dir, int allow_missing, char ***names, size_t *n,
		    struct pb_err *err)
{
	struct dirent *de;
	size_t cap = 0;
	char **v = NULL, **nv;
	DIR *d;
	int rc = -1;

	*names = NULL;
	*n = 0;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT && allow_missing)
			return 0;
		return pb_err_set(err, EX_NOINPUT,
				  "%s: cannot open the services directory: %s (set services_dir in the configuration)",
				  dir, strerror(errno));
	}
	while ((de = readdir(d))) {
		if (!is_manifest_name(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
		}
		if (!(v[*n] = strdup(de->d_name)))
			goto nomem;
		(*n)++;
	}
	if (*n)
		qsort(v, *n, sizeof(*v), pb_strv_cmp);
	*names = v;
	v = NULL;
	rc = 0;
	goto out;
nomem:
	pb_err_set(err, EX_OSERR, "%s: out of memory", dir);
out:
	if (v) {
		while (*n)
			free(v[--*n]);
		free(v);
	}
	closedir(d);
	return rc;
}

int pb_manifest_load_dir(const char *dir, const char *default_federation, int allow_missing,
			 struct pb_manifest_set *out, struct pb_err *err)
{
	struct pb_manifest_set set = { NULL, 0 };
	char **names = NULL, *path = NULL;
	size_t n = 0, i;
	struct stat st;
	int rc = -1;

	out->items = NULL;
	out->n = 0;
	if (list_dir(dir, allow_missing, &names, &n, err) < 0)
		goto out;
	if (n) {
		set.items = calloc(n, sizeof(*set.items));
		if (!set.items) {
			pb_err_set(err, EX_OSERR, "%s: out of memory", dir);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		free(path);
		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			path = NULL;
			pb_err_set(err, EX_OSERR, "%s: out of memory", dir);
			goto out;
		}
		/* a directory or socket named x.json is not a manifest */
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			continue;
		set.items[set.n] = pb_manifest_load(path, default_federation, err);
		if (!set.items[set.n])
			goto out;
		set.n++;
	}
	if (set.n == 0 && !allow_missing) {
		pb_err_set(err, EX_NOINPUT, "%s: no service manifests (*.json) in the services directory",
			   dir);
		goto out;
	}
	if (set.n)
		qsort(set.items, set.n, sizeof(*set.items), cmp_manifest);
	for (i = 1; i < set.n; i++) {
		if (strcmp(set.items[i - 1]->id, set.items[i]->id) == 0) {
			pb_err_set(err, EX_DATAERR,
				   "%s: duplicate service id '%s', also in %s: give each manifest its own id",
				   set.items[i]->path, set.items[i]->id, set.items[i - 1]->path);
			goto out;
		}
	}
	*out = set;
	set.items = NULL;
	set.n = 0;
	rc = 0;
out:
	pb_manifest_set_release(&set);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	return rc;
}

void pb_manifest_set_release(struct pb_manifest_set *set)
{
	size_t i;

	if (!set)
		return;
	for (i = 0; i < set->n; i++)
		pb_manifest_free(set->items[i]);
	free(set->items);
	set->items = NULL;
	set->n = 0;
}

static int cmp_id_manifest(const void *key, const void *elem)
{
	return strcmp((const char *)key, (*(struct pb_manifest *const *)elem)->id);
}

const struct pb_manifest *pb_manifest_set_find(const struct pb_manifest_set *set, const char *id)
{
	struct pb_manifest **hit;

	if (!set->n)
		return NULL;
	hit = bsearch(id, set->items, set->n, sizeof(*set->items), cmp_id_manifest);
	return hit ? *hit : NULL;
}

/* --- templates -------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int name_first(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static int name_char(char ch)
{
	return name_first(ch) || (ch >= '0' && ch <= '9');
}

char *pb_template_expand(const char *tmpl, const char *(*lookup)(const char *name, void *ctx),
			 void *ctx, struct pb_err *err)
{
	struct buf b = { NULL, 0, 0 };
	const char *p = tmpl, *q, *val;
	char *name = NULL, *res = NULL;

	if (buf_add(&b, "", 0) < 0)
		goto nomem;
	while (*p) {
		q = strchr(p, '{');
		if (!q)
			q = p + strlen(p);
		if (buf_add(&b, p, (size_t)(q - p)) < 0)
			goto nomem;
		p = q;
		if (!*p)
			break;
		/* a brace not followed by a name is plain text ("{{", "{ }", JSON) */
		if (!name_first(p[1])) {
			if (buf_add(&b, "{", 1) < 0)
				goto nomem;
			p++;
			continue;
		}
		for (q = p + 1; name_char(*q); q++)
			;
		if (*q != '}') {
			pb_err_set(err, EX_DATAERR, "unterminated {%.*s (a placeholder is {NAME})",
				   (int)(q - p - 1 > 128 ? 128 : q - p - 1), p + 1);
			goto out;
		}
		name = strndup(p + 1, (size_t)(q - p - 1));
		if (!name)
			goto nomem;
		val = lookup(name, ctx);
		if (!val) {
			pb_err_set(err, EX_DATAERR, "unknown placeholder {%.128s}", name);
			goto out;
		}
		if (buf_add(&b, val, strlen(val)) < 0)
			goto nomem;
		free(name);
		name = NULL;
		p = q + 1;
	}
	res = b.p;
	b.p = NULL;
	goto out;
nomem:
	pb_err_set(err, EX_OSERR, "out of memory expanding a template");
out:
	free(name);
	free(b.p);
	return res;
}

struct expand_ctx {
	const struct pb_manifest *m;
	const struct pb_config *cfg;
	char port[24];
	int port_missing;
	int unknown;
};

static const char *env_get(const struct pb_manifest *m, const char *name)
{
	struct pb_kv probe = { (char *)name, NULL }, *hit;

	if (!m->n_environment)
		return NULL;
	hit = bsearch(&probe, m->environment, m->n_environment, sizeof(*m->environment), cmp_kv);
	return hit ? hit->value : NULL;
}

/* The node's own facts win over environment entries of the same name (a
 * Chef environment often sets HOST to a bind address like 0.0.0.0), but
 * {PORT} is environment.PORT first, as provbus-manifest(5) says. */
static const char *expand_lookup(const char *name, void *vctx)
{
	struct expand_ctx *x = vctx;
	const char *v;

	if (strcmp(name, "HOST") == 0)
		return x->cfg->host;
	if (strcmp(name, "NODE") == 0)
		return x->cfg->node;
	if (strcmp(name, "REGION") == 0)
		return x->cfg->region;
	if (strcmp(name, "FEDERATION") == 0)
		return x->m->federation ? x->m->federation : x->cfg->federation;
	if (strcmp(name, "PORT") == 0) {
		if ((v = env_get(x->m, "PORT")))
			return v;
		if (x->m->local_port > 0) {
			snprintf(x->port, sizeof(x->port), "%ld", x->m->local_port);
			return x->port;
		}
		x->port_missing = 1;
		return NULL;
	}
	if ((v = env_get(x->m, name)))
		return v;
	x->unknown = 1;
	return NULL;
}

static void known_placeholders(const struct pb_manifest *m, char *buf, size_t size)
{
	static const char *const builtin[] = { "HOST", "PORT", "NODE", "REGION", "FEDERATION" };
	size_t i, j, used;
	int w;

	used = (size_t)snprintf(buf, size, "HOST, PORT, NODE, REGION, FEDERATION");
	for (i = 0; i < m->n_environment && used < size; i++) {
		for (j = 0; j < sizeof(builtin) / sizeof(*builtin); j++)
			if (strcmp(m->environment[i].name, builtin[j]) == 0)
				break;
		if (j < sizeof(builtin) / sizeof(*builtin))
			continue;
		w = snprintf(buf + used, size - used, ", %s", m->environment[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

int pb_manifest_expand(const struct pb_manifest *m, const struct pb_config *cfg,
		       struct pb_kv **out, size_t *n_out, struct pb_err *err)
{
	struct pb_kv *kv = NULL;
	size_t i, n = 0;
	int rc = -1;

	*out = NULL;
	*n_out = 0;
	if (m->n_provides) {
		kv = calloc(m->n_provides, sizeof(*kv));
		if (!kv) {
			pb_err_set(err, EX_OSERR, "%s: out of memory", m->path);
			goto out;
		}
	}
	for (i = 0; i < m->n_provides; i++) {
		struct expand_ctx x = { m, cfg, "", 0, 0 };
		const char *key = m->provides[i].name;
		char known[PB_ERR_MAX / 2], why[80];
		char *val;

		val = pb_template_expand(m->provides[i].value, expand_lookup, &x, err);
		if (!val) {
			if (x.port_missing) {
				pb_err_set(err, EX_DATAERR,
					   "%s: provides.%s: {PORT} has no value: set environment.PORT or local_port",
					   m->path, key);
			} else if (x.unknown && err) {
				size_t len;
				known_placeholders(m, known, sizeof(known));
				pb_err_prefix(err, "%s: provides.%s", m->path, key);
				len = strlen(err->msg);
				snprintf(err->msg + len, sizeof(err->msg) - len, " (known: %s)", known);
			} else {
				pb_err_prefix(err, "%s: provides.%s", m->path, key);
			}
			goto out;
		}
		kv[n].name = strdup(key);
		kv[n].value = val;
		n++;
		if (!kv[n - 1].name) {
			pb_err_set(err, EX_OSERR, "%s: out of memory", m->path);
			goto out;
		}
		if (pb_value_check(val, strlen(val), why, sizeof(why))) {
			pb_err_set(err, EX_DATAERR, "%s: provides.%s: the expanded value: %s",
				   m->path, key, why);
			goto out;
		}
	}
	*out = kv;
	*n_out = n;
	kv = NULL;
	rc = 0;
out:
	pb_kv_free_array(kv, n);
	return rc;
}

/* --- what a set requires ---------------------------------------------- */

const char **pb_manifest_set_required_keys(const struct pb_manifest_set *set, size_t *n)
{
	const char **keys;
	size_t i, j, total = 0, k = 0;

	for (i = 0; i < set->n; i++)
		total += set->items[i]->n_requires;
	keys = calloc(total + 1, sizeof(*keys));
	if (!keys) {
		*n = 0;
		return NULL;
	}
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->items[i]->n_requires; j++)
			if (set->items[i]->requires[j].key)
				keys[k++] = set->items[i]->requires[j].key;
	if (k)
		qsort(keys, k, sizeof(*keys), pb_strv_cmp);
	for (i = j = 0; i < k; i++)
		if (j == 0 || strcmp(keys[j - 1], keys[i]) != 0)
			keys[j++] = keys[i];
	keys[j] = NULL;
	*n = j;
	return keys;
}

struct want_src {
	const struct pb_require *r;
	const struct pb_manifest *m;
};

static int cmp_want_src(const void *a, const void *b)
{
	const struct want_src *x = a, *y = b;
	int r = strcmp(x->r->env, y->r->env);

	return r ? r : strcmp(x->m->id, y->m->id);
}

static int same_definition(const struct pb_require *a, const struct pb_require *b)
{
	if (a->key && b->key)
		return strcmp(a->key, b->key) == 0;
	if (a->literal && b->literal)
		return strcmp(a->literal, b->literal) == 0;
	return 0;
}

static void describe(const struct pb_require *r, char *buf, size_t size)
{
	if (r->key)
		snprintf(buf, size, "{%s}", r->key);
	else
		snprintf(buf, size, "'%.64s'%s", r->literal, strlen(r->literal) > 64 ? "..." : "");
}

int pb_manifest_set_wants(const struct pb_manifest_set *set, struct pb_want_list *out,
			  struct pb_err *err)
{
	struct want_src *src = NULL;
	size_t i, j, total = 0, k = 0, first = 0;
	int rc = -1;

	out->items = NULL;
	out->n = 0;
	for (i = 0; i < set->n; i++)
		total += set->items[i]->n_requires;
	src = calloc(total + 1, sizeof(*src));
	out->items = calloc(total + 1, sizeof(*out->items));
	if (!src || !out->items) {
		pb_err_set(err, EX_OSERR, "out of memory listing required env vars");
		goto out;
	}
	for (i = 0; i < set->n; i++)
		for (j = 0; j < set->items[i]->n_requires; j++) {
			src[k].r = &set->items[i]->requires[j];
			src[k].m = set->items[i];
			k++;
		}
	if (k)
		qsort(src, k, sizeof(*src), cmp_want_src);
	for (i = 0; i < k; i++) {
		/* the first manifest (by id) of an env var sets its definition */
		if (i == 0 || strcmp(src[first].r->env, src[i].r->env) != 0) {
			first = i;
			out->items[out->n++] = src[i].r;
			continue;
		}
		if (!same_definition(src[first].r, src[i].r)) {
			char a[96], b[96];
			describe(src[first].r, a, sizeof(a));
			describe(src[i].r, b, sizeof(b));
			pb_err_set(err, EX_DATAERR,
				   "requires.%s: %s (%s) wants %s but %s (%s) wants %s: one env var takes one definition, make them agree",
				   src[i].r->env, src[first].m->id, src[first].m->path, a,
				   src[i].m->id, src[i].m->path, b);
			goto out;
		}
	}
	rc = 0;
out:
	free(src);
	if (rc < 0)
		pb_want_list_release(out);
	return rc;
}

void pb_want_list_release(struct pb_want_list *wl)
{
	if (!wl)
		return;
	free(wl->items);
	wl->items = NULL;
	wl->n = 0;
}
