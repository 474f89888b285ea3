/* rstream.c — the stream protocol reader of provbus-fleet (rstream.h).
 *
 * Wire format: deps/rabbitmq_stream/docs/PROTOCOL.adoc and
 * rabbit_stream_core.erl of RabbitMQ 3.10 (every integer big endian, a
 * frame is a uint32 size then key, version, ...; a response has the top
 * bit of its key set). The chunk: osiris_log (48-byte header, then
 * entries: a simple entry is <<0:1, Size:31, Data>>, a sub-batch
 * <<1:1, Compression:3, 0:4, Records:16, Uncompressed:32, Length:32,
 * Data>> whose records are <<Size:32, Data>>). The message: AMQP 1.0
 * sections as rabbit_msg_record:to_iodata/1 writes them.
 *
 * Subscriptions: 0/1 the main read of history/fleet (from the window's
 * timestamp, or the cached offset), 2/3 the probes (offset spec "last",
 * one credit: the last chunk, whose end is the end of the read), 4/5 on a
 * resumed read, where the window starts (a timestamp spec, one credit:
 * the first chunk of the window). A main subscription gets a credit back
 * for each chunk it has taken in. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "fleet.h"
#include "log.h"
#include "pbtime.h"
#include "rstream.h"
#include "session.h"

/* ---- decoding helpers ---- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static int why_set(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int why_set(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (why && size) {
		va_start(ap, fmt);
		vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int rs_deliver_decode(const uint8_t *frame, size_t len, uint8_t *sub, struct rs_chunk *c,
		      char *why, size_t why_size)
{
	const uint8_t *h = frame + 5;
	uint32_t n_records;

	if (len < 5 + RS_CHUNK_HEADER_LEN)
		return why_set(why, why_size, "deliver frame: %zu bytes, shorter than its header "
			       "and a chunk header (%d)", len, 5 + RS_CHUNK_HEADER_LEN);
	if ((be16(frame) & 0x7fff) != RS_KEY_DELIVER || be16(frame + 2) != 1)
		return why_set(why, why_size, "deliver frame: key 0x%04x version %u, not a "
			       "Deliver of version 1", be16(frame), be16(frame + 2));
	*sub = frame[4];
	if (h[0] >> 4 != 5 || (h[0] & 15) != 0)
		return why_set(why, why_size, "chunk at byte 5: magic/version 0x%02x, not an "
			       "Osiris chunk of format 0 (0x50)", h[0]);
	c->type = h[1];
	c->n_entries = be16(h + 2);
	n_records = be32(h + 4);
	c->n_records = n_records;
	c->timestamp_ms = (int64_t)be64(h + 8);
	c->first_offset = (int64_t)be64(h + 24);
	c->data_len = be32(h + 36);
	c->trailer_len = be32(h + 40);
	c->data = h + RS_CHUNK_HEADER_LEN;
	if (c->first_offset < 0)
		return why_set(why, why_size, "chunk at byte 5: first offset %llu out of range",
			       (unsigned long long)be64(h + 24));
	if (c->data_len > len - 5 - RS_CHUNK_HEADER_LEN)
		return why_set(why, why_size, "chunk at byte 5: data length %u, but the frame "
			       "holds %zu bytes after the chunk header", c->data_len,
			       len - 5 - RS_CHUNK_HEADER_LEN);
	if (c->n_records < c->n_entries)
		return why_set(why, why_size, "chunk at byte 5: %u records in %u entries",
			       c->n_records, c->n_entries);
	return 0;
}

int rs_chunk_records(const struct rs_chunk *c, rs_record_cb cb, void *ctx, char *why,
		     size_t why_size)
{
	const uint8_t *p = c->data;
	size_t pos = 0, len = c->data_len;
	int64_t off = c->first_offset;
	uint32_t left = c->n_records;
	int rc;

	for (unsigned e = 0; e < c->n_entries; e++) {
		if (len - pos < 4)
			return why_set(why, why_size, "chunk data at byte %zu: entry %u of %u "
				       "truncated", pos, e + 1, c->n_entries);
		if (!(p[pos] & 0x80)) {
			uint32_t n = be32(p + pos) & 0x7fffffff;

			if (n > len - pos - 4)
				return why_set(why, why_size, "chunk data at byte %zu: entry of %u "
					       "bytes, %zu left", pos, n, len - pos - 4);
			if (!left)
				return why_set(why, why_size, "chunk data at byte %zu: more records "
					       "than the header's %u", pos, c->n_records);
			left--;
			if ((rc = cb(off++, p + pos + 4, n, ctx)))
				return rc;
			pos += 4 + (size_t)n;
			continue;
		}
		/* a sub-batch */
		if (len - pos < 11)
			return why_set(why, why_size, "chunk data at byte %zu: sub-batch header "
				       "truncated", pos);
		{
			int comp = (p[pos] >> 4) & 7;
			uint32_t recs = be16(p + pos + 1), sub_len = be32(p + pos + 7), sp = 0;
			const uint8_t *s = p + pos + 11;

			if (comp)
				return why_set(why, why_size, "chunk data at byte %zu: a sub-batch "
					       "compressed with codec %d, which this reader does not "
					       "decompress", pos, comp);
			if (sub_len > len - pos - 11)
				return why_set(why, why_size, "chunk data at byte %zu: sub-batch of "
					       "%u bytes, %zu left", pos, sub_len, len - pos - 11);
			if (recs > left)
				return why_set(why, why_size, "chunk data at byte %zu: more records "
					       "than the header's %u", pos, c->n_records);
			for (uint32_t i = 0; i < recs; i++) {
				uint32_t n;

				if (sub_len - sp < 4 || (n = be32(s + sp)) > sub_len - sp - 4)
					return why_set(why, why_size, "chunk data at byte %zu: record "
						       "%u of the sub-batch truncated",
						       pos + 11 + sp, i + 1);
				if ((rc = cb(off++, s + sp + 4, n, ctx)))
					return rc;
				sp += 4 + n;
			}
			left -= recs;
			pos += 11 + (size_t)sub_len;
		}
	}
	if (left)
		return why_set(why, why_size, "chunk data: %u records of the header's %u missing",
			       left, c->n_records);
	return 0;
}

