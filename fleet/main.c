/* main.c — provbus-fleet's command line (docs/protocol.md).
 *
 *   provbus-fleet [-c FILE] [--url URL] nodes     [--region R] [--json]
 *   provbus-fleet [-c FILE] [--url URL] providers [KEY...] [--region R] [--node N] [--json]
 *   provbus-fleet [-c FILE] [--url URL] converged [KEY...] [--wait S] [--json]
 *   provbus-fleet [-c FILE] [--url URL] watch     [--json]
 *
 * Each verb reads the two streams (nodes: the fleet stream only) from
 * now − history_window_s to their end (stream.c), builds the model (model.c) and prints; `converged
 * --wait` and `watch` go on reading what arrives. What the streams gave
 * is kept in a cache file (cache.c): the next call reads them only from
 * where this one stopped, and reads the whole window again when the
 * cache does not fit them. Every string that came
 * from the broker is printed escaped (lib/textesc.h); --json output is
 * ASCII-only JSON. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "fleet.h"
#include "log.h"
#include "names.h"
#include "pbtime.h"
#include "report.h"
#include "textesc.h"

#define PROG "provbus-fleet"
#define DEFAULT_WINDOW_S 86400
#define DEFAULT_STREAM_PORT 5552	/* rabbitmq_stream's */
#define READ_LIMIT_MS 600000	/* a first read longer than this is an error */
#define WAIT_STEP_MS 250

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [-c FILE] [--url URL [--federation F]] [-v] VERB [ARGS]\n"
		"\n"
		"  nodes [--region R] [--json]            every consumer seen: alive, stale (its\n"
		"                                         lease ran out) or stopped; version, keys,\n"
		"                                         paused, last run\n"
		"  providers [KEY...] [--region R] [--node N] [--json]\n"
		"                                         the live providers of each key now (--node:\n"
		"                                         those node N counts, by its keys and regions)\n"
		"  converged [KEY...] [--wait S] [--json] 0 when every live consumer of the keys ran\n"
		"                                         successfully with today's values, else 1\n"
		"                                         listing each one and why; --wait: until\n"
		"                                         they do or S seconds pass\n"
		"  watch [--json]                         events, runs and presence as they happen\n"
		"\n"
		"  -c FILE             configuration (default $PROVBUS_CONFIG, else " PB_CONFIG_DEFAULT ")\n"
		"  --url URL           the broker (amqp[s]://USER@HOST:PORT/VHOST), e.g. as\n"
		"                      provbus-observer, instead of the configuration's\n"
		"  --federation F      the federation (default: the configuration's)\n"
		"  --password-file F   the password for --url (never on the command line)\n"
		"  --no-cache          read the whole window of the streams, and keep no cache\n"
		"                      (default: ${XDG_CACHE_HOME:-~/.cache}/provbus/fleet-*.json)\n"
		"  --stream-port N     read the streams over RabbitMQ's stream protocol on port N of\n"
		"                      the broker's host (default 5552; 0: never); over AMQP\n"
		"                      0-9-1 when it does not answer, and with an amqps:// URL\n"
		"  --no-verify-sender  count events and reports whatever their user_id (a lab where\n"
		"                      every node shares one broker user, as consumer.verify_sender\n"
		"                      false)\n"
		"  -v                  more log (repeat for debug)\n"
		"  -h, --help          this text;  --version  the version\n");
}

static const char short_usage[] =
"usage: " PROG " [-c FILE] [--url URL [--federation F]] nodes [--region R] [--json]\n"
"       " PROG " [options] providers [KEY...] [--region R] [--node N] [--json]\n"
"       " PROG " [options] converged [KEY...] [--wait S] [--json]\n"
"       " PROG " [options] watch [--json]\n"
"try '" PROG " --help' for more\n";

#define usage_error(...) pb_cli_usage(PROG, short_usage, __VA_ARGS__)

struct opts {
	const char *config, *url, *federation, *password_file, *region, *node;
	char *url_copy;		/* --url, its password blanked out of argv */
	int json, verbose, wait_set, no_verify_sender, no_cache;
	long stream_port;
	long wait_s;
	const char *verb;
	const char **keys;
	size_t n_keys;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int fail(const struct pb_err *e)
{
	pb_log_err("%s", e->msg);
	return e->code ? e->code : EX_SOFTWARE;
}

/* ---- printing ---- */

static void put(const char *s, int width)
{
	char *e = pb_textesc_dup(s ? s : "-", strlen(s ? s : "-"), false);

	printf("%-*s", width, e ? e : "?");
	free(e);
}

static void put_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS);

	if (s)
		puts(s);
	free(s);
}

