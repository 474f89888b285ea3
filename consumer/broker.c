/* broker.c — the daemon's AMQP side: connect, declare, bind, consume, read
 * frames without blocking, history catch-up, acks (docs/protocol.md §2, provbus-consumer(1)).
 *
 * Channel 1 (the session's) carries the live queue, channel 2 the history
 * stream while a catch-up runs. Messages are assembled frame by frame
 * (basic.deliver, header, body) per channel, so a slow body never blocks
 * the loop, and copied out of rabbitmq-c's buffers, which are released
 * after each pump.
 *
 * rabbitmq-c notes that shape this file:
 * - Frames are read with amqp_simple_wait_frame_noblock and a 1 µs
 *   timeout, never 0: with a zero timeout rabbitmq-c takes the "immediate"
 *   path and never checks the peer's heartbeat deadline; with 1 µs it
 *   sends our heartbeat when due and reports a silent broker as
 *   AMQP_STATUS_HEARTBEAT_TIMEOUT.
 * - An RPC (bind, cancel ...) queues the frames that arrive meanwhile;
 *   they come out of the next amqp_simple_wait_frame_noblock, so the loop
 *   checks amqp_frames_enqueued() before sleeping in poll.
 * - basic.ack with multiple=true must name a tag still outstanding, or the
 *   broker closes the channel (PRECONDITION_FAILED "unknown delivery
 *   tag"): invalid deliveries are rejected first and the ack names the
 *   highest *valid* tag.
 * - Quorum queues refuse a global basic.qos: prefetch is per consumer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <jansson.h>

#include "consumer.h"
#include "log.h"
#include "pbtime.h"
#include "sdnotify.h"
#include "strv.h"

#define PUMP_BUDGET 4096	/* frames per pump, so timers and control still run */
/* rabbitmq-c decodes every frame into a pool of frame_max (128 KiB)
 * pages that it reuses but never frees while the connection lives: its
 * size is the most frames decoded between two amqp_maybe_release_buffers.
 * Releasing once a pump let a drain grow it to 36 pages (4.6 MB of the
 * daemon's anonymous memory, kept for good); every RELEASE_FRAMES frames
 * it stays at one or two. Safe at any frame: messages are copied out. */
#define RELEASE_FRAMES 256
#define HIST_PROBE_TAG "provbus-history-probe"	/* from "last": the end as of the start */
#define HIST_NEXT_TAG "provbus-history-next"	/* from "next": the first one after it */
#define PROBE_PREFETCH 65535	/* the last chunk comes in one burst, never waiting for acks */

static const struct pb_stream_end_limits hist_limits = {
	CS_HISTORY_BURST_GAP_MS, CS_HISTORY_BURST_MAX_MS, CS_HISTORY_EMPTY_MS, CS_HISTORY_IDLE_MS,
};

static amqp_connection_state_t cn(struct consumer *c)
{
	return pb_session_conn(c->sess);
}

static int connected(struct consumer *c)
{
	return c->sess && pb_session_connected(c->sess);
}

static void copy_bytes(char *dst, size_t size, amqp_bytes_t b)
{
	size_t n = b.len < size - 1 ? b.len : size - 1;

	if (n)
		memcpy(dst, b.bytes, n);
	dst[n] = '\0';
}

/* ---- bookkeeping ---- */

void cs_msg_release(struct cs_msg *m)
{
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static void msg_reset(struct cs_msg *m)
{
	char *body = m->body;

	memset(m, 0, sizeof(*m));
	m->body = body;
}

void cs_broker_forget_acks(struct consumer *c)
{
	for (int ch = 0; ch < CS_N_CHANNELS; ch++) {
		c->acks[ch].max_valid = 0;
		c->acks[ch].n_rejects = 0;
		c->acks[ch].n_unacked = 0;
		msg_reset(&c->msg[ch]);
	}
}

/* JSON array text <-> sorted string vector. */
static char *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

static int strv_from_json(const char *text, char ***out, size_t *n)
{
	json_t *a = text ? json_loads(text, 0, NULL) : NULL;
	size_t i, k = 0;
	char **v;

	*out = NULL;
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a) || !(v = calloc(json_array_size(a) + 1, sizeof(*v)))) {
		json_decref(a);
		return 0;
	}
	for (i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (s && (v[k] = strdup(s)))
			k++;
	}
	json_decref(a);
	qsort(v, k, sizeof(*v), pb_strv_cmp);
	*out = v;
	*n = k;
	return 0;
}

static void save_bound(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	char *s = strv_json(c->bound, c->n_bound);

	if (s && pb_audit_meta_set(c->aw, "bindings", s, &e) < 0)
		cs_log_db_error(c, &e);
	free(s);
}

/* What the core owes (lib/decide.h), kept in the audit log's meta so a
 * restart owes it still. */
