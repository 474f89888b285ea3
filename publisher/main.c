/* provbus-publish — announces what this node provides, or retires it
 * (provbus-publish(1)).
 *
 *   provbus-publish [-c FILE] provides [SERVICE_ID...]
 *   provbus-publish [-c FILE] retire SERVICE_ID...
 *   provbus-publish [-c FILE] flush
 *
 * A run: build the events of this run (one per key, one seq per service
 * announcement), spool them in STATE_DIR/outbox.db in one transaction with
 * their seqs, take the send lock, connect, and send the whole outbox,
 * oldest first, with confirms (sender.c). What is not confirmed stays
 * spooled for the next run.
 *
 * The connect overlaps the outbox: once the manifests are read, `provides`
 * and `retire` start a second thread that logs in to the broker (TCP, AMQP
 * handshake, channel: 4 round trips and the broker's own set-up, 4.5 to
 * 6 ms on a 2-core loopback test box) while the main thread opens the
 * outbox, builds the events and commits them. Nothing is sent before the spool
 * commit, which is not synced: the outbox is synced only before exit 75
 * (provbus-publish(1); outbox.c). When the commit fails for want of room, the run
 * goes on with an outbox in memory: sent anyway, 0 with a warning when all
 * is confirmed, else 74 naming the file. The thread shares nothing with the
 * main one but its struct connector, handed over by pthread_join. A bad
 * manifest or flag never waits for a broker: the thread starts only once
 * the manifests are read, and a run that fails after that (an unknown
 * service id) waits at most CONNECT_DROP_MS for it, then exits and leaves
 * it to the exit; a spool that fails for want of room waits for the
 * connect to end (at most --timeout) and sends without the file. `flush` connects only when the outbox holds
 * something. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "event.h"
#include "log.h"
#include "manifest.h"
#include "names.h"
#include "outbox.h"
#include "pbtime.h"
#include "sender.h"
#include "textesc.h"
#include "session.h"

#define PROG "provbus-publish"

struct opts {
	const char *config;	/* -c, or NULL */
	int verbose;
	int dry_run;
	int64_t ttl_s;
	int has_ttl;
	int64_t timeout_ms;
};

/* The events of one service in this run: they share one seq. */
struct announcement {
	char *service;
	const struct pb_manifest *m;	/* NULL: retire from the outbox's record */
	struct pb_event *ev;
	size_t n_ev;
	struct pb_provided *now;	/* provides: the keys announced, for the record */
	size_t n_now;
	int record;		/* 1: replace the record with now */
};

/* The broker session, and the thread connecting it early. */
struct connector {
	struct pb_session *s;	/* NULL until there is something to send */
	pthread_t thread;
	int running;		/* 1: thread started, not joined yet */
	int rc;			/* the thread's pb_session_connect */
	int abandoned;		/* 1: left running at exit (connect_drop) */
	struct pb_err err;
};

/* How long a run that failed before sending waits for its connect to end
 * (then it exits without: a broker that does not answer must not delay an
 * error about a manifest or a flag) */
#define CONNECT_DROP_MS 200