static char *strv_join(json_t *a)
{
	size_t i, len = 1;
	json_t *s;
	char *out;

	json_array_foreach(a, i, s)
		len += json_string_length(s) + 1;
	if (!(out = calloc(len, 1)))
		return NULL;
	json_array_foreach(a, i, s) {
		if (i)
			strcat(out, ",");
		strcat(out, json_string_value(s) ? json_string_value(s) : "");
	}
	return out;
}

static void say_ignored(const struct fleet *f)
{
	if (f->n_impostors)
		pb_log_notice("ignored %llu events and reports whose user_id is not their node",
			      (unsigned long long)f->n_impostors);
	if (f->n_invalid)
		pb_log_info("ignored %llu messages that are not valid events or reports",
			    (unsigned long long)f->n_invalid);
}

/* ---- reading ---- */

struct ctx {
	struct fleet *f;
	int watch, json;
};

/* watch --json: the body as one line of ASCII-only JSON. */
static void print_watch(const struct fl_msg *m)
{
	json_t *o = json_loadb(m->body, m->len, 0, NULL);
	char *text = NULL;

	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (text)
		puts(text);
	free(text);
}

/* watch: one line per message, every field escaped. */
static void watch_line(const struct fl_msg *m, int is_report)
{
	json_t *o = json_loadb(m->body, m->len, 0, NULL);
	const char *kind = pb_report_str(o, "kind");
	char *keys = NULL;

	if (!json_is_object(o) || !kind)
		goto out;
	put(pb_report_str(o, "ts"), 25);
	printf(" ");
	put(kind, 9);
	printf(" ");
	put(pb_report_str(o, "node"), 20);
	printf(" ");
	if (!is_report) {
		put(pb_report_str(o, "key"), 0);
		printf("=");
		put(json_is_string(json_object_get(o, "value")) ? pb_report_str(o, "value") : "(retired)", 0);
		printf(" service=");
		put(pb_report_str(o, "service"), 0);
	} else if (!strcmp(kind, PB_REPORT_PRESENCE)) {
		keys = strv_join(json_object_get(o, "keys"));
		printf("state=");
		put(pb_report_str(o, "state"), 0);
		printf(" paused=%s keys=", json_is_true(json_object_get(o, "paused")) ? "yes" : "no");
		put(keys, 0);
	} else {
		keys = strv_join(json_object_get(o, "changed_keys"));
		printf("run=%lld reason=", (long long)json_integer_value(json_object_get(o, "run_id")));
		put(pb_report_str(o, "reason"), 0);
		printf(" status=");
		put(pb_report_str(o, "status"), 0);
		if (json_is_integer(json_object_get(o, "exit_status")))
			printf(" exit=%lld", (long long)json_integer_value(json_object_get(o, "exit_status")));
		printf(" changed=");
		put(keys && *keys ? keys : "-", 0);
	}
	printf("\n");
out:
	free(keys);
	json_decref(o);
}

static void on_msg(const struct fl_msg *m, int is_report, void *vctx)
{
	struct ctx *c = vctx;
	uint64_t before = c->f->n_events + c->f->n_reports;
	int64_t now = pb_now_ms();

	if (is_report)
		fl_take_report(c->f, m, now);
	else
		fl_take_event(c->f, m, now);
	if (c->watch && c->f->n_events + c->f->n_reports != before) {
		if (c->json)
			print_watch(m);
		else
			watch_line(m, is_report);
		fflush(stdout);
	}
}

/* Reads both streams to their end. */
static int read_all(struct fl_reader *r, struct ctx *c, struct pb_err *err)
{
	int64_t end = pb_mono_ms() + READ_LIMIT_MS;
	int rc;

	while ((rc = fl_reader_pump(r, 500, on_msg, c, err)) == 0) {
		if (pb_mono_ms() > end)
			return pb_err_set(err, EX_TEMPFAIL, "the streams were not read to their end in "
					  "%d s", READ_LIMIT_MS / 1000);
		if (stop_requested)
			return pb_err_set(err, EX_TEMPFAIL, "interrupted");
	}
	return rc < 0 ? rc : 0;	/* -2: the cache does not fit the stream */
}

/* ---- the cache (cache.c) ---- */