/* AMQP 1.0 (OASIS, part 1: types). A value starts with its constructor;
 * the high nibble says how its size is written. */
struct cur {
	const uint8_t *p;
	size_t len, pos;
};

static int skip_value(struct cur *c, int depth, char *why, size_t ws);

/* The extent of the value at c: *start of its payload, *n its bytes
 * (for fixed widths, variable ones and compounds alike); moves past it. */
static int value_span(struct cur *c, uint8_t *code, const uint8_t **start, size_t *n,
		      int depth, char *why, size_t ws)
{
	size_t at = c->pos, w;
	uint8_t k;

	if (c->pos >= c->len)
		return why_set(why, ws, "amqp 1.0 value at byte %zu: truncated", at);
	k = c->p[c->pos++];
	if (k == 0x00) {	/* described: descriptor, then the value */
		if (depth > 8)
			return why_set(why, ws, "amqp 1.0 value at byte %zu: nested too deep", at);
		if (skip_value(c, depth + 1, why, ws) < 0)
			return -1;
		return value_span(c, code, start, n, depth + 1, why, ws);
	}
	*code = k;
	switch (k >> 4) {
	case 0x4: w = 0; break;
	case 0x5: w = 1; break;
	case 0x6: w = 2; break;
	case 0x7: w = 4; break;
	case 0x8: w = 8; break;
	case 0x9: w = 16; break;
	case 0xa: case 0xc: case 0xe:
		if (c->pos + 1 > c->len)
			return why_set(why, ws, "amqp 1.0 value at byte %zu: size truncated", at);
		w = c->p[c->pos++];
		break;
	case 0xb: case 0xd: case 0xf:
		if (c->len - c->pos < 4)
			return why_set(why, ws, "amqp 1.0 value at byte %zu: size truncated", at);
		w = be32(c->p + c->pos);
		c->pos += 4;
		break;
	default:
		return why_set(why, ws, "amqp 1.0 value at byte %zu: unknown constructor 0x%02x",
			       at, k);
	}
	if (w > c->len - c->pos)
		return why_set(why, ws, "amqp 1.0 value at byte %zu: %zu bytes, %zu left", at, w,
			       c->len - c->pos);
	*start = c->p + c->pos;
	*n = w;
	c->pos += w;
	return 0;
}

static int skip_value(struct cur *c, int depth, char *why, size_t ws)
{
	uint8_t code;
	const uint8_t *s;
	size_t n;

	return value_span(c, &code, &s, &n, depth, why, ws);
}

/* A compound's element count and a cursor over its elements. */
static int compound(uint8_t code, const uint8_t *s, size_t n, struct cur *in, uint32_t *count,
		    const struct cur *outer, char *why, size_t ws)
{
	size_t hdr = (code >> 4) == 0xc ? 1 : 4;

	if (code == 0x45) {	/* list0 */
		*count = 0;
		*in = (struct cur){ s, 0, 0 };
		return 0;
	}
	if ((code >> 4) != 0xc && (code >> 4) != 0xd)
		return why_set(why, ws, "amqp 1.0 at byte %zu: constructor 0x%02x, not a list or map",
			       (size_t)(s - outer->p), code);
	if (n < hdr)
		return why_set(why, ws, "amqp 1.0 at byte %zu: compound count truncated",
			       (size_t)(s - outer->p));
	*count = hdr == 1 ? s[0] : be32(s);
	*in = (struct cur){ s + hdr, n - hdr, 0 };
	return 0;
}

static int is_string(uint8_t code)
{
	return code == 0xa1 || code == 0xb1 || code == 0xa3 || code == 0xb3;
}

static int is_binary(uint8_t code)
{
	return code == 0xa0 || code == 0xb0;
}

static int take_annotations(struct cur *map, uint32_t count, struct rs_amqp10 *m, char *why,
			    size_t ws)
{
	for (uint32_t i = 0; i + 1 < count; i += 2) {
		uint8_t kc, vc;
		const uint8_t *k, *v;
		size_t kn, vn;

		if (value_span(map, &kc, &k, &kn, 0, why, ws) < 0 ||
		    value_span(map, &vc, &v, &vn, 0, why, ws) < 0)
			return -1;
		if (!is_string(kc) || !is_string(vc))
			continue;
		if (kn == 10 && !memcmp(k, "x-exchange", 10)) {
			m->exchange = v;
			m->exchange_len = vn;
		} else if (kn == 13 && !memcmp(k, "x-routing-key", 13)) {
			m->routing_key = v;
			m->routing_key_len = vn;
		}
	}
	return 0;
}

static int take_properties(struct cur *list, uint32_t count, struct rs_amqp10 *m, char *why,
			   size_t ws)
{
	for (uint32_t i = 0; i < count && i < 10; i++) {
		uint8_t vc;
		const uint8_t *v;
		size_t vn;

		if (value_span(list, &vc, &v, &vn, 0, why, ws) < 0)
			return -1;
		if (i == 1 && is_binary(vc)) {
			m->user_id = v;
			m->user_id_len = vn;
		} else if (i == 9 && vc == 0x83 && vn == 8) {
			m->creation_ms = (int64_t)be64(v);
		}
	}
	return 0;
}

