/* stream.c — reading provbus.F.history and provbus.F.fleet (fleet.h).
 *
 * Both streams are consumed on channel 1 from a timestamp (x-stream-offset
 * = now − history_window_s; a stream consumer needs basic.qos, and an ack
 * is its credit). A stream has no "end" over AMQP 0-9-1, so each one gets
 * a second consumer, the probe, from offset "last": RabbitMQ starts it at
 * the first message of the stream's last chunk and sends that chunk at
 * once, in one burst. The burst is over when the probe has had nothing
 * for a short gap (or after a second in a stream so busy it never
 * pauses); the highest offset in it is the end of the stream as of the
 * subscription, and the main consumer has read the stream once it has
 * passed that offset, however long the broker takes to get there.
 * (Waiting for the main consumer to fall silent instead never ends on a
 * fleet stream that a few hundred nodes keep busy with presence reports,
 * and ends too early on a busy broker that pauses between chunks.) A
 * stream whose last chunk is older than the window (by the messages'
 * AMQP timestamps) gives the main consumer nothing: it is read at once;
 * an empty one (nothing at all) after 1.5 s. Without an end from the
 * probe, 30 s without a delivery ends a read (the safety net, a
 * warning). The rule is lib/streamend.c, shared with provbus-consumer's
 * catch-up.
 *
 * From the cache (cache.c) each stream is read from a number instead, the offset of the last message the previous call read: the
 * broker starts there, and that message must be the one read then (its
 * body's SHA-256), else the stream is not the one cached (deleted and
 * declared again, or cut by retention) and the read fails with -2. The
 * message itself is not handed on: it was applied then. Where a read of
 * the window would start now, what the cache must drop, is asked of the
 * broker itself: a consumer on a channel of its own (prefetch 1, never
 * acknowledged: the broker sends it one message) from the same
 * timestamp gives the first offset of the window; a stream whose newest
 * message (the probe's burst) is older than the window start has none.
 *
 * queue.declare's message_count would be the obvious end marker, but on
 * a stream it was measured stale (0 a second after 8 publishes; see the
 * consumer's catch-up in consumer/broker.c), so it is not used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "digest.h"
#include "event.h"
#include "fleet.h"
#include "log.h"
#include "pbtime.h"
#include "rstream.h"
#include "streamend.h"

#define PREFETCH 10000	/* per consumer */
#define START_CHANNEL 2	/* the window start's consumer (a resumed read) */
#define ACK_EVERY 1000
#define TAIL_MS 200		/* the longest wait in a pump */
/* the end of a read (lib/streamend.h): gap and length of the probe's
 * burst, an empty stream, and the safety net without a known end */
static const struct pb_stream_end_limits end_limits = { 30, 1000, 1500, 30000 };

enum { T_HIST, T_HIST_PROBE, T_FLEET, T_FLEET_PROBE, T__N };
static const char *const tags[T__N] = { "provbus-fleet-h", "provbus-fleet-hp", "provbus-fleet-f",
					"provbus-fleet-fp" };

struct side {
	struct pb_stream_end end;
	int done;
	/* from the cache: where it resumes (-1: from a time), whether the
	 * message there was checked; the last message read */
	int64_t resume_off;
	char resume_digest[PB_SHA256_HEX_LEN + 1];
	int resumed;
	char *last_body;
	size_t last_len;
	int64_t last_off;
	int end_state;		/* the end of its read: a pb_stream_end_state, or -1 */
	int64_t start_off;	/* the window's first offset (channel 2), -1 unknown,
				 * INT64_MAX: none, the window is empty */
	uint64_t n_read;	/* messages handed on */
	int skip;		/* not read at all (fl_reader_opts) */
};

