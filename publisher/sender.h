/* sender.h — sends the outbox with publisher confirms (provbus-publish(1)).
 *
 * rabbitmq-c 0.11 has no "wait for confirms": pb_sender_run publishes
 * (persistent, mandatory, in confirm mode) a window of events without
 * waiting, and reads the broker's frames itself: basic.ack / basic.nack
 * (with `multiple`), basic.return, channel.close (403 from topic
 * permissions, 404), connection.close, connection.blocked/unblocked.
 * An event leaves the outbox only when the broker acked it (and did not
 * return it first). */
#ifndef PB_SENDER_H
#define PB_SENDER_H

#include <stdint.h>

#include "err.h"
#include "outbox.h"
#include "session.h"

struct pb_send_opts {
	int64_t timeout_ms;	/* the longest wait without progress (a confirm) */
	size_t window;		/* outstanding confirms at most; 0: 1000 */
	int progress;		/* report progress on stderr (a terminal) */
};

struct pb_send_result {
	int64_t confirmed;	/* acked, deleted from the outbox */
	int64_t refused;	/* 403: deleted, not spooled */
	int64_t nacked;		/* stay spooled */
	int64_t returned;	/* unroutable (basic.return): stay spooled */
	int64_t missing;	/* for a missing exchange: stay spooled */
	int stopped;		/* 1: the send stopped early (timeout, connection lost) */
	int broker_failed;	/* with stopped: the broker closed the channel or the
				 * connection (not 403/404), or the socket failed:
				 * the next URL may do better */
	struct pb_err refusal;	/* the first 403, EX_NOPERM, naming exchange and key */
	struct pb_err missing_err;	/* the first missing exchange, EX_CONFIG */
	struct pb_err stop;	/* why it stopped, EX_TEMPFAIL / EX_UNAVAILABLE */
};

/* Sends every spooled event of ob, oldest first, on the connected session
 * s (channel 1, put into confirm mode here): the publishes, at most
 * opts->window unconfirmed at a time; an exchange that does not exist
 * (the broker closes the channel with 404) is named in r->missing_err and
 * its events are skipped and stay spooled. Deletes each
 * confirmed event, and the announcements refused with 403. Never fails as
 * a whole: what happened is in *r; the session may be left broken
 * (check pb_session_connected / r->stopped). */
void pb_sender_run(struct pb_session *s, struct pb_outbox *ob, const struct pb_send_opts *opts,
		   struct pb_send_result *r);

#endif
