/* sender.c — the outbox on the wire, with publisher confirms.
 *
 * One loop: publish while fewer than `window` events are unconfirmed
 * (pipelined: no round trip per event), then read what the broker says.
 * A 10-key announcement is therefore 10 publishes in a row and one wait;
 * a 100,000-event flush streams with at most `window` in flight and
 * reads the outbox CHUNK rows at a time.
 *
 * Broker behaviours this relies on (RabbitMQ 3.x):
 * - acks may come out of order and with `multiple`; a basic.return for
 *   a message comes before its basic.ack, and carries its properties
 *   (message_id = event id);
 * - a publish refused by topic permissions closes the *channel* with
 *   403 "access to topic 'RK' in exchange 'EX' in vhost ... refused"; every
 *   publish after it on that channel is dropped, and confirms still
 *   outstanding on it are lost: those events stay spooled and are sent
 *   again on a fresh channel (a consumer drops the duplicates by id);
 * - under a memory or disk alarm the broker sends connection.blocked and
 *   stops reading our socket: we stop publishing and wait, up to the
 *   timeout, for confirms that will not come, then give up (spooled).
 *   Before each publish the socket is polled for room, so a full socket
 *   buffer never blocks us in rabbitmq-c's send (which has no deadline).
 * - a window of 1000 unconfirmed events keeps the broker busy (its
 *   confirm rate, measured: docs/BENCHMARKS.md); this loop costs ~3
 *   sendto and 1 poll per event. */
#include "sender.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "event.h"
#include "log.h"
#include "pbtime.h"

#define CHUNK 500		/* outbox rows read at a time */
#define DRAIN_EVERY 64		/* publishes between two looks at the socket */
#define DELETE_BATCH 256	/* confirmed rows deleted per transaction at most */
#define DELETE_EVERY_MS 50	/* ... and at least this often, and before any wait:
				 * a flush killed midway re-sends only what was not
				 * confirmed yet (provbus-publish(1)) */
#define PROGRESS_MS 200

struct pending {
	int64_t n;		/* the outbox row; 0 once settled */
	char id[PB_UUID_STR];
	char *exchange, *routing_key, *service;
	int64_t seq;
	int returned;
};

struct sender {
	struct pb_session *s;
	amqp_connection_state_t conn;
	struct pb_outbox *ob;
	struct pb_send_result *r;
	int64_t timeout_ms;
	int progress;

	struct pending *win;	/* slot tag % cap */
	size_t cap;
	size_t limit;		/* unsettled publishes allowed: cap, or 1 (see on_refused) */
	uint64_t first_tag;	/* oldest unsettled, or next_tag */
	uint64_t next_tag;	/* the tag of the next publish */
	size_t outstanding;

	struct pb_outbox_row *rows;	/* chunk of them */
	size_t chunk;		/* rows read at a time: CHUNK, fewer for a small outbox */
	size_t n_rows, i_row;
	int eof;
	int64_t cursor;		/* the last row read */
	int64_t missing_counted;	/* rows of missing exchanges counted up to here */

	int64_t *done;		/* confirmed rows not yet deleted */
	size_t n_done;
	int64_t deleted_at;	/* mono: the last delete */

	char **skip;		/* missing exchanges */
	size_t n_skip;

	int blocked;
	int64_t deadline;	/* monotonic ms: give up if no progress by then */
	int64_t total;		/* for progress */
	int64_t next_progress;
	int progress_shown;
};

/* ---- bookkeeping ---- */

static struct pending *slot(struct sender *x, uint64_t tag)
{
	return &x->win[tag % x->cap];
}

static void pending_clear(struct pending *p)
{
	free(p->exchange);
	free(p->routing_key);
	free(p->service);
	memset(p, 0, sizeof(*p));
}

static void flush_done(struct sender *x)
{
	struct pb_err err = PB_ERR_INIT;

	if (!x->n_done)
		return;
	/* a failed delete only means a duplicate later (consumers drop it by
	 * id), never a loss: warn and go on */
	if (pb_outbox_delete(x->ob, x->done, x->n_done, &err))
		pb_log_warn("%s: %zu confirmed events may be sent again", err.msg, x->n_done);
	x->n_done = 0;
	x->deleted_at = pb_mono_ms();
}