struct fl_reader {
	struct rs_reader *rs;	/* the stream protocol (rstream.c): everything goes there */
	struct pb_session *sess;
	amqp_connection_state_t conn;
	int *no_replica;	/* fl_reader_opts */
	char exchange[128], streams[2][192];
	int follow, from_next;
	int64_t started, from_s;
	struct side side[2];	/* 0 history, 1 fleet */
	/* the message being assembled */
	int state;		/* 0 idle, 1 want header, 2 want body */
	int which;		/* its consumer (T_*) */
	uint64_t tag, last_tag;
	size_t unacked;
	char routing_key[256], exchange_in[256], user_id[256];
	int has_user_id, has_offset;
	int64_t offset, timestamp_s;
	uint64_t size, got;
	char *body;
	char invalid[600];	/* why a resumed stream does not go on from the cache */
	int ch2;		/* channel 2's message: 0 idle, 1 want header, 2 body */
	int ch2_which;		/* its side */
	uint64_t ch2_left;
};

static const char *const start_tags[2] = { "provbus-fleet-hs", "provbus-fleet-fs" };

static void copy_bytes(char *dst, size_t size, amqp_bytes_t b)
{
	size_t n = b.len < size - 1 ? b.len : size - 1;

	if (n)
		memcpy(dst, b.bytes, n);
	dst[n] = '\0';
}

static int consume(struct fl_reader *r, int which, const char *stream, int64_t from_ms,
		   const char *named, int64_t offset, struct pb_err *err)
{
	amqp_table_entry_t e[1];
	amqp_table_t args = { 1, e };
	amqp_rpc_reply_t rr;
	char what[300];

	e[0].key = amqp_cstring_bytes("x-stream-offset");
	if (named) {
		e[0].value.kind = AMQP_FIELD_KIND_UTF8;
		e[0].value.value.bytes = amqp_cstring_bytes(named);
	} else if (offset >= 0) {
		e[0].value.kind = AMQP_FIELD_KIND_I64;
		e[0].value.value.i64 = offset;
	} else {
		e[0].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
		e[0].value.value.u64 = (uint64_t)(from_ms > 0 ? from_ms / 1000 : 0);
	}
	if (amqp_basic_consume(r->conn, PB_CHANNEL, amqp_cstring_bytes(stream),
			       amqp_cstring_bytes(tags[which]), 0, 0, 0, args))
		return 0;
	rr = amqp_get_rpc_reply(r->conn);
	snprintf(what, sizeof(what), "reading stream %s", stream);
	pb_amqp_reply_err(rr, what, err);
	if (pb_amqp_no_local_replica(rr)) {
		pb_err_set(err, EX_UNAVAILABLE, "stream %s has no replica on this broker node", stream);
		if (r->no_replica)
			*r->no_replica = 1 + (which == T_FLEET || which == T_FLEET_PROBE);
	} else if (pb_amqp_not_found(rr))
		pb_err_set(err, EX_CONFIG, "stream %s not found: run provbus-schema apply", stream);
	else if (err->code == EX_NOPERM)
		pb_err_prefix(err, "%s: the broker user needs read on it (provbus-observer has it)",
			      stream);
	return -1;
}

/* The stream protocol, when it can be used: 0 with r->rs, 1 when the
 * streams are to be read over AMQP 0-9-1, -1 with err. */
