/* report.c — the daemon's fleet reports (docs/protocol.md): presence and run, on a
 * connection of their own, through an outbox in the audit log.
 *
 * Every report is first a row of outbox_reports in audit.db; it leaves the
 * outbox when the broker confirms it. So a blocked broker (memory or disk
 * alarm) or an absent one only makes reports wait, oldest first; a new
 * presence replaces any presence still waiting (only the newest counts).
 *
 * Why a connection of its own: the live queue's connection must never
 * carry a publish the broker may hold (a blocked connection stops being
 * read, acks included), and a refused publish closes its channel. Here a
 * refusal (403: the node's topic permissions) closes only this channel:
 * the report at fault (the oldest unconfirmed one: the broker handles a
 * channel's publishes in order) is logged, audited as a note
 * `report-refused` and dropped, never retried; the ones after it go again
 * on a fresh channel.
 *
 * The connection is opened only while the daemon's own one is up (the
 * broker is reachable: the connect does not stall the loop), with its own
 * backoff. Publishes stop while the broker says connection.blocked and
 * while the socket has no room, so the loop never waits in a send. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <jansson.h>

#include "consumer.h"
#include "digest.h"
#include "log.h"
#include "pbtime.h"
#include "report.h"

#define REP_WINDOW 32		/* unconfirmed reports at most */
#define REP_STOP_WAIT_MS 2000	/* a clean stop waits this long for its presence */
#define REP_NACK_RETRY_MS 1000

/* AUTOINCREMENT: a row id is never reused once its row is confirmed and
 * deleted, so "the rows after the last one published" stays right */
#define REP_SCHEMA \
	"CREATE TABLE IF NOT EXISTS outbox_reports(id INTEGER PRIMARY KEY AUTOINCREMENT," \
	" at INTEGER NOT NULL, kind TEXT NOT NULL, routing_key TEXT NOT NULL, msg_id TEXT NOT NULL, body TEXT NOT NULL)"

struct inflight {
	uint64_t tag;
	int64_t row;
};

struct cs_reporter {
	struct pb_session *sess;
	int up;			/* connected, confirms on */
	int blocked;
	int64_t retry_at;	/* mono */
	struct pb_backoff backoff;
	uint64_t next_tag;
	struct inflight fl[REP_WINDOW];
	size_t n_fl;
	int64_t last_row;	/* the newest row published on this channel */
	int more;		/* rows after last_row may wait: rep_send looks (it
				 * ran a query at every turn of the loop, a sixth of
				 * an idle-to-run event's CPU) */
	int64_t next_presence;	/* mono */
	int64_t connected_since;	/* wall, 0: not connected */
	int was_up;
	int64_t last_pump;	/* mono */
	int refused_logged;
	uint64_t sent, refused;
};

static amqp_connection_state_t rcn(struct cs_reporter *r)
{
	return pb_session_conn(r->sess);
}

static int rconnected(const struct cs_reporter *r)
{
	return r->sess && pb_session_connected(r->sess);
}

static void rep_db_error(struct consumer *c, const char *what)
{
	struct pb_err e = PB_ERR_INIT;

	pb_err_set(&e, EX_IOERR, "%s: outbox_reports: %s: %s", c->db_path, what,
		   sqlite3_errmsg(c->db));
	cs_log_db_error(c, &e);
}

int cs_report_init(struct consumer *c, struct pb_err *err)
{
	struct pb_session_opts o;
	char name[128];

	if (!(c->rep = calloc(1, sizeof(*c->rep))))
		return pb_err_set(err, EX_OSERR, "out of memory");
	if (pb_audit_exec(c->db, REP_SCHEMA, "creating table outbox_reports", err) < 0)
		return -1;
	snprintf(name, sizeof(name), "provbus-consumer %s reports", c->conf.cfg->node);
	pb_session_opts_from_config(&o, c->conf.cfg, name);
	/* reports are small: 4 KiB frames (AMQP's least) keep this
	 * connection's buffers and decoding pool pages small (131072 each by
	 * default); a larger body is sent in several frames */
	o.frame_max = 4096;
	if (!(c->rep->sess = pb_session_new(&o)))
		return pb_err_set(err, EX_OSERR, "out of memory");
	c->rep->next_tag = 1;
	c->rep->more = 1;	/* rows a previous run left */
	cs_report_presence(c, "start");
	return 0;
}