/* The section a descriptor names: its numeric code, or 0. */
static uint64_t section_code(struct cur *c, char *why, size_t ws)
{
	uint8_t code;
	const uint8_t *s;
	size_t n;
	static const char *const names[] = { "amqp:message-annotations:map",
					     "amqp:properties:list", "amqp:data:binary" };
	static const uint64_t codes[] = { 0x72, 0x73, 0x75 };

	if (value_span(c, &code, &s, &n, 0, why, ws) < 0)
		return UINT64_MAX;
	if (code == 0x53 && n == 1)
		return s[0];
	if (code == 0x80 && n == 8)
		return be64(s);
	if (code == 0xa3 || code == 0xb3)
		for (size_t i = 0; i < 3; i++)
			if (n == strlen(names[i]) && !memcmp(s, names[i], n))
				return codes[i];
	return 0;
}

int rs_amqp10_decode(const uint8_t *p, size_t len, struct rs_amqp10 *m, char *why,
		     size_t why_size)
{
	struct cur c = { p, len, 0 };

	*m = (struct rs_amqp10){ 0 };
	while (c.pos < c.len) {
		size_t at = c.pos;
		uint64_t code;
		uint8_t vc;
		const uint8_t *v;
		size_t vn;
		uint32_t count;
		struct cur in;

		if (c.p[c.pos] != 0x00)
			return why_set(why, why_size, "amqp 1.0 message at byte %zu: 0x%02x, not a "
				       "described section", at, c.p[c.pos]);
		c.pos++;
		if ((code = section_code(&c, why, why_size)) == UINT64_MAX ||
		    value_span(&c, &vc, &v, &vn, 0, why, why_size) < 0)
			return -1;
		switch (code) {
		case 0x72:
			if (compound(vc, v, vn, &in, &count, &c, why, why_size) < 0 ||
			    take_annotations(&in, count, m, why, why_size) < 0)
				return -1;
			break;
		case 0x73:
			if (compound(vc, v, vn, &in, &count, &c, why, why_size) < 0 ||
			    take_properties(&in, count, m, why, why_size) < 0)
				return -1;
			break;
		case 0x75:
			if (!is_binary(vc))
				return why_set(why, why_size, "amqp 1.0 message at byte %zu: a data "
					       "section of type 0x%02x, not binary", at, vc);
			m->body = v;
			m->body_len = vn;
			break;
		default:
			break;	/* header, application-properties, ...: not needed */
		}
	}
	if (!m->body)
		return why_set(why, why_size, "amqp 1.0 message: no data section");
	return 0;
}

/* ---- the reader ---- */

#define SUBS 6
/* Chunks in flight per main subscription, topped up in bulk: the broker
 * spends about as much on a Credit frame as on sending a chunk, so one
 * per chunk (as the protocol's examples do) doubles its work. */
#define MAIN_CREDIT 65535
#define CREDIT_LOW 32768	/* top up when fewer are in flight */
#define IO_CHUNK 262144
#define FRAME_LIMIT (64u << 20)	/* larger: an error, never an allocation */
#define TAIL_MS 100		/* the longest wait in a pump */
#define EMPTY_MS 1500		/* no chunk at all: the stream is empty (stream.c) */
#define IDLE_MS 30000		/* the safety net (stream.c) */

enum { K_PEER = 0x11, K_SASL_HS = 0x12, K_SASL_AUTH = 0x13, K_TUNE = 0x14, K_OPEN = 0x15,
       K_CLOSE = 0x16, K_HEARTBEAT = 0x17, K_SUBSCRIBE = 0x07, K_CREDIT = 0x09,
       K_METADATA_UPDATE = 0x10 };
enum { SPEC_LAST = 2, SPEC_NEXT = 3, SPEC_OFFSET = 4, SPEC_TIMESTAMP = 5 };

struct rside {
	int done, state;	/* state: the end (below) once done */
	int64_t resume_off;
	char resume_digest[PB_SHA256_HEX_LEN + 1];
	int resumed;
	int64_t target;		/* the end as of the subscription (probe), -1 unknown */
	int64_t probe_ts_ms;	/* the last chunk's timestamp */
	int probe_seen, main_seen;
	int64_t main_off;	/* the highest offset the main subscription reached */
	int64_t start_off;
	char *last_body;
	size_t last_len;
	int64_t last_off;
	int64_t last_sign;	/* mono: anything for this side */
	uint64_t n_read;
	uint64_t n_chunks, n_bytes;	/* of the main subscription (debug log) */
	uint32_t in_flight;	/* credit the main subscription has left */
	int skip;		/* not subscribed to at all (rs_opts) */
};

enum { END_READING, END_DONE, END_EMPTY, END_OLD, END_IDLE };

struct rs_reader {
	int fd;
	char streams[2][192];
	int follow, from_next;
	int64_t from_ms, started;
	struct rside side[2];
	uint8_t *buf;		/* what was read and not yet taken */
	size_t cap, len;
	uint32_t frame_max, heartbeat_s;
	int64_t last_sent;	/* mono */
	uint32_t corr;
	char invalid[600];
	char fault[400];	/* a malformed frame: why */
	/* the message being handed on */
	char exchange[256], routing_key[256], user_id[256];
	void (*cb)(const struct fl_msg *, int, void *);
	void *ctx;
	int cb_side;
};