static int open_rstream(struct fl_reader *r, const struct fl_reader_opts *o, struct pb_err *err)
{
	char host[256], hist[192], fleet[192];
	char *password = NULL;
	int tls = 0, rc;
	struct pb_err e = PB_ERR_INIT;

	if (o->stream_port <= 0)
		return 1;
	if (pb_session_login_info(o->sess, host, sizeof(host), &tls, &password, &e) < 0) {
		pb_log_info("stream protocol not used: %s", e.msg);
		return 1;
	}
	if (tls || !password) {
		/* no credentials over plain TCP when the broker is reached over TLS */
		pb_log_info("stream protocol not used with an amqps:// URL: reading over AMQP 0-9-1");
		pb_session_wipe_free(password);
		return 1;
	}
	snprintf(hist, sizeof(hist), "provbus.%s.history", o->federation);
	snprintf(fleet, sizeof(fleet), "provbus.%s.fleet", o->federation);
	{
		struct rs_opts ro = { host, o->stream_port, pb_session_user(o->sess), password,
				      pb_session_vhost(o->sess), { hist, fleet }, o->from_ms,
				      o->follow, { o->resume[0], o->resume[1] },
				      { o->digest[0], o->digest[1] }, 0, { o->skip[0], o->skip[1] } };

		rc = rs_reader_open(&ro, &r->rs, &e);
	}
	pb_session_wipe_free(password);
	if (rc == 2) {	/* AMQP 0-9-1 on this node could not read it either */
		if (o->no_replica)	/* which one: its name is in the message */
			*o->no_replica = 1 + (strstr(e.msg, fleet) != NULL);
		*err = e;
		return -1;
	}
	if (rc == 0)
		pb_log_info("reading the streams over the stream protocol (%s:%d)", host,
			    o->stream_port);
	else if (rc == 1)
		pb_log_notice("stream protocol on %s:%d: %s: reading over AMQP 0-9-1 (slower; "
			      "--stream-port 0 skips this)", host, o->stream_port, e.msg);
	else
		*err = e;
	return rc;
}

struct fl_reader *fl_reader_open(const struct fl_reader_opts *o, struct pb_err *err)
{
	struct fl_reader *r = calloc(1, sizeof(*r));
	int rc;

	if (r && (rc = open_rstream(r, o, err)) <= 0) {
		if (rc == 0)
			return r;
		free(r);
		return NULL;
	}
	if (!r || !(r->body = malloc(PB_EVENT_MAX_BYTES + 1)) ||
	    !(r->side[0].last_body = malloc(PB_EVENT_MAX_BYTES + 1)) ||
	    !(r->side[1].last_body = malloc(PB_EVENT_MAX_BYTES + 1))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto fail;
	}
	r->sess = o->sess;
	r->conn = pb_session_conn(o->sess);
	r->no_replica = o->no_replica;
	r->follow = o->follow;
	r->from_next = o->from_ms <= 0;
	r->from_s = o->from_ms / 1000;
	for (int i = 0; i < 2; i++) {
		struct side *sd = &r->side[i];

		sd->skip = o->skip[i];
		sd->resume_off = !sd->skip && !r->from_next && o->resume[i] >= 0 && o->digest[i] ?
				 o->resume[i] : -1;
		if (sd->resume_off >= 0)
			snprintf(sd->resume_digest, sizeof(sd->resume_digest), "%s", o->digest[i]);
		sd->last_off = sd->start_off = -1;
		sd->end_state = -1;
	}
	snprintf(r->exchange, sizeof(r->exchange), "provbus.%s", o->federation);
	snprintf(r->streams[0], sizeof(r->streams[0]), "provbus.%s.history", o->federation);
	snprintf(r->streams[1], sizeof(r->streams[1]), "provbus.%s.fleet", o->federation);
	if (r->side[0].resume_off >= 0 || r->side[1].resume_off >= 0) {
		/* first, before any delivery on channel 1 */
		amqp_channel_open(r->conn, START_CHANNEL);
		if (pb_amqp_reply_err(amqp_get_rpc_reply(r->conn), "channel.open", err) < 0)
			goto fail;
		amqp_basic_qos(r->conn, START_CHANNEL, 0, 1, 0);
		if (pb_amqp_reply_err(amqp_get_rpc_reply(r->conn), "basic.qos", err) < 0)
			goto fail;
	}
	for (int i = 0; i < 2; i++) {
		amqp_table_entry_t e[1];
		amqp_table_t args = { 1, e };

		if (r->side[i].resume_off < 0)
			continue;
		e[0].key = amqp_cstring_bytes("x-stream-offset");
		e[0].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
		e[0].value.value.u64 = (uint64_t)(r->from_s > 0 ? r->from_s : 0);
		amqp_basic_consume(r->conn, START_CHANNEL, amqp_cstring_bytes(r->streams[i]),
				   amqp_cstring_bytes(start_tags[i]), 0, 0, 0, args);
		if (pb_amqp_reply_err(amqp_get_rpc_reply(r->conn), "reading a stream", err) < 0)
			goto fail;
	}
	amqp_basic_qos(r->conn, PB_CHANNEL, 0, PREFETCH, 0);
	if (pb_amqp_reply_err(amqp_get_rpc_reply(r->conn), "basic.qos", err) < 0)
		goto fail;
	/* the main consumers first, then the probes (a skipped side: neither) */
	for (int k = 0; k < 4; k++) {
		static const int order[4] = { T_HIST, T_FLEET, T_HIST_PROBE, T_FLEET_PROBE };
		int t = order[k], i = t >= T_FLEET, probe = t == T_HIST_PROBE || t == T_FLEET_PROBE;

		if (r->side[i].skip || (probe && r->from_next))
			continue;
		if (probe ? consume(r, t, r->streams[i], 0, "last", -1, err) < 0
			  : consume(r, t, r->streams[i], o->from_ms, r->from_next ? "next" : NULL,
				    r->side[i].resume_off, err) < 0)
			goto fail;
	}
	r->started = pb_mono_ms();
	for (int i = 0; i < 2; i++) {
		pb_stream_end_init(&r->side[i].end, r->started,
				   r->side[i].resume_off >= 0 ? 0 : r->from_s, r->side[i].resume_off);
		r->side[i].done = r->from_next || r->side[i].skip;
	}
	return r;
fail:
	fl_reader_free(r);
	return NULL;
}