void cs_report_release(struct consumer *c)
{
	if (!c->rep)
		return;
	pb_session_free(c->rep->sess);
	free(c->rep);
	c->rep = NULL;
}

/* ---- the outbox ---- */

static void outbox_put(struct consumer *c, json_t *body)
{
	const char *kind = pb_report_str(body, "kind");
	char rk[256], *text = json_dumps(body, JSON_COMPACT);
	sqlite3_stmt *st = NULL;

	pb_report_routing_key(c->conf.cfg->region, kind, c->conf.cfg->node, rk, sizeof(rk));
	if (!text) {
		pb_log_err("out of memory for a %s report", kind);
		return;
	}
	if (!strcmp(kind, PB_REPORT_PRESENCE) &&
	    sqlite3_exec(c->db, "DELETE FROM outbox_reports WHERE kind = 'presence'", NULL, NULL,
			 NULL) != SQLITE_OK)
		rep_db_error(c, "dropping the older presence");
	if (sqlite3_prepare_v2(c->db, "INSERT INTO outbox_reports(at, kind, routing_key, msg_id, body)"
				      " VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		rep_db_error(c, "insert");
		goto out;
	}
	sqlite3_bind_int64(st, 1, pb_now_ms());
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rk, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, pb_report_str(body, "id"), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rep_db_error(c, "insert");
	c->rep->more = 1;
	pb_log_debug("report queued kind=%s routing_key=%s", kind, rk);
out:
	sqlite3_finalize(st);
	free(text);
}

static void outbox_delete(struct consumer *c, int64_t row)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(c->db, "DELETE FROM outbox_reports WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK) {
		rep_db_error(c, "delete");
		return;
	}
	sqlite3_bind_int64(st, 1, row);
	if (sqlite3_step(st) != SQLITE_DONE)
		rep_db_error(c, "delete");
	sqlite3_finalize(st);
}

/* ---- building reports ---- */

static json_t *strv_array(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *time_or_null(int64_t ms)
{
	char ts[PB_TIME_BUF];

	return ms > 0 ? json_string(pb_time_format(ms, ts)) : json_null();
}

void cs_report_presence(struct consumer *c, const char *reason)
{
	const struct pb_config *cfg = c->conf.cfg;
	struct cs_reporter *r = c->rep;
	int stopped = !strcmp(reason, "stop");
	int64_t interval = cfg->consumer.presence_interval_s;
	json_t *o, *fields, *statics = json_object();

	if (!r)
		return;
	o = pb_report_new(PB_REPORT_PRESENCE, cfg->federation, cfg->region, cfg->node, pb_now_ms());
	for (size_t i = 0; statics && i < cfg->consumer.n_statics; i++) {
		char hex[PB_SHA256_HEX_LEN + 1];
		const char *v = cfg->consumer.statics[i].value;

		pb_sha256_hex(v, strlen(v), hex);
		json_object_set_new(statics, cfg->consumer.statics[i].name, json_string(hex));
	}
	fields = json_pack("{s:s,s:s,s:s,s:o,s:o,s:b,s:O,s:b,s:o,s:o,s:I,s:I}", "state",
			   stopped ? "stopped" : "running", "reason", reason, "version", PB_VERSION,
			   "keys", strv_array(c->conf.keys, c->conf.n_keys), "regions",
			   strv_array(c->conf.regions, c->conf.n_regions), "public_only",
			   cfg->consumer.public_only, "static", statics, "paused", pb_decide_paused(c->core),
			   "connected_since", time_or_null(stopped ? 0 : r->connected_since),
			   "started_at", time_or_null(c->started_at), "interval_s",
			   (json_int_t)interval, "ttl_s", (json_int_t)(stopped ? 0 : 3 * interval));
	if (!o || !statics || !fields || json_object_update(o, fields) < 0)
		pb_log_err("out of memory for a presence report");
	else
		outbox_put(c, o);
	json_decref(fields);
	json_decref(statics);
	json_decref(o);
	r->next_presence = pb_mono_ms() + interval * 1000;
}

void cs_report_run(struct consumer *c, int64_t finished_at, int exit_status, const char *status)
{
	const struct pb_config *cfg = c->conf.cfg;
	json_t *o, *changed = json_array(), *digests;
	const char *ck = c->run.changed_keys;

	if (!c->rep)
		return;
	while (changed && ck && *ck) {
		size_t n = strcspn(ck, ",");

		json_array_append_new(changed, json_stringn(ck, n));
		ck += n + (ck[n] == ',');
	}
	digests = pb_report_digests(c->conf.wants, c->conf.n_wants, c->run.values, c->run.n_values);
	o = pb_report_new(PB_REPORT_RUN, cfg->federation, cfg->region, cfg->node, pb_now_ms());
	if (!o || !changed || !digests) {
		pb_log_err("out of memory for the report of run %lld", (long long)c->run.id);
		goto out;
	}
	json_object_set_new(o, "run_id", json_integer(c->run.id));
	json_object_set_new(o, "reason", json_string(pb_reason_name(c->run.reason)));
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "exit_status", exit_status >= 0 ? json_integer(exit_status)
							     : json_null());
	json_object_set_new(o, "queued_at", time_or_null(c->run.queued_at));
	json_object_set_new(o, "started_at", time_or_null(c->run.started_at));
	json_object_set_new(o, "finished_at", time_or_null(finished_at));
	json_object_set(o, "changed_keys", changed);
	json_object_set(o, "digests", digests);
	outbox_put(c, o);
out:
	json_decref(changed);
	json_decref(digests);
	json_decref(o);
}