static void copy_str(char *dst, size_t size, const uint8_t *p, size_t n)
{
	if (n > size - 1)
		n = size - 1;
	if (n)
		memcpy(dst, p, n);
	dst[n] = '\0';
}

/* A frame being built: its size is written at send time. */
struct wbuf {
	uint8_t b[2048];
	size_t n;
	int over;
};

static void put(struct wbuf *w, const void *p, size_t n)
{
	if (w->n + n > sizeof(w->b)) {
		w->over = 1;
		return;
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void put8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 2);
}

static void put32(struct wbuf *w, uint32_t v)
{
	put16(w, (uint16_t)(v >> 16));
	put16(w, (uint16_t)v);
}

static void put64(struct wbuf *w, uint64_t v)
{
	put32(w, (uint32_t)(v >> 32));
	put32(w, (uint32_t)v);
}

static void put_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);

	if (n > 32767) {
		w->over = 1;
		return;
	}
	put16(w, (uint16_t)n);
	put(w, s, n);
}

static void frame_start(struct wbuf *w, uint16_t key)
{
	w->n = 4;
	w->over = 0;
	put16(w, key);
	put16(w, 1);
}

static int send_all(struct rs_reader *r, struct wbuf *w, struct pb_err *err)
{
	size_t off = 0;

	if (w->over)
		return pb_err_set(err, EX_SOFTWARE, "stream protocol: a request too long to send");
	w->b[0] = (uint8_t)((w->n - 4) >> 24);
	w->b[1] = (uint8_t)((w->n - 4) >> 16);
	w->b[2] = (uint8_t)((w->n - 4) >> 8);
	w->b[3] = (uint8_t)(w->n - 4);
	while (off < w->n) {
		ssize_t n = send(r->fd, w->b + off, w->n - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = { r->fd, POLLOUT, 0 };

			if (poll(&pf, 1, 5000) <= 0)
				return pb_err_set(err, EX_TEMPFAIL, "stream protocol: the broker "
						  "does not take what is sent");
			continue;
		}
		if (n <= 0)
			return pb_err_set(err, EX_TEMPFAIL, "stream protocol: sending: %s",
					  n < 0 ? strerror(errno) : "connection closed");
		off += (size_t)n;
	}
	r->last_sent = pb_mono_ms();
	explicit_bzero(w->b, w->n);	/* it may have held the password */
	return 0;
}

/* Reads what the socket has, waiting at most wait_ms. 1 read something,
 * 0 nothing yet, -1 with err. */