void fl_reader_free(struct fl_reader *r)
{
	if (!r)
		return;
	rs_reader_free(r->rs);
	free(r->body);
	free(r->side[0].last_body);
	free(r->side[1].last_body);
	free(r);
}

uint64_t fl_reader_count(const struct fl_reader *r, int side)
{
	return r->rs ? rs_reader_count(r->rs, side) : r->side[side].n_read;
}

int64_t fl_reader_window_start(const struct fl_reader *r, int side)
{
	return r->rs ? rs_reader_window_start(r->rs, side) : r->side[side].start_off;
}

const char *fl_reader_invalid(const struct fl_reader *r)
{
	if (r->rs)
		return rs_reader_invalid(r->rs);
	return r->invalid[0] ? r->invalid : NULL;
}

int fl_reader_stream_end(const struct fl_reader *r, int side, int64_t *offset,
			 char digest[PB_SHA256_HEX_LEN + 1])
{
	const struct side *sd = &r->side[side];

	if (r->rs)
		return rs_reader_stream_end(r->rs, side, offset, digest);
	if (sd->end_state != PB_STREAM_END || sd->last_off < 0)
		return -1;
	*offset = sd->last_off;
	pb_sha256_hex(sd->last_body, sd->last_len, digest);
	return 0;
}

/* The first message of a resumed read: the one the cache ends at? */
static int resume_check(struct fl_reader *r, int i)
{
	struct side *sd = &r->side[i];
	char hex[PB_SHA256_HEX_LEN + 1];

	sd->resumed = 1;
	if (!r->has_offset || r->offset != sd->resume_off) {
		snprintf(r->invalid, sizeof(r->invalid),
			 "%s: the cached offset %lld is before its first offset (%lld): "
			 "cut by retention, or declared again",
			 r->streams[i], (long long)sd->resume_off,
			 (long long)(r->has_offset ? r->offset : -1));
		return -1;
	}
	pb_sha256_hex(r->body, r->got <= PB_EVENT_MAX_BYTES ? (size_t)r->got : 0, hex);
	if (strcmp(hex, sd->resume_digest)) {
		snprintf(r->invalid, sizeof(r->invalid),
			 "%s: the message at the cached offset %lld is not the one read then: "
			 "the stream was declared again", r->streams[i], (long long)sd->resume_off);
		return -1;
	}
	return 0;
}