/* ---- the connection ---- */

static void rep_lost(struct consumer *c, const char *why)
{
	struct cs_reporter *r = c->rep;
	int64_t delay = pb_backoff_next(&r->backoff);

	if (r->up || rconnected(r))
		pb_log_info("report connection lost: %s; again in %lld ms", why, (long long)delay);
	pb_session_abort(r->sess);
	r->up = 0;
	r->blocked = 0;
	r->n_fl = 0;
	r->last_row = 0;
	r->more = 1;
	r->retry_at = pb_mono_ms() + delay;
}

/* On a (re)opened channel 1: confirms on, nothing in flight. */
static int rep_channel_ready(struct consumer *c, struct pb_err *err)
{
	struct cs_reporter *r = c->rep;

	amqp_confirm_select(rcn(r), PB_CHANNEL);
	if (pb_amqp_reply_err(amqp_get_rpc_reply(rcn(r)), "confirm.select", err) < 0)
		return -1;
	r->next_tag = 1;
	r->n_fl = 0;
	r->last_row = 0;
	r->more = 1;
	return 0;
}

static void rep_connect(struct consumer *c, int64_t mono)
{
	struct cs_reporter *r = c->rep;
	struct pb_err e = PB_ERR_INIT;
	struct timeval rpc = { CS_RPC_TIMEOUT_MS / 1000, 0 };

	if (r->up || mono < r->retry_at)
		return;
	if (pb_session_connect(r->sess, &e) < 0) {
		r->retry_at = mono + pb_backoff_next(&r->backoff);
		pb_log_info("reports: %s", e.msg);
		return;
	}
	amqp_set_rpc_timeout(rcn(r), &rpc);
	if (rep_channel_ready(c, &e) < 0) {
		rep_lost(c, e.msg);
		return;
	}
	r->up = 1;
	r->last_pump = mono;
	pb_backoff_reset(&r->backoff);
	pb_log_info("reports connected broker=%s user=%s", pb_session_url(r->sess),
		    pb_session_user(r->sess));
}