void cs_catchup_save(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	const char *const *owed;
	size_t n;
	int full;
	char *keys;

	pb_decide_owed(c->core, &full, &owed, &n);
	keys = n ? strv_json((char **)owed, n) : NULL;
	if (pb_audit_meta_set(c->aw, "catchup_full", full ? "1" : NULL, &e) < 0 ||
	    pb_audit_meta_set(c->aw, "catchup_keys", keys, &e) < 0)
		cs_log_db_error(c, &e);
	free(keys);
}

static int owes_full(const struct consumer *c)
{
	int full;

	pb_decide_owed(c->core, &full, NULL, NULL);
	return full;
}

/* Reads what the last run of the daemon left: the bindings on its queue
 * and the catch-ups it still owes (into the core). */
int cs_catchup_load(struct consumer *c, struct pb_err *err)
{
	char *b = NULL, *full = NULL, *keys = NULL, **owed = NULL;
	size_t n_owed = 0;
	int rc = -1, owe_full;

	if (pb_audit_meta_get(c->aw, "bindings", &b, err) < 0 ||
	    pb_audit_meta_get(c->aw, "catchup_full", &full, err) < 0 ||
	    pb_audit_meta_get(c->aw, "catchup_keys", &keys, err) < 0)
		goto out;
	strv_from_json(b, &c->bound, &c->n_bound);
	strv_from_json(keys, &owed, &n_owed);
	/* no bindings ever recorded: a new node (or a new audit log) whose
	 * queue this daemon never declared; it owes the whole catch-up before
	 * its first run even while no broker answers (the startup run
	 * without a broker is for a node that has caught up once) */
	owe_full = full && !strcmp(full, "1");
	if (!b && c->conf.n_keys > 0 && !owe_full) {
		owe_full = 1;
		pb_log_notice("a new node: the first run waits for the catch-up of the history stream");
	}
	if (pb_decide_restore_owed(c->core, owe_full, (const char *const *)owed, n_owed) < 0) {
		pb_err_set(err, EX_OSERR, "restoring the catch-ups owed: out of memory");
		goto out;
	}
	rc = 0;
out:
	pb_strv_free(owed, n_owed);
	free(b);
	free(full);
	free(keys);
	return rc;
}

/* ---- losing the connection ---- */

void cs_broker_lost(struct consumer *c, const char *why)
{
	int64_t delay;

	if (c->in_lost || (!connected(c) && !c->up))
		return;
	c->in_lost = 1;
	pb_log_warn("broker connection lost: %s; reconnecting", why);
	/* the delivery tags die with the connection: no ack may name them on
	 * the next one; the rows are still committed (the broker redelivers,
	 * and the ids make the redeliveries duplicates) */
	cs_broker_forget_acks(c);
	pb_session_abort(c->sess);
	c->up = 0;
	c->consuming = 0;
	c->hist_active = 0;
	c->blocked = 0;
	cs_flush(c, 1);
	delay = pb_backoff_lost(&c->backoff, pb_mono_ms());
	c->reconnect_at = pb_mono_ms() + delay;
	pb_log_info("reconnect in=%lldms", (long long)delay);
	cs_sd_status(c);
	c->in_lost = 0;
}

