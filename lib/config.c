/* config.c — loads and validates the node configuration of provbus.json(5).
 *
 * jansson parses; this file checks every field against its rule and turns
 * each failure into "FILE:LINE:COLUMN: message" (EX_CONFIG), the position
 * found again in the text by jsonpos. Unknown fields are errors at every
 * level: a typo in an operator's file must not pass silently. */
#include "config.h"

#include <amqp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsondoc.h"
#include "names.h"
#include "running.h"
#include "strv.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define JP_MAX 6
#define MS_MAX INT64_C(3153600000000)	/* 100 years: no sum with a clock overflows */
#define S_MAX INT64_C(3153600000)

/* A path in the document: object keys, or array indices where key is NULL. */
struct jp {
	const char *key[JP_MAX];
	size_t index[JP_MAX];
	size_t n;
};

static const char *const top_fields[] = { "node", "federation", "region", "host", "broker",
					  "services_dir", "state_dir", "consumer", NULL };
static const char *const broker_fields[] = { "urls", "password_file", "tls", "heartbeat_s",
					     NULL };
static const char *const tls_fields[] = { "ca", "cert", "key", "verify_hostname", NULL };
static const char *const consumer_fields[] = {
	"env_file", "provision", "quiet_ms", "max_wait_ms", "throttle", "splay_ms", "retry",
	"lock_file", "regions", "queue_type", "history_window_s", "public_only", "notify",
	"static", "verify_sender", "presence_interval_s", "env_format", "audit_retention_days", NULL
};
static const char *const throttle_fields[] = { "runs", "per_s", NULL };
static const char *const retry_fields[] = { "max", "base_ms", NULL };

static struct jp jp_key(const struct jp *parent, const char *key)
{
	struct jp p = *parent;

	if (p.n < JP_MAX) {
		p.key[p.n] = key;
		p.index[p.n] = 0;
		p.n++;
	}
	return p;
}

static struct jp jp_index(const struct jp *parent, size_t i)
{
	struct jp p = *parent;

	if (p.n < JP_MAX) {
		p.key[p.n] = NULL;
		p.index[p.n] = i;
		p.n++;
	}
	return p;
}

/* "consumer.throttle.runs", "broker.urls[1]"; "" for the top level. */
static void jp_name(const struct jp *p, char *buf, size_t size)
{
	size_t i, used = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < p->n && used < size; i++) {
		if (p->key[i])
			w = snprintf(buf + used, size - used, "%s%s", i ? "." : "", p->key[i]);
		else
			w = snprintf(buf + used, size - used, "[%zu]", p->index[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Fails with "FILE:LINE:COL: message", at the key of p's last member, or
 * at its value when at_value. Returns -1. */
static int fail(struct pb_jsondoc *c, const struct jp *p, int at_value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pb_jsondoc *c, const struct jp *p, int at_value, const char *fmt, ...)
{
	char idx[JP_MAX][24];
	const char *comp[JP_MAX];
	size_t i;
	va_list ap;

	for (i = 0; i < p->n; i++) {
		if (p->key[i]) {
			comp[i] = p->key[i];
		} else {
			snprintf(idx[i], sizeof(idx[i]), "[%zu]", p->index[i]);
			comp[i] = idx[i];
		}
	}
	va_start(ap, fmt);
	pb_jsondoc_vfail(c, comp, p->n, at_value, fmt, ap);
	va_end(ap);
	return -1;
}

static int check_known(struct pb_jsondoc *c, json_t *obj, const struct jp *p,
		       const char *const *known)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		char list[512], where[256];
		size_t used = 0;
		struct jp kp;

		for (i = 0; known[i]; i++)
			if (strcmp(known[i], key) == 0)
				break;
		if (known[i])
			continue;
		list[0] = '\0';
		for (i = 0; known[i] && used < sizeof(list); i++) {
			int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 known[i]);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		jp_name(p, where, sizeof(where));
		kp = jp_key(p, key);
		return fail(c, &kp, 0, "unknown field '%.128s'%s%s (known: %s)", key,
			    p->n ? " in " : "", where, list);
	}
	return 0;
}

static int want_type(struct pb_jsondoc *c, const struct jp *p, json_t *v, const char *what)
{
	char name[256];

	jp_name(p, name, sizeof(name));
	return fail(c, p, 1, "field '%s': want %s, got %s", name, what, pb_jsondoc_kind(v));
}

static int missing(struct pb_jsondoc *c, const struct jp *parent, const char *key)
{
	char name[256];
	struct jp p = jp_key(parent, key);

	jp_name(&p, name, sizeof(name));
	return fail(c, parent, 1, "missing required field '%s'", name);
}

/* An optional object member: *out is NULL when absent. */
static int get_object(struct pb_jsondoc *c, json_t *obj, const struct jp *parent, const char *key,
		      json_t **out)
{
	struct jp p = jp_key(parent, key);
	json_t *v = pb_jsondoc_member(obj, key);

	*out = NULL;
	if (v && !json_is_object(v))
		return want_type(c, &p, v, "an object");
	*out = v;
	return 0;
}

/* A non-empty string; *out keeps its old value when absent and not
 * required. */
static int get_string(struct pb_jsondoc *c, json_t *obj, const struct jp *parent, const char *key,
		      int required, char **out)
{
	struct jp p = jp_key(parent, key);
	json_t *v = pb_jsondoc_member(obj, key);
	char name[256];
	char *s;

	if (!v)
		return required ? missing(c, parent, key) : 0;
	if (!json_is_string(v))
		return want_type(c, &p, v, "a string");
	if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v)) {
		jp_name(&p, name, sizeof(name));
		return fail(c, &p, 1, "field '%s': want a non-empty string", name);
	}
	s = strdup(json_string_value(v));
	if (!s)
		return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
	free(*out);
	*out = s;
	return 0;
}