static void show_progress(struct sender *x, int last)
{
	int64_t now;

	if (!x->progress)
		return;
	now = pb_mono_ms();
	if (!last && now < x->next_progress)
		return;
	x->next_progress = now + PROGRESS_MS;
	if (!last || x->progress_shown)
		fprintf(stderr, "\rprovbus-publish: %" PRId64 " of %" PRId64 " events confirmed%s",
			x->r->confirmed, x->total, last ? "\n" : "");
	x->progress_shown = 1;
}

/* Settles tag: confirmed (ack) or not (nack). */
static void settle(struct sender *x, uint64_t tag, int ack)
{
	struct pending *p;

	if (tag < x->first_tag || tag >= x->next_tag)
		return;
	p = slot(x, tag);
	if (!p->n)
		return;
	if (!ack) {
		x->r->nacked++;
	} else if (p->returned) {
		x->r->returned++;
	} else {
		x->done[x->n_done++] = p->n;
		x->r->confirmed++;
		if (x->n_done == DELETE_BATCH)
			flush_done(x);
	}
	pending_clear(p);
	x->outstanding--;
}

static void advance(struct sender *x)
{
	while (x->first_tag < x->next_tag && !slot(x, x->first_tag)->n)
		x->first_tag++;
}

static void on_confirm(struct sender *x, uint64_t tag, int multiple, int ack)
{
	if (multiple) {
		for (uint64_t t = x->first_tag; t <= tag && t < x->next_tag; t++)
			settle(x, t, ack);
	} else {
		settle(x, tag, ack);
	}
	advance(x);
	x->deadline = pb_mono_ms() + x->timeout_ms;
	show_progress(x, 0);
}

static int skipped(struct sender *x, const char *exchange)
{
	for (size_t i = 0; i < x->n_skip; i++)
		if (!strcmp(x->skip[i], exchange))
			return 1;
	return 0;
}

static void add_skip(struct sender *x, const char *exchange)
{
	char **n;

	if (skipped(x, exchange) || !(n = realloc(x->skip, (x->n_skip + 1) * sizeof(*n))))
		return;
	x->skip = n;
	if ((x->skip[x->n_skip] = strdup(exchange)))
		x->n_skip++;
}

/* Fills the chunk when it is used up; rows of missing exchanges are
 * passed over (they stay spooled). */
static int fill(struct sender *x)
{
	struct pb_err err = PB_ERR_INIT;

	while (x->i_row == x->n_rows && !x->eof) {
		size_t got, keep = 0;

		x->n_rows = x->i_row = 0;
		if (pb_outbox_read(x->ob, x->cursor, x->chunk, x->rows, &got, &err)) {
			x->r->stop = err;
			x->r->stopped = 1;
			return -1;
		}
		x->eof = got < x->chunk;
		for (size_t i = 0; i < got; i++) {
			struct pb_outbox_row *row = &x->rows[i];

			x->cursor = row->n;
			if (skipped(x, row->exchange)) {
				if (row->n > x->missing_counted) {
					x->r->missing++;
					x->missing_counted = row->n;
				}
				pb_outbox_row_release(row);
				continue;
			}
			if (keep != i) {
				x->rows[keep] = *row;
				memset(row, 0, sizeof(*row));
			}
			keep++;
		}
		x->n_rows = keep;
	}
	return 0;
}

static void drop_chunk(struct sender *x)
{
	for (size_t i = x->i_row; i < x->n_rows; i++)
		pb_outbox_row_release(&x->rows[i]);
	x->n_rows = x->i_row = 0;
}

/* ---- the wire ---- */