/* The broker closed the connection (connection.close): answer and drop. */
static void connection_closed(struct consumer *c, const amqp_method_t *m)
{
	struct pb_err e = PB_ERR_INIT;
	amqp_connection_close_ok_t ok = { 0 };

	pb_amqp_close_err(m, "the broker closed the connection", &e);
	amqp_send_method(cn(c), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
	cs_broker_lost(c, e.msg);
}

/* An RPC failed: say why, drop the connection when it is gone or closed. */
static int rpc_failed(struct consumer *c, amqp_rpc_reply_t r, const char *what,
		      struct pb_err *err)
{
	pb_amqp_reply_err(r, what, err);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_ok_t ok = { 0 };

		amqp_send_method(cn(c), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
	}
	return -1;
}

/* ---- setup: exchange, queue, bindings, consume ---- */

/* 1: the queue exists, 0: it does not (404; channel reopened), -1: error. */
static int queue_exists(struct consumer *c, struct pb_err *err)
{
	amqp_rpc_reply_t r;

	amqp_queue_declare(cn(c), CS_LIVE_CHANNEL, amqp_cstring_bytes(c->queue), 1, 0, 0, 0,
			   amqp_empty_table);
	r = amqp_get_rpc_reply(cn(c));
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	if (pb_amqp_not_found(r))
		return pb_session_reopen_channel(c->sess, err) < 0 ? -1 : 0;
	return rpc_failed(c, r, "checking queue", err);
}

static int declare_queue(struct consumer *c, struct pb_err *err)
{
	amqp_table_entry_t e[2];
	amqp_table_t args = { 2, e };
	char what[400];
	amqp_rpc_reply_t r;

	e[0] = pb_table_str("x-queue-type", c->conf.cfg->consumer.queue_type);
	e[1] = pb_table_str("x-dead-letter-exchange", "provbus.dlx");
	amqp_queue_declare(cn(c), CS_LIVE_CHANNEL, amqp_cstring_bytes(c->queue), 0, 1, 0, 0, args);
	r = amqp_get_rpc_reply(cn(c));
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	snprintf(what, sizeof(what), "declaring queue %s (x-queue-type %s)", c->queue,
		 c->conf.cfg->consumer.queue_type);
	rpc_failed(c, r, what, err);
	if (err->code == EX_CONFIG)
		pb_err_prefix(err, "queue %s exists with other arguments: delete it (it is re-built "
			      "from the history) or set consumer.queue_type to match", c->queue);
	return -1;
}

static int bind_one(struct consumer *c, const char *rk, int unbind, struct pb_err *err)
{
	char what[512];
	amqp_rpc_reply_t r;

	if (unbind)
		amqp_queue_unbind(cn(c), CS_LIVE_CHANNEL, amqp_cstring_bytes(c->queue),
				  amqp_cstring_bytes(c->exchange), amqp_cstring_bytes(rk),
				  amqp_empty_table);
	else
		amqp_queue_bind(cn(c), CS_LIVE_CHANNEL, amqp_cstring_bytes(c->queue),
				amqp_cstring_bytes(c->exchange), amqp_cstring_bytes(rk),
				amqp_empty_table);
	r = amqp_get_rpc_reply(cn(c));
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	snprintf(what, sizeof(what), "%s queue %s %s exchange %s with %s",
		 unbind ? "unbinding" : "binding", c->queue, unbind ? "from" : "to", c->exchange, rk);
	return rpc_failed(c, r, what, err);
}

/* Binds every routing key of the configuration (binding twice is a
 * no-op in AMQP), then unbinds those bound before and no longer wanted.
 * New bindings first: a key moving between regions loses nothing. */
int cs_broker_rebind(struct consumer *c, struct pb_err *err)
{
	char **keep = NULL;
	size_t i, n = 0;
	int rc = -1;

	if (!connected(c))
		return 0;	/* done at the next connect */
	for (i = 0; i < c->conf.n_bindings; i++)
		if (bind_one(c, c->conf.bindings[i], 0, err) < 0)
			goto out;
	for (i = 0; i < c->n_bound; i++) {
		if (cs_strv_has((const char *const *)c->conf.bindings, c->conf.n_bindings,
				c->bound[i]))
			continue;
		if (bind_one(c, c->bound[i], 1, err) < 0)
			goto out;
		pb_log_info("unbound routing_key=%s queue=%s", c->bound[i], c->queue);
	}
	keep = calloc(c->conf.n_bindings + 1, sizeof(*keep));
	if (!keep) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	for (i = 0; i < c->conf.n_bindings; i++)
		if ((keep[n] = strdup(c->conf.bindings[i])))
			n++;
	pb_strv_free(c->bound, c->n_bound);
	c->bound = keep;
	c->n_bound = n;
	save_bound(c);
	rc = 0;
out:
	return rc;
}

static int set_qos(struct consumer *c, amqp_channel_t ch, struct pb_err *err)
{
	amqp_basic_qos(cn(c), ch, 0, CS_PREFETCH, 0);
	return pb_amqp_reply_err(amqp_get_rpc_reply(cn(c)), "basic.qos", err) < 0 ? -1 : 0;
}

static int start_live(struct consumer *c, struct pb_err *err)
{
	amqp_basic_consume_ok_t *ok;
	char what[300];

	ok = amqp_basic_consume(cn(c), CS_LIVE_CHANNEL, amqp_cstring_bytes(c->queue), amqp_empty_bytes,
				0, 0, 0, amqp_empty_table);
	if (!ok) {
		snprintf(what, sizeof(what), "consuming from queue %s", c->queue);
		return rpc_failed(c, amqp_get_rpc_reply(cn(c)), what, err);
	}
	c->consuming = 1;
	copy_bytes(c->live_tag, sizeof(c->live_tag), ok->consumer_tag);
	pb_log_info("consuming queue=%s consumer_tag=%s", c->queue, c->live_tag);
	return 0;
}

/* ---- history catch-up ---- */

/* Starts reading the stream on channel 2: from the later of now −
 * history_window_s and the offset last reached (a full catch-up), or
 * from now − window for keys a reload added. Returns 0, 1 when there is
 * no stream (nothing to read), -1 on a connection error. */
static int start_history(struct consumer *c, struct pb_err *err)
{
	int64_t now = pb_now_ms(), from = now - c->conf.cfg->consumer.history_window_s * 1000;
	int64_t off = 0, at = 0;
	amqp_table_entry_t e[1];
	amqp_table_t args = { 1, e };
	amqp_rpc_reply_t r;
	amqp_queue_declare_ok_t *ok;
	int found = 0, by_offset, nonempty;

	const char *const *owed;
	size_t n_owed;

	pb_decide_owed(c->core, &c->hist_full, &owed, &n_owed);
	pb_strv_free(c->hist_keys, c->n_hist_keys);
	c->hist_keys = NULL;
	c->n_hist_keys = 0;
	/* the keys this catch-up pays for (a full one covers them too; keys a
	 * reload adds meanwhile stay owed, for a catch-up of their own) */
	c->hist_keys = calloc(n_owed + 1, sizeof(char *));
	for (size_t i = 0; c->hist_keys && i < n_owed; i++)
		if ((c->hist_keys[c->n_hist_keys] = strdup(owed[i])))
			c->n_hist_keys++;
	if (c->hist_full) {
		struct pb_err e2 = PB_ERR_INIT;

		found = pb_audit_offset_get(c->aw, c->stream, &off, &at, &e2);
		if (found < 0) {
			cs_log_db_error(c, &e2);
			found = 0;
		}
	}
	e[0].key = amqp_cstring_bytes("x-stream-offset");
	/* the offset reached is later than the window start only if it was
	 * reached after it: the stream's tail then was past the window */
	if (found && at >= from) {
		e[0].value.kind = AMQP_FIELD_KIND_I64;
		e[0].value.value.i64 = off;
		c->hist_min_offset = off;
	} else {
		e[0].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
		e[0].value.value.u64 = (uint64_t)(from > 0 ? from / 1000 : 0);
		c->hist_min_offset = found ? off : 0;
	}
	by_offset = e[0].value.kind == AMQP_FIELD_KIND_I64;
	amqp_channel_open(cn(c), CS_HIST_CHANNEL);
	r = amqp_get_rpc_reply(cn(c));
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return rpc_failed(c, r, "opening the history channel", err);
	if (set_qos(c, CS_HIST_CHANNEL, err) < 0)
		return -1;
	/* a message count above 0 says the stream is not empty (a 0 may be
	 * stale: then only the probe tells) */
	ok = amqp_queue_declare(cn(c), CS_HIST_CHANNEL, amqp_cstring_bytes(c->stream), 1, 0, 0, 0,
				amqp_empty_table);
	nonempty = ok && ok->message_count > 0;
	if (!ok || !amqp_basic_consume(cn(c), CS_HIST_CHANNEL, amqp_cstring_bytes(c->stream),
				       amqp_cstring_bytes("provbus-history"), 0, 0, 0, args)) {
		r = amqp_get_rpc_reply(cn(c));
		if (pb_amqp_not_found(r)) {
			amqp_channel_close_ok_t cok = { 0 };

			amqp_send_method(cn(c), CS_HIST_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &cok);
			pb_log_warn("history stream %s not found: starting without the history "
				    "(run provbus-schema apply)", c->stream);
			return 1;
		}
		rpc_failed(c, r, "reading the history stream", err);
		if (pb_amqp_no_local_replica(r)) {
			size_t n = strlen(err->msg);

			snprintf(err->msg + n, sizeof(err->msg) - n,
				 " (a stream is read only where it is stored: another of broker.urls "
				 "is tried next; to read it here, rabbitmq-streams add_replica "
				 "--vhost VHOST %s NODE)", c->stream);
		}
		return -1;
	}
	/* the probes (see check_history_end): "next" sees the first message
	 * published after this point, "last" the stream's last chunk, whose
	 * highest offset is the end as of now; the latter with credit for a
	 * whole chunk, so its burst never waits for our acks */
	e[0].value.kind = AMQP_FIELD_KIND_UTF8;
	e[0].value.value.bytes = amqp_cstring_bytes("next");
	if (!amqp_basic_consume(cn(c), CS_HIST_CHANNEL, amqp_cstring_bytes(c->stream),
				amqp_cstring_bytes(HIST_NEXT_TAG), 0, 0, 0, args))
		return rpc_failed(c, amqp_get_rpc_reply(cn(c)), "reading the history stream", err);
	amqp_basic_qos(cn(c), CS_HIST_CHANNEL, 0, PROBE_PREFETCH, 0);
	if (pb_amqp_reply_err(amqp_get_rpc_reply(cn(c)), "basic.qos", err) < 0)
		return -1;
	e[0].value.value.bytes = amqp_cstring_bytes("last");
	if (!amqp_basic_consume(cn(c), CS_HIST_CHANNEL, amqp_cstring_bytes(c->stream),
				amqp_cstring_bytes(HIST_PROBE_TAG), 0, 0, 0, args))
		return rpc_failed(c, amqp_get_rpc_reply(cn(c)), "reading the history stream", err);
	c->hist_active = 1;
	c->hist_cancelled = 0;
	c->hist_started = pb_mono_ms();
	c->hist_last_msg = 0;
	c->hist_next_offset = c->hist_min_offset;
	pb_stream_end_init(&c->hist_end, c->hist_started, by_offset ? 0 : (from > 0 ? from / 1000 : 0),
			   by_offset ? off : -1);
	c->hist_end.nonempty = nonempty;
	c->hist_read = c->hist_applied = 0;
	if (by_offset)
		pb_log_notice("catch-up started stream=%s from_offset=%lld keys=%s", c->stream,
			      (long long)off, c->hist_full ? "all" : "added");
	else
		pb_log_notice("catch-up started stream=%s from=%s keys=%s", c->stream,
			      pb_time_format(from, (char[PB_TIME_BUF]){ 0 }),
			      c->hist_full ? "all" : "added");
	return 0;
}

/* The catch-up is over (the stream is read to its end, or there is none):
 * what it owed is paid. */
static void history_finished(struct consumer *c, int read)
{
	int64_t now;

	if (read)
		cs_history_done(c);
	now = pb_now_ms();
	cs_values_resolve(c, now);
	pb_decide_catchup_done(c->core, now, c->hist_full,
			       (const char *const *)c->hist_keys, c->n_hist_keys);
	cs_input(c, now, "catchup", c->hist_full,
		 c->hist_full ? NULL : cs_strv_json((const char *const *)c->hist_keys,
						    c->n_hist_keys));
	cs_catchup_save(c);
	c->hist_active = 0;
}

/* Connected and caught up: the startup run may be requested. (READY=1
 * went to systemd long before: cs_daemon_run.) */
static void on_ready(struct consumer *c)
{
	if (!pb_decide_startup_requested(c->core))
		cs_request(c, PB_REASON_STARTUP);
	cs_sd_status(c);
}

/* Stops the history consumer by closing its channel (whatever is in
 * flight on it is dropped: a stream keeps it). */
static void stop_history(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	amqp_rpc_reply_t r;

	if (!connected(c))
		return;
	r = amqp_channel_close(cn(c), CS_HIST_CHANNEL, AMQP_REPLY_SUCCESS);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		rpc_failed(c, r, "closing the history channel", &e);
		cs_broker_lost(c, e.msg);
	}
	c->acks[CS_HIST_CHANNEL].max_valid = 0;
	c->acks[CS_HIST_CHANNEL].n_unacked = 0;
	msg_reset(&c->msg[CS_HIST_CHANNEL]);
}