static int get_ident(struct pb_jsondoc *c, json_t *obj, const struct jp *parent, const char *key,
		     char **out)
{
	struct jp p = jp_key(parent, key);

	if (get_string(c, obj, parent, key, 1, out) < 0)
		return -1;
	if (!pb_name_ident_ok(*out))
		return fail(c, &p, 1,
			    "field '%s': '%.100s' is not a valid name (want [a-z0-9][a-z0-9-]{0,62})",
			    key, *out);
	return 0;
}

/* An integer in [min, max]; unit names it in messages ("milliseconds"),
 * or NULL for a count. *out keeps its default when absent. */
static int get_int(struct pb_jsondoc *c, json_t *obj, const struct jp *parent, const char *key,
		   int64_t min, int64_t max, const char *unit, int64_t *out)
{
	struct jp p = jp_key(parent, key);
	json_t *v = pb_jsondoc_member(obj, key);
	char name[256], what[64];
	json_int_t i;

	if (!v)
		return 0;
	jp_name(&p, name, sizeof(name));
	if (unit)
		snprintf(what, sizeof(what), "an integer number of %s", unit);
	else
		snprintf(what, sizeof(what), "an integer");
	if (!json_is_integer(v)) {
		if (json_is_real(v))
			return fail(c, &p, 1, "field '%s': want %s, got a real number (%g)", name,
				    what, json_real_value(v));
		return want_type(c, &p, v, what);
	}
	i = json_integer_value(v);
	if (i < min || i > max)
		return fail(c, &p, 1, "field '%s': want %s from %" PRId64 " to %" PRId64 ", got %lld",
			    name, what, min, max, (long long)i);
	*out = i;
	return 0;
}

