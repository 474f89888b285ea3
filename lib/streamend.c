/* streamend.c — where a catch-up read of a stream ends (streamend.h). */
#include "streamend.h"

void pb_stream_end_init(struct pb_stream_end *s, int64_t mono, int64_t from_s,
			int64_t from_offset)
{
	*s = (struct pb_stream_end){ 0 };
	s->started = mono;
	s->from_s = from_s;
	s->from_offset = from_offset;
	s->main_off = s->probe_end = s->next_off = -1;
}

void pb_stream_end_alive(struct pb_stream_end *s, int64_t mono)
{
	s->main_last = mono;
}

void pb_stream_end_main(struct pb_stream_end *s, int64_t offset, int64_t mono)
{
	s->main_seen = 1;
	s->main_last = mono;
	if (offset > s->main_off)
		s->main_off = offset;
}

void pb_stream_end_probe(struct pb_stream_end *s, int64_t offset, int64_t timestamp_s,
			 int64_t mono)
{
	if (s->burst_over) {
		/* past the burst the probe follows new messages: only those
		 * known to predate the start still move the end */
		if (s->next_seen && offset < s->next_off && offset > s->probe_end)
			s->probe_end = offset;
		return;
	}
	if (!s->probe_seen) {
		s->probe_seen = 1;
		s->probe_first = mono;
	}
	s->probe_last = mono;
	if (offset > s->probe_end)
		s->probe_end = offset;
	if (timestamp_s > s->probe_newest_s)
		s->probe_newest_s = timestamp_s;
}

void pb_stream_end_next(struct pb_stream_end *s, int64_t offset)
{
	if (!s->next_seen) {
		s->next_seen = 1;
		s->next_off = offset;
	}
}

int64_t pb_stream_end_target(const struct pb_stream_end *s)
{
	if (s->next_seen)
		return s->next_off - 1;	/* exact: the stream as of the start */
	if (s->burst_over)
		return s->probe_end;
	return -1;
}

static int64_t last_sign(const struct pb_stream_end *s)
{
	int64_t t = s->started;

	if (s->main_last > t)
		t = s->main_last;
	if (s->probe_last > t)
		t = s->probe_last;
	return t;
}

enum pb_stream_end_state pb_stream_end_check(struct pb_stream_end *s,
					     const struct pb_stream_end_limits *l, int64_t mono)
{
	int64_t target;

	if (s->probe_seen && !s->burst_over &&
	    (mono - s->probe_last >= l->burst_gap_ms || mono - s->probe_first >= l->burst_max_ms))
		s->burst_over = 1;
	target = pb_stream_end_target(s);
	if (target >= 0 && s->main_seen && s->main_off >= target)
		return PB_STREAM_END;
	/* the read starts past the end: nothing new since the offset reached */
	if (target >= 0 && s->from_offset >= 0 && target < s->from_offset)
		return PB_STREAM_END;
	if (target < 0 && s->next_seen)
		return PB_STREAM_END;	/* "next" at offset 0: the stream was empty */
	if (!s->main_seen && s->burst_over && s->from_s > 0 && s->probe_newest_s > 0 &&
	    s->probe_newest_s < s->from_s)
		return PB_STREAM_OLD;
	if (!s->nonempty && !s->main_seen && !s->probe_seen && mono - s->started >= l->empty_ms)
		return PB_STREAM_EMPTY;
	if (mono - last_sign(s) >= l->idle_ms)
		return PB_STREAM_IDLE;
	return PB_STREAM_READING;
}

int64_t pb_stream_end_deadline(const struct pb_stream_end *s,
			       const struct pb_stream_end_limits *l)
{
	int64_t t = last_sign(s) + l->idle_ms;

	if (s->probe_seen && !s->burst_over) {
		int64_t b = s->probe_last + l->burst_gap_ms;

		if (s->probe_first + l->burst_max_ms < b)
			b = s->probe_first + l->burst_max_ms;
		if (b < t)
			t = b;
	}
	if (!s->nonempty && !s->main_seen && !s->probe_seen && s->started + l->empty_ms < t)
		t = s->started + l->empty_ms;
	return t;
}