struct reading {
	struct pb_session_opts so;
	struct pb_session *sess;
	struct fl_reader *r;
	struct fleet *f;
	const char *federation;
	int trust_user_id;
};

/* Forgets what was read (a fresh model, a new connection: the old one's
 * consumers are still subscribed). */
static int start_over(struct reading *rd, int reconnect, struct pb_err *err)
{
	fl_release(rd->f);
	fl_init(rd->f, rd->federation);
	rd->f->trust_user_id = rd->trust_user_id;
	if (!rd->f->prov)
		return pb_err_set(err, EX_OSERR, "out of memory");
	if (!reconnect)
		return 0;
	fl_reader_free(rd->r);
	rd->r = NULL;
	pb_session_free(rd->sess);
	if (!(rd->sess = pb_session_new(&rd->so)))
		return pb_err_set(err, EX_OSERR, "out of memory");
	return pb_session_connect(rd->sess, err);
}

/* fl_reader_open on the session's broker node, or on the next node of
 * the URLs while a stream has no replica where the session is (a node
 * added to the cluster after the streams were declared holds none): each
 * URL at most once. 0 with rd->r, or -1 with err. */
static int open_reader(struct reading *rd, const struct fl_reader_opts *ro, struct pb_err *err)
{
	struct fl_reader_opts o = *ro;
	int no_replica = 0;
	size_t tried = 1;
	char url[512];

	o.no_replica = &no_replica;
	for (;;) {
		o.sess = rd->sess;
		no_replica = 0;
		if ((rd->r = fl_reader_open(&o, err)))
			return 0;
		if (!no_replica)
			return -1;
		snprintf(url, sizeof(url), "%s", pb_session_url(rd->sess));
		if (tried >= rd->so.n_urls) {
			size_t n = strlen(err->msg);

			snprintf(err->msg + n, sizeof(err->msg) - n,
				 " (%s%s): a stream is read only on a node that stores it: name "
				 "such a node in broker.urls (or --url), or add a replica on this "
				 "one: rabbitmq-streams add_replica --vhost '%s' provbus.%s.%s NODE",
				 url, rd->so.n_urls > 1 ? ", the last of the URLs tried" : "",
				 pb_session_vhost(rd->sess), rd->federation,
				 no_replica == 1 ? "history" : "fleet");
			return -1;
		}
		pb_log_notice("%s (%s): trying the next broker URL", err->msg, url);
		*err = (struct pb_err)PB_ERR_INIT;
		pb_session_abort(rd->sess);	/* the next connect starts after it */
		if (pb_session_connect(rd->sess, err) < 0)
			return -1;
		tried++;
	}
}

/* Reads the window of both streams into rd->f: from the cache and what
 * is new since, or (no cache, or one that does not fit) the whole window.
 * `nodes` reads the fleet stream only: its answer is the reports'. The
 * history part of a cache it loaded is written back as it was (same
 * offset, same providers: the next call resumes the history from there
 * and prunes as usual); a `nodes` without one writes no cache. */