static int get_bool(struct pb_jsondoc *c, json_t *obj, const struct jp *parent, const char *key,
		    int *out)
{
	struct jp p = jp_key(parent, key);
	json_t *v = pb_jsondoc_member(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return want_type(c, &p, v, "true or false");
	*out = json_is_true(v);
	return 0;
}

/* A non-empty array of strings, as a NULL-terminated vector; each element
 * is checked by elem_ok when given (which fails itself). Absent: *out
 * stays NULL. */
static int get_strv(struct pb_jsondoc *c, json_t *obj, const struct jp *parent, const char *key,
		    int (*elem_ok)(struct pb_jsondoc *c, const struct jp *p, const char *s),
		    char ***out, size_t *n_out)
{
	struct jp p = jp_key(parent, key);
	json_t *v = pb_jsondoc_member(obj, key), *e;
	char name[256];
	char **vec = NULL;
	size_t i, n;
	int rc = -1;

	if (!v)
		return 0;
	jp_name(&p, name, sizeof(name));
	if (!json_is_array(v))
		return want_type(c, &p, v, "an array of strings");
	n = json_array_size(v);
	if (n == 0)
		return fail(c, &p, 1, "field '%s': want a non-empty array", name);
	vec = calloc(n + 1, sizeof(*vec));
	if (!vec)
		return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
	json_array_foreach(v, i, e) {
		struct jp ep = jp_index(&p, i);
		if (!json_is_string(e)) {
			want_type(c, &ep, e, "a string");
			goto out;
		}
		if (strlen(json_string_value(e)) != json_string_length(e)) {
			fail(c, &ep, 1, "field '%s[%zu]': a string with a NUL byte", name, i);
			goto out;
		}
		if (elem_ok && elem_ok(c, &ep, json_string_value(e)) < 0)
			goto out;
		vec[i] = strdup(json_string_value(e));
		if (!vec[i]) {
			pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
			goto out;
		}
	}
	*out = vec;
	*n_out = n;
	vec = NULL;
	rc = 0;
out:
	pb_strv_free(vec, n);
	return rc;
}

/* Copies url into buf with any password left out:
 * "amqp://user:secret@host/v" -> "amqp://user@host/v". */
static void redact_url(const char *url, char *buf, size_t size)
{
	const char *start = strstr(url, "://"), *auth_end, *at = NULL, *colon = NULL, *q;

	start = start ? start + 3 : url;
	auth_end = strchr(start, '/');
	if (!auth_end)
		auth_end = url + strlen(url);
	for (q = start; q < auth_end; q++)
		if (*q == '@')
			at = q;
	if (at)
		for (q = start; q < at && !colon; q++)
			if (*q == ':')
				colon = q;
	if (colon)
		snprintf(buf, size, "%.*s%s", (int)(colon - url), url, at);
	else
		snprintf(buf, size, "%s", url);
}

static int url_ok(struct pb_jsondoc *c, const struct jp *p, const char *url)
{
	struct amqp_connection_info info;
	char shown[512], name[256];
	char *copy;
	int rc;

	jp_name(p, name, sizeof(name));
	redact_url(url, shown, sizeof(shown));
	if (strncmp(url, "amqp://", 7) != 0 && strncmp(url, "amqps://", 8) != 0)
		return fail(c, p, 1, "field '%s': '%.200s' is not an amqp:// or amqps:// URL",
			    name, shown);
	copy = strdup(url);
	if (!copy)
		return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
	rc = amqp_parse_url(copy, &info);
	free(copy);
	if (rc != AMQP_STATUS_OK)
		return fail(c, p, 1,
			    "field '%s': cannot parse '%.200s' (want amqp[s]://USER@HOST:PORT/VHOST)",
			    name, shown);
	return 0;
}

static int region_ok(struct pb_jsondoc *c, const struct jp *p, const char *s)
{
	char name[256];

	if (strcmp(s, "*") == 0 || pb_name_ident_ok(s))
		return 0;
	jp_name(p, name, sizeof(name));
	return fail(c, p, 1,
		    "field '%s': '%.100s' is not a region name (want [a-z0-9][a-z0-9-]{0,62} or \"*\")",
		    name, s);
}

static int argv0_ok(struct pb_jsondoc *c, const struct jp *p, const char *s)
{
	char name[256];

	if (p->index[p->n - 1] != 0 || *s)
		return 0;
	jp_name(p, name, sizeof(name));
	return fail(c, p, 1, "field '%s': the command must not be empty", name);
}

static int host_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static char *default_host(void)
{
	struct ifaddrs *ifa = NULL, *i;
	char buf[INET_ADDRSTRLEN];

	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i; i = i->ifa_next) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)(void *)i->ifa_addr;
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
				continue;
			if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
				continue;
			if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf))) {
				freeifaddrs(ifa);
				return strdup(buf);
			}
		}
		freeifaddrs(ifa);
	}
	return strdup("127.0.0.1");
}

