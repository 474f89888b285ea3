/* audit.h — the audit log of provbus-audit(1): state_dir/audit.db, sqlite, WAL,
 * mode 0600. Written by provbus-consumer, read (read-only) by
 * provbus-audit.
 *
 * Schema version 3 (PRAGMA user_version = 3; meta.schema =
 * 'provbus-audit'). All times are integer ms since the epoch.
 *
 *   meta(k TEXT PRIMARY KEY, v TEXT)         schema, node, federation, created_at
 *   events(id INTEGER PRIMARY KEY,           the audit row; provbus-audit(1) "id"
 *          msg_id TEXT,                      the event id from the body, else
 *                                            the AMQP message_id, else NULL
 *          received_at INTEGER NOT NULL,
 *          kind TEXT, federation TEXT, region TEXT, node TEXT, service TEXT,
 *          key TEXT, value TEXT, seq INTEGER, ttl_s INTEGER, public INTEGER,
 *          verdict TEXT NOT NULL,            applied duplicate stale foreign
 *                                            expired invalid
 *          detail TEXT,                      why invalid; what expired
 *          redelivered INTEGER NOT NULL,     the AMQP flag
 *          source TEXT NOT NULL,             live | history | daemon
 *          exchange TEXT, routing_key TEXT,
 *          changed INTEGER NOT NULL DEFAULT 0,   1: it changed the values
 *          lease_from INTEGER)               its lease counted from then (a
 *                                            history event: its ts); NULL:
 *                                            received_at
 *   index events_dedupe(node, service, seq, msg_id) WHERE verdict <> 'invalid'
 *                                            the duplicate check (schema 1 had a
 *                                            seen_ids table: opening for writing
 *                                            migrates it)
 *   runs(id INTEGER PRIMARY KEY,             PROVBUS_RUN_ID
 *        reason TEXT NOT NULL,               startup change resume manual retry expiry
 *        queued_at INTEGER, started_at INTEGER, finished_at INTEGER,
 *        exit_status INTEGER,                exit code; 128+N for signal N; NULL
 *                                            while running or when interrupted
 *        status TEXT NOT NULL,               running ok failed interrupted
 *        deferred_ms INTEGER NOT NULL DEFAULT 0,   waited for the lock
 *        changed_keys TEXT,                  JSON array of env names
 *        values_before TEXT, values_after TEXT,    JSON objects env -> value
 *        output_tail BLOB,                   last 8 KiB of stdout+stderr
 *        notify_status INTEGER)              exit of consumer.notify, NULL if none
 *   run_events(run_id INTEGER, event_id INTEGER, PRIMARY KEY(run_id, event_id))
 *   params(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, json TEXT NOT NULL)
 *        the debounce parameters in force from `at` (daemon start/reload):
 *        {"quiet_ms":..,"max_wait_ms":..,"throttle_runs":..,
 *         "throttle_per_s":..,"splay_ms":..,"retry_max":..,"retry_base_ms":..,
 *         "event":"start"|"reload"}
 *   providers(federation, region, node, service, key, value, public, seq,
 *             expires_at, updated_at, tombstone,
 *             PRIMARY KEY(federation, region, node, service, key))
 *   offsets(stream TEXT PRIMARY KEY, offset INTEGER NOT NULL, at INTEGER)
 *   notes(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, run_id INTEGER,
 *         kind TEXT NOT NULL, text TEXT)   deferred, notify-failed, reload, ...
 *   inputs(id INTEGER PRIMARY KEY, at INTEGER NOT NULL,
 *          after_event INTEGER NOT NULL, kind TEXT NOT NULL, n INTEGER, text TEXT)
 *        (schema 3) every input of the decision core (lib/decide.h) but
 *        the events, at the instant the core saw it, after the events up
 *        to after_event: `provbus-audit replay` feeds them again. kind, n, text:
 *          start     a daemon start (restored state): text {"params":..,
 *                    "starts":[..],"ok_values":{..}|null,"owed_full":0|1,
 *                    "owed_keys":[..],"paused":0|1,"fails_in_row":N,
 *                    "providers":[[federation,region,node,service,key,
 *                    value|null,public,seq,expires_at,updated_at,tombstone]..]}
 *          snapshot  the same text and "pending":{..} (the debounce's,
 *                    lib/decidelog.h), "splay_ms": the state of a running
 *                    core with no run going (written with retention on
 *                    when the newest start or snapshot is a day old:
 *                    pruning keeps every row after one, meta inputs_from
 *                    names it; lib/audit.c)
 *          reload    text {"params":..,"added":[keys]}
 *          settle    the end of a batch of events
 *          expire    leases ran out (n removed)
 *          request   n: enum pb_reason (startup manual resume retry)
 *          pause     n: 1 pause, 0 resume
 *          owe-full  the queue was new or lost
 *          catchup   a catch-up ended: n 1 the full one, else text [keys]
 *          splay     a poll drew the splay: n ms
 *          started   a poll started run n (after its rows: after_event)
 *          lock-wait, lock-taken   run n waits for / took lock_file
 *          finished  run ended: n enum pb_run_status
 *        params is {"quiet_ms",..,"retry_base_ms","wants":[[env,key|null,
 *        literal|null]..],"federation","keys":[..],"regions":[..],
 *        "statics":[[name,value]..],"public_only":0|1}
 *        Schema 2 logs have none: replay derives them from the events,
 *        runs, notes and params rows (provbus-audit(1)).
 *
 * What the consumer keeps besides (no schema change, rows only):
 *   meta: node, federation (set at each daemon start); bindings (JSON
 *         array of the routing keys its queue is bound with, so a restart
 *         unbinds what the configuration dropped meanwhile); catchup_full
 *         ("1" while a whole history catch-up is owed: the queue was new
 *         or lost and the catch-up has not finished); catchup_keys (JSON
 *         array of keys a reload added whose catch-up has not finished).
 *   events of source 'daemon' are the `expired` rows: kind NULL, the
 *         provider's fields, detail "lease ran out".
 *   runs.started_at is when the daemon took the run off the queue (the
 *         debounce's start, the time `provbus-audit replay` reproduces);
 *         the process began deferred_ms later when the lock was held.
 *   outbox_reports (created by the consumer's report.c): the fleet reports
 *         of docs/protocol.md not confirmed by the broker yet (id AUTOINCREMENT, at,
 *         kind, routing_key, msg_id, body).
 *   notes kinds: report-refused (a report the broker refused), deferred, splay ("waited a splay of N ms ..."),
 *         retry-exhausted, notify-failed, notify-skipped, interrupted,
 *         error (a run that could not start), reload, reload-failed,
 *         catch-up (a history catch-up ended), pause, resume, stop (the
 *         daemon stopped consuming: SIGTERM/SIGINT; no run starts after).
 *
 * Indexes: events(received_at), events(key, received_at),
 * runs(started_at), run_events(event_id).
 */
