/* rstream.h — reading provbus.F.history and provbus.F.fleet over
 * RabbitMQ's stream protocol (the rabbitmq_stream plugin, port 5552), the
 * fast path of provbus-fleet's reads (fleet.h, stream.c).
 *
 * Over AMQP 0-9-1 the broker converts each stream message back into a
 * basic.deliver, one at a time, and that is the bottleneck of a cold read
 * (36-49 s for 1,000,000 events). The stream protocol hands out whole
 * Osiris chunks, as they lie on disk: header, then entries, each entry an
 * AMQP 1.0 encoded message as RabbitMQ stored it from the AMQP 0-9-1
 * publish (rabbit_msg_record: message-annotations x-exchange and
 * x-routing-key, properties with user-id, application-properties, one data
 * section: the body).
 *
 * Two layers: the decoders (a Deliver frame, a chunk's entries, an AMQP
 * 1.0 message), pure functions over bytes that validate every length
 * against what holds it and say what is wrong and where
 * (tests/unit/test_rstream.c); and the reader (rs_reader_*), one TCP
 * connection (PeerProperties, SaslHandshake, SaslAuthenticate PLAIN,
 * Tune, Open), with the same contract as fl_reader_* (fleet.h), which
 * hands its calls on to it when it is in use.
 *
 * The end of a read: a second subscription per stream, the probe, from
 * offset spec "last" with one credit, gets the stream's last chunk; its
 * first offset plus its record count is the end as of the subscription
 * (RabbitMQ 3.10 has no StreamStats command). A stream whose last chunk
 * is older than the window has nothing to read; one with no chunk at all
 * is known empty after empty_ms (the rule of lib/streamend.c). */
#ifndef PB_RSTREAM_H
#define PB_RSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"

struct fl_msg;

/* ---- decoders ---- */

#define RS_CHUNK_HEADER_LEN 48
#define RS_KEY_DELIVER 0x0008

/* An Osiris chunk header (osiris_log, format version 1). */
struct rs_chunk {
	int type;		/* 0 user data, 1 tracking delta, 2 tracking snapshot */
	unsigned n_entries;	/* simple entries and sub-batches */
	uint32_t n_records;	/* messages: each has an offset */
	int64_t timestamp_ms;	/* when the chunk was written */
	int64_t first_offset;
	uint32_t data_len, trailer_len;
	const uint8_t *data;	/* data_len bytes */
};

/* A Deliver frame's content (after its 4-byte size): key 0x0008, version
 * 1, subscription id, chunk. 0 with *sub and *c (c->data points into
 * frame), or -1 with why ("deliver frame: ... at byte N"). */
int rs_deliver_decode(const uint8_t *frame, size_t len, uint8_t *sub, struct rs_chunk *c,
		      char *why, size_t why_size);

/* Calls cb for each record of the chunk, in order, with its offset
 * (first_offset + index): simple entries, and uncompressed sub-batches
 * (a compressed one is an error: provbus publishes none). Stops at the
 * first non-zero cb return and returns it; 0 when all were handed on; -1
 * with why when the data does not hold the entries the header counts. */
typedef int (*rs_record_cb)(int64_t offset, const uint8_t *data, size_t len, void *ctx);
int rs_chunk_records(const struct rs_chunk *c, rs_record_cb cb, void *ctx, char *why,
		     size_t why_size);

/* The parts of an AMQP 1.0 message that provbus-fleet needs (pointers
 * into the record, not NUL-terminated; NULL when absent). */
struct rs_amqp10 {
	const uint8_t *exchange, *routing_key, *user_id, *body;
	size_t exchange_len, routing_key_len, user_id_len, body_len;
	int64_t creation_ms;	/* properties creation-time, or 0 */
};

/* Decodes the sections of an AMQP 1.0 message (each a described value;
 * unknown ones are skipped). 0, or -1 with why ("... at byte N"). */
int rs_amqp10_decode(const uint8_t *p, size_t len, struct rs_amqp10 *m, char *why,
		     size_t why_size);

/* ---- the reader ---- */

struct rs_opts {
	const char *host;
	int port;
	const char *user, *password, *vhost;
	const char *streams[2];	/* 0 history, 1 fleet */
	int64_t from_ms;	/* the window start (a timestamp spec); 0: "next" */
	int follow;
	int64_t resume[2];	/* as fl_reader_opts */
	const char *digest[2];
	int connect_timeout_ms;	/* 0: 5000 */
	int skip[2];		/* as fl_reader_opts */
};

struct rs_reader;

/* Connects, logs in, subscribes. 0 with *out; 1 when the stream protocol
 * cannot be used here (refused or no answer on the port, the handshake
 * failed) and the caller should read over AMQP 0-9-1: err says why; 2
 * when a stream is not available on this node (no replica there: AMQP
 * 0-9-1 on the same node cannot read it either; err says which); -1 with
 * err for an error the other reader would meet too (EX_CONFIG: a stream
 * is missing, EX_NOPERM: no read permission). */
int rs_reader_open(const struct rs_opts *o, struct rs_reader **out, struct pb_err *err);
void rs_reader_free(struct rs_reader *r);
/* As fl_reader_pump, fl_reader_invalid, ... (fleet.h). */
int rs_reader_pump(struct rs_reader *r, int wait_ms,
		   void (*cb)(const struct fl_msg *m, int is_report, void *ctx), void *ctx,
		   struct pb_err *err);
const char *rs_reader_invalid(const struct rs_reader *r);
int64_t rs_reader_window_start(const struct rs_reader *r, int side);
uint64_t rs_reader_count(const struct rs_reader *r, int side);
int rs_reader_stream_end(const struct rs_reader *r, int side, int64_t *offset,
			 char digest[PB_SHA256_HEX_LEN + 1]);

#endif