static int cmp_static(const void *a, const void *b)
{
	return strcmp(((const struct pb_static *)a)->name, ((const struct pb_static *)b)->name);
}

static int load_statics(struct pb_jsondoc *c, json_t *cons, const struct jp *parent,
			struct pb_consumer_conf *cc)
{
	struct jp p = jp_key(parent, "static");
	const char *key;
	json_t *obj, *v;
	size_t n;

	if (get_object(c, cons, parent, "static", &obj) < 0)
		return -1;
	if (!obj || json_object_size(obj) == 0)
		return 0;
	n = json_object_size(obj);
	cc->statics = calloc(n, sizeof(*cc->statics));
	if (!cc->statics)
		return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
	json_object_foreach(obj, key, v) {
		struct jp kp = jp_key(&p, key);
		char name[256], why[80];
		struct pb_static *st;

		jp_name(&kp, name, sizeof(name));
		if (!pb_name_key_ok(key))
			return fail(c, &kp, 0,
				    "field '%.200s': '%.128s' is not a valid key name (want ^[A-Z_][A-Z0-9_]{0,127}$)",
				    name, key);
		if (!json_is_string(v))
			return want_type(c, &kp, v, "a string");
		if (pb_value_check(json_string_value(v), json_string_length(v), why, sizeof(why)))
			return fail(c, &kp, 1, "field '%.200s': %s", name, why);
		st = &cc->statics[cc->n_statics];
		st->name = strdup(key);
		st->value = strdup(json_string_value(v));
		cc->n_statics++;
		if (!st->name || !st->value)
			return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
	}
	qsort(cc->statics, cc->n_statics, sizeof(*cc->statics), cmp_static);
	return 0;
}

static int load_consumer(struct pb_jsondoc *c, json_t *root, struct pb_config *cfg)
{
	struct pb_consumer_conf *cc = &cfg->consumer;
	struct jp top = { .n = 0 }, p = jp_key(&top, "consumer"), tp, rp;
	json_t *cons, *thr, *ret;
	int64_t v;

	cc->quiet_ms = 2000;
	cc->max_wait_ms = 30000;
	cc->throttle_runs = 6;
	cc->throttle_per_s = 600;
	cc->splay_ms = 0;
	cc->retry_max = 5;
	cc->retry_base_ms = 1000;
	cc->history_window_s = 86400;
	cc->public_only = 0;
	cc->verify_sender = 1;
	cc->presence_interval_s = 300;
	cc->audit_retention_days = 30;

	if (get_object(c, root, &top, "consumer", &cons) < 0)
		return -1;
	if (cons && check_known(c, cons, &p, consumer_fields) < 0)
		return -1;
	if (get_string(c, cons, &p, "env_file", 0, &cc->env_file) < 0 ||
	    get_strv(c, cons, &p, "provision", argv0_ok, &cc->provision, &cc->n_provision) < 0 ||
	    get_int(c, cons, &p, "quiet_ms", 0, MS_MAX, "milliseconds", &cc->quiet_ms) < 0 ||
	    get_int(c, cons, &p, "max_wait_ms", 0, MS_MAX, "milliseconds", &cc->max_wait_ms) < 0 ||
	    get_int(c, cons, &p, "splay_ms", 0, MS_MAX, "milliseconds", &cc->splay_ms) < 0 ||
	    get_string(c, cons, &p, "lock_file", 0, &cc->lock_file) < 0 ||
	    get_strv(c, cons, &p, "regions", region_ok, &cc->regions, &cc->n_regions) < 0 ||
	    get_string(c, cons, &p, "queue_type", 0, &cc->queue_type) < 0 ||
	    get_int(c, cons, &p, "history_window_s", 0, S_MAX, "seconds",
		    &cc->history_window_s) < 0 ||
	    get_bool(c, cons, &p, "public_only", &cc->public_only) < 0 ||
	    get_bool(c, cons, &p, "verify_sender", &cc->verify_sender) < 0 ||
	    get_int(c, cons, &p, "presence_interval_s", 1, S_MAX, "seconds",
		    &cc->presence_interval_s) < 0 ||
	    get_string(c, cons, &p, "env_format", 0, &cc->env_format) < 0 ||
	    get_int(c, cons, &p, "audit_retention_days", 0, 36500, "days",
		    &cc->audit_retention_days) < 0 ||
	    get_strv(c, cons, &p, "notify", argv0_ok, &cc->notify, &cc->n_notify) < 0 ||
	    load_statics(c, cons, &p, cc) < 0)
		return -1;

	if (cc->queue_type && strcmp(cc->queue_type, "quorum") != 0 &&
	    strcmp(cc->queue_type, "classic") != 0) {
		struct jp qp = jp_key(&p, "queue_type");
		return fail(c, &qp, 1,
			    "field 'consumer.queue_type': want \"quorum\" or \"classic\", got '%.64s'",
			    cc->queue_type);
	}
	if (cc->env_format && strcmp(cc->env_format, "shell") != 0 &&
	    strcmp(cc->env_format, "systemd") != 0) {
		struct jp ep = jp_key(&p, "env_format");
		return fail(c, &ep, 1,
			    "field 'consumer.env_format': want \"shell\" or \"systemd\", got '%.64s'",
			    cc->env_format);
	}

	tp = jp_key(&p, "throttle");
	if (get_object(c, cons, &p, "throttle", &thr) < 0)
		return -1;
	if (thr) {
		v = cc->throttle_runs;
		if (check_known(c, thr, &tp, throttle_fields) < 0 ||
		    get_int(c, thr, &tp, "runs", 1, INT_MAX, NULL, &v) < 0 ||
		    get_int(c, thr, &tp, "per_s", 1, S_MAX, "seconds", &cc->throttle_per_s) < 0)
			return -1;
		cc->throttle_runs = (int)v;
	}

	rp = jp_key(&p, "retry");
	if (get_object(c, cons, &p, "retry", &ret) < 0)
		return -1;
	if (ret) {
		v = cc->retry_max;
		if (check_known(c, ret, &rp, retry_fields) < 0 ||
		    get_int(c, ret, &rp, "max", 0, INT_MAX, NULL, &v) < 0 ||
		    get_int(c, ret, &rp, "base_ms", 1, MS_MAX, "milliseconds",
			    &cc->retry_base_ms) < 0)
			return -1;
		cc->retry_max = (int)v;
	}
	return 0;
}

