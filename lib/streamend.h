/* streamend.h — where a catch-up read of a RabbitMQ stream ends (the
 * consumer's history catch-up, provbus-fleet's reads).
 *
 * A stream has no "end" over AMQP 0-9-1. The reader consumes it (the main
 * consumer) and opens a second consumer, the probe, from offset "last":
 * RabbitMQ starts it at the first message of the stream's last chunk and
 * sends that chunk at once. The highest offset of that burst is the end of
 * the stream as of the start; the read is over once the main consumer has
 * delivered a message at or past it, however long the broker takes to get
 * there. A reader may also open a "next" consumer: its first offset is the
 * first message published after the start, so everything below it is the
 * stream as of the start (exact, even while the burst is still unclear).
 *
 * Silence is never the normal end: without a target, only idle_ms without
 * any delivery (many seconds) ends a read, as a safety net the caller
 * should log as a warning. All times are monotonic milliseconds passed in
 * by the caller, so the decision is a pure function of what was seen. */
#ifndef PB_STREAMEND_H
#define PB_STREAMEND_H

#include <stdint.h>

struct pb_stream_end_limits {
	int64_t burst_gap_ms;	/* the probe's burst is over after this gap ... */
	int64_t burst_max_ms;	/* ... or this long after its first message (a busy stream) */
	int64_t empty_ms;	/* nothing at all from either consumer: the stream is empty */
	int64_t idle_ms;	/* the safety net: no delivery for this long */
};

struct pb_stream_end {
	int64_t started;		/* mono, the subscriptions */
	int64_t from_s;			/* the main consumer starts at this AMQP timestamp (s), or 0 */
	int64_t from_offset;		/* ... or at this offset, or -1 */
	int nonempty;			/* known not empty (a message count): never PB_STREAM_EMPTY */
	int main_seen, probe_seen, next_seen, burst_over;
	int64_t main_off;		/* the highest offset the main consumer delivered */
	int64_t probe_end;		/* the highest offset of the probe's burst */
	int64_t probe_newest_s;		/* the newest AMQP timestamp in the burst */
	int64_t next_off;		/* the "next" consumer's first offset */
	int64_t main_last, probe_first, probe_last;	/* mono */
};

enum pb_stream_end_state {
	PB_STREAM_READING = 0,
	PB_STREAM_END,		/* read to the end as of the start */
	PB_STREAM_EMPTY,	/* neither consumer got anything (and not known nonempty) */
	PB_STREAM_OLD,		/* the whole stream is older than from_s: nothing to read */
	PB_STREAM_IDLE,		/* the safety net fired: the end is not known */
};

void pb_stream_end_init(struct pb_stream_end *s, int64_t mono, int64_t from_s,
			int64_t from_offset);
/* A delivery of the main consumer, the "last" probe, the "next" probe. */
void pb_stream_end_main(struct pb_stream_end *s, int64_t offset, int64_t mono);
void pb_stream_end_probe(struct pb_stream_end *s, int64_t offset, int64_t timestamp_s,
			 int64_t mono);
void pb_stream_end_next(struct pb_stream_end *s, int64_t offset);
/* Any delivery without an offset: only keeps the safety net from firing. */
void pb_stream_end_alive(struct pb_stream_end *s, int64_t mono);
/* The decision at time mono (it may settle the burst, else idempotent). */
enum pb_stream_end_state pb_stream_end_check(struct pb_stream_end *s,
					     const struct pb_stream_end_limits *l, int64_t mono);
/* The offset that ends the read, or -1 while it is not known. */
int64_t pb_stream_end_target(const struct pb_stream_end *s);
/* When pb_stream_end_check may next change its answer (mono). */
int64_t pb_stream_end_deadline(const struct pb_stream_end *s,
			       const struct pb_stream_end_limits *l);

#endif