static int read_window(struct reading *rd, struct ctx *c, const struct opts *o,
		       int64_t window_s, struct pb_err *err)
{
	static const char *const names[2] = { "history", "fleet" };
	int64_t now = pb_now_ms(), start;
	struct fl_cache_pos pos = { { -1, -1 }, { "", "" } }, cached;
	char path[4096], ident[600], why[4400];
	int use = !o->no_cache && fl_cache_path(path, sizeof(path), rd->so.urls[0],
						 rd->so.vhost_override, rd->federation,
						 o->no_verify_sender, ident, sizeof(ident)) == 0;
	int skip_history = !strcmp(o->verb, "nodes");
	/* the history part loaded from the cache, kept as it is (skip_history) */
	struct fl_cache_pos kept = { { -1, -1 }, { "", "" } };
	int rc, i, again;

	if (!o->no_cache && !use)
		pb_log_info("no cache: neither XDG_CACHE_HOME nor HOME names a folder (or the URL "
			    "is not understood): the whole window is read");
	if (use && fl_cache_load(rd->f, path, ident, window_s, &pos, why, sizeof(why)) < 0) {
		pb_log_info("%s", why);
		pos.offset[0] = pos.offset[1] = -1;
		if (start_over(rd, 0, err) < 0)
			return -1;
	} else if (use) {
		pb_log_info("%s", why);
		kept = pos;
	}
	for (;;) {
		struct fl_reader_opts ro = { rd->sess, rd->federation, now - window_s * 1000,
					     o->wait_set, { pos.offset[0], pos.offset[1] },
					     { pos.digest[0], pos.digest[1] }, (int)o->stream_port,
					     { skip_history, 0 } };

		if (open_reader(rd, &ro, err) < 0)
			return -1;
		rc = read_all(rd->r, c, err);
		again = 0;
		if (rc == -2) {
			pb_log_info("%s: the cache is not used, the whole window is read", err->msg);
			again = 1;
		} else if (rc < 0) {
			return -1;
		}
		/* a resumed stream: drop what a read of the window would not see */
		for (i = 0; i < 2 && !again; i++) {
			if (pos.offset[i] < 0 || (i == 0 && skip_history))
				continue;
			if ((start = fl_reader_window_start(rd->r, i)) < 0) {
				pb_log_info("provbus.%s.%s: where the window starts is not known: "
					    "the whole window is read", rd->federation, names[i]);
				again = 1;
			} else if (i == 1) {
				fl_prune_reports(rd->f, start);
			} else if ((rc = fl_prune(rd->f, start)) == -2) {
				return pb_err_set(err, EX_OSERR, "out of memory");
			} else if (rc == -1) {
				pb_log_info("cache %s: an event of the window was stale because of one "
					    "before it: the whole window is read", path);
				again = 1;
			}
		}
		if (!again)
			break;
		pos.offset[0] = pos.offset[1] = -1;
		kept.offset[0] = -1;	/* the model starts over: nothing of the cache in it */
		*err = (struct pb_err)PB_ERR_INIT;
		if (start_over(rd, 1, err) < 0)
			return -1;
	}
	cached = pos;
	for (i = 0; i < 2; i++) {
		if (i == 0 && skip_history) {
			pb_log_info("provbus.%s.%s: not read (nodes needs only the fleet stream)",
				    rd->federation, names[i]);
			pos.offset[0] = kept.offset[0];	/* the cache's history part, as loaded */
			memcpy(pos.digest[0], kept.digest[0], sizeof(pos.digest[0]));
			continue;
		}
		if (pos.offset[i] >= 0)
			pb_log_info("provbus.%s.%s: %llu new messages read after the cached offset "
				    "%lld", rd->federation, names[i],
				    (unsigned long long)fl_reader_count(rd->r, i),
				    (long long)pos.offset[i]);
		else
			pb_log_info("provbus.%s.%s: %llu messages read from the window start",
				    rd->federation, names[i],
				    (unsigned long long)fl_reader_count(rd->r, i));
		if (fl_reader_stream_end(rd->r, i, &pos.offset[i], pos.digest[i]) < 0)
			pos.offset[i] = -1;
	}
	/* written again unless it would be the same; without the history
	 * stream's end (or, for nodes, a history part from the cache), not
	 * at all */
	if (use && pos.offset[0] >= 0 &&
	    (pos.offset[0] != cached.offset[0] || pos.offset[1] != cached.offset[1] ||
	     rd->f->pruned) &&
	    fl_cache_save(rd->f, path, ident, window_s, &pos, err) < 0) {
		pb_log_warn("%s (the cache is not kept)", err->msg);
		*err = (struct pb_err)PB_ERR_INIT;
	}
	return 0;
}

/* ---- the verbs ---- */