static int writable(struct sender *x)
{
	struct pollfd pfd = { pb_session_fd(x->s), POLLOUT, 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

static int publish_next(struct sender *x)
{
	struct pb_outbox_row *row = &x->rows[x->i_row++];
	amqp_basic_properties_t props;
	struct pending *p;
	int st;

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
		       AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_USER_ID_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.message_id = amqp_cstring_bytes(row->id);
	props.timestamp = (uint64_t)(row->ts_ms / 1000);
	props.type = amqp_cstring_bytes(row->kind);
	props.app_id = amqp_cstring_bytes("provbus/" PB_VERSION);
	/* the broker refuses a user_id that is not the connection's user, so
	 * consumers can trust it (docs/protocol.md, verify_sender) */
	props.user_id = amqp_cstring_bytes(pb_session_user(x->s));
	st = amqp_basic_publish(x->conn, PB_CHANNEL, amqp_cstring_bytes(row->exchange),
				amqp_cstring_bytes(row->routing_key), 1, 0, &props,
				(amqp_bytes_t){ row->body_len, row->body });
	if (st != AMQP_STATUS_OK) {
		char what[400];

		snprintf(what, sizeof(what), "publishing to exchange %s with routing key %s",
			 row->exchange, row->routing_key);
		pb_amqp_status_err(st, what, &x->r->stop);
		x->r->stopped = 1;
		x->r->broker_failed = 1;
		pb_outbox_row_release(row);
		return -1;
	}
	pb_log_debug("published exchange=%s routing_key=%s id=%s tag=%" PRIu64, row->exchange,
		     row->routing_key, row->id, x->next_tag);
	p = slot(x, x->next_tag++);
	p->n = row->n;
	memcpy(p->id, row->id, sizeof(p->id));
	p->exchange = row->exchange;
	p->routing_key = row->routing_key;
	p->service = row->service;
	p->seq = row->seq;
	row->exchange = row->routing_key = row->service = NULL;
	pb_outbox_row_release(row);
	x->outstanding++;
	return 0;
}

/* 1 if a row is ready to publish (reading the next chunk if needed). */
static int have_rows(struct sender *x)
{
	return x->i_row < x->n_rows || (!x->eof && !fill(x) && x->i_row < x->n_rows);
}

static int can_publish(struct sender *x)
{
	return !x->blocked && x->next_tag - x->first_tag < x->limit && have_rows(x);
}

/* The text between marker and the next quote in text, e.g. the routing
 * key after "topic '". */
static int quoted(const amqp_bytes_t *text, const char *marker, char *out, size_t size)
{
	const char *t = text->bytes, *end = t + text->len;
	size_t ml = strlen(marker);

	for (const char *p = t; p && p + ml <= end; p++) {
		if (memcmp(p, marker, ml))
			continue;
		const char *v = p + ml, *q = memchr(v, '\'', (size_t)(end - v));
		if (!q || (size_t)(q - v) >= size)
			return -1;
		memcpy(out, v, (size_t)(q - v));
		out[q - v] = '\0';
		return 0;
	}
	return -1;
}

/* Forgets every unsettled publish of the closed channel and re-reads the
 * outbox from the oldest of them: they go again on the new channel. */
static void rewind_window(struct sender *x)
{
	int64_t from = x->cursor;

	for (uint64_t t = x->first_tag; t < x->next_tag; t++) {
		struct pending *p = slot(x, t);
		if (p->n && p->n - 1 < from)
			from = p->n - 1;
		pending_clear(p);
	}
	/* rows read but not published yet come again too */
	if (x->i_row < x->n_rows && x->rows[x->i_row].n - 1 < from)
		from = x->rows[x->i_row].n - 1;
	drop_chunk(x);
	flush_done(x);
	x->cursor = from;
	x->eof = 0;
	x->first_tag = x->next_tag = 1;
	x->outstanding = 0;
}

/* After the broker closed channel 1: close-ok, a new channel 1, confirm
 * mode again. */
static int reopen(struct sender *x)
{
	amqp_channel_close_ok_t ok = { 0 };
	amqp_rpc_reply_t rr;
	int st;

	st = amqp_send_method(x->conn, PB_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
	if (pb_amqp_status_err(st, "reopening the channel", &x->r->stop))
		goto fail;
	amqp_channel_open(x->conn, PB_CHANNEL);
	rr = amqp_get_rpc_reply(x->conn);
	if (pb_amqp_reply_err(rr, "reopening the channel", &x->r->stop))
		goto fail;
	amqp_confirm_select(x->conn, PB_CHANNEL);
	rr = amqp_get_rpc_reply(x->conn);
	if (pb_amqp_reply_err(rr, "selecting confirm mode", &x->r->stop))
		goto fail;
	return 0;
fail:
	x->r->stopped = 1;
	return -1;
}

/* 403 on channel 1: find the refused publish, drop its announcement from
 * the outbox, and send the rest again on a new channel. The refused one is
 * the unsettled publish whose exchange and routing key the broker's text
 * names ("access to topic 'RK' in exchange 'EX' ..."); with only one
 * unsettled publish it is that one. When the text names none of them (a
 * wording we do not know), nothing is dropped on a guess: the rest of the
 * run goes one publish at a time, so the next 403 is unambiguous. */
static int on_refused(struct sender *x, const amqp_channel_close_t *c)
{
	char ex[300] = "", rk[400] = "";
	struct pending *hit = NULL;
	struct pb_err err = PB_ERR_INIT;
	int64_t dropped = 0;
	size_t unsettled = 0;
	int has_ex = !quoted(&c->reply_text, "exchange '", ex, sizeof(ex));
	int has_rk = !quoted(&c->reply_text, "topic '", rk, sizeof(rk));

	for (uint64_t t = x->first_tag; t < x->next_tag; t++) {
		struct pending *p = slot(x, t);
		if (!p->n)
			continue;
		unsettled++;
		if (!hit && has_ex && !strcmp(p->exchange, ex) &&
		    (!has_rk || !strcmp(p->routing_key, rk)))
			hit = p;
	}
	if (!hit && unsettled == 1)
		for (uint64_t t = x->first_tag; t < x->next_tag && !hit; t++)
			if (slot(x, t)->n)
				hit = slot(x, t);
	if (!hit) {
		if (!unsettled || x->limit == 1) {
			pb_err_set(&x->r->stop, EX_NOPERM, "access refused by the broker: %.*s",
				   (int)c->reply_text.len, (const char *)c->reply_text.bytes);
			x->r->stopped = 1;
			return -1;
		}
		pb_log_info("403 naming no event sent (%.*s): going on one publish at a time",
			    (int)c->reply_text.len, (const char *)c->reply_text.bytes);
		x->limit = 1;
		rewind_window(x);
		return reopen(x);
	}
	flush_done(x);
	if (pb_outbox_delete_announcement(x->ob, hit->service, hit->seq, hit->exchange, &dropped,
					  &err))
		pb_log_err("%s", err.msg);
	x->r->refused += dropped;
	pb_err_set(&err, EX_NOPERM,
		   "exchange %s, routing key %s: access refused by the broker (%u %.*s): "
		   "this node may not publish there (check its region and federation, and the "
		   "broker user's topic permissions); %" PRId64
		   " events of service %s seq %" PRId64 " dropped, not spooled",
		   hit->exchange, hit->routing_key, c->reply_code, (int)c->reply_text.len,
		   (const char *)c->reply_text.bytes, dropped, hit->service, hit->seq);
	pb_log_err("%s", err.msg);
	if (!x->r->refusal.code)
		x->r->refusal = err;
	rewind_window(x);
	return reopen(x);
}

/* 404 on channel 1: a publish to an exchange that does not exist. */
static int on_not_found(struct sender *x, const amqp_channel_close_t *c)
{
	char ex[300];
	struct pb_err err = PB_ERR_INIT;

	if (quoted(&c->reply_text, "exchange '", ex, sizeof(ex))) {
		pb_amqp_close_err(&(amqp_method_t){ AMQP_CHANNEL_CLOSE_METHOD, (void *)c },
				  "publishing", &x->r->stop);
		x->r->stopped = 1;
		return -1;
	}
	pb_err_set(&err, EX_CONFIG, "exchange %s not found: run provbus-schema apply", ex);
	pb_log_err("%s", err.msg);
	if (!x->r->missing_err.code)
		x->r->missing_err = err;
	add_skip(x, ex);
	rewind_window(x);
	return reopen(x);
}

/* basic.return: the broker could route the message nowhere (not even to
 * the alternate exchange). Its ack follows; the event stays spooled. */
static int on_return(struct sender *x, const amqp_basic_return_t *ret)
{
	amqp_message_t msg;
	amqp_rpc_reply_t rr = amqp_read_message(x->conn, PB_CHANNEL, &msg, 0);
	char id[PB_UUID_STR] = "";
	int code = ret->reply_code;

	if (pb_amqp_reply_err(rr, "reading a returned message", &x->r->stop)) {
		x->r->stopped = 1;
		return -1;
	}
	if ((msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
	    msg.properties.message_id.len < sizeof(id)) {
		memcpy(id, msg.properties.message_id.bytes, msg.properties.message_id.len);
		id[msg.properties.message_id.len] = '\0';
	}
	for (uint64_t t = x->first_tag; t < x->next_tag; t++) {
		struct pending *p = slot(x, t);
		if (p->n && !strcmp(p->id, id)) {
			p->returned = 1;
			pb_log_warn("exchange %s, routing key %s: returned by the broker (%d %.*s): "
				    "no queue took it, not even the alternate exchange "
				    "(run provbus-schema apply); event %s stays spooled",
				    p->exchange, p->routing_key, code, (int)ret->reply_text.len,
				    (const char *)ret->reply_text.bytes, id);
			break;
		}
	}
	amqp_destroy_message(&msg);
	return 0;
}

/* One frame from the broker. Returns 0 to go on, -1 to stop. */
static int on_frame(struct sender *x, const amqp_frame_t *f)
{
	const amqp_method_t *m = &f->payload.method;

	if (f->frame_type != AMQP_FRAME_METHOD) {
		pb_log_debug("ignoring a frame of type %d on channel %d", f->frame_type, f->channel);
		return 0;
	}
	switch (m->id) {
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *a = m->decoded;
		on_confirm(x, a->delivery_tag, a->multiple, 1);
		return 0;
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *a = m->decoded;
		if (!x->r->nacked)
			pb_log_warn("the broker refused to take some events (basic.nack: a queue "
				    "bound to their exchange is full and rejects publishes, or the "
				    "broker failed to store them): they stay spooled");
		on_confirm(x, a->delivery_tag, a->multiple, 0);
		return 0;
	}
	case AMQP_BASIC_RETURN_METHOD:
		return on_return(x, m->decoded);
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		const amqp_connection_blocked_t *b = m->decoded;
		x->blocked = 1;
		pb_log_warn("the broker blocked publishing (%.*s: a memory or disk alarm): waiting "
			    "up to %" PRId64 " ms", (int)b->reason.len, (const char *)b->reason.bytes,
			    x->timeout_ms);
		return 0;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		x->blocked = 0;
		pb_log_info("the broker unblocked publishing");
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *c = m->decoded;
		if (c->reply_code == 403)
			return on_refused(x, c);
		if (c->reply_code == 404)
			return on_not_found(x, c);
		pb_amqp_close_err(m, "the broker closed the channel", &x->r->stop);
		x->r->stopped = 1;
		x->r->broker_failed = 1;
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_ok_t ok = { 0 };
		pb_amqp_close_err(m, "the broker closed the connection", &x->r->stop);
		if (x->r->stop.code != EX_NOPERM)
			x->r->stop.code = EX_TEMPFAIL;
		x->r->stopped = 1;
		x->r->broker_failed = x->r->stop.code == EX_TEMPFAIL;
		amqp_send_method(x->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		pb_session_abort(x->s);
		x->conn = NULL;
		return -1;
	}
	default:
		pb_log_debug("ignoring method 0x%08x on channel %d", (unsigned)m->id, f->channel);
		return 0;
	}
}

/* Reads frames for up to wait_ms (0: only what is there), then whatever
 * else is already there. Returns 0, or -1 when the send must stop. */
static int read_frames(struct sender *x, int64_t wait_ms)
{
	for (;;) {
		struct timeval tv = { wait_ms / 1000, (wait_ms % 1000) * 1000 };
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(x->conn, &f, &tv);

		if (st == AMQP_STATUS_TIMEOUT)
			return 0;
		if (st != AMQP_STATUS_OK) {
			pb_amqp_status_err(st, "waiting for confirms", &x->r->stop);
			x->r->stop.code = EX_TEMPFAIL;
			x->r->stopped = 1;
			x->r->broker_failed = 1;
			pb_session_abort(x->s);
			x->conn = NULL;
			return -1;
		}
		if (on_frame(x, &f))
			return -1;
		if (x->conn)
			amqp_maybe_release_buffers(x->conn);
		wait_ms = 0;
	}
}

/* ---- the run ---- */

/* confirm.select with nowait: no round trip before the first publish.
 * The broker handles a channel's methods in order, so every publish after
 * it is confirmed; a refusal would come back as a channel.close, which
 * the send loop reads like any other. */
static int select_confirms(struct sender *x)
{
	amqp_confirm_select_t req = { .nowait = 1 };
	int st = amqp_send_method(x->conn, PB_CHANNEL, AMQP_CONFIRM_SELECT_METHOD, &req);

	if (pb_amqp_status_err(st, "selecting confirm mode", &x->r->stop)) {
		x->r->stopped = 1;
		return -1;
	}
	return 0;
}

static void send_loop(struct sender *x)
{
	x->deadline = pb_mono_ms() + x->timeout_ms;
	for (;;) {
		int64_t now, wait_ms;
		int n = 0, blocked_write = 0;

		while (n < DRAIN_EVERY && can_publish(x)) {
			if (!writable(x)) {
				blocked_write = 1;
				break;
			}
			if (publish_next(x))
				return;
			n++;
		}
		if (x->r->stopped)
			return;
		if (!x->outstanding && !have_rows(x))
			return;	/* all sent and settled */
		now = pb_mono_ms();
		if (now >= x->deadline) {
			pb_err_set(&x->r->stop, EX_TEMPFAIL,
				   "no confirm from the broker %s for %" PRId64 " ms (%zu events "
				   "unconfirmed%s)", pb_session_url(x->s), x->timeout_ms,
				   x->outstanding,
				   x->blocked ? "; the broker is blocking publishers: memory or disk alarm" : "");
			x->r->stopped = 1;
			pb_session_abort(x->s);
			x->conn = NULL;
			return;
		}
		if (blocked_write)
			wait_ms = 20;	/* the socket is full: look again soon */
		else if (can_publish(x))
			wait_ms = 0;
		else
			wait_ms = x->deadline - now;
		if (wait_ms > 0 || now - x->deleted_at >= DELETE_EVERY_MS)
			flush_done(x);
		if (read_frames(x, wait_ms))
			return;
		show_progress(x, 0);
	}
}

void pb_sender_run(struct pb_session *s, struct pb_outbox *ob, const struct pb_send_opts *o,
		   struct pb_send_result *r)
{
	struct sender x;
	struct timeval rpc = { o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000 };
	size_t want;		/* rows the outbox holds, at least 1 */

	memset(r, 0, sizeof(*r));
	memset(&x, 0, sizeof(x));
	x.s = s;
	x.conn = pb_session_conn(s);
	x.ob = ob;
	x.r = r;
	x.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	x.first_tag = x.next_tag = 1;
	if (pb_outbox_count(ob, &x.total, &r->stop)) {
		r->stopped = 1;
		goto out;
	}
	x.cap = x.limit = o->window ? o->window : 1000;
	/* a run of a few events touches a few rows' worth of memory, not
	 * the window's and CHUNK's (each fresh page costs a fault) */
	want = x.total > 0 ? (size_t)x.total : 1;
	x.chunk = want < CHUNK ? want : CHUNK;
	if (x.cap > want)
		x.cap = x.limit = want;
	/* on the heap, not in x on the stack: calloc'd fresh memory is only
	 * made resident where a run writes it (zeroing 56 KB of stack cost
	 * a run of a few events 14 page faults) */
	x.win = calloc(x.cap, sizeof(*x.win));
	x.rows = calloc(x.chunk, sizeof(*x.rows));
	x.done = malloc(DELETE_BATCH * sizeof(*x.done));
	if (!x.win || !x.rows || !x.done) {
		pb_err_set(&r->stop, EX_OSERR, "out of memory");
		r->stopped = 1;
		goto out;
	}
	x.progress = o->progress && x.total > 2 * (int64_t)x.cap;
	amqp_set_rpc_timeout(x.conn, &rpc);
	/* no passive check of the exchanges first (a round trip each): a
	 * missing one closes the channel with 404 on the first publish to it
	 * (on_not_found: exit 78 with the hint, its events stay spooled) */
	x.conn = pb_session_conn(s);
	if (select_confirms(&x))
		goto out;
	send_loop(&x);
	show_progress(&x, 1);
out:
	flush_done(&x);
	drop_chunk(&x);
	for (uint64_t t = x.first_tag; x.win && t < x.next_tag; t++)
		pending_clear(slot(&x, t));
	for (size_t i = 0; i < x.n_skip; i++)
		free(x.skip[i]);
	free(x.skip);
	free(x.win);
	free(x.rows);
	free(x.done);
}
