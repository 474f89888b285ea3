/* audit.h — the audit log of SPEC §8: state_dir/audit.db, sqlite, WAL,
 * mode 0600. Written by provbus-consumer, read (read-only) by
 * provbus-audit.
 *
 * Schema version 1 (PRAGMA user_version = 1; meta.schema =
 * 'provbus-audit'). All times are integer ms since the epoch.
 *
 *   meta(k TEXT PRIMARY KEY, v TEXT)         schema, node, federation, created_at
 *   events(id INTEGER PRIMARY KEY,           the audit row; SPEC §8 "id"
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
 *          changed INTEGER NOT NULL DEFAULT 0)   1: it changed the values
 *   seen_ids(msg_id TEXT PRIMARY KEY)        ids judged before (duplicate check)
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
 *
 * Indexes: events(received_at), events(key, received_at),
 * runs(started_at), run_events(event_id).
 */
#ifndef PB_AUDIT_H
#define PB_AUDIT_H

#include <sqlite3.h>

#include "err.h"

#define PB_AUDIT_SCHEMA_VERSION 1

/* Opens (read-write: creating the file with mode 0600 and the schema,
 * WAL mode) or read-only. A missing file (read-only), a file that is not
 * sqlite or not a provbus audit log: EX_NOINPUT naming the path. A newer
 * schema than this build knows: EX_DATAERR saying so. */
sqlite3 *pb_audit_open(const char *path, int readonly, struct pb_err *err);
void pb_audit_close(sqlite3 *db);

/* Runs sql (no rows expected); on error fills err with the sqlite message
 * and what (EX_IOERR; EX_CANTCREAT when the disk is full). */
int pb_audit_exec(sqlite3 *db, const char *sql, const char *what, struct pb_err *err);

#endif