#ifndef PB_AUDIT_H
#define PB_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"

#define PB_AUDIT_SCHEMA_VERSION 3

/* Opens (read-write: creating the file with mode 0600 and the schema,
 * WAL mode) or read-only. A missing file (read-only), a file that is not
 * sqlite or not a provbus audit log: EX_NOINPUT naming the path. A newer
 * schema than this build knows: EX_DATAERR saying so. */
sqlite3 *pb_audit_open(const char *path, int readonly, struct pb_err *err);
void pb_audit_close(sqlite3 *db);

/* Runs sql (no rows expected); on error fills err with the sqlite message
 * and what (EX_IOERR; EX_CANTCREAT when the disk is full). */
int pb_audit_exec(sqlite3 *db, const char *sql, const char *what, struct pb_err *err);

/* ---- The writing side (provbus-consumer) --------------------------------
 *
 * A writer keeps its prepared statements; one per open db. Every function
 * returns 0 (or a row id / a count >= 0) or -1 with err: EX_CANTCREAT when
 * the disk is full, EX_IOERR for any other sqlite error, the message
 * naming what was being written. Strings are borrowed for the call only.
 * The caller groups writes with pb_audit_begin/commit (one transaction per
 * batch of deliveries: a commit is the expensive part). */
struct pb_audit_writer;