struct run {
	struct opts *o;
	struct pb_config *cfg;
	struct pb_manifest_set set;
	struct pb_outbox *ob;
	struct pb_err ob_err;	/* why the outbox is in memory */
	struct announcement *an;
	size_t n_an;
	struct connector conn;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [-c FILE] [options] provides [SERVICE_ID...]\n"
"       " PROG " [-c FILE] [options] retire SERVICE_ID...\n"
"       " PROG " [-c FILE] [options] flush\n"
"\n"
"Announces on the broker what this node provides, one event per key, with\n"
"publisher confirms. Events the broker has not confirmed stay spooled in\n"
"STATE_DIR/outbox.db; every run sends them first, oldest first.\n"
"\n"
"verbs:\n"
"  provides [SERVICE_ID...]  announce the provides of these services (default:\n"
"                            every manifest in services_dir); keys dropped from\n"
"                            a manifest since its last announcement are retired\n"
"  retire SERVICE_ID...      retire every key of these services (from the\n"
"                            manifest, or from what was last announced when the\n"
"                            manifest is gone)\n"
"  flush                     send only what is spooled\n"
"\n"
"options:\n"
"  -c, --config FILE  the node configuration (default $PROVBUS_CONFIG, else\n"
"                     " PB_CONFIG_DEFAULT ")\n"
"      --ttl S        announce a lease: providers expire S seconds after receipt\n"
"                     unless announced again (default 0: no lease)\n"
"      --dry-run      print the events of this run as JSON lines on stdout; send\n"
"                     nothing, spool nothing, use no seq (flush: print the spool)\n"
"      --timeout S    wait at most S seconds (default 10) for the send lock, to\n"
"                     connect, and between two confirms from the broker\n"
"  -v, --verbose      more log lines (repeatable)\n"
"  -h, --help         this text\n"
"      --version      the version\n"
"\n"
"exit status:\n"
"  0   every event confirmed by the broker\n"
"  64  usage error\n"
"  65  bad manifest (FILE:LINE:COLUMN), or a SERVICE_ID with no manifest in\n"
"      services_dir (retire: and no record of what it last announced)\n"
"  66  the configuration file is missing\n"
"  69  broker unavailable and nothing spooled (the outbox could not be written)\n"
"  75  events spooled in STATE_DIR/outbox.db: sent by the next run or `flush`\n"
"  77  refused by the broker (topic permissions): those events are dropped,\n"
"      not spooled\n"
"  78  configuration error, or exchange provbus.F missing (run provbus-schema apply)\n");
}

/* ---- options ---- */

static int parse_seconds(const char *opt, const char *s, int allow_zero, int64_t *ms,
			 struct pb_err *err)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || (!allow_zero && v <= 0) ||
	    v > 1e9)
		return pb_err_set(err, EX_USAGE, "%s '%s': want a %s number of seconds", opt, s,
				  allow_zero ? "non-negative" : "positive");
	*ms = (int64_t)(v * 1000.0 + 0.5);	/* v in [0, 1e9]: llround without libm */
	if (!allow_zero && *ms < 1)
		*ms = 1;
	return 0;
}

static int parse_ttl(const char *s, int64_t *ttl, struct pb_err *err)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return pb_err_set(err, EX_USAGE, "--ttl '%s': want a whole number of seconds, 0 or more",
				  s);
	*ttl = v;
	return 0;
}

static const char short_usage[] =
"usage: " PROG " [-c FILE] [-v] [--ttl S] [--dry-run] [--timeout S] provides [SERVICE_ID...]\n"
"       " PROG " [-c FILE] [-v] [--ttl S] [--dry-run] [--timeout S] retire SERVICE_ID...\n"
"       " PROG " [-c FILE] [-v] [--dry-run] [--timeout S] flush\n"
"try '" PROG " --help' for more\n";

/* A usage error: what is wrong, the short usage, exit 64 (the same shape
 * in provbus-schema and provbus-audit). */
static int usage_error(const char *msg)
{
	return pb_cli_usage(PROG, short_usage, "%s", msg);
}

/* ---- building the events ---- */

static void announcement_release(struct announcement *a)
{
	free(a->service);
	free(a->ev);
	pb_provided_free(a->now, a->n_now);
	memset(a, 0, sizeof(*a));
}

static struct pb_event *add_event(struct announcement *a, size_t *cap, struct pb_err *err)
{
	if (a->n_ev == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct pb_event *n = realloc(a->ev, ncap * sizeof(*n));
		if (!n) {
			pb_err_set(err, EX_OSERR, "out of memory");
			return NULL;
		}
		a->ev = n;
		*cap = ncap;
	}
	return &a->ev[a->n_ev++];
}

static int make_event(struct run *rn, struct announcement *a, size_t *cap, enum pb_kind kind,
		      const char *federation, const char *key, const char *value, int public,
		      struct pb_err *err)
{
	struct pb_event *ev = add_event(a, cap, err);
	const char *where = a->m ? a->m->path : pb_outbox_path(rn->ob);

	if (!ev)
		return -1;
	if (pb_event_init(ev, kind, federation, rn->cfg->region, rn->cfg->node, a->service, key,
			  value, public, 0, rn->o->ttl_s, err)) {
		a->n_ev--;
		err->code = EX_DATAERR;
		pb_err_prefix(err, "%s: service %s, key %s", where, a->service, key);
		return -1;
	}
	return 0;
}