static void maybe_start_history(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	int rc;

	if (c->hist_active || !pb_decide_owed(c->core, NULL, NULL, NULL) || !connected(c))
		return;
	rc = start_history(c, &e);
	if (rc < 0) {
		cs_broker_lost(c, e.msg);
		return;
	}
	if (rc == 1)
		history_finished(c, 0);
}

int cs_catchup_owed(const struct consumer *c)
{
	return c->hist_active || pb_decide_owed(c->core, NULL, NULL, NULL);
}

void cs_broker_catchup(struct consumer *c)
{
	if (c->up)
		maybe_start_history(c);
}

/* The history end test (lib/streamend.h). The stream has no "end" marker
 * over AMQP 0-9-1, and silence is no end: a loaded broker pauses between
 * chunks for longer than any sane quiet time. So the end is an offset,
 * fixed at the start:
 * - the "next" probe's first message is the first one published after
 *   the catch-up began: everything below it is the stream as of the
 *   start (and everything newer reaches the live queue too, bound before);
 * - in a quiet stream, the highest offset of the "last" probe's burst
 *   (the stream's last chunk, sent at once) is the stream's end;
 * the catch-up is over once it has delivered that offset. An empty stream
 * (no delivery at all for CS_HISTORY_EMPTY_MS), one read up to its end
 * already, and one entirely older than the window end at once. Only when
 * no end is known, CS_HISTORY_IDLE_MS without any delivery ends it, with
 * a warning. (queue.declare's message_count of a stream would be the
 * obvious end, but it was measured stale: 0 a second after 8 publishes.) */
