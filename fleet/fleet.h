/* fleet.h — provbus-fleet, the fleet view of docs/protocol.md: what its files share.
 *
 *   main.c    the command line and the four verbs
 *   stream.c  reading provbus.F.history and provbus.F.fleet over AMQP,
 *             and knowing when a stream has been read to its end
 *   model.c   what the streams say: the live providers (lib/providers.c,
 *             the consumer's own code), each node's newest presence and
 *             runs, and the verdict of `converged`
 *
 * Read-only: it declares nothing, publishes nothing; the broker user it
 * logs in as needs read on the two streams (provbus-observer). */
#ifndef PB_FLEET_H
#define PB_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

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
};

struct fleet {
	const char *federation;
	struct pb_providers *prov;
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

/* ---- stream.c ---- */

struct fl_reader;

struct fl_reader_opts {
	struct pb_session *sess;
	const char *federation;
	int64_t from_ms;	/* x-stream-offset timestamp; 0: "next" (watch) */
	int follow;		/* keep reading after the end */
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

#endif