/* Is (federation, key) among the n pairs of kv (keys) under federation? */
static int announced(const struct pb_kv *kv, size_t n, const char *fed_now, const char *fed,
		     const char *key)
{
	if (strcmp(fed_now, fed))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].name, key))
			return 1;
	return 0;
}

static int record_key(struct announcement *a, const char *key, const char *federation, int public,
		      struct pb_err *err)
{
	struct pb_provided *n = realloc(a->now, (a->n_now + 1) * sizeof(*n));

	if (!n)
		return pb_err_set(err, EX_OSERR, "out of memory");
	a->now = n;
	n[a->n_now].key = strdup(key);
	n[a->n_now].federation = strdup(federation);
	n[a->n_now].public = public;
	a->n_now++;
	if (!n[a->n_now - 1].key || !n[a->n_now - 1].federation)
		return pb_err_set(err, EX_OSERR, "out of memory");
	return 0;
}

/* provides for manifest m: one event per key; a key it announced last
 * time and no longer has is retired in the same announcement. */
static int build_provides(struct run *rn, const struct pb_manifest *m, struct announcement *a,
			  struct pb_err *err)
{
	struct pb_kv *kv = NULL;
	struct pb_provided *last = NULL;
	size_t n_kv = 0, n_last = 0, cap = 0;
	int rc = -1;

	a->m = m;
	a->record = 1;
	if (!(a->service = strdup(m->id))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (pb_manifest_expand(m, rn->cfg, &kv, &n_kv, err)) {
		err->code = EX_DATAERR;
		goto out;
	}
	if (pb_outbox_provided(rn->ob, rn->cfg->node, m->id, &last, &n_last, err))
		goto out;
	for (size_t i = 0; i < n_kv; i++)
		if (make_event(rn, a, &cap, PB_KIND_PROVIDES, m->federation, kv[i].name,
			       kv[i].value, m->public, err) ||
		    record_key(a, kv[i].name, m->federation, m->public, err))
			goto out;
	for (size_t i = 0; i < n_last; i++)
		if (!announced(kv, n_kv, m->federation, last[i].federation, last[i].key) &&
		    make_event(rn, a, &cap, PB_KIND_RETIRE, last[i].federation, last[i].key, NULL,
			       last[i].public, err))
			goto out;
	if (!n_kv && !n_last)
		pb_log_notice("service %s (%s) provides nothing: nothing to announce", m->id,
			      m->path);
	rc = 0;
out:
	pb_kv_free_array(kv, n_kv);
	pb_provided_free(last, n_last);
	return rc;
}

/* retire id: the keys of its manifest, and those it last announced. */
static int build_retire(struct run *rn, const char *id, struct announcement *a,
			struct pb_err *err)
{
	const struct pb_manifest *m = pb_manifest_set_find(&rn->set, id);
	struct pb_provided *last = NULL;
	size_t n_last = 0, cap = 0;
	int rc = -1;