struct pb_audit_writer *pb_audit_writer_new(sqlite3 *db, struct pb_err *err);
void pb_audit_writer_free(struct pb_audit_writer *w);	/* not the db */
sqlite3 *pb_audit_writer_db(struct pb_audit_writer *w);

int pb_audit_begin(struct pb_audit_writer *w, struct pb_err *err);
/* A deferred transaction (BEGIN): lookups inside it take sqlite's file
 * lock once instead of once each; a later write in it upgrades it. No-op
 * when a transaction is open. */
int pb_audit_begin_read(struct pb_audit_writer *w, struct pb_err *err);
int pb_audit_in_tx(struct pb_audit_writer *w);
int pb_audit_commit(struct pb_audit_writer *w, struct pb_err *err);
void pb_audit_rollback(struct pb_audit_writer *w);	/* no-op outside a transaction */

/* One events row. NULL strings are stored as NULL; seq, ttl_s < 0 and
 * public < 0 likewise. */
struct pb_audit_event {
	const char *msg_id;
	int64_t received_at;
	const char *kind, *federation, *region, *node, *service, *key, *value;
	int64_t seq, ttl_s;
	int public;
	const char *verdict, *detail;
	int redelivered;
	const char *source;	/* live | history | daemon */
	const char *exchange, *routing_key;
	int changed;
	int64_t lease_from;	/* its lease counted from (history: its ts); 0: received_at */
};

/* One inputs row (kind, n, text as in the schema above). */
int pb_audit_add_input(struct pb_audit_writer *w, int64_t at, int64_t after_event,
		       const char *kind, int64_t n, const char *text, struct pb_err *err);
/* Inserts the row; returns its id (> 0) or -1. */
int64_t pb_audit_add_event(struct pb_audit_writer *w, const struct pb_audit_event *e,
			   struct pb_err *err);
/* 1 when a row that is not invalid holds this event id for (node,
 * service), whatever its seq (a copy judged again is a duplicate even when
 * its seq was changed: the id decides first), 0 when none, -1 on error.
 * A copy (the same seq) is found by one index seek, whatever the length
 * of the (node, service)'s history; an event that is not a copy costs a
 * walk of that history. */
int pb_audit_seen(struct pb_audit_writer *w, const char *node, const char *service,
		  int64_t seq, const char *msg_id, struct pb_err *err);
/* The highest seq of the rows that are not invalid for (node, service)
 * into *max (INT64_MIN for none); 0, or -1 on error. */
int pb_audit_max_seq(struct pb_audit_writer *w, const char *node, const char *service,
		     int64_t *max, struct pb_err *err);
/* The highest events.id (0 for none), or -1. */
int64_t pb_audit_max_event_id(struct pb_audit_writer *w, struct pb_err *err);

/* The providers table mirrors the daemon's live set (and tombstones). */
int pb_audit_put_provider(struct pb_audit_writer *w, const char *federation, const char *region,
			  const char *node, const char *service, const char *key,
			  const char *value, int public, int64_t seq, int64_t expires_at,
			  int64_t updated_at, int tombstone, struct pb_err *err);
int pb_audit_del_provider(struct pb_audit_writer *w, const char *federation, const char *region,
			  const char *node, const char *service, const char *key,
			  struct pb_err *err);
/* Calls cb for each stored provider (strings valid during the call; value
 * NULL for a tombstone; expires_at INT64_MAX when none). A non-zero cb
 * result stops and is returned. */
struct pb_audit_provider {
	const char *federation, *region, *node, *service, *key, *value;
	int public, tombstone;
	int64_t seq, expires_at, updated_at;
};
int pb_audit_each_provider(struct pb_audit_writer *w,
			   int (*cb)(const struct pb_audit_provider *pv, void *ctx), void *ctx,
			   struct pb_err *err);

/* notes and params rows; run_id <= 0 stores NULL. */
int pb_audit_add_note(struct pb_audit_writer *w, int64_t at, int64_t run_id, const char *kind,
		      const char *text, struct pb_err *err);
int pb_audit_add_params(struct pb_audit_writer *w, int64_t at, const char *json,
			struct pb_err *err);

