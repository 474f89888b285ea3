/* outbox.h — the publisher's spool, STATE_DIR/outbox.db (provbus-publish(1)).
 *
 * One sqlite file (WAL, mode 0600, busy_timeout) holds:
 * - the seq counters, per (node, service): strictly increasing across runs;
 * - every event not yet confirmed by the broker, in the order it was made
 *   (column n, AUTOINCREMENT: never reused, so "oldest first" is "n
 *   ascending" even across deletions);
 * - per (node, service), the keys it last announced (table provided), so
 *   `retire` works after the manifest is gone and `provides` can retire a
 *   key that left the manifest.
 *
 * An event is written here (in the transaction that takes its seq, not
 * synced: pb_outbox_sync) before it is sent, and deleted only when the broker confirmed it. Writing is
 * safe from several processes at once (sqlite's own locking, BEGIN
 * IMMEDIATE); *sending* is serialised by pb_outbox_lock(), see outbox.c.
 *
 * When the file cannot be written (state_dir read-only, disk full) the
 * caller may fall back to pb_outbox_open_memory(): same API, nothing
 * survives the process, seq counters copied from the file when it can
 * at least be read. */
#ifndef PB_OUTBOX_H
#define PB_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"

struct pb_outbox;

/* Opens (creating state_dir and the file if needed) STATE_DIR/outbox.db
 * for writing. busy_ms bounds every wait for another process's sqlite
 * lock. Returns NULL with err (EX_CANTCREAT naming the file) on failure. */
struct pb_outbox *pb_outbox_open(const char *state_dir, int busy_ms, struct pb_err *err);

/* An outbox in memory, for a run that cannot write STATE_DIR/outbox.db:
 * seeded with the file's seq counters, provided keys and spooled events
 * (sent first; they stay in the file), read-only or, without a WAL, as
 * immutable. Each seq it takes is first kept in STATE_DIR/outbox.floor
 * (outbox.c, "The seq floor"); when that or reading the file's counters
 * fails, a warning says that a later run may repeat a seq. Returns NULL
 * on ENOMEM. */
struct pb_outbox *pb_outbox_open_memory(const char *state_dir, struct pb_err *err);

/* STATE_DIR/outbox.db read-only, for --dry-run. Returns NULL with err
 * (EX_NOINPUT when the file does not exist). */
struct pb_outbox *pb_outbox_open_readonly(const char *state_dir, struct pb_err *err);

/* Closes the outbox and releases the send lock. Once the WAL holds 64
 * pages or more it is first checkpointed into the database and truncated
 * (outbox.c), without waiting for another process in the file. */
void pb_outbox_close(struct pb_outbox *ob);

/* "STATE_DIR/outbox.db" (also for a memory outbox: the file it stands in
 * for). */
const char *pb_outbox_path(const struct pb_outbox *ob);
int pb_outbox_in_memory(const struct pb_outbox *ob);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int pb_outbox_begin(struct pb_outbox *ob, struct pb_err *err);
int pb_outbox_commit(struct pb_outbox *ob, struct pb_err *err);
void pb_outbox_rollback(struct pb_outbox *ob);

/* The last seq used for (node, service); 0 when none yet. */
int pb_outbox_last_seq(struct pb_outbox *ob, const char *node, const char *service,
		       int64_t *last, struct pb_err *err);
/* Takes the next seq for (node, service) (last + 1) and stores it. Call
 * inside a transaction. */
int pb_outbox_take_seq(struct pb_outbox *ob, const char *node, const char *service,
		       int64_t *seq, struct pb_err *err);

/* Appends ev (encoded as body, body_len bytes) for exchange/routing key. */
int pb_outbox_add(struct pb_outbox *ob, const struct pb_event *ev, const char *exchange,
		  const char *routing_key, const char *body, size_t body_len,
		  struct pb_err *err);

/* A key a service last announced. */
struct pb_provided {
	char *key;
	char *federation;
	int public;
};

/* The keys (node, service) last announced, sorted by federation and key;
 * *out is NULL when none. Free with pb_provided_free. */
int pb_outbox_provided(struct pb_outbox *ob, const char *node, const char *service,
		       struct pb_provided **out, size_t *n, struct pb_err *err);
/* Replaces the keys (node, service) last announced. */
int pb_outbox_set_provided(struct pb_outbox *ob, const char *node, const char *service,
			   const struct pb_provided *p, size_t n, struct pb_err *err);
void pb_provided_free(struct pb_provided *p, size_t n);

/* One spooled event. */
struct pb_outbox_row {
	int64_t n;		/* position: oldest first */
	char id[PB_UUID_STR];
	char *exchange, *routing_key, *kind, *service;
	int64_t seq;
	int64_t ts_ms;		/* the event's time, for the AMQP timestamp */
	char *body;
	size_t body_len;
};
void pb_outbox_row_release(struct pb_outbox_row *row);	/* frees the strings */

/* A memory outbox: how many of the events it still holds came from the
 * file (spooled by an earlier run, and still there); 0 for any other. */
int64_t pb_outbox_still_on_disk(struct pb_outbox *ob);

/* How many events are spooled. */
int pb_outbox_count(struct pb_outbox *ob, int64_t *count, struct pb_err *err);

/* Up to max rows with n > after, oldest first, into rows (the caller's
 * array of max); *got is how many. Each row must be released. */
int pb_outbox_read(struct pb_outbox *ob, int64_t after, size_t max, struct pb_outbox_row *rows,
		   size_t *got, struct pb_err *err);

/* The distinct exchanges of the spooled events; free each and the array. */
int pb_outbox_exchanges(struct pb_outbox *ob, char ***out, size_t *n, struct pb_err *err);

/* Deletes the rows ns[0..n) (confirmed events), in one transaction. */
int pb_outbox_delete(struct pb_outbox *ob, const int64_t *ns, size_t n, struct pb_err *err);

/* Deletes the events of one announcement to one exchange (service, seq,
 * exchange): all are refused when one is. *deleted: how many. */
int pb_outbox_delete_announcement(struct pb_outbox *ob, const char *service, int64_t seq,
				  const char *exchange, int64_t *deleted, struct pb_err *err);

/* Makes what the outbox holds survive a power cut: fdatasync of the WAL
 * and the file, fsync of state_dir. Commits are not synced (outbox.c):
 * call it before telling the caller the events are spooled (exit 75).
 * A memory outbox: 0. -1 with err (EX_IOERR naming the file). */
int pb_outbox_sync(struct pb_outbox *ob, struct pb_err *err);

/* Takes the send lock, an exclusive flock on STATE_DIR/outbox.lock,
 * waiting up to timeout_ms. Held until pb_outbox_close. A memory outbox
 * needs none (returns 0). EX_TEMPFAIL when another process holds it
 * past the timeout. */
int pb_outbox_lock(struct pb_outbox *ob, int64_t timeout_ms, struct pb_err *err);

#endif