static int cmd_nodes(struct fleet *f, const struct opts *o)
{
	int64_t now = pb_now_ms();

	if (!o->json)
		printf("%-24s %-14s %-8s %-10s %-6s %-34s %s\n", "NODE", "REGION", "STATE", "VERSION",
		       "PAUSED", "LAST RUN", "KEYS");
	for (size_t i = 0; i < f->n_nodes; i++) {
		const struct fl_node *n = &f->nodes[i];
		const json_t *p = n->presence;
		const char *region = p ? pb_report_str(p, "region") : NULL;
		enum fl_state st = fl_node_state(n, now);
		char ts[PB_TIME_BUF], last[160] = "-", *keys;

		if (!p || (o->region && (!region || strcmp(region, o->region))))
			continue;
		if (o->json) {
			json_t *j = json_pack("{s:s,s:O,s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:s}", "node", n->name,
					      "region", json_object_get(p, "region"), "state",
					      fl_state_name(st), "version", json_object_get(p, "version"),
					      "paused", json_object_get(p, "paused"), "keys",
					      json_object_get(p, "keys"), "regions",
					      json_object_get(p, "regions"), "public_only",
					      json_object_get(p, "public_only"), "connected_since",
					      json_object_get(p, "connected_since"), "lease_until",
					      pb_time_format(n->lease_end, ts));

			if (j) {
				json_t *lr = json_null();

				if (n->last_run)
					lr = json_pack("{s:O,s:O,s:O,s:O,s:O}", "run_id",
						       json_object_get(n->last_run, "run_id"), "reason",
						       json_object_get(n->last_run, "reason"), "status",
						       json_object_get(n->last_run, "status"), "exit_status",
						       json_object_get(n->last_run, "exit_status"),
						       "finished_at",
						       json_object_get(n->last_run, "finished_at"));
				json_object_set_new(j, "last_run", lr ? lr : json_null());
				put_json(j);
			}
			json_decref(j);
			continue;
		}
		if (n->last_run) {
			const char *rs = pb_report_str(n->last_run, "status");
			const char *fin = pb_report_str(n->last_run, "finished_at");

			snprintf(last, sizeof(last), "#%lld %s %.40s",
				 (long long)json_integer_value(json_object_get(n->last_run, "run_id")),
				 rs ? rs : "?", fin ? fin : "");
		}
		keys = strv_join(json_object_get(p, "keys"));
		put(n->name, 24);
		printf(" ");
		put(region, 14);
		printf(" %-8s ", fl_state_name(st));
		put(pb_report_str(p, "version"), 10);
		printf(" %-6s ", json_is_true(json_object_get(p, "paused")) ? "yes" : "no");
		put(last, 34);
		printf(" ");
		put(keys && *keys ? keys : "-", 0);
		printf("\n");
		free(keys);
	}
	return 0;
}

static int key_asked(const struct opts *o, const char *key)
{
	if (!o->n_keys)
		return 1;
	for (size_t i = 0; i < o->n_keys; i++)
		if (!strcmp(o->keys[i], key))
			return 1;
	return 0;
}

static void print_provider(const struct pb_provider *pv, int json)
{
	char ts[PB_TIME_BUF];

	if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I}", "federation", pv->federation,
				      "region", pv->region, "node", pv->node, "service", pv->service,
				      "key", pv->key, "value", pv->value, "public", pv->public, "seq",
				      (json_int_t)pv->seq);

		if (j) {
			json_object_set_new(j, "expires_at",
					    pv->expires_at == PB_TIME_NEVER
						    ? json_null()
						    : json_string(pb_time_format(pv->expires_at, ts)));
			put_json(j);
		}
		json_decref(j);
		return;
	}
	put(pv->key, 24);
	printf(" ");
	put(pv->value, 40);
	printf(" ");
	put(pv->region, 0);
	printf("/");
	put(pv->node, 0);
	printf("/");
	put(pv->service, 0);
	printf(" seq=%lld%s", (long long)pv->seq, pv->public ? " public" : "");
	if (pv->expires_at != PB_TIME_NEVER)
		printf(" lease-until=%s", pb_time_format(pv->expires_at, ts));
	printf("\n");
}

static int cmd_providers(struct fleet *f, const struct opts *o)
{
	int64_t now = pb_now_ms();

	pb_providers_expire(f->prov, now, NULL, NULL);
	if (o->node) {
		struct fl_node *n = NULL;
		const struct pb_provider **v;
		size_t count;

		for (size_t i = 0; i < f->n_nodes && !n; i++)
			if (!strcmp(f->nodes[i].name, o->node) && f->nodes[i].presence)
				n = &f->nodes[i];
		if (!n) {
			pb_log_err("node %s: no presence report in the fleet stream (is it running "
				   "provbus-consumer?)", o->node);
			return EX_NOINPUT;
		}
		if (!(v = fl_node_providers(f, n, now, &count))) {
			pb_log_err("out of memory");
			return EX_OSERR;
		}
		for (size_t i = 0; i < count; i++)
			if (key_asked(o, v[i]->key) && (!o->region || !strcmp(o->region, v[i]->region)))
				print_provider(v[i], o->json);
		free(v);
		return 0;
	}
	for (size_t i = 0; i < pb_providers_count(f->prov); i++) {
		const struct pb_provider *pv = pb_providers_at(f->prov, i);

		if (pv->tombstone || strcmp(pv->federation, f->federation) || !key_asked(o, pv->key) ||
		    (o->region && strcmp(o->region, pv->region)))
			continue;
		print_provider(pv, o->json);
	}
	return 0;
}