static int tag_of(amqp_bytes_t t)
{
	for (int i = 0; i < T__N; i++)
		if (t.len == strlen(tags[i]) && !memcmp(t.bytes, tags[i], t.len))
			return i;
	return -1;
}

/* The x-stream-offset header of a delivery from a stream: 1 and *off, or
 * 0 when it has none (or not as an integer). The last one counts. */
static int header_offset(const amqp_basic_properties_t *p, int64_t *off)
{
	int has = 0;

	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return 0;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];

		if (e->key.len != 15 || memcmp(e->key.bytes, "x-stream-offset", 15))
			continue;
		has = 1;
		switch (e->value.kind) {
		case AMQP_FIELD_KIND_I64: *off = e->value.value.i64; break;
		case AMQP_FIELD_KIND_U64: *off = (int64_t)e->value.value.u64; break;
		case AMQP_FIELD_KIND_I32: *off = e->value.value.i32; break;
		case AMQP_FIELD_KIND_U32: *off = e->value.value.u32; break;
		default: has = 0; break;
		}
	}
	return has;
}

static void take_properties(struct fl_reader *r, const amqp_basic_properties_t *p)
{
	r->has_user_id = (p->_flags & AMQP_BASIC_USER_ID_FLAG) != 0;
	r->timestamp_s = p->_flags & AMQP_BASIC_TIMESTAMP_FLAG ? (int64_t)p->timestamp : 0;
	if (r->has_user_id)
		copy_bytes(r->user_id, sizeof(r->user_id), p->user_id);
	r->has_offset = header_offset(p, &r->offset);
}

static void deliver(struct fl_reader *r, const char *body, int report,
		    void (*cb)(const struct fl_msg *, int, void *), void *ctx)
{
	struct fl_msg m = { r->exchange_in, r->routing_key, r->has_user_id ? r->user_id : NULL,
			    body, (size_t)r->got, r->has_offset ? r->offset : -1 };

	r->side[report].n_read++;
	if (r->got > PB_EVENT_MAX_BYTES) {
		m.user_id = NULL;	/* counted as invalid */
		m.body = "";
		m.len = 0;
	}
	cb(&m, report, ctx);
}

static void complete(struct fl_reader *r, void (*cb)(const struct fl_msg *, int, void *),
		     void *ctx)
{
	int report = r->which == T_FLEET || r->which == T_FLEET_PROBE;
	struct side *s = &r->side[report];
	int64_t mono = pb_mono_ms();

	r->state = 0;
	r->last_tag = r->tag;
	r->unacked++;
	if (r->which == T_HIST_PROBE || r->which == T_FLEET_PROBE) {
		if (!r->has_offset)
			return;	/* the main consumer delivers it too */
		if (!s->end.probe_seen)
			pb_log_debug("%s: the last chunk starts at offset %lld", r->streams[report],
				      (long long)r->offset);
		pb_stream_end_probe(&s->end, r->offset, r->timestamp_s, mono);
		return;
	}
	if (r->has_offset)
		pb_stream_end_main(&s->end, r->offset, mono);
	else
		pb_stream_end_alive(&s->end, mono);
	if (s->resume_off >= 0 && !s->resumed && resume_check(r, report) < 0)
		return;
	if (r->has_offset && r->offset > s->last_off) {
		/* the last message read: its offset and body go into the cache */
		char *b = s->last_body;

		s->last_off = r->offset;
		s->last_len = r->got <= PB_EVENT_MAX_BYTES ? (size_t)r->got : 0;
		s->last_body = r->body;
		r->body = b;
		if (r->offset == s->resume_off)
			return;	/* taken in by the call that read it */
		deliver(r, s->last_body, report, cb, ctx);
		return;
	}
	deliver(r, r->body, report, cb, ctx);
}