/* A runs row. Times <= 0, exit_status < 0 and notify_status < 0 are NULL. */
struct pb_audit_run {
	int64_t id;
	const char *reason;
	int64_t queued_at, started_at, finished_at;
	int exit_status;
	const char *status;	/* running ok failed interrupted */
	int64_t deferred_ms;
	const char *changed_keys, *values_before, *values_after;	/* JSON text */
	const void *tail;
	size_t tail_len;
	int notify_status;
};

/* Inserts a run (status running) and links to it, in run_events, the
 * applied and expired events with first_event < id <= last_event.
 * Returns the run id or -1. */
int64_t pb_audit_add_run(struct pb_audit_writer *w, const struct pb_audit_run *run,
			 int64_t first_event, int64_t last_event, struct pb_err *err);
/* Stores finished_at, exit_status, status, deferred_ms, output_tail of run->id. */
int pb_audit_finish_run(struct pb_audit_writer *w, const struct pb_audit_run *run,
			struct pb_err *err);
int pb_audit_set_notify_status(struct pb_audit_writer *w, int64_t run_id, int status,
			       struct pb_err *err);
/* Every run still 'running' (the daemon died during it) becomes
 * 'interrupted' with a note; returns how many. */
int pb_audit_interrupt_runs(struct pb_audit_writer *w, int64_t now, struct pb_err *err);

/* The values_after of the newest run with status ok: a new string
 * (free()) in *json, or NULL when there is none. 0 or -1. */
int pb_audit_last_ok_values(struct pb_audit_writer *w, char **json, struct pb_err *err);
/* Start times of runs started at or after since, oldest first, at most max.
 * Returns how many, or -1. */
int pb_audit_run_starts_since(struct pb_audit_writer *w, int64_t since, int64_t *out, int max,
			      struct pb_err *err);
/* The newest run; returns 1 (filled; strings into the buffers), 0 (none), -1. */
struct pb_audit_run_info {
	int64_t id, started_at, finished_at;
	int exit_status;	/* -1 when NULL */
	char reason[16], status[16];
};
int pb_audit_last_run(struct pb_audit_writer *w, struct pb_audit_run_info *out,
		      struct pb_err *err);

/* meta rows: *value a new string or NULL when absent. */
int pb_audit_meta_get(struct pb_audit_writer *w, const char *k, char **value, struct pb_err *err);
int pb_audit_meta_set(struct pb_audit_writer *w, const char *k, const char *value,
		      struct pb_err *err);	/* value NULL deletes */

/* The stream offset last reached: 1 (found), 0 (none), -1. */
int pb_audit_offset_get(struct pb_audit_writer *w, const char *stream, int64_t *offset,
			int64_t *at, struct pb_err *err);
int pb_audit_offset_set(struct pb_audit_writer *w, const char *stream, int64_t offset,
			int64_t at, struct pb_err *err);

/* ---- Retention (consumer.audit_retention_days) ---- */

struct pb_audit_prune {
	int64_t cutoff;			/* rows older than this (ms) may go */
	int64_t keep_events_after;	/* events with a greater id stay (pending) */
	int64_t keep_runs_from;		/* runs started at or after this stay (throttle) */
	int max_rows;			/* per table and step */
	int vacuum_pages;		/* free pages given back per step */
};

/* One small step of pruning (audit.c says what is never pruned, and
 * up to which base), then an incremental vacuum of at most
 * o->vacuum_pages pages. Returns the rows deleted (events + runs + notes
 * + inputs; fewer than max_rows: little left to do now), or -1 with err. */
int64_t pb_audit_prune_step(sqlite3 *db, const struct pb_audit_prune *o, struct pb_err *err);
/* The instant of the log's newest base (start or snapshot input), -1 when
 * it has none or on error. */
int64_t pb_audit_last_base_at(sqlite3 *db);

/* Makes sure the file is in auto_vacuum INCREMENTAL mode (a new log is;
 * an older one takes a VACUUM, which rewrites the file once). Returns 0
 * when it was, 1 when it was switched now, -1 with err. */
int pb_audit_incremental_vacuum_on(sqlite3 *db, struct pb_err *err);

#endif