/* The verdicts now: the number of live consumers concerned and of those
 * not converged; prints them when print is set. */
static void converged_eval(struct fleet *f, const struct opts *o, int print, size_t *concerned,
			   size_t *behind)
{
	int64_t now = pb_now_ms();

	*concerned = *behind = 0;
	for (size_t i = 0; i < f->n_nodes; i++) {
		const struct fl_node *n = &f->nodes[i];
		int c;
		const char *why = fl_converged(f, n, o->keys, o->n_keys, now, &c);

		if (!c)
			continue;
		(*concerned)++;
		*behind += why != NULL;
		if (!print)
			continue;
		if (o->json) {
			json_t *j = json_pack("{s:s,s:O,s:b,s:s?}", "node", n->name, "region",
					      json_object_get(n->presence, "region"), "converged",
					      why == NULL, "reason", why);

			if (j)
				put_json(j);
			json_decref(j);
		} else if (why) {
			put(n->name, 0);
			printf(": %s\n", why);
		}
	}
}

static int cmd_converged(struct fleet *f, struct fl_reader *r, struct ctx *c,
			 const struct opts *o, struct pb_err *err)
{
	int64_t deadline = pb_mono_ms() + (int64_t)o->wait_s * 1000;
	size_t concerned, behind;

	converged_eval(f, o, 0, &concerned, &behind);
	while (behind && o->wait_set && pb_mono_ms() < deadline && !stop_requested) {
		int64_t left = deadline - pb_mono_ms();

		f->changed = 0;
		if (fl_reader_pump(r, left < WAIT_STEP_MS ? (int)left : WAIT_STEP_MS, on_msg, c,
				   err) < 0)
			return fail(err);
		converged_eval(f, o, 0, &concerned, &behind);
	}
	converged_eval(f, o, 1, &concerned, &behind);
	if (!o->json) {
		if (!concerned)
			printf("converged: no live consumer requires %s\n",
			       o->n_keys ? "these keys" : "any key");
		else if (!behind)
			printf("converged: %zu of %zu live consumers ran with today's values\n",
			       concerned, concerned);
		else
			printf("not converged: %zu of %zu live consumers\n", behind, concerned);
	}
	return behind ? 1 : 0;
}