static void check_history_end(struct consumer *c, int64_t mono)
{
	struct pb_err e = PB_ERR_INIT;
	enum pb_stream_end_state st;

	if (!c->hist_active || c->msg[CS_HIST_CHANNEL].state != MSG_IDLE)
		return;
	st = pb_stream_end_check(&c->hist_end, &hist_limits, mono);
	if (st == PB_STREAM_READING && !c->hist_cancelled)
		return;
	if (st == PB_STREAM_IDLE)
		pb_log_warn("catch-up of stream %s: nothing delivered for %d s and its end is "
			    "unknown (read up to offset %lld): ending it anyway", c->stream,
			    CS_HISTORY_IDLE_MS / 1000, (long long)c->hist_end.main_off);
	pb_log_notice("catch-up done stream=%s read=%llu applied=%llu skipped=%llu end=%s",
		      c->stream, (unsigned long long)c->hist_read,
		      (unsigned long long)c->hist_applied, (unsigned long long)c->history_skipped,
		      c->hist_cancelled ? "cancelled" : st == PB_STREAM_END ? "offset" :
		      st == PB_STREAM_EMPTY ? "empty" : st == PB_STREAM_OLD ? "window" : "idle");
	stop_history(c);
	if (!connected(c))
		return;
	history_finished(c, 1);
	if (!c->consuming && start_live(c, &e) < 0) {
		cs_broker_lost(c, e.msg);
		return;
	}
	maybe_start_history(c);	/* a reload may have added keys meanwhile */
	if (!c->hist_active)
		on_ready(c);
}