static int load_broker(struct pb_jsondoc *c, json_t *root, struct pb_config *cfg)
{
	struct jp top = { .n = 0 }, p = jp_key(&top, "broker"), tp = jp_key(&p, "tls");
	json_t *broker, *tls;
	int64_t hb = 30;

	if (get_object(c, root, &top, "broker", &broker) < 0)
		return -1;
	if (!broker)
		return missing(c, &top, "broker");
	if (check_known(c, broker, &p, broker_fields) < 0)
		return -1;
	if (get_strv(c, broker, &p, "urls", url_ok, &cfg->broker_urls, &cfg->n_broker_urls) < 0)
		return -1;
	if (!cfg->broker_urls)
		return missing(c, &p, "urls");
	if (get_string(c, broker, &p, "password_file", 0, &cfg->password_file) < 0 ||
	    get_int(c, broker, &p, "heartbeat_s", 0, 65535, "seconds", &hb) < 0)
		return -1;
	cfg->heartbeat_s = (int)hb;

	cfg->tls.verify_hostname = 1;
	if (get_object(c, broker, &p, "tls", &tls) < 0)
		return -1;
	if (!tls)
		return 0;
	cfg->has_tls = 1;
	if (check_known(c, tls, &tp, tls_fields) < 0 ||
	    get_string(c, tls, &tp, "ca", 0, &cfg->tls.ca) < 0 ||
	    get_string(c, tls, &tp, "cert", 0, &cfg->tls.cert) < 0 ||
	    get_string(c, tls, &tp, "key", 0, &cfg->tls.key) < 0 ||
	    get_bool(c, tls, &tp, "verify_hostname", &cfg->tls.verify_hostname) < 0)
		return -1;
	if (!cfg->tls.cert != !cfg->tls.key)
		return fail(c, &tp, 1,
			    "field 'broker.tls': cert and key go together (set both or neither)");
	return 0;
}