	a->m = m;
	if (!(a->service = strdup(id))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (pb_outbox_provided(rn->ob, rn->cfg->node, id, &last, &n_last, err))
		goto out;
	if (!m && !n_last) {
		pb_err_set(err, EX_DATAERR,
			   "service '%s': no manifest with this id in %s, and no record in %s of "
			   "what it announced: check the id", id, rn->cfg->services_dir,
			   pb_outbox_path(rn->ob));
		goto out;
	}
	for (size_t i = 0; m && i < m->n_provides; i++)
		if (make_event(rn, a, &cap, PB_KIND_RETIRE, m->federation, m->provides[i].name, NULL,
			       m->public, err))
			goto out;
	for (size_t i = 0; i < n_last; i++) {
		int dup = 0;
		for (size_t j = 0; m && j < m->n_provides && !dup; j++)
			dup = !strcmp(m->federation, last[i].federation) &&
			      !strcmp(m->provides[j].name, last[i].key);
		if (!dup && make_event(rn, a, &cap, PB_KIND_RETIRE, last[i].federation, last[i].key,
				       NULL, last[i].public, err))
			goto out;
	}
	if (!a->n_ev)
		pb_log_notice("service %s provides nothing: nothing to retire", id);
	rc = 0;
out:
	pb_provided_free(last, n_last);
	return rc;
}

static int seen_before(char **ids, int i)
{
	for (int j = 0; j < i; j++)
		if (!strcmp(ids[j], ids[i]))
			return 1;
	return 0;
}

/* The announcements of this run, in the order of the ids (default: every
 * manifest, by id). */
static int build(struct run *rn, enum pb_kind kind, char **ids, int n_ids, struct pb_err *err)
{
	size_t want = n_ids ? (size_t)n_ids : rn->set.n;

	rn->an = calloc(want ? want : 1, sizeof(*rn->an));
	if (!rn->an)
		return pb_err_set(err, EX_OSERR, "out of memory");
	if (kind == PB_KIND_PROVIDES && !n_ids) {
		if (!rn->set.n)
			pb_log_notice("no manifest in %s: nothing to announce", rn->cfg->services_dir);
		for (size_t i = 0; i < rn->set.n; i++)
			if (build_provides(rn, rn->set.items[i], &rn->an[rn->n_an++], err))
				return -1;
		return 0;
	}
	for (int i = 0; i < n_ids; i++) {
		const struct pb_manifest *m;

		if (seen_before(ids, i))
			continue;
		if (kind == PB_KIND_RETIRE) {
			if (build_retire(rn, ids[i], &rn->an[rn->n_an++], err))
				return -1;
			continue;
		}
		if (!(m = pb_manifest_set_find(&rn->set, ids[i])))
			return pb_err_set(err, EX_DATAERR,
					  "service '%s': no manifest with this id in %s: check the id "
					  "(the \"id\" field of a *.json file there)", ids[i],
					  rn->cfg->services_dir);
		if (build_provides(rn, m, &rn->an[rn->n_an++], err))
			return -1;
	}
	return 0;
}

/* Event JSON for a terminal: what the encoder leaves raw (DEL, C1, bidi
 * controls; none passes the event rules, but a spool written by an older
 * version may hold them) as \uXXXX escapes (textesc.h). */
static int print_json(const char *body, FILE *f)
{
	char *safe = pb_textesc_json(body);
	int rc = safe && fprintf(f, "%s\n", safe) >= 0 ? 0 : -1;

	free(safe);
	return rc;
}

static int emit(const struct pb_event *ev, FILE *f)
{
	char *body = pb_event_encode(ev, NULL);
	int rc = body ? print_json(body, f) : -1;

	free(body);
	return rc;
}

/* --dry-run: the events with the seqs they would get. */
static int print_events(struct run *rn, struct pb_err *err)
{
	for (size_t i = 0; i < rn->n_an; i++) {
		struct announcement *a = &rn->an[i];
		int64_t last = 0;

		if (!a->n_ev)
			continue;
		if (pb_outbox_last_seq(rn->ob, rn->cfg->node, a->service, &last, err))
			return -1;
		for (size_t k = 0; k < a->n_ev; k++) {
			a->ev[k].seq = last + 1;
			if (emit(&a->ev[k], stdout))
				return pb_err_set(err, EX_IOERR, "stdout: %s", strerror(errno));
		}
	}
	return fflush(stdout) ? pb_err_set(err, EX_IOERR, "stdout: %s", strerror(errno)) : 0;
}

static int spool_event(struct run *rn, struct pb_event *ev, struct pb_err *err)
{
	char exchange[PB_IDENT_MAX + 16], rk[PB_IDENT_MAX + PB_KEY_MAX + 16];
	size_t len;
	char *body = pb_event_encode(ev, &len);
	int rc = -1;

	if (!body) {
		pb_err_set(err, EX_SOFTWARE, "cannot encode the event of key %s", ev->key);
		goto out;
	}
	pb_exchange_name(ev->federation, exchange, sizeof(exchange));
	pb_event_routing_key(ev, rk, sizeof(rk));
	rc = pb_outbox_add(rn->ob, ev, exchange, rk, body, len, err);
out:
	free(body);
	return rc;
}

/* Every event of the run, with its seq, in one transaction: all spooled
 * or none. */
static int spool(struct run *rn, struct pb_err *err)
{
	if (pb_outbox_begin(rn->ob, err))
		return -1;
	for (size_t i = 0; i < rn->n_an; i++) {
		struct announcement *a = &rn->an[i];
		int64_t seq = 0;

		if (a->n_ev && pb_outbox_take_seq(rn->ob, rn->cfg->node, a->service, &seq, err))
			goto fail;
		for (size_t k = 0; k < a->n_ev; k++) {
			a->ev[k].seq = seq;
			if (spool_event(rn, &a->ev[k], err))
				goto fail;
		}
		if (a->record &&
		    pb_outbox_set_provided(rn->ob, rn->cfg->node, a->service, a->now, a->n_now, err))
			goto fail;
		if (a->n_ev)
			pb_log_info("spooled service=%s seq=%" PRId64 " events=%zu", a->service, seq,
				    a->n_ev);
	}
	return pb_outbox_commit(rn->ob, err) ? (pb_outbox_rollback(rn->ob), -1) : 0;
fail:
	pb_outbox_rollback(rn->ob);
	return -1;
}

/* ---- sending ---- */

static int print_spool(struct pb_outbox *ob, struct pb_err *err)
{
	struct pb_outbox_row rows[256];
	int64_t after = 0;
	size_t got;

	do {
		if (pb_outbox_read(ob, after, 256, rows, &got, err))
			return -1;
		for (size_t i = 0; i < got; i++) {
			print_json(rows[i].body, stdout);
			after = rows[i].n;
			pb_outbox_row_release(&rows[i]);
		}
	} while (got == 256);
	return fflush(stdout) ? pb_err_set(err, EX_IOERR, "stdout: %s", strerror(errno)) : 0;
}

static void say_spooled(struct run *rn, int64_t left)
{
	pb_log_err("%" PRId64 " event%s spooled to %s; %s will be sent by the next publish or "
		   "`provbus-publish flush`", left, left == 1 ? "" : "s", pb_outbox_path(rn->ob),
		   left == 1 ? "it" : "they");
}

/* The exit status after a failure to deliver: 75 when what is left is
 * spooled (and synced: the only sync a run owes, provbus-publish(1)); with a memory
 * outbox, 74 naming the file when it could not be written (disk full),
 * 69 when it could not even be opened. */
static int undelivered(struct run *rn, int code)
{
	int64_t left = 0;
	struct pb_err err = PB_ERR_INIT;

	if (pb_outbox_count(rn->ob, &left, &err))
		pb_log_err("%s", err.msg);
	if (pb_outbox_in_memory(rn->ob)) {
		/* the events an earlier run spooled are still in the file */
		int64_t kept = pb_outbox_still_on_disk(rn->ob);
		char also[96] = "";

		left -= kept;
		if (kept)
			snprintf(also, sizeof(also), " (and %" PRId64 " spooled before stay in the file)",
				 kept);
		if (rn->ob_err.code == EX_IOERR) {
			pb_log_err("%s: nothing could be kept: %s; %" PRId64 " event%s not sent%s",
				   pb_outbox_path(rn->ob), rn->ob_err.msg, left, left == 1 ? "" : "s",
				   also);
			return code == EX_TEMPFAIL || code == EX_UNAVAILABLE ? EX_IOERR : code;
		}
		pb_log_err("broker unavailable and nothing spooled: %s; %" PRId64
			   " event%s not sent%s", rn->ob_err.msg, left, left == 1 ? "" : "s", also);
		return code == EX_TEMPFAIL || code == EX_UNAVAILABLE ? EX_UNAVAILABLE : code;
	}
	if (left && pb_outbox_sync(rn->ob, &err)) {
		pb_log_err("%s; %" PRId64 " event%s spooled but maybe not on disk", err.msg, left,
			   left == 1 ? "" : "s");
		return EX_IOERR;
	}
	if (left)
		say_spooled(rn, left);
	return code;
}

/* The session of this run (not connected yet); NULL when out of memory. */
static struct pb_session *session_new(struct run *rn)
{
	struct pb_session_opts so;
	char name[PB_IDENT_MAX + 32];