/* ---- connecting ---- */

static int setup(struct consumer *c, struct pb_err *err)
{
	struct timeval rpc = { CS_RPC_TIMEOUT_MS / 1000, 0 };
	int exists;

	if (!connected(c)) {
		if (pb_session_connect(c->sess, err) < 0)
			return -1;
		c->gen++;
		cs_broker_forget_acks(c);
		amqp_set_rpc_timeout(cn(c), &rpc);
	}
	c->exchange_missing = 0;
	if (pb_session_check_exchange(c->sess, c->exchange, err) < 0) {
		c->exchange_missing = err->code == EX_CONFIG;
		return -1;
	}
	if ((exists = queue_exists(c, err)) < 0)
		return -1;
	if (!exists) {
		pb_log_notice("queue %s not found: declaring it; the history stream %s fills in "
			      "what it missed", c->queue, c->stream);
		int64_t now = pb_now_ms();

		cs_values_resolve(c, now);
		pb_decide_owe_full(c->core, now);
		cs_input(c, now, "owe-full", 0, NULL);
		cs_catchup_save(c);
		pb_strv_free(c->bound, c->n_bound);	/* gone with the queue */
		c->bound = NULL;
		c->n_bound = 0;
	}
	if (declare_queue(c, err) < 0 || cs_broker_rebind(c, err) < 0 ||
	    set_qos(c, CS_LIVE_CHANNEL, err) < 0)
		return -1;
	/* a whole catch-up comes before the live queue: the node's first run
	 * waits for both anyway, and the order keeps the log readable */
	if (!owes_full(c) && start_live(c, err) < 0)
		return -1;
	c->up = 1;
	c->ever_up = 1;
	maybe_start_history(c);
	if (!connected(c))
		return -1;
	if (!c->hist_active && !c->consuming && start_live(c, err) < 0)
		return -1;
	pb_log_notice("connected broker=%s queue=%s bindings=%zu%s", pb_session_url(c->sess),
		      c->queue, c->n_bound, c->hist_active ? " catching-up=1" : "");
	if (!c->hist_active)
		on_ready(c);
	return 0;
}

void cs_broker_tick(struct consumer *c, int64_t mono)
{
	struct pb_err err = PB_ERR_INIT;

	if (c->lost) {
		/* an ack failed (acks.c): the connection goes now */
		c->lost = 0;
		cs_broker_lost(c, c->lost_why);
	}

	if (c->up && connected(c)) {
		check_history_end(c, mono);
		return;
	}
	if (c->stopping || mono < c->reconnect_at)
		return;
	if (setup(c, &err) == 0) {
		pb_backoff_connected(&c->backoff, mono);
		cs_sd_status(c);
		return;
	}
	if (!err.msg[0])
		return;	/* lost on the way: cs_broker_lost said why and set the backoff */
	if (c->exchange_missing && !c->ever_up) {
		/* docs/protocol.md §2: a missing exchange at startup is a configuration error */
		c->fatal = err;
		c->done = 1;
		c->exit_code = EX_CONFIG;
		return;
	}
	if (connected(c))
		pb_session_abort(c->sess);
	c->up = 0;
	c->consuming = 0;
	c->hist_active = 0;
	{
		int64_t delay = pb_backoff_next(&c->backoff);

		/* the first failure and then one a minute at warning level */
		if (!c->last_broker_err_log || mono - c->last_broker_err_log >= CS_ERR_LOG_EVERY_MS) {
			pb_log_warn("%s; retrying in %lld ms", err.msg, (long long)delay);
			c->last_broker_err_log = mono;
		} else {
			pb_log_info("%s; retrying in %lld ms", err.msg, (long long)delay);
		}
		c->reconnect_at = mono + delay;
	}
	cs_sd_status(c);
}

/* ---- reading frames ---- */

static int64_t field_int(const amqp_field_value_t *v, int *ok)
{
	*ok = 1;
	switch (v->kind) {
	case AMQP_FIELD_KIND_I64: return v->value.i64;
	case AMQP_FIELD_KIND_U64: return (int64_t)v->value.u64;
	case AMQP_FIELD_KIND_I32: return v->value.i32;
	case AMQP_FIELD_KIND_U32: return v->value.u32;
	case AMQP_FIELD_KIND_I16: return v->value.i16;
	case AMQP_FIELD_KIND_U16: return v->value.u16;
	case AMQP_FIELD_KIND_I8: return v->value.i8;
	case AMQP_FIELD_KIND_U8: return v->value.u8;
	default: *ok = 0; return 0;
	}
}