static int load_fields(struct pb_jsondoc *c, json_t *root, struct pb_config *cfg)
{
	struct jp top = { .n = 0 };

	if (check_known(c, root, &top, top_fields) < 0 ||
	    get_ident(c, root, &top, "node", &cfg->node) < 0 ||
	    get_ident(c, root, &top, "federation", &cfg->federation) < 0 ||
	    get_ident(c, root, &top, "region", &cfg->region) < 0 ||
	    get_string(c, root, &top, "host", 0, &cfg->host) < 0)
		return -1;
	if (cfg->host && !host_ok(cfg->host)) {
		struct jp hp = jp_key(&top, "host");
		return fail(c, &hp, 1, "field 'host': '%.100s' holds a space or control character",
			    cfg->host);
	}
	if (load_broker(c, root, cfg) < 0 ||
	    get_string(c, root, &top, "services_dir", 0, &cfg->services_dir) < 0 ||
	    get_string(c, root, &top, "state_dir", 0, &cfg->state_dir) < 0 ||
	    load_consumer(c, root, cfg) < 0)
		return -1;
	return 0;
}

/* Fills what the file left out; the paths under state_dir come last. */
static int fill_defaults(struct pb_jsondoc *c, struct pb_config *cfg)
{
	struct pb_consumer_conf *cc = &cfg->consumer;

	if (!cfg->host)
		cfg->host = default_host();
	if (!cfg->services_dir)
		cfg->services_dir = strdup("/etc/provbus/services.d");
	if (!cfg->state_dir)
		cfg->state_dir = strdup(PB_STATE_DIR_DEFAULT);
	if (!cfg->host || !cfg->services_dir || !cfg->state_dir)
		goto oom;
	if (!cc->env_file && asprintf(&cc->env_file, "%s/provbus.env", cfg->state_dir) < 0) {
		cc->env_file = NULL;
		goto oom;
	}
	if (!cc->lock_file && asprintf(&cc->lock_file, "%s/provision.lock", cfg->state_dir) < 0) {
		cc->lock_file = NULL;
		goto oom;
	}
	if (!cc->queue_type && !(cc->queue_type = strdup("quorum")))
		goto oom;
	if (!cc->env_format && !(cc->env_format = strdup("shell")))
		goto oom;
	if (!cc->regions) {
		cc->regions = calloc(2, sizeof(*cc->regions));
		if (!cc->regions)
			goto oom;
		cc->regions[0] = strdup(cfg->region);
		if (!cc->regions[0])
			goto oom;
		cc->n_regions = 1;
	}
	return 0;
oom:
	return pb_err_set(c->err, EX_OSERR, "%s: out of memory", c->file);
}

const char *pb_config_path(const char *arg)
{
	const char *env;

	if (arg && *arg)
		return arg;
	env = getenv("PROVBUS_CONFIG");
	if (env && *env)
		return env;
	return PB_CONFIG_DEFAULT;
}

struct pb_config *pb_config_load(const char *path, struct pb_err *err)
{
	struct pb_config *cfg = NULL;
	struct pb_jsondoc c = { .file = path, .code = EX_CONFIG, .err = err };
	json_t *root;
	char *text;
	int ok = 0;

	root = pb_jsondoc_load(&c, CONFIG_MAX_BYTES, "configuration",
			       "give another with -c FILE or $PROVBUS_CONFIG", "the configuration",
			       &text);
	if (!root)
		goto out;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path))) {
		pb_err_set(err, EX_OSERR, "%s: out of memory", path);
		goto out;
	}
	if (load_fields(&c, root, cfg) < 0 || fill_defaults(&c, cfg) < 0)
		goto out;
	ok = 1;