/* ---- main ---- */

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "config", required_argument, NULL, 'c' },
		{ "url", required_argument, NULL, 'U' },
		{ "federation", required_argument, NULL, 'F' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "region", required_argument, NULL, 'R' },
		{ "node", required_argument, NULL, 'N' },
		{ "wait", required_argument, NULL, 'W' },
		{ "json", no_argument, NULL, 'J' },
		{ "no-verify-sender", no_argument, NULL, 'S' },
		{ "no-cache", no_argument, NULL, 'C' },
		{ "stream-port", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	char *end;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o->config = optarg; break;
		case 'U':
			pb_session_wipe_free(o->url_copy);
			if (!(o->url = o->url_copy = pb_url_take_arg(optarg))) {
				fputs(PROG ": out of memory\n", stderr);
				return EX_OSERR;
			}
			break;
		case 'F': o->federation = optarg; break;
		case 'P': o->password_file = optarg; break;
		case 'R': o->region = optarg; break;
		case 'N': o->node = optarg; break;
		case 'J': o->json = 1; break;
		case 'S': o->no_verify_sender = 1; break;
		case 'C': o->no_cache = 1; break;
		case 'v': o->verbose++; break;
		case 'T':
			o->stream_port = strtol(optarg, &end, 10);
			if (*end || end == optarg || o->stream_port < 0 || o->stream_port > 65535)
				return usage_error("--stream-port %s: want a port (0 to 65535; 0: "
						   "never)", optarg);
			break;
		case 'W':
			o->wait_s = strtol(optarg, &end, 10);
			if (*end || end == optarg || o->wait_s < 0 || o->wait_s > 86400 * 7)
				return usage_error("--wait %s: want seconds (0 to 604800)", optarg);
			o->wait_set = 1;
			break;
		case 'h': usage(stdout); return -1;
		case 'V': printf(PROG " %s\n", PB_VERSION); return -1;
		default: return pb_cli_option_error(PROG, short_usage, longopts, argv, opt);
		}
	}
	if (optind >= argc)
		return usage_error("a verb is needed: nodes, providers, converged or watch");
	o->verb = argv[optind++];
	o->keys = (const char **)argv + optind;
	o->n_keys = (size_t)(argc - optind);
	if (strcmp(o->verb, "nodes") && strcmp(o->verb, "providers") &&
	    strcmp(o->verb, "converged") && strcmp(o->verb, "watch"))
		return usage_error("unknown verb '%s': use nodes, providers, converged or watch",
				   o->verb);
	for (size_t i = 0; i < o->n_keys; i++)
		if (!pb_name_key_ok(o->keys[i]))
			return usage_error("'%s' is not a key (^[A-Z_][A-Z0-9_]{0,127}$)", o->keys[i]);
	if (o->n_keys && (!strcmp(o->verb, "nodes") || !strcmp(o->verb, "watch")))
		return usage_error("%s takes no keys", o->verb);
	if (o->wait_set && strcmp(o->verb, "converged"))
		return usage_error("--wait goes with converged only");
	if (o->node && strcmp(o->verb, "providers"))
		return usage_error("--node goes with providers only");
	if (o->region && strcmp(o->verb, "nodes") && strcmp(o->verb, "providers"))
		return usage_error("--region goes with nodes and providers only");
	if (o->federation && !pb_name_ident_ok(o->federation))
		return usage_error("--federation %s: not a federation name", o->federation);
	if (o->federation && !o->url)
		return usage_error("--federation goes with --url");
	if (o->password_file && !o->url)
		return usage_error("--password-file goes with --url");
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .stream_port = DEFAULT_STREAM_PORT };
	struct pb_err err = PB_ERR_INIT;
	struct pb_config *cfg = NULL;
	struct reading rd = { 0 };
	struct pb_session_opts *so = &rd.so;
	struct fleet f;
	struct ctx c = { &f, 0, 0 };
	const char *federation;
	int64_t window_s = DEFAULT_WINDOW_S;
	int rc;

	if ((rc = parse(argc, argv, &o)) != 0) {
		pb_session_wipe_free(o.url_copy);
		return rc < 0 ? 0 : rc;
	}
	pb_log_init(PROG, o.verbose);
	if (!o.url || !o.federation || o.config) {
		if (!(cfg = pb_config_load(pb_config_path(o.config), &err)))
			return fail(&err);
		window_s = cfg->consumer.history_window_s;
	}
	federation = o.federation ? o.federation : cfg->federation;
	if (o.url) {
		so->urls = &o.url;
		so->n_urls = 1;
		so->password_file = o.password_file;
		so->connection_name = PROG;
	} else {
		pb_session_opts_from_config(so, cfg, PROG);
	}
	fl_init(&f, federation);
	f.trust_user_id = o.no_verify_sender;
	rd.f = &f;
	rd.federation = federation;
	rd.trust_user_id = o.no_verify_sender;
	c.watch = !strcmp(o.verb, "watch");
	c.json = o.json;
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_IGN);
	if (!f.prov || !(rd.sess = pb_session_new(so))) {
		pb_err_set(&err, EX_OSERR, "out of memory");
		rc = fail(&err);
		goto out;
	}
	if (pb_session_connect(rd.sess, &err) < 0) {
		rc = fail(&err);
		goto out;
	}
	if (c.watch) {
		struct fl_reader_opts ro = { rd.sess, federation, 0, 1, { -1, -1 }, { NULL, NULL },
					     (int)o.stream_port };

		if (open_reader(&rd, &ro, &err) < 0) {
			rc = fail(&err);
			goto out;
		}
		while (!stop_requested)
			if (fl_reader_pump(rd.r, WAIT_STEP_MS, on_msg, &c, &err) < 0) {
				rc = fail(&err);
				goto out;
			}
		rc = 0;
		goto out;
	}
	if (read_window(&rd, &c, &o, window_s, &err) < 0) {
		rc = fail(&err);
		goto out;
	}
	if (!strcmp(o.verb, "nodes"))
		rc = cmd_nodes(&f, &o);
	else if (!strcmp(o.verb, "providers"))
		rc = cmd_providers(&f, &o);
	else
		rc = cmd_converged(&f, rd.r, &c, &o, &err);
	say_ignored(&f);
out:
	fflush(stdout);
	fl_reader_free(rd.r);
	pb_session_free(rd.sess);
	fl_release(&f);
	pb_config_free(cfg);
	pb_session_wipe_free(o.url_copy);
	return rc;
}