static void take_properties(struct cs_msg *m, const amqp_basic_properties_t *p)
{
	if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
		m->has_content_type = 1;
		copy_bytes(m->content_type, sizeof(m->content_type), p->content_type);
	}
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		copy_bytes(m->message_id, sizeof(m->message_id), p->message_id);
	if (p->_flags & AMQP_BASIC_USER_ID_FLAG) {
		m->has_user_id = 1;
		copy_bytes(m->user_id, sizeof(m->user_id), p->user_id);
	}
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
		for (int i = 0; i < p->headers.num_entries; i++) {
			const amqp_table_entry_t *e = &p->headers.entries[i];

			if (e->key.len == 15 && !memcmp(e->key.bytes, "x-stream-offset", 15))
				m->offset = field_int(&e->value, &m->has_offset);
		}
	}
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		m->timestamp_s = (int64_t)p->timestamp;
}

/* A message of a probe: its offset marks the catch-up's end; acked
 * with the rest (on a stream an ack is credit). */
static void history_probe(struct consumer *c, const struct cs_msg *m, int next)
{
	int64_t mono = pb_mono_ms();

	if (m->has_offset && next) {
		if (!c->hist_end.next_seen)
			pb_log_debug("catch-up: the first new message is at offset %lld",
				     (long long)m->offset);
		pb_stream_end_next(&c->hist_end, m->offset);
	} else if (m->has_offset) {
		if (!c->hist_end.probe_seen)
			pb_log_debug("catch-up: the last chunk starts at offset %lld",
				     (long long)m->offset);
		pb_stream_end_probe(&c->hist_end, m->offset, m->timestamp_s, mono);
	}
	c->acks[CS_HIST_CHANNEL].n_unacked++;
	c->acks[CS_HIST_CHANNEL].max_valid = m->tag;
	if (!c->pend_since)
		c->pend_since = mono;
}

static void message_complete(struct consumer *c, int ch)
{
	struct cs_msg *m = &c->msg[ch];

	if (ch == CS_LIVE_CHANNEL && c->consuming && !c->stopping)
		cs_ingest_live(c, m);
	else if (ch == CS_HIST_CHANNEL && c->hist_active && !c->stopping &&
		 (!strcmp(m->consumer_tag, HIST_PROBE_TAG) || !strcmp(m->consumer_tag, HIST_NEXT_TAG)))
		history_probe(c, m, !strcmp(m->consumer_tag, HIST_NEXT_TAG));
	else if (ch == CS_HIST_CHANNEL && c->hist_active && !c->stopping)
		cs_ingest_history(c, m);
	/* else: a delivery for a consumer we cancelled: never acked, the
	 * broker requeues it when the channel closes */
	msg_reset(m);
}

static void on_deliver(struct consumer *c, int ch, const amqp_basic_deliver_t *d)
{
	struct cs_msg *m = &c->msg[ch];

	msg_reset(m);
	if (!m->body && !(m->body = malloc(PB_EVENT_MAX_BYTES + 1))) {
		pb_log_err("out of memory for a message body");
		return;
	}
	m->state = MSG_WANT_HEADER;
	m->tag = d->delivery_tag;
	m->redelivered = d->redelivered;
	copy_bytes(m->consumer_tag, sizeof(m->consumer_tag), d->consumer_tag);
	copy_bytes(m->exchange, sizeof(m->exchange), d->exchange);
	copy_bytes(m->routing_key, sizeof(m->routing_key), d->routing_key);
}