out:
	json_decref(root);
	free(text);
	if (!ok) {
		pb_config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

void pb_config_free(struct pb_config *cfg)
{
	struct pb_consumer_conf *cc;
	size_t i;

	if (!cfg)
		return;
	cc = &cfg->consumer;
	free(cfg->path);
	free(cfg->node);
	free(cfg->federation);
	free(cfg->region);
	free(cfg->host);
	pb_strv_free(cfg->broker_urls, cfg->n_broker_urls);
	free(cfg->password_file);
	free(cfg->tls.ca);
	free(cfg->tls.cert);
	free(cfg->tls.key);
	free(cfg->services_dir);
	free(cfg->state_dir);
	free(cc->env_file);
	pb_strv_free(cc->provision, cc->n_provision);
	free(cc->lock_file);
	pb_strv_free(cc->regions, cc->n_regions);
	free(cc->queue_type);
	free(cc->env_format);
	pb_strv_free(cc->notify, cc->n_notify);
	for (i = 0; i < cc->n_statics; i++) {
		free(cc->statics[i].name);
		free(cc->statics[i].value);
	}
	free(cc->statics);
	free(cfg);
}

int pb_config_accepts_region(const struct pb_config *cfg, const char *region)
{
	size_t i;

	for (i = 0; i < cfg->consumer.n_regions; i++)
		if (strcmp(cfg->consumer.regions[i], "*") == 0 ||
		    strcmp(cfg->consumer.regions[i], region) == 0)
			return 1;
	return 0;
}

const char *pb_config_static(const struct pb_config *cfg, const char *key)
{
	struct pb_static probe = { (char *)key, NULL }, *hit;

	if (!cfg->consumer.n_statics)
		return NULL;
	hit = bsearch(&probe, cfg->consumer.statics, cfg->consumer.n_statics,
		      sizeof(*cfg->consumer.statics), cmp_static);
	return hit ? hit->value : NULL;
}

/* The value of the first "state_dir": "..." member in text, found without
 * parsing the rest (a plain string: an escape gives up). A new string, or
 * NULL. */
static char *scan_state_dir(const char *text)
{
	const char *p = text;

	while ((p = strstr(p, "\"state_dir\"")) != NULL) {
		const char *v = p + strlen("\"state_dir\""), *end;

		p++;
		v += strspn(v, " \t\r\n");
		if (*v++ != ':')
			continue;
		v += strspn(v, " \t\r\n");
		if (*v++ != '"')
			continue;
		end = strpbrk(v, "\"\\\n");
		if (!end || *end != '"' || end == v)
			return NULL;
		return strndup(v, (size_t)(end - v));
	}
	return NULL;
}

char *pb_config_state_dir(const char *path, char **why, struct pb_err *err)
{
	struct pb_err lerr = PB_ERR_INIT;
	struct pb_config *cfg = pb_config_load(path, &lerr);
	json_t *root = NULL, *v;
	char *dir = NULL, *text = NULL;
	FILE *f = NULL;
	size_t n;

	*why = NULL;
	if (cfg) {
		dir = strdup(cfg->state_dir);
		pb_config_free(cfg);
		goto out;
	}
	if (lerr.code == EX_NOINPUT) {
		*err = lerr;
		return NULL;
	}
	*why = strdup(lerr.msg);
	/* the daemon running this file knows its state_dir, however broken
	 * the file is now (empty, cut short, a brace before "state_dir") */
	if ((dir = pb_running_state_dir(path, pb_config_path(NULL))) != NULL)
		goto out;
	root = json_load_file(path, 0, NULL);
	if (root && json_is_object(root) && (v = json_object_get(root, "state_dir")) &&
	    json_is_string(v) && json_string_length(v) > 0) {
		dir = strdup(json_string_value(v));
		goto out;
	}
	if (!root && (f = fopen(path, "r")) != NULL && (text = calloc(1, CONFIG_MAX_BYTES + 1))) {
		n = fread(text, 1, CONFIG_MAX_BYTES, f);
		text[n] = '\0';
		if ((dir = scan_state_dir(text)) != NULL)
			goto out;
	}
	if (!root || !json_is_object(root) || !json_object_get(root, "state_dir"))
		dir = strdup(PB_STATE_DIR_DEFAULT);
out:
	if (!dir && !err->code)
		pb_err_set(err, EX_CONFIG, "%s: no usable state_dir: %s", path,
			   *why ? *why : "out of memory");
	if (!dir) {
		free(*why);
		*why = NULL;
	}
	if (f)
		fclose(f);
	free(text);
	json_decref(root);
	return dir;
}