static void check_end(struct fl_reader *r, int64_t mono)
{
	for (int i = 0; i < 2; i++) {
		struct side *s = &r->side[i];
		enum pb_stream_end_state st;

		if (s->done)
			continue;
		st = pb_stream_end_check(&s->end, &end_limits, mono);
		if (s->resume_off >= 0 && !s->resumed && !r->invalid[0] &&
		    (st == PB_STREAM_EMPTY || st == PB_STREAM_END ||
		     (pb_stream_end_target(&s->end) >= 0 &&
		      pb_stream_end_target(&s->end) < s->resume_off))) {
			/* the stream ends before the message the cache ends at */
			snprintf(r->invalid, sizeof(r->invalid),
				 "%s: the cached offset %lld is beyond its end (%lld): "
				 "declared again", r->streams[i], (long long)s->resume_off,
				 (long long)pb_stream_end_target(&s->end));
			continue;
		}
		if (s->resume_off >= 0 && s->start_off < 0 && st != PB_STREAM_IDLE) {
			/* the window start: channel 2's message, or none at all */
			if (s->end.burst_over && s->end.probe_newest_s > 0 &&
			    s->end.probe_newest_s < r->from_s)
				s->start_off = INT64_MAX;
			else
				continue;
		}
		if (st == PB_STREAM_READING)
			continue;
		s->done = 1;
		s->end_state = st;
		if (st == PB_STREAM_IDLE)
			pb_log_warn("%s: nothing delivered for %lld s and its end is unknown: "
				    "read as far as offset %lld", r->streams[i],
				    (long long)(end_limits.idle_ms / 1000), (long long)s->end.main_off);
		pb_log_debug("%s read in %lld ms", r->streams[i], (long long)(mono - r->started));
	}
}

/* A frame of channel 2: its one message's offset is the window start. */
static int start_frame(struct fl_reader *r, const amqp_frame_t *f, struct pb_err *err)
{
	if (f->frame_type == AMQP_FRAME_METHOD) {
		const amqp_method_t *m = &f->payload.method;

		if (m->id == AMQP_BASIC_DELIVER_METHOD) {
			amqp_bytes_t t = ((const amqp_basic_deliver_t *)m->decoded)->consumer_tag;

			r->ch2 = 1;
			r->ch2_which = t.len == strlen(start_tags[1]) &&
				       !memcmp(t.bytes, start_tags[1], t.len);
		} else if (m->id == AMQP_CHANNEL_CLOSE_METHOD ||
			   m->id == AMQP_CONNECTION_CLOSE_METHOD) {
			return pb_session_closed_by_broker(r->sess, m, "reading the streams", err);
		} else if (m->id == AMQP_BASIC_CANCEL_METHOD) {
			return pb_err_set(err, EX_UNAVAILABLE,
					  "the broker cancelled a stream consumer (stream deleted?)");
		}
	} else if (f->frame_type == AMQP_FRAME_HEADER && r->ch2 == 1) {
		const amqp_basic_properties_t *p = f->payload.properties.decoded;
		struct side *sd = &r->side[r->ch2_which];

		int64_t off;

		/* the first delivery of the window's start consumer says where */
		if (sd->start_off < 0 && header_offset(p, &off) && off >= 0) {
			sd->start_off = off;
			pb_log_debug("%s: the window starts at offset %lld",
				     r->streams[r->ch2_which], (long long)off);
		}
		r->ch2_left = f->payload.properties.body_size;
		r->ch2 = r->ch2_left ? 2 : 0;
	} else if (f->frame_type == AMQP_FRAME_BODY && r->ch2 == 2) {
		size_t n = f->payload.body_fragment.len;

		r->ch2_left = n < r->ch2_left ? r->ch2_left - n : 0;
		if (!r->ch2_left)
			r->ch2 = 0;
	}
	return 0;
}

static int flush_acks(struct fl_reader *r, struct pb_err *err)
{
	int st;

	if (!r->unacked)
		return 0;
	st = amqp_basic_ack(r->conn, PB_CHANNEL, r->last_tag, 1);
	r->unacked = 0;
	return st == AMQP_STATUS_OK ? 0 : pb_amqp_status_err(st, "acknowledging", err);
}