static void on_method(struct consumer *c, const amqp_frame_t *f)
{
	int ch = f->channel;
	const amqp_method_t *m = &f->payload.method;
	struct pb_err e = PB_ERR_INIT;

	switch (m->id) {
	case AMQP_BASIC_DELIVER_METHOD:
		if (ch == CS_LIVE_CHANNEL || ch == CS_HIST_CHANNEL)
			on_deliver(c, ch, m->decoded);
		break;
	case AMQP_BASIC_CANCEL_METHOD:
		if (ch == CS_HIST_CHANNEL) {
			pb_log_warn("the broker cancelled the history consumer on %s (stream deleted?)",
				    c->stream);
			c->hist_cancelled = 1;	/* ends at the next check */
			break;
		}
		pb_log_warn("the broker cancelled the consumer of queue %s (queue deleted?): "
			    "declaring it again", c->queue);
		c->consuming = 0;
		cs_broker_lost(c, "consumer cancelled by the broker");
		c->reconnect_at = 0;	/* at once: the broker is there */
		break;
	case AMQP_CONNECTION_CLOSE_METHOD:
		connection_closed(c, m);
		break;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_ok_t ok = { 0 };

		pb_amqp_close_err(m, "the broker closed channel", &e);
		amqp_send_method(cn(c), (amqp_channel_t)ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		cs_broker_lost(c, e.msg);
		break;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		const amqp_connection_blocked_t *b = m->decoded;

		c->blocked = 1;
		pb_log_warn("broker blocked the connection reason=\"%.*s\" (publishes stop; "
			    "consuming goes on)", (int)b->reason.len, (const char *)b->reason.bytes);
		cs_sd_status(c);
		break;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		c->blocked = 0;
		pb_log_notice("broker unblocked the connection");
		cs_sd_status(c);
		break;
	default:
		pb_log_debug("ignored method=0x%08x channel=%d", (unsigned)m->id, ch);
		break;
	}
}

static void on_frame(struct consumer *c, const amqp_frame_t *f)
{
	int ch = f->channel;
	struct cs_msg *m;

	if (f->frame_type == AMQP_FRAME_METHOD) {
		on_method(c, f);
		return;
	}
	if (ch != CS_LIVE_CHANNEL && ch != CS_HIST_CHANNEL)
		return;
	m = &c->msg[ch];
	if (f->frame_type == AMQP_FRAME_HEADER && m->state == MSG_WANT_HEADER) {
		m->size = f->payload.properties.body_size;
		take_properties(m, f->payload.properties.decoded);
		m->state = MSG_WANT_BODY;
		if (m->size == 0)
			message_complete(c, ch);
	} else if (f->frame_type == AMQP_FRAME_BODY && m->state == MSG_WANT_BODY) {
		amqp_bytes_t b = f->payload.body_fragment;
		size_t room = m->got < PB_EVENT_MAX_BYTES + 1 ? PB_EVENT_MAX_BYTES + 1 - m->got : 0;
		size_t n = b.len < room ? b.len : room;

		if (n)
			memcpy(m->body + m->got, b.bytes, n);
		m->got += b.len;
		if (m->got >= m->size)
			message_complete(c, ch);
	}
}

void cs_broker_pump(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	int budget = PUMP_BUDGET;

	if (!connected(c))
		return;
	c->last_pump = pb_mono_ms();
	while (budget-- > 0 && connected(c)) {
		struct timeval tv = { 0, 1 };	/* not 0: see the top of the file */
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(cn(c), &f, &tv);

		if (st == AMQP_STATUS_TIMEOUT)
			break;
		if (st != AMQP_STATUS_OK) {
			pb_amqp_status_err(st, "reading from the broker", &e);
			cs_broker_lost(c, e.msg);
			return;
		}
		on_frame(c, &f);
		/* a full batch commits (and acks) at once: prefetch stays flowing */
		if (c->n_pend >= CS_BATCH_MAX)
			cs_flush(c, 0);
		if ((PUMP_BUDGET - budget) % RELEASE_FRAMES == 0 && connected(c) &&
		    !amqp_frames_enqueued(cn(c)))
			amqp_maybe_release_buffers(cn(c));
	}
	cs_values_resolve(c, pb_now_ms());
	if (connected(c) && !amqp_frames_enqueued(cn(c)))
		amqp_maybe_release_buffers(cn(c));
}

int cs_broker_fd(struct consumer *c)
{
	return connected(c) ? pb_session_fd(c->sess) : -1;
}

int cs_broker_buffered(struct consumer *c)
{
	return connected(c) && (amqp_frames_enqueued(cn(c)) || amqp_data_in_buffer(cn(c)));
}

int64_t cs_broker_next(struct consumer *c, int64_t mono)
{
	int64_t next = INT64_MAX;

	if (!connected(c) || !c->up) {
		if (!c->stopping)
			next = c->reconnect_at > mono ? c->reconnect_at : mono;
		return next;
	}
	if (c->conf.cfg->heartbeat_s > 0) {
		int64_t every = c->conf.cfg->heartbeat_s * 1000 / 4;

		next = c->last_pump + (every > 0 ? every : 1);
	}
	if (c->hist_active) {
		int64_t t = pb_stream_end_deadline(&c->hist_end, &hist_limits);

		if (t < next)
			next = t;
	}
	return next;
}

/* ---- acks ---- */

void cs_broker_stop_consuming(struct consumer *c)
{
	if (connected(c) && c->hist_active)
		stop_history(c);
	c->hist_active = 0;
	if (!connected(c) || !c->consuming)
		return;
	c->consuming = 0;
	/* basic.cancel, not channel.close: the acks of what is committed
	 * still go out on this channel afterwards */
	amqp_basic_cancel(cn(c), CS_LIVE_CHANNEL, amqp_cstring_bytes(c->live_tag));
	if (amqp_get_rpc_reply(cn(c)).reply_type != AMQP_RESPONSE_NORMAL)
		cs_broker_lost(c, "cancelling the consumer failed");
}

void cs_broker_close(struct consumer *c)
{
	if (connected(c))
		pb_session_close(c->sess);
	c->up = 0;
	c->consuming = 0;
}