static int fill(struct rs_reader *r, int wait_ms, struct pb_err *err)
{
	struct pollfd pf = { r->fd, POLLIN, 0 };
	ssize_t n;
	int st;

	if (r->cap - r->len < IO_CHUNK) {
		size_t cap = r->cap ? r->cap : IO_CHUNK * 2;
		uint8_t *b;

		while (cap - r->len < IO_CHUNK)
			cap *= 2;
		if (!(b = realloc(r->buf, cap)))
			return pb_err_set(err, EX_OSERR, "out of memory");
		r->buf = b;
		r->cap = cap;
	}
	st = poll(&pf, 1, wait_ms < 0 ? 0 : wait_ms);
	if (st < 0)
		return errno == EINTR ? 0 : pb_err_set(err, EX_OSERR, "poll: %s", strerror(errno));
	if (!st)
		return 0;
	n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return pb_err_set(err, EX_TEMPFAIL, "stream protocol: the broker closed the "
				  "connection%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
	r->len += (size_t)n;
	return 1;
}

/* The next complete frame in the buffer: 1 with *f, *n (its content),
 * 0 when not complete yet, -1 when its size is out of bounds. */
static int next_frame(struct rs_reader *r, size_t *at, const uint8_t **f, size_t *n,
		      struct pb_err *err)
{
	uint32_t size;

	if (r->len - *at < 4)
		return 0;
	size = be32(r->buf + *at);
	if (size < 4 || size > FRAME_LIMIT)
		return pb_err_set(err, EX_PROTOCOL, "stream protocol: a frame of %u bytes (at most "
				  "%u, at least 4)", size, FRAME_LIMIT);
	if (r->len - *at - 4 < size)
		return 0;
	*f = r->buf + *at + 4;
	*n = size;
	*at += 4 + (size_t)size;
	return 1;
}

static void consumed(struct rs_reader *r, size_t at)
{
	if (at) {
		memmove(r->buf, r->buf + at, r->len - at);
		r->len -= at;
	}
}

static const char *code_text(unsigned code)
{
	switch (code) {
	case 0x02: return "stream does not exist";
	case 0x06: return "stream not available";
	case 0x07: return "SASL mechanism not supported";
	case 0x08: return "authentication failure";
	case 0x09: return "SASL error";
	case 0x0b: return "SASL authentication failure loopback";
	case 0x0c: return "virtual host access failure";
	case 0x0d: return "unknown frame";
	case 0x0e: return "frame too large";
	case 0x0f: return "internal error";
	case 0x10: return "access refused";
	default: return "error";
	}
}

/* Waits until deadline for the first frame that take() accepts (returns
 * 1 for), and takes that frame out of the buffer; frames that came
 * before it (deliveries to a subscription made already) stay there for
 * rs_reader_pump. A Close from the broker ends the wait. 0, or -1 with
 * err (timeout: the message given). */
static int await_frame(struct rs_reader *r, int64_t deadline,
		       int (*take)(struct rs_reader *r, const uint8_t *f, size_t n, void *arg),
		       void *arg, const char *timeout, struct pb_err *err)
{
	size_t at = 0;

	for (;;) {
		size_t start = at, n = 0;
		const uint8_t *f = NULL;
		int st = next_frame(r, &at, &f, &n, err);
		int64_t left;

		if (st < 0)
			return -1;
		if (st) {
			if (take(r, f, n, arg)) {
				memmove(r->buf + start, r->buf + at, r->len - at);
				r->len -= at - start;
				return 0;
			}
			if (be16(f) == K_CLOSE && n >= 10)
				return pb_err_set(err, EX_TEMPFAIL, "stream protocol: the broker closed "
						  "the connection (code %u)", be16(f + 8));
			continue;
		}
		left = deadline - pb_mono_ms();
		if (left <= 0)
			return pb_err_set(err, EX_TEMPFAIL, "stream protocol: %s", timeout);
		if (fill(r, (int)left, err) < 0)
			return -1;
	}
}

struct response {
	uint16_t key;
	uint32_t corr;
	unsigned code;
};

static int take_response(struct rs_reader *r, const uint8_t *f, size_t n, void *arg)
{
	struct response *a = arg;

	(void)r;
	if (be16(f) != (0x8000 | a->key) || n < 10 || be32(f + 4) != a->corr)
		return 0;
	a->code = be16(f + 8);
	return 1;
}

/* The response to key with correlation id corr: 0 with *code; -1 with err. */
static int await(struct rs_reader *r, uint16_t key, uint32_t corr, int64_t deadline,
		 unsigned *code, struct pb_err *err)
{
	struct response a = { key, corr, 0 };
	char timeout[64];

	snprintf(timeout, sizeof(timeout), "no answer to command 0x%04x in time", key);
	if (await_frame(r, deadline, take_response, &a, timeout, err) < 0)
		return -1;
	*code = a.code;
	return 0;
}

static int take_tune(struct rs_reader *r, const uint8_t *f, size_t n, void *arg)
{
	(void)arg;
	if (be16(f) != K_TUNE || n < 12)
		return 0;
	r->frame_max = be32(f + 4);
	r->heartbeat_s = be32(f + 8);
	return 1;
}

/* The server's Tune (a request of its own): frame max and heartbeat. */
static int await_tune(struct rs_reader *r, int64_t deadline, struct pb_err *err)
{
	return await_frame(r, deadline, take_tune, NULL, "no Tune from the broker", err);
}

static int tcp_connect(const char *host, int port, int timeout_ms, struct pb_err *err)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char ports[16], why[200] = "no address";
	int fd = -1, st;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	snprintf(ports, sizeof(ports), "%d", port);
	if ((st = getaddrinfo(host, ports, &hints, &res)) != 0)
		return pb_err_set(err, EX_UNAVAILABLE, "%s: %s", host, gai_strerror(st));
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pf;
		int e = 0;
		socklen_t el = sizeof(e);

		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				 ai->ai_protocol)) < 0)
			continue;
		int up = 0;

		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			up = 1;
		} else if (errno == EINPROGRESS) {
			pf = (struct pollfd){ fd, POLLOUT, 0 };
			st = poll(&pf, 1, timeout_ms);
			if (st > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && !e)
				up = 1;
			else
				snprintf(why, sizeof(why), "%s", st == 0 ? "connect timed out" :
					 strerror(e ? e : errno));
		} else {
			snprintf(why, sizeof(why), "%s", strerror(errno));
		}
		if (up && pb_sock_self_connected(fd)) {	/* lib/session.h */
			up = 0;
			snprintf(why, sizeof(why), "nothing listens (the connection reached itself)");
		}
		if (up)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		pb_err_set(err, EX_UNAVAILABLE, "%s", why);
	return fd;
}

/* The handshake of PROTOCOL.adoc, "Authentication". 0, or -1 with err. */
static int handshake(struct rs_reader *r, const struct rs_opts *o, struct pb_err *err)
{
	int64_t deadline = pb_mono_ms() + (o->connect_timeout_ms ? o->connect_timeout_ms : 5000);
	struct wbuf w;
	unsigned code;
	size_t ul = strlen(o->user), pl = strlen(o->password);

	frame_start(&w, K_PEER);
	put32(&w, ++r->corr);
	put32(&w, 2);
	put_str(&w, "product");
	put_str(&w, "provbus-fleet");
	put_str(&w, "connection_name");
	put_str(&w, "provbus-fleet");
	if (send_all(r, &w, err) < 0 || await(r, K_PEER, r->corr, deadline, &code, err) < 0)
		return -1;
	if (code != 1)
		return pb_err_set(err, EX_PROTOCOL, "stream protocol: peer properties refused "
				  "(%s)", code_text(code));
	frame_start(&w, K_SASL_HS);
	put32(&w, ++r->corr);
	if (send_all(r, &w, err) < 0 || await(r, K_SASL_HS, r->corr, deadline, &code, err) < 0)
		return -1;
	frame_start(&w, K_SASL_AUTH);
	put32(&w, ++r->corr);
	put_str(&w, "PLAIN");
	put32(&w, (uint32_t)(ul + pl + 2));
	put8(&w, 0);
	put(&w, o->user, ul);
	put8(&w, 0);
	put(&w, o->password, pl);
	if (send_all(r, &w, err) < 0 || await(r, K_SASL_AUTH, r->corr, deadline, &code, err) < 0)
		return -1;
	if (code != 1)
		return pb_err_set(err, EX_NOPERM, "stream protocol: login as %s refused (%s)",
				  o->user, code_text(code));
	if (await_tune(r, deadline, err) < 0)
		return -1;
	frame_start(&w, K_TUNE);
	put32(&w, r->frame_max);
	put32(&w, r->heartbeat_s);
	if (send_all(r, &w, err) < 0)
		return -1;
	frame_start(&w, K_OPEN);
	put32(&w, ++r->corr);
	put_str(&w, o->vhost);
	if (send_all(r, &w, err) < 0 || await(r, K_OPEN, r->corr, deadline, &code, err) < 0)
		return -1;
	if (code != 1)
		return pb_err_set(err, EX_NOPERM, "stream protocol: vhost %s refused (%s)",
				  o->vhost, code_text(code));
	return 0;
}

