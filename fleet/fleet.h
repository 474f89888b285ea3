/* fleet.h — provbus-fleet, the fleet view of docs/protocol.md: what its files share.
 *
 *   main.c    the command line and the four verbs
 *   stream.c  reading provbus.F.history and provbus.F.fleet over AMQP,
 *             and knowing when a stream has been read to its end
 *   rstream.c the same over RabbitMQ's stream protocol (port 5552): the
 *             fast path, preferred when it answers
 *   model.c   what the streams say: the live providers (lib/providers.c,
 *             the consumer's own code), each node's newest presence and
 *             runs, and the verdict of `converged`
 *   cache.c   what a read of the history stream computed, kept for the
 *             next call, which reads only what is new
 *
 * Read-only: it declares nothing, publishes nothing; the broker user it
 * logs in as needs read on the two streams (provbus-observer). */
#ifndef PB_FLEET_H
#define PB_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "digest.h"
#include "err.h"
#include "providers.h"
#include "session.h"

/* ---- model.c ---- */

enum fl_state { FL_ALIVE, FL_STALE, FL_STOPPED };

struct fl_node {
	char name[PB_IDENT_MAX + 1];
	json_t *presence;	/* the newest presence report, or NULL */
	int64_t lease_end;	/* wall ms: its ts + ttl_s */
	json_t *last_run;	/* the newest run report, or NULL */
	json_t *last_ok;	/* the newest run report with status ok, or NULL */
	int64_t off_presence, off_run, off_ok;	/* their stream offsets (cache.c) */
};

struct fl_tmap;

/* An event judged stale because of one applied before it: the stream
 * offsets of the cause and of the stale event (cache.c). */
struct fl_interval {
	int64_t cause, stale;
};

struct fleet {
	const char *federation;
	struct pb_providers *prov;
	/* for the cache (cache.c): the stream offset of the event that set
	 * each provider (a), and of each seq floor (a seq, b offset) */
	struct fl_tmap *ptime, *seqs;
	struct fl_interval *stale;
	size_t n_stale, cap_stale;
	int stale_lost;			/* out of memory noting one: no prune is exact */
	int pruned;			/* fl_prune dropped something */
	struct fl_node *nodes;	/* sorted by name */
	size_t n_nodes, cap_nodes;
	uint64_t n_events, n_reports;	/* taken in */
	uint64_t n_invalid;		/* not a valid event or report: ignored */
	uint64_t n_impostors;		/* user_id is not the node: ignored */
	int changed;			/* something was taken in since the flag was cleared */
	int trust_user_id;		/* --no-verify-sender: a lab where all share one user */
};

/* One message of a stream, as the model needs it. */
struct fl_msg {
	const char *exchange, *routing_key;
	const char *user_id;	/* NULL when the message has none */
	const void *body;
	size_t len;
	int64_t offset;		/* x-stream-offset, or -1 */
};

void fl_init(struct fleet *f, const char *federation);
void fl_release(struct fleet *f);
/* An announcement from the history stream: checked as the consumer does
 * (event rules, routing key, exchange, user_id = node), then applied to
 * the providers at its ts (capped at now), as a catch-up does. */
void fl_take_event(struct fleet *f, const struct fl_msg *m, int64_t now);
/* A report from the fleet stream: checked likewise; the newest presence
 * and runs of its node are kept. */
void fl_take_report(struct fleet *f, const struct fl_msg *m, int64_t now);

enum fl_state fl_node_state(const struct fl_node *n, int64_t now);
const char *fl_state_name(enum fl_state s);

/* The providers node n counts now: its keys, its regions. Fills a
 * NULL-terminated array of borrowed pointers (free() it); NULL when out
 * of memory. Expired leases are removed first. */
const struct pb_provider **fl_node_providers(struct fleet *f, const struct fl_node *n,
					     int64_t now, size_t *count);

/* The verdict of converged for node n over keys (NULL/0: all its keys):
 * NULL when n is converged (or not concerned: *concerned = 0), else a
 * static reason: "still pending", "paused", "last run failed",
 * "not connected". */
const char *fl_converged(struct fleet *f, const struct fl_node *n, const char *const *keys,
			 size_t n_keys, int64_t now, int *concerned);

/* 1 when node n requires key. */
int fl_node_requires(const struct fl_node *n, const char *key);

/* ---- cache.c ---- */

struct fl_tmap *fl_tmap_new(void);
void fl_tmap_free(struct fl_tmap *m);
int fl_tmap_put(struct fl_tmap *m, const char *key, int64_t a, int64_t b);
int fl_tmap_get(const struct fl_tmap *m, const char *key, int64_t *a, int64_t *b);
/* The maps' keys: a provider's tuple, or (fed, node, service) when region
 * is NULL. */
void fl_tuple_key(char *out, size_t size, const char *fed, const char *region, const char *node,
		  const char *service, const char *key);