	if (rn->conn.s)
		return rn->conn.s;
	snprintf(name, sizeof(name), PROG " %s", rn->cfg->node);
	pb_session_opts_from_config(&so, rn->cfg, name);
	so.connect_timeout_ms = rn->o->timeout_ms > INT32_MAX ? INT32_MAX : (int)rn->o->timeout_ms;
	/* events are small (a body over 4 KiB goes in several frames): 4 KiB
	 * frames (AMQP's least) keep the connection's frame buffer and
	 * decoding pool pages small: with the sender's rows sized to the
	 * outbox, 30 fewer page faults a run of one event (of ~380) */
	so.frame_max = 4096;
	rn->conn.s = pb_session_new(&so);
	return rn->conn.s;
}

static void *connect_thread(void *arg)
{
	struct connector *c = arg;

	c->rc = pb_session_connect(c->s, &c->err);
	return NULL;
}

/* Starts connecting in the background (see the top of this file). When
 * the thread cannot start, connect_finish connects in the foreground. */
static void connect_start(struct run *rn)
{
	struct connector *c = &rn->conn;

	if (c->running || !session_new(rn))
		return;
	pb_err_clear(&c->err);
	c->running = pthread_create(&c->thread, NULL, connect_thread, c) == 0;
	if (!c->running)
		pb_log_debug("connecting in the foreground: cannot start a thread");
}

/* Waits for the background connect, if any. Its result stays in
 * rn->conn for connect_finish. */
static void connect_join(struct run *rn)
{
	if (!rn->conn.running || rn->conn.abandoned)
		return;
	pthread_join(rn->conn.thread, NULL);
	rn->conn.running = 0;
}

/* A run that will send nothing: the connect is joined (and its session
 * closed politely at the end) when it ends within CONNECT_DROP_MS, else
 * the thread is left to the process's exit, its session with it. */
static void connect_drop(struct run *rn)
{
	struct timespec ts;

	if (!rn->conn.running)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)CONNECT_DROP_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	if (pthread_timedjoin_np(rn->conn.thread, NULL, &ts) == 0) {
		rn->conn.running = 0;
		return;
	}
	pthread_detach(rn->conn.thread);
	rn->conn.abandoned = 1;
}

/* The session of this run, connected: the background connect's result,
 * or a connect now. Returns 0, or -1 with err. */
static int connect_finish(struct run *rn, struct pb_err *err)
{
	struct connector *c = &rn->conn;

	if (c->running) {
		connect_join(rn);
		if (c->rc)
			*err = c->err;
		return c->rc;
	}
	if (!session_new(rn))
		return pb_err_set(err, EX_OSERR, "out of memory");
	return pb_session_connect(c->s, err);
}

/* r becomes the result of a send made of r's attempt, then later's: the
 * counts add up, the first refusal and missing exchange stay, and how it
 * ended (stopped, why) is later's. */
static void send_result_after(struct pb_send_result *r, const struct pb_send_result *later)
{
	struct pb_send_result sum = *later;

	sum.confirmed += r->confirmed;
	sum.refused += r->refused;
	sum.nacked += r->nacked;
	sum.returned += r->returned;
	sum.missing += r->missing;
	if (r->refusal.code)
		sum.refusal = r->refusal;
	if (r->missing_err.code)
		sum.missing_err = r->missing_err;
	*r = sum;
}

static int send_all(struct run *rn)
{
	struct pb_session *s;
	struct pb_send_opts sendo = { rn->o->timeout_ms, 1000, isatty(2) };
	struct pb_send_result r;
	struct pb_err err = PB_ERR_INIT;
	char url[512];
	int64_t count = 0;
	int rc;

	if (pb_outbox_lock(rn->ob, rn->o->timeout_ms, &err)) {
		pb_log_err("%s", err.msg);
		return undelivered(rn, EX_TEMPFAIL);
	}
	if (pb_outbox_count(rn->ob, &count, &err)) {
		pb_log_err("%s", err.msg);
		return undelivered(rn, EX_TEMPFAIL);
	}
	if (!count) {
		pb_log_info("nothing to send");
		return 0;
	}
	if (connect_finish(rn, &err)) {
		pb_log_err("%s", err.msg);
		return undelivered(rn, err.code == EX_NOPERM || err.code == EX_CONFIG ? err.code :
				   err.code == EX_OSERR ? EX_OSERR : EX_TEMPFAIL);
	}
	s = rn->conn.s;
	snprintf(url, sizeof(url), "%s", pb_session_url(s));	/* lost with the connection */
	pb_sender_run(s, rn->ob, &sendo, &r);
	/* a broker that took the connection and then failed the send (it
	 * closed the channel with 541, or the connection, or the socket broke)
	 * is a failure of that URL: what is left goes to the next one, each
	 * URL tried once (a cluster node cut off from its peers accepts
	 * connections and fails every publish to a stream) */
	for (size_t tried = 1; r.stopped && r.broker_failed && tried < rn->cfg->n_broker_urls; tried++) {
		struct pb_send_result more;

		pb_log_warn("%s; trying the next broker URL", r.stop.msg);
		pb_session_abort(s);
		if (pb_session_connect(s, &err)) {
			r.stop = err;
			break;
		}
		snprintf(url, sizeof(url), "%s", pb_session_url(s));
		pb_sender_run(s, rn->ob, &sendo, &more);
		send_result_after(&r, &more);
	}
	if (r.stopped)
		pb_log_err("%s", r.stop.msg);
	if (r.returned)
		pb_log_err("%" PRId64 " event%s returned by the broker as unroutable: check the "
			   "alternate exchange of their exchange (provbus-schema verify)",
			   r.returned, r.returned == 1 ? " was" : "s were");
	if (r.nacked)
		pb_log_err("%" PRId64 " event%s refused by the broker (basic.nack)", r.nacked,
			   r.nacked == 1 ? " was" : "s were");
	if (r.confirmed)
		pb_log_notice("%" PRId64 " event%s confirmed by the broker %s", r.confirmed,
			      r.confirmed == 1 ? "" : "s", url);
	if (r.refusal.code)
		rc = undelivered(rn, EX_NOPERM);
	else if (r.missing_err.code)
		rc = undelivered(rn, EX_CONFIG);
	else if (r.stopped || r.nacked || r.returned)
		rc = undelivered(rn, EX_TEMPFAIL);
	else
		rc = 0;
	if (r.stopped)
		pb_session_abort(s);
	return rc;
}

/* ---- commands ---- */

static int open_outbox(struct run *rn, struct pb_err *err)
{
	if (rn->o->dry_run) {
		struct pb_err e2 = PB_ERR_INIT;
		rn->ob = pb_outbox_open_readonly(rn->cfg->state_dir, &e2);
		if (!rn->ob && e2.code != EX_NOINPUT)
			pb_log_warn("%s: the seqs shown may be too low", e2.msg);
		/* no file yet: an empty outbox in memory (no seqs, no record) */
		if (!rn->ob)
			rn->ob = pb_outbox_open_memory(rn->cfg->state_dir, err);
		return rn->ob ? 0 : -1;
	}
	rn->ob = pb_outbox_open(rn->cfg->state_dir, (int)rn->o->timeout_ms, &rn->ob_err);
	if (rn->ob)
		return 0;
	pb_log_warn("%s: cannot spool, sending without a spool", rn->ob_err.msg);
	rn->ob = pb_outbox_open_memory(rn->cfg->state_dir, err);
	return rn->ob ? 0 : -1;
}

static int cmd_publish(struct run *rn, enum pb_kind kind, char **ids, int n_ids)
{
	struct pb_err err = PB_ERR_INIT;

	if (pb_manifest_load_dir(rn->cfg->services_dir, rn->cfg->federation, 1, &rn->set, &err))
		goto fail;
	if (!rn->o->dry_run)
		connect_start(rn);	/* overlaps the outbox's open, the build, the spool */
	if (open_outbox(rn, &err) || build(rn, kind, ids, n_ids, &err))
		goto fail;
	if (rn->o->dry_run)
		return print_events(rn, &err) ? (pb_log_err("%s", err.msg), err.code) : 0;
	if (spool(rn, &err)) {
		if (err.code != EX_IOERR || pb_outbox_in_memory(rn->ob))
			goto fail;
		/* disk full: send anyway, without the file (provbus-publish(1)) */
		rn->ob_err = err;
		pb_err_clear(&err);
		pb_log_warn("%s: cannot spool, sending without a spool", rn->ob_err.msg);
		pb_outbox_close(rn->ob);
		if (!(rn->ob = pb_outbox_open_memory(rn->cfg->state_dir, &err)) || spool(rn, &err))
			goto fail;
	}
	return send_all(rn);
fail:
	pb_log_err("%s", err.msg);
	connect_drop(rn);
	return err.code ? err.code : EX_SOFTWARE;
}

static int cmd_flush(struct run *rn)
{
	struct pb_err err = PB_ERR_INIT;

	if (rn->o->dry_run) {
		rn->ob = pb_outbox_open_readonly(rn->cfg->state_dir, &err);
		if (!rn->ob)
			return err.code == EX_NOINPUT ? 0 : (pb_log_err("%s", err.msg), err.code);
		return print_spool(rn->ob, &err) ? (pb_log_err("%s", err.msg), err.code) : 0;
	}
	rn->ob = pb_outbox_open_readonly(rn->cfg->state_dir, &err);
	if (!rn->ob && err.code == EX_NOINPUT) {
		pb_log_info("%s: nothing spooled", err.msg);
		return 0;
	}
	pb_outbox_close(rn->ob);
	rn->ob = pb_outbox_open(rn->cfg->state_dir, (int)rn->o->timeout_ms, &err);
	if (!rn->ob) {
		/* the events stay where they are; what is wrong is the state_dir */
		pb_log_err("%s: fix the permissions of state_dir %s", err.msg, rn->cfg->state_dir);
		return EX_CONFIG;
	}
	return send_all(rn);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ttl", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .timeout_ms = 10000 };
	struct run rn;
	struct pb_err err = PB_ERR_INIT;
	const char *verb;
	int c, rc = EX_USAGE;

	memset(&rn, 0, sizeof(rn));
	rn.o = &o;
	/* one malloc arena: the connect thread would get one of its own (a
	 * 64 MB reservation whose first pages each cost a fault: about 30 of
	 * a run's 415), for a handful of allocations */
	mallopt(M_ARENA_MAX, 1);
	pb_log_init(PROG, 0);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'v': o.verbose++; break;
		case 'n': o.dry_run = 1; break;
		case 't':
			if (parse_ttl(optarg, &o.ttl_s, &err))
				goto usage_err;
			o.has_ttl = 1;
			break;
		case 'T':
			if (parse_seconds("--timeout", optarg, 0, &o.timeout_ms, &err))
				goto usage_err;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " %s\n", PB_VERSION); return 0;
		default:
			rc = pb_cli_option_error(PROG, short_usage, longopts, argv, c);
			goto out;
		}
	}
	pb_log_init(PROG, o.verbose);
	if (optind >= argc) {
		pb_err_set(&err, EX_USAGE, "a verb is needed: provides, retire or flush");
		goto usage_err;
	}
	verb = argv[optind++];
	if (strcmp(verb, "provides") && strcmp(verb, "retire") && strcmp(verb, "flush")) {
		pb_err_set(&err, EX_USAGE, "unknown verb '%s': want provides, retire or flush", verb);
		goto usage_err;
	}
	if (!strcmp(verb, "retire") && optind >= argc) {
		pb_err_set(&err, EX_USAGE, "retire needs at least one SERVICE_ID");
		goto usage_err;
	}
	if (!strcmp(verb, "flush") && (optind < argc || o.has_ttl)) {
		pb_err_set(&err, EX_USAGE, "flush takes no %s",
			   o.has_ttl ? "--ttl (the spooled events keep theirs)" : "SERVICE_ID");
		goto usage_err;
	}
	rn.cfg = pb_config_load(pb_config_path(o.config), &err);
	if (!rn.cfg) {
		pb_log_err("%s", err.msg);
		rc = err.code ? err.code : EX_CONFIG;
		goto out;
	}
	if (!strcmp(verb, "flush")) {
		rc = cmd_flush(&rn);
	} else {
		rc = cmd_publish(&rn, strcmp(verb, "retire") ? PB_KIND_PROVIDES : PB_KIND_RETIRE,
				 argv + optind, argc - optind);
	}
	goto out;
usage_err:
	rc = usage_error(err.msg);
out:
	connect_join(&rn);
	if (!rn.conn.abandoned)
		pb_session_free(rn.conn.s);	/* closes it politely if still connected */
	for (size_t i = 0; i < rn.n_an; i++)
		announcement_release(&rn.an[i]);
	free(rn.an);
	pb_outbox_close(rn.ob);
	pb_manifest_set_release(&rn.set);
	pb_config_free(rn.cfg);
	return rc;
}