static int subscribe(struct rs_reader *r, uint8_t sub, const char *stream, int spec,
		     int64_t value, uint16_t credit, unsigned *code, struct pb_err *err)
{
	struct wbuf w;

	frame_start(&w, K_SUBSCRIBE);
	put32(&w, ++r->corr);
	put8(&w, sub);
	put_str(&w, stream);
	put16(&w, (uint16_t)spec);
	if (spec == SPEC_OFFSET || spec == SPEC_TIMESTAMP)
		put64(&w, (uint64_t)value);
	put16(&w, credit);
	if (send_all(r, &w, err) < 0)
		return -1;
	return await(r, K_SUBSCRIBE, r->corr, pb_mono_ms() + 10000, code, err);
}

static int credit(struct rs_reader *r, uint8_t sub, uint16_t n, struct pb_err *err)
{
	struct wbuf w;

	frame_start(&w, K_CREDIT);
	put8(&w, sub);
	put16(&w, n);
	return send_all(r, &w, err);
}

void rs_reader_free(struct rs_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r->side[0].last_body);
	free(r->side[1].last_body);
	free(r);
}

int rs_reader_open(const struct rs_opts *o, struct rs_reader **out, struct pb_err *err)
{
	struct rs_reader *r = calloc(1, sizeof(*r));
	int rc = 1;

	*out = NULL;
	if (!r || !(r->side[0].last_body = malloc(PB_EVENT_MAX_BYTES + 1)) ||
	    !(r->side[1].last_body = malloc(PB_EVENT_MAX_BYTES + 1))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		rc = -1;
		goto fail;
	}
	r->follow = o->follow;
	r->from_next = o->from_ms <= 0;
	/* whole seconds, as the AMQP 0-9-1 reader's x-stream-offset timestamp:
	 * both start at the same chunk */
	r->from_ms = o->from_ms > 0 ? o->from_ms / 1000 * 1000 : 0;
	for (int i = 0; i < 2; i++) {
		struct rside *sd = &r->side[i];

		snprintf(r->streams[i], sizeof(r->streams[i]), "%s", o->streams[i]);
		sd->skip = o->skip[i];
		sd->resume_off = !sd->skip && !r->from_next && o->resume[i] >= 0 && o->digest[i] ?
				 o->resume[i] : -1;
		if (sd->resume_off >= 0)
			snprintf(sd->resume_digest, sizeof(sd->resume_digest), "%s", o->digest[i]);
		sd->last_off = sd->start_off = sd->target = sd->main_off = -1;
	}
	if ((r->fd = tcp_connect(o->host, o->port, o->connect_timeout_ms ? o->connect_timeout_ms
					      : 5000, err)) < 0)
		goto fail;
	if (handshake(r, o, err) < 0)
		goto fail;
	/* the probes and the window start's first, the main subscriptions
	 * last, fleet before history: the broker starts sending a main
	 * subscription's chunks at once, and they would pile up in the
	 * buffer while a later subscription's answer is awaited */
	for (int k = 0; k < 6; k++) {
		static const uint8_t order[6] = { 2, 3, 4, 5, 1, 0 };
		uint8_t sub = order[k];
		int i = sub % 2;
		struct rside *sd = &r->side[i];
		unsigned code;
		int spec;
		int64_t v = 0;
		uint16_t cr = 1;

		if (sd->skip)
			continue;
		if (sub < 2) {
			spec = r->from_next ? SPEC_NEXT : sd->resume_off >= 0 ? SPEC_OFFSET : SPEC_TIMESTAMP;
			v = sd->resume_off >= 0 ? sd->resume_off : r->from_ms;
			cr = MAIN_CREDIT;
			sd->in_flight = MAIN_CREDIT;
		} else if (sub < 4) {
			if (r->from_next)
				continue;
			spec = SPEC_LAST;
		} else {
			if (r->from_next || sd->resume_off < 0)
				continue;
			spec = SPEC_TIMESTAMP;
			v = r->from_ms;
		}
		if (subscribe(r, sub, r->streams[i], spec, v, cr, &code, err) < 0)
			goto fail;
		if (code == 0x02) {
			pb_err_set(err, EX_CONFIG, "stream %s not found: run provbus-schema apply",
				   r->streams[i]);
			rc = -1;
			goto fail;
		}
		if (code == 0x10) {
			pb_err_set(err, EX_NOPERM, "%s: access refused: the broker user needs read "
				   "on it (provbus-observer has it)", r->streams[i]);
			rc = -1;
			goto fail;
		}
		if (code == 0x06) {	/* no member of the stream on this node */
			pb_err_set(err, EX_UNAVAILABLE, "stream %s has no replica on this broker node",
				   r->streams[i]);
			rc = 2;
			goto fail;
		}
		if (code != 1) {
			pb_err_set(err, EX_UNAVAILABLE, "stream protocol: subscribing to %s: %s",
				   r->streams[i], code_text(code));
			goto fail;
		}
	}
	r->started = pb_mono_ms();
	for (int i = 0; i < 2; i++)
		r->side[i].done = r->from_next || r->side[i].skip;
	*out = r;
	return 0;
fail:
	rs_reader_free(r);
	return rc;
}