int fl_reader_pump(struct fl_reader *r, int wait_ms,
		   void (*cb)(const struct fl_msg *m, int is_report, void *ctx), void *ctx,
		   struct pb_err *err)
{
	int64_t end = pb_mono_ms() + wait_ms;

	if (r->rs)
		return rs_reader_pump(r->rs, wait_ms, cb, ctx, err);
	for (;;) {
		int64_t mono = pb_mono_ms(), left;
		struct timeval tv;
		amqp_frame_t f;
		int st;

		check_end(r, mono);
		if (r->invalid[0]) {
			pb_err_set(err, EX_TEMPFAIL, "%s", r->invalid);
			return -2;
		}
		if (r->side[0].done && r->side[1].done && !r->follow)
			return flush_acks(r, err) < 0 ? -1 : 1;
		left = end - mono;
		if (left <= 0)
			break;
		/* a short wait while an end test is due, else what is left */
		if (left > TAIL_MS)
			left = TAIL_MS;
		if (left > end_limits.burst_gap_ms && !(r->side[0].done && r->side[1].done))
			left = end_limits.burst_gap_ms;
		if (!amqp_frames_enqueued(r->conn) && !amqp_data_in_buffer(r->conn) &&
		    flush_acks(r, err) < 0)
			return -1;
		tv.tv_sec = left / 1000;
		tv.tv_usec = (left % 1000) * 1000;
		st = amqp_simple_wait_frame_noblock(r->conn, &f, &tv);
		if (st == AMQP_STATUS_TIMEOUT)
			continue;
		if (st != AMQP_STATUS_OK)
			return pb_amqp_status_err(st, "reading the streams", err);
		if (f.channel == START_CHANNEL) {
			if (start_frame(r, &f, err) < 0)
				return -1;
			continue;
		}
		if (f.frame_type == AMQP_FRAME_METHOD) {
			const amqp_method_t *m = &f.payload.method;

			if (m->id == AMQP_BASIC_DELIVER_METHOD) {
				const amqp_basic_deliver_t *d = m->decoded;

				r->which = tag_of(d->consumer_tag);
				r->tag = d->delivery_tag;
				copy_bytes(r->routing_key, sizeof(r->routing_key), d->routing_key);
				copy_bytes(r->exchange_in, sizeof(r->exchange_in), d->exchange);
				r->state = r->which >= 0 ? 1 : 0;
				r->got = 0;
			} else if (m->id == AMQP_CHANNEL_CLOSE_METHOD ||
				   m->id == AMQP_CONNECTION_CLOSE_METHOD) {
				return pb_session_closed_by_broker(r->sess, m, "reading the streams",
								   err);
			} else if (m->id == AMQP_BASIC_CANCEL_METHOD) {
				return pb_err_set(err, EX_UNAVAILABLE,
						  "the broker cancelled a stream consumer (stream deleted?)");
			}
		} else if (f.frame_type == AMQP_FRAME_HEADER && r->state == 1) {
			r->size = f.payload.properties.body_size;
			take_properties(r, f.payload.properties.decoded);
			r->state = 2;
			if (!r->size)
				complete(r, cb, ctx);
		} else if (f.frame_type == AMQP_FRAME_BODY && r->state == 2) {
			amqp_bytes_t b = f.payload.body_fragment;
			size_t room = r->got < PB_EVENT_MAX_BYTES + 1 ? PB_EVENT_MAX_BYTES + 1 - r->got : 0;
			size_t n = b.len < room ? b.len : room;

			if (n)
				memcpy(r->body + r->got, b.bytes, n);
			r->got += b.len;
			if (r->got >= r->size)
				complete(r, cb, ctx);
		}
		if (r->unacked >= ACK_EVERY && flush_acks(r, err) < 0)
			return -1;
		if (!amqp_frames_enqueued(r->conn))
			amqp_maybe_release_buffers(r->conn);
	}
	return r->side[0].done && r->side[1].done;
}