void fl_stale_note(struct fleet *f, int64_t cause, int64_t stale);
/* Drops the providers and seq floors set by events before offset start:
 * what a read from there would not have seen. 0; -1 when that would not
 * be exact (an event still in the window was judged stale because of one
 * before it: read the window again); -2 out of memory. */
int fl_prune(struct fleet *f, int64_t start);
/* Likewise for the reports of the fleet stream: each node's newest
 * presence and runs from before offset start, and a node left with none. */
void fl_prune_reports(struct fleet *f, int64_t start);
/* The cache file for (broker URL, federation, whether every sender is
 * counted: --no-verify-sender) under ${XDG_CACHE_HOME:-$HOME/.cache}/provbus/;
 * ident gets "host:port/vhost", " any-sender" after it for any_sender.
 * 0, or -1 (no home, bad URL). */
int fl_cache_path(char *out, size_t size, const char *url, const char *vhost_override,
		  const char *federation, int any_sender, char *ident, size_t ident_size);
/* Where the read of each stream (0 history, 1 fleet) ended: the offset
 * of its last message (-1: none, the stream is read from the window
 * start next time) and that message body's SHA-256. */
struct fl_cache_pos {
	int64_t offset[2];
	char digest[2][PB_SHA256_HEX_LEN + 1];
};
/* Loads the cache into f (fresh from fl_init): 0 with where each stream
 * ended; -1 with why (f then holds part of it: start again from
 * fl_init). why is set either way. */
int fl_cache_load(struct fleet *f, const char *path, const char *ident, int64_t window_s,
		  struct fl_cache_pos *pos, char *why, size_t why_size);
/* Writes it atomically (temporary file, rename), mode 0600. */
int fl_cache_save(const struct fleet *f, const char *path, const char *ident, int64_t window_s,
		  const struct fl_cache_pos *pos, struct pb_err *err);

/* ---- stream.c ---- */

struct fl_reader;

struct fl_reader_opts {
	struct pb_session *sess;
	const char *federation;
	int64_t from_ms;	/* x-stream-offset timestamp; 0: "next" (watch) */
	int follow;		/* keep reading after the end */
	/* each stream (0 history, 1 fleet) from this offset instead (-1:
	 * from_ms): the message there must have a body of this SHA-256
	 * (hex); it is checked, not handed on */
	int64_t resume[2];
	const char *digest[2];
	/* the stream protocol's port (rstream.c; 0: AMQP 0-9-1 only): used
	 * when it answers and the URL is amqp:// with a password; else, or
	 * when it does not answer, the streams are read over AMQP 0-9-1 (one
	 * line on stderr says so) */
	int stream_port;
	/* a stream (0 history, 1 fleet) not read at all: not subscribed to,
	 * nothing handed on, read "to its end" at once; fl_reader_stream_end
	 * and fl_reader_window_start know nothing of it (`nodes`: the
	 * history is not needed) */
	int skip[2];
	/* set (when not NULL) to 1 + the stream's side (0 history, 1 fleet)
	 * when fl_reader_open fails because that stream has no replica on
	 * the node of the session's URL (RabbitMQ reads a stream only where
	 * it is stored, over either protocol): another node may have one */
	int *no_replica;
};

/* Subscribes to both streams. NULL with err (EX_CONFIG: a stream is
 * missing; EX_NOPERM: no read permission). */
struct fl_reader *fl_reader_open(const struct fl_reader_opts *o, struct pb_err *err);
void fl_reader_free(struct fl_reader *r);
/* Reads what arrives for at most wait_ms, handing each message to cb
 * (history: is_report 0; fleet: 1). Returns 1 when both streams have been
 * read to their end (as known when they were opened), 0 when not yet, -1
 * with err on a broker error. */
int fl_reader_pump(struct fl_reader *r, int wait_ms,
		   void (*cb)(const struct fl_msg *m, int is_report, void *ctx), void *ctx,
		   struct pb_err *err);
/* When a stream was resumed and does not go on from its offset (the
 * message there is another, or the stream ends before it, or starts
 * after it: recreated, or cut by retention), fl_reader_pump returns -2
 * and this says why. NULL otherwise. */
const char *fl_reader_invalid(const struct fl_reader *r);
/* In a resumed read of stream side (0 history, 1 fleet), once
 * fl_reader_pump returned 1: the offset a read of the window (from
 * from_ms) would start at now; INT64_MAX when the window holds nothing;
 * -1 when unknown. */
int64_t fl_reader_window_start(const struct fl_reader *r, int side);
/* The number of messages of stream side handed on so far. */
uint64_t fl_reader_count(const struct fl_reader *r, int side);
/* Stream side read to its end: the offset of the last message read and
 * its body's SHA-256 (hex). 0, or -1 when unknown (nothing read, or the
 * end was not certain). */
int fl_reader_stream_end(const struct fl_reader *r, int side, int64_t *offset,
			 char digest[PB_SHA256_HEX_LEN + 1]);

#endif