uint64_t rs_reader_count(const struct rs_reader *r, int side)
{
	return r->side[side].n_read;
}

int64_t rs_reader_window_start(const struct rs_reader *r, int side)
{
	return r->side[side].start_off;
}

const char *rs_reader_invalid(const struct rs_reader *r)
{
	return r->invalid[0] ? r->invalid : NULL;
}

int rs_reader_stream_end(const struct rs_reader *r, int side, int64_t *offset,
			 char digest[PB_SHA256_HEX_LEN + 1])
{
	const struct rside *sd = &r->side[side];

	if (sd->state != END_DONE || sd->last_off < 0)
		return -1;
	*offset = sd->last_off;
	pb_sha256_hex(sd->last_body, sd->last_len, digest);
	return 0;
}

/* One record of a main subscription's chunk (rs_record_cb). */
static int take_record(int64_t off, const uint8_t *data, size_t len, void *vr)
{
	struct rs_reader *r = vr;
	int i = r->cb_side;
	struct rside *sd = &r->side[i];
	struct rs_amqp10 a;
	struct fl_msg m;
	char why[300];

	if (off > sd->main_off)
		sd->main_off = off;
	sd->main_seen = 1;
	/* a subscription from an offset gets the whole chunk that holds it */
	if (sd->resume_off >= 0 && off < sd->resume_off)
		return 0;
	if (rs_amqp10_decode(data, len, &a, why, sizeof(why)) < 0) {
		snprintf(r->fault, sizeof(r->fault), "%s: the message at offset %lld: %s",
			 r->streams[i], (long long)off, why);
		return -1;
	}
	if (sd->resume_off >= 0 && !sd->resumed) {
		char hex[PB_SHA256_HEX_LEN + 1];

		sd->resumed = 1;
		if (off != sd->resume_off) {
			snprintf(r->invalid, sizeof(r->invalid),
				 "%s: the cached offset %lld is before its first offset (%lld): "
				 "cut by retention, or declared again",
				 r->streams[i], (long long)sd->resume_off, (long long)off);
			return 1;
		}
		pb_sha256_hex(a.body, a.body_len <= PB_EVENT_MAX_BYTES ? a.body_len : 0, hex);
		if (strcmp(hex, sd->resume_digest)) {
			snprintf(r->invalid, sizeof(r->invalid),
				 "%s: the message at the cached offset %lld is not the one read "
				 "then: the stream was declared again", r->streams[i],
				 (long long)sd->resume_off);
			return 1;
		}
	}
	if (off > sd->last_off) {
		sd->last_off = off;
		sd->last_len = a.body_len <= PB_EVENT_MAX_BYTES ? a.body_len : 0;
		memcpy(sd->last_body, a.body, sd->last_len);
	}
	if (off == sd->resume_off)
		return 0;	/* taken in by the call that read it */
	copy_str(r->exchange, sizeof(r->exchange), a.exchange, a.exchange ? a.exchange_len : 0);
	copy_str(r->routing_key, sizeof(r->routing_key), a.routing_key,
		 a.routing_key ? a.routing_key_len : 0);
	if (a.user_id)
		copy_str(r->user_id, sizeof(r->user_id), a.user_id, a.user_id_len);
	m = (struct fl_msg){ r->exchange, r->routing_key, a.user_id ? r->user_id : NULL,
			     a.body, a.body_len, off };
	if (a.body_len > PB_EVENT_MAX_BYTES) {
		m.user_id = NULL;	/* counted as invalid, as stream.c does */
		m.body = "";
		m.len = 0;
	}
	sd->n_read++;
	r->cb(&m, i, r->ctx);
	return 0;
}

static int on_deliver(struct rs_reader *r, const uint8_t *f, size_t n, struct pb_err *err)
{
	struct rs_chunk c;
	uint8_t sub;
	char why[300];
	int i, rc;
	int64_t mono = pb_mono_ms();

	if (rs_deliver_decode(f, n, &sub, &c, why, sizeof(why)) < 0)
		return pb_err_set(err, EX_PROTOCOL, "stream protocol: %s", why);
	if (sub >= SUBS)
		return pb_err_set(err, EX_PROTOCOL, "stream protocol: a deliver frame for "
				  "subscription %u, which is not ours", sub);
	i = sub % 2;
	r->side[i].last_sign = mono;
	if (sub >= 4) {	/* where the window starts */
		if (r->side[i].start_off < 0 && c.type == 0) {
			r->side[i].start_off = c.first_offset;
			pb_log_debug("%s: the window starts at offset %lld", r->streams[i],
				     (long long)c.first_offset);
		}
		return 0;
	}
	if (sub >= 2) {	/* the probe: the last chunk */
		if (!r->side[i].probe_seen && c.type == 0 && c.n_records) {
			r->side[i].probe_seen = 1;
			r->side[i].target = c.first_offset + c.n_records - 1;
			r->side[i].probe_ts_ms = c.timestamp_ms;
			pb_log_debug("%s: the last chunk ends at offset %lld", r->streams[i],
				     (long long)r->side[i].target);
		}
		return 0;
	}
	r->side[i].n_chunks++;
	r->side[i].n_bytes += c.data_len;
	if (c.type == 0) {
		r->cb_side = i;
		rc = rs_chunk_records(&c, take_record, r, why, sizeof(why));
		if (rc < 0 && r->fault[0])
			return pb_err_set(err, EX_PROTOCOL, "stream protocol: %s", r->fault);
		if (rc < 0)
			return pb_err_set(err, EX_PROTOCOL, "stream protocol: %s, chunk at offset "
					  "%lld: %s", r->streams[i], (long long)c.first_offset, why);
		if (rc > 0)
			return 0;	/* invalid: the caller says so */
	}
	if (r->side[i].in_flight)
		r->side[i].in_flight--;
	if (r->side[i].in_flight < CREDIT_LOW && (!r->side[i].done || r->follow)) {
		uint16_t more = (uint16_t)(MAIN_CREDIT - r->side[i].in_flight);

		r->side[i].in_flight += more;
		return credit(r, sub, more, err);
	}
	return 0;
}