static int socket_has_room(struct cs_reporter *r)
{
	struct pollfd p = { .fd = pb_session_fd(r->sess), .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/* Publishes waiting rows, oldest first, while the window has room. */
static void rep_send(struct consumer *c)
{
	struct cs_reporter *r = c->rep;
	sqlite3_stmt *st = NULL;
	int limit, fetched = 0, step;

	if (!r->more || !r->up || r->blocked || r->n_fl >= REP_WINDOW || !rconnected(r))
		return;
	if (sqlite3_prepare_v2(c->db, "SELECT id, kind, routing_key, msg_id, body, at FROM "
				      "outbox_reports WHERE id > ? ORDER BY id LIMIT ?", -1, &st,
			       NULL) != SQLITE_OK) {
		rep_db_error(c, "select");
		return;
	}
	limit = (int)(REP_WINDOW - r->n_fl);
	sqlite3_bind_int64(st, 1, r->last_row);
	sqlite3_bind_int(st, 2, limit);
	while ((step = sqlite3_step(st)) == SQLITE_ROW && ++fetched &&
	       r->n_fl < REP_WINDOW && socket_has_room(r)) {
		amqp_basic_properties_t props;
		const char *body = (const char *)sqlite3_column_text(st, 4);
		int rc;

		memset(&props, 0, sizeof(props));
		props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
			       AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG |
			       AMQP_BASIC_USER_ID_FLAG;
		props.content_type = amqp_cstring_bytes("application/json");
		props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
		props.message_id = amqp_cstring_bytes((const char *)sqlite3_column_text(st, 3));
		props.timestamp = (uint64_t)(sqlite3_column_int64(st, 5) / 1000);
		props.type = amqp_cstring_bytes((const char *)sqlite3_column_text(st, 1));
		props.app_id = amqp_cstring_bytes("provbus/" PB_VERSION);
		props.user_id = amqp_cstring_bytes(pb_session_user(r->sess));
		rc = amqp_basic_publish(rcn(r), PB_CHANNEL, amqp_cstring_bytes(c->exchange),
					amqp_cstring_bytes((const char *)sqlite3_column_text(st, 2)),
					0, 0, &props, amqp_cstring_bytes(body));
		if (rc != AMQP_STATUS_OK) {
			struct pb_err e = PB_ERR_INIT;

			pb_amqp_status_err(rc, "publishing a report", &e);
			sqlite3_finalize(st);
			rep_lost(c, e.msg);
			return;
		}
		r->fl[r->n_fl].tag = r->next_tag++;
		r->fl[r->n_fl].row = r->last_row = sqlite3_column_int64(st, 0);
		r->n_fl++;
		r->sent++;
	}
	/* every row after last_row was sent: nothing more until a row is
	 * queued or the channel starts over */
	if (step == SQLITE_DONE && fetched < limit)
		r->more = 0;
	sqlite3_finalize(st);
}

/* Confirms up to tag (all at or below it when multiple). */
static void rep_settle(struct consumer *c, uint64_t tag, int multiple, int ack)
{
	struct cs_reporter *r = c->rep;
	int64_t first_nacked = 0;
	size_t k = 0;

	for (size_t i = 0; i < r->n_fl; i++) {
		if (r->fl[i].tag == tag || (multiple && r->fl[i].tag < tag)) {
			if (ack)
				outbox_delete(c, r->fl[i].row);
			else if (!first_nacked || r->fl[i].row < first_nacked)
				first_nacked = r->fl[i].row;
			continue;
		}
		r->fl[k++] = r->fl[i];
	}
	r->n_fl = k;
	if (first_nacked) {
		/* sent again from the oldest nacked one (a row after it that is
		 * still in flight may go twice: its id makes it the same report) */
		pb_log_warn("the broker nacked a report: sending it again in %d ms",
			    REP_NACK_RETRY_MS);
		if (r->last_row >= first_nacked)
			r->last_row = first_nacked - 1;
		r->more = 1;
		r->retry_at = pb_mono_ms() + REP_NACK_RETRY_MS;
	}
}

/* The broker closed the channel: a 403 is the oldest report in flight
 * being refused; it is dropped (audited), the others go again. */
static void rep_channel_closed(struct consumer *c, const amqp_method_t *m)
{
	struct cs_reporter *r = c->rep;
	const amqp_channel_close_t *cl = m->decoded;
	struct pb_err e = PB_ERR_INIT, e2 = PB_ERR_INIT;

	pb_session_closed_by_broker(r->sess, m, "reporting", &e);
	if (cl->reply_code == 403 && r->n_fl) {
		char text[PB_ERR_MAX + 64];

		r->refused++;
		snprintf(text, sizeof(text), "report %lld refused: %s", (long long)r->fl[0].row, e.msg);
		if (pb_audit_add_note(c->aw, pb_now_ms(), 0, "report-refused", text, &e2) < 0)
			cs_log_db_error(c, &e2);
		if (!r->refused_logged++)
			pb_log_warn("%s (check the node's topic permissions on %s; the report is "
				    "dropped, not retried)", text, c->exchange);
		else
			pb_log_info("%s", text);
		outbox_delete(c, r->fl[0].row);
	} else {
		pb_log_warn("%s", e.msg);
	}
	if (!rconnected(r) || rep_channel_ready(c, &e2) < 0) {
		rep_lost(c, e2.msg[0] ? e2.msg : e.msg);
		return;
	}
}

void cs_report_pump(struct consumer *c)
{
	struct cs_reporter *r = c->rep;
	struct pb_err e = PB_ERR_INIT;

	if (!r || !rconnected(r))
		return;
	r->last_pump = pb_mono_ms();
	for (int budget = 256; budget > 0 && rconnected(r); budget--) {
		struct timeval tv = { 0, 1 };	/* not 0: heartbeats (see broker.c) */
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(rcn(r), &f, &tv);

		if (st == AMQP_STATUS_TIMEOUT)
			break;
		if (st != AMQP_STATUS_OK) {
			pb_amqp_status_err(st, "reading from the broker (reports)", &e);
			rep_lost(c, e.msg);
			return;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			const amqp_basic_ack_t *a = f.payload.method.decoded;

			rep_settle(c, a->delivery_tag, a->multiple, 1);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			const amqp_basic_nack_t *n = f.payload.method.decoded;

			rep_settle(c, n->delivery_tag, n->multiple, 0);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD:
			rep_channel_closed(c, &f.payload.method);
			break;
		case AMQP_CONNECTION_CLOSE_METHOD:
			pb_session_closed_by_broker(r->sess, &f.payload.method, "reporting", &e);
			rep_lost(c, e.msg);
			return;
		case AMQP_CONNECTION_BLOCKED_METHOD:
			r->blocked = 1;
			pb_log_info("reports held: the broker blocked the report connection");
			break;
		case AMQP_CONNECTION_UNBLOCKED_METHOD:
			r->blocked = 0;
			pb_log_info("reports let go: the broker unblocked the report connection");
			break;
		default:
			break;
		}
	}
	if (rconnected(r) && !amqp_frames_enqueued(rcn(r)))
		amqp_maybe_release_buffers(rcn(r));
	rep_send(c);
}

void cs_report_tick(struct consumer *c, int64_t mono)
{
	struct cs_reporter *r = c->rep;

	if (!r)
		return;
	if (c->up && !r->was_up) {
		r->was_up = 1;
		r->connected_since = pb_now_ms();
		cs_report_presence(c, "connect");
	} else if (!c->up && r->was_up) {
		r->was_up = 0;
		r->connected_since = 0;
	}
	if (mono >= r->next_presence && !c->stopping)
		cs_report_presence(c, "interval");
	if (c->up && !c->stopping)
		rep_connect(c, mono);
	if (!r->up)
		return;
	if (c->conf.cfg->heartbeat_s > 0 &&
	    mono - r->last_pump >= c->conf.cfg->heartbeat_s * 1000 / 4)
		cs_report_pump(c);
	if (mono >= r->retry_at)
		rep_send(c);
}

int cs_report_fd(struct consumer *c)
{
	return c->rep && c->rep->up && rconnected(c->rep) ? pb_session_fd(c->rep->sess) : -1;
}

int cs_report_buffered(struct consumer *c)
{
	struct cs_reporter *r = c->rep;

	return r && r->up && rconnected(r) &&
	       (amqp_frames_enqueued(rcn(r)) || amqp_data_in_buffer(rcn(r)));
}

int64_t cs_report_next(struct consumer *c, int64_t mono)
{
	struct cs_reporter *r = c->rep;
	int64_t next = INT64_MAX;

	if (!r)
		return next;
	if (!c->stopping)
		next = r->next_presence;
	if (c->up && !r->up && r->retry_at < next)
		next = r->retry_at > mono ? r->retry_at : mono;
	if (r->up && c->conf.cfg->heartbeat_s > 0) {
		int64_t t = r->last_pump + c->conf.cfg->heartbeat_s * 1000 / 4;

		if (t < next)
			next = t;
	}
	if (r->up && r->retry_at > mono && r->retry_at < next)
		next = r->retry_at;
	return next;
}

/* A clean stop: the presence `stopped`, and up to REP_STOP_WAIT_MS for
 * the outbox to be confirmed (what is not stays for the next start). */
void cs_report_stop(struct consumer *c)
{
	struct cs_reporter *r = c->rep;
	int64_t end = pb_mono_ms() + REP_STOP_WAIT_MS;

	if (!r)
		return;
	cs_report_presence(c, "stop");
	if (c->up)
		rep_connect(c, pb_mono_ms());
	r->retry_at = 0;
	rep_send(c);
	while (r->up && rconnected(r) && r->n_fl && pb_mono_ms() < end) {
		struct pollfd p = { .fd = pb_session_fd(r->sess), .events = POLLIN };

		if (!cs_report_buffered(c) && poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		cs_report_pump(c);
	}
	if (r->n_fl)
		pb_log_info("stop: %zu reports not confirmed: they stay in the outbox", r->n_fl);
	if (rconnected(r))
		pb_session_close(r->sess);
	r->up = 0;
}