static int on_frame(struct rs_reader *r, const uint8_t *f, size_t n, struct pb_err *err)
{
	uint16_t key;

	if (n < 4)
		return pb_err_set(err, EX_PROTOCOL, "stream protocol: a frame of %zu bytes", n);
	key = be16(f);
	switch (key) {
	case RS_KEY_DELIVER:
		return on_deliver(r, f, n, err);
	case K_HEARTBEAT:
		return 0;
	case K_CLOSE:
		return pb_err_set(err, EX_TEMPFAIL, "stream protocol: the broker closed the "
				  "connection (code %u)", n >= 10 ? be16(f + 8) : 0);
	case K_METADATA_UPDATE:
		return pb_err_set(err, EX_UNAVAILABLE, "the broker cancelled a stream "
				  "subscription (stream deleted?)");
	case 0x8000 | K_CREDIT:
		return pb_err_set(err, EX_PROTOCOL, "stream protocol: credit refused (%s)",
				  n >= 6 ? code_text(be16(f + 4)) : "?");
	default:
		return 0;	/* a late response */
	}
}

static void check_end(struct rs_reader *r, int64_t mono)
{
	for (int i = 0; i < 2; i++) {
		struct rside *s = &r->side[i];
		int st = END_READING;
		int64_t sign = s->last_sign > r->started ? s->last_sign : r->started;

		if (s->done)
			continue;
		if (s->target >= 0 && s->main_seen && s->main_off >= s->target)
			st = END_DONE;
		else if (s->target >= 0 && s->resume_off >= 0 && s->target < s->resume_off)
			st = END_DONE;	/* past the end: checked below */
		else if (s->target >= 0 && !s->main_seen && s->resume_off < 0 &&
			 s->probe_ts_ms < r->from_ms)
			st = END_OLD;	/* the whole stream predates the window */
		else if (s->target < 0 && !s->main_seen && mono - r->started >= EMPTY_MS)
			st = END_EMPTY;
		else if (mono - sign >= IDLE_MS)
			st = END_IDLE;
		if (s->resume_off >= 0 && !s->resumed && !r->invalid[0] &&
		    (st == END_EMPTY || st == END_DONE || (s->target >= 0 && s->target < s->resume_off))) {
			snprintf(r->invalid, sizeof(r->invalid),
				 "%s: the cached offset %lld is beyond its end (%lld): "
				 "declared again", r->streams[i], (long long)s->resume_off,
				 (long long)s->target);
			continue;
		}
		if (s->resume_off >= 0 && s->start_off < 0 && st != END_IDLE) {
			if (s->target >= 0 && s->probe_ts_ms < r->from_ms)
				s->start_off = INT64_MAX;	/* the window is empty */
			else
				continue;
		}
		if (st == END_READING)
			continue;
		s->done = 1;
		s->state = st;
		if (st == END_IDLE)
			pb_log_warn("%s: nothing delivered for %d s and its end is unknown: read as "
				    "far as offset %lld", r->streams[i], IDLE_MS / 1000,
				    (long long)s->main_off);
		pb_log_debug("%s read in %lld ms (stream protocol: %llu chunks, %llu bytes)",
			     r->streams[i], (long long)(mono - r->started),
			     (unsigned long long)s->n_chunks, (unsigned long long)s->n_bytes);
	}
}

int rs_reader_pump(struct rs_reader *r, int wait_ms,
		   void (*cb)(const struct fl_msg *m, int is_report, void *ctx), void *ctx,
		   struct pb_err *err)
{
	int64_t end = pb_mono_ms() + wait_ms;

	r->cb = cb;
	r->ctx = ctx;
	for (;;) {
		int64_t mono = pb_mono_ms(), left;
		size_t at = 0, n = 0;
		const uint8_t *f = NULL;
		int st;

		while ((st = next_frame(r, &at, &f, &n, err)) > 0 && !r->invalid[0])
			if (on_frame(r, f, n, err) < 0)
				return -1;
		if (st < 0)
			return -1;
		consumed(r, at);
		check_end(r, mono);
		if (r->invalid[0]) {
			pb_err_set(err, EX_TEMPFAIL, "%s", r->invalid);
			return -2;
		}
		if (r->side[0].done && r->side[1].done && !r->follow)
			return 1;
		if (r->heartbeat_s && mono - r->last_sent >= (int64_t)r->heartbeat_s * 500) {
			struct wbuf w;

			frame_start(&w, K_HEARTBEAT);
			if (send_all(r, &w, err) < 0)
				return -1;
		}
		left = end - mono;
		if (left <= 0)
			break;
		if (left > TAIL_MS)
			left = TAIL_MS;
		if (fill(r, (int)left, err) < 0)
			return -1;
	}
	return r->side[0].done && r->side[1].done;
}
