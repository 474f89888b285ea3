#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pbtime.h"

/* The duplicate check's index (schema 2). Its key starts with what a
 * publisher's events grow along, (node, service, seq), so a batch of rows
 * adds to the tail of one run of pages per publisher; schema 1 had a
 * seen_ids(msg_id) table whose random UUID keys dirtied a page per event
 * and halved the ingest rate. Every copy of one event (a redelivery, the
 * outbox's re-send, the history stream) carries the same body, so the
 * same four values. */
#define AUDIT_DEDUPE_INDEX \
	"CREATE INDEX IF NOT EXISTS events_dedupe ON events(node, service, seq, msg_id)" \
	" WHERE verdict <> 'invalid';"

/* The decision core's inputs other than events (schema 3): what
 * `provbus-audit replay` feeds it again, in order (after_event: the
 * highest events.id the core had seen then). */
#define AUDIT_INPUTS_TABLE \
	"CREATE TABLE IF NOT EXISTS inputs(id INTEGER PRIMARY KEY, at INTEGER NOT NULL," \
	" after_event INTEGER NOT NULL, kind TEXT NOT NULL, n INTEGER, text TEXT);"
/* The bases among them: a start or a snapshot input holds the core's whole
 * state, so a replay can begin there (retention prunes up to one). Made
 * at every writable open: a log of schema 3 from before it gets it then. */
#define AUDIT_INPUTS_BASE_INDEX \
	"CREATE INDEX IF NOT EXISTS inputs_base ON inputs(at) WHERE kind IN ('start', 'snapshot');"

static const char audit_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);"
	"CREATE TABLE IF NOT EXISTS events("
	" id INTEGER PRIMARY KEY, msg_id TEXT, received_at INTEGER NOT NULL,"
	" kind TEXT, federation TEXT, region TEXT, node TEXT, service TEXT, key TEXT,"
	" value TEXT, seq INTEGER, ttl_s INTEGER, public INTEGER,"
	" verdict TEXT NOT NULL, detail TEXT, redelivered INTEGER NOT NULL DEFAULT 0,"
	" source TEXT NOT NULL DEFAULT 'live', exchange TEXT, routing_key TEXT,"
	" changed INTEGER NOT NULL DEFAULT 0, lease_from INTEGER);"
	"CREATE INDEX IF NOT EXISTS events_time ON events(received_at);"
	"CREATE INDEX IF NOT EXISTS events_key ON events(key, received_at);"
	AUDIT_DEDUPE_INDEX
	"CREATE TABLE IF NOT EXISTS runs("
	" id INTEGER PRIMARY KEY, reason TEXT NOT NULL, queued_at INTEGER,"
	" started_at INTEGER, finished_at INTEGER, exit_status INTEGER,"
	" status TEXT NOT NULL, deferred_ms INTEGER NOT NULL DEFAULT 0,"
	" changed_keys TEXT, values_before TEXT, values_after TEXT, output_tail BLOB,"
	" notify_status INTEGER);"
	"CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);"
	"CREATE TABLE IF NOT EXISTS run_events(run_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
	" PRIMARY KEY(run_id, event_id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS run_events_event ON run_events(event_id);"
	"CREATE TABLE IF NOT EXISTS params(id INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	" json TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS providers(federation TEXT NOT NULL, region TEXT NOT NULL,"
	" node TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL, value TEXT,"
	" public INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL, expires_at INTEGER,"
	" updated_at INTEGER, tombstone INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(federation, region, node, service, key));"
	"CREATE TABLE IF NOT EXISTS offsets(stream TEXT PRIMARY KEY, offset INTEGER NOT NULL,"
	" at INTEGER);"
	"CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	" run_id INTEGER, kind TEXT NOT NULL, text TEXT);"
	AUDIT_INPUTS_TABLE;

int pb_audit_exec(sqlite3 *db, const char *sql, const char *what, struct pb_err *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc == SQLITE_OK)
		return 0;
	pb_err_set(err, rc == SQLITE_FULL ? EX_CANTCREAT : EX_IOERR, "%s: %s", what,
		   msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return -1;
}

static int audit_user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_OK) {
		rc = SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	return rc;
}

static int audit_is_ours(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int ours = 0;

	if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k='schema'", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		ours = v && !strcmp((const char *)v, "provbus-audit");
	}
	sqlite3_finalize(st);
	return ours;
}

/* Runs sql (statements stop at the first that fails) in one immediate
 * transaction, rolled back on error. */
static int audit_exec_tx(sqlite3 *db, const char *sql, const char *path, struct pb_err *err)
{
	if (pb_audit_exec(db, "BEGIN IMMEDIATE", path, err) < 0)
		return -1;
	if (pb_audit_exec(db, sql, path, err) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return pb_audit_exec(db, "COMMIT", path, err);
}

/* Schema 1 -> 2: the seen_ids table becomes the events_dedupe index
 * (built from the rows already there, which hold every id seen_ids had).
 * 2 -> 3: the inputs table and events.lease_from (NULL in old rows: a
 * replay of what came before infers those inputs). */
static int audit_migrate(sqlite3 *db, int version, const char *path, struct pb_err *err)
{
	static const char v1_to_v2[] = AUDIT_DEDUPE_INDEX "DROP TABLE IF EXISTS seen_ids;";
	static const char v2_to_v3[] =
		"ALTER TABLE events ADD COLUMN lease_from INTEGER;" AUDIT_INPUTS_TABLE;
	char sql[sizeof(v1_to_v2) + sizeof(v2_to_v3) + 64];

	snprintf(sql, sizeof(sql), "%s%sPRAGMA user_version = %d;", version < 2 ? v1_to_v2 : "",
		 version < 3 ? v2_to_v3 : "", PB_AUDIT_SCHEMA_VERSION);
	return audit_exec_tx(db, sql, path, err);
}

static int audit_create(sqlite3 *db, const char *path, struct pb_err *err)
{
	char sql[sizeof(audit_schema) + 256], ts[PB_TIME_BUF];

	snprintf(sql, sizeof(sql),
		 "%sINSERT OR IGNORE INTO meta(k, v) VALUES('schema', 'provbus-audit'),"
		 "('created_at', '%s'); PRAGMA user_version = %d;",
		 audit_schema, pb_time_format(pb_now_ms(), ts), PB_AUDIT_SCHEMA_VERSION);
	return audit_exec_tx(db, sql, path, err);
}

sqlite3 *pb_audit_open(const char *path, int readonly, struct pb_err *err)
{
	sqlite3 *db = NULL;
	int version = 0, rc;

	if (readonly) {
		if (access(path, R_OK) < 0) {
			pb_err_set(err, EX_NOINPUT, "%s: %s", path, strerror(errno));
			return NULL;
		}
		rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	} else {
		/* create it 0600 before sqlite does (which would use 0644) */
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			pb_err_set(err, EX_CANTCREAT, "%s: %s", path, strerror(errno));
			return NULL;
		}
		close(fd);
		rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	}
	if (rc != SQLITE_OK) {
		pb_err_set(err, EX_NOINPUT, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(db, 5000);
	if (audit_user_version(db, &version) != SQLITE_OK) {
		pb_err_set(err, EX_NOINPUT, "%s: not an sqlite database (%s)", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (version > PB_AUDIT_SCHEMA_VERSION) {
		pb_err_set(err, EX_DATAERR,
			   "%s: audit log schema version %d is newer than this provbus knows (%d): use a newer provbus-audit",
			   path, version, PB_AUDIT_SCHEMA_VERSION);
		goto fail;
	}
	if (!readonly) {
		/* NORMAL: a commit is durable against a crash of the process
		 * (what ack-after-commit needs), fsync only at checkpoints;
		 * those come every 8192 pages (32 MiB) of WAL instead of 1000,
		 * each one writes back and fdatasyncs the db inside the daemon's loop */
		/* a new log: pages freed by pruning can go back to the file
		 * system (pb_audit_prune_step); the mode is set before the
		 * first table or never without a VACUUM */
		if (version == 0 &&
		    pb_audit_exec(db, "PRAGMA auto_vacuum=INCREMENTAL;", path, err) < 0)
			goto fail;
		if (pb_audit_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				  " PRAGMA wal_autocheckpoint=8192; PRAGMA journal_size_limit=16777216;",
				  path, err) < 0)
			goto fail;
		if (version == 0 && audit_create(db, path, err) < 0)
			goto fail;
		if (version > 0 && version < PB_AUDIT_SCHEMA_VERSION &&
		    audit_migrate(db, version, path, err) < 0)
			goto fail;
		/* WAL and shm files must not be more open than the db */
		chmod(path, 0600);
	}
	if (!audit_is_ours(db)) {
		pb_err_set(err, EX_NOINPUT, "%s: not a provbus audit log (no meta.schema row)", path);
		goto fail;
	}
	if (!readonly && pb_audit_exec(db, AUDIT_INPUTS_BASE_INDEX, path, err) < 0)
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

void pb_audit_close(sqlite3 *db)
{
	sqlite3_close(db);
}

/* ---- the writing side ----------------------------------------------------
 *
 * Statements are prepared once (on first use) and kept: the daemon writes
 * a few rows per event, and preparing costs more than the insert. */

enum audit_stmt {
	ST_BEGIN, ST_BEGIN_READ, ST_COMMIT, ST_ADD_EVENT, ST_SEEN_COPY, ST_SEEN, ST_MAX_SEQ, ST_MAX_EVENT,
	ST_PUT_PROVIDER, ST_DEL_PROVIDER, ST_EACH_PROVIDER, ST_ADD_NOTE, ST_ADD_INPUT, ST_ADD_PARAMS,
	ST_ADD_RUN, ST_LINK_EVENTS, ST_FINISH_RUN, ST_NOTIFY, ST_RUNNING_RUNS, ST_INTERRUPT,
	ST_LAST_OK, ST_STARTS, ST_LAST_RUN, ST_META_GET, ST_META_SET, ST_META_DEL,
	ST_OFFSET_GET, ST_OFFSET_SET,
	ST__COUNT
};

static const char *const audit_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ADD_EVENT] =
		"INSERT INTO events(msg_id, received_at, kind, federation, region, node, service,"
		" key, value, seq, ttl_s, public, verdict, detail, redelivered, source, exchange,"
		" routing_key, changed, lease_from) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	/* a copy repeats node, service, seq and id: one seek down the
	 * events_dedupe index */
	[ST_SEEN_COPY] =
		"SELECT 1 FROM events WHERE node = ? AND service = ? AND seq = ? AND msg_id = ?"
		" AND verdict <> 'invalid' LIMIT 1",
	/* the id under another seq: a walk of every row of (node, service) */
	[ST_SEEN] =
		"SELECT 1 FROM events WHERE node = ? AND service = ? AND msg_id = ?"
		" AND verdict <> 'invalid' LIMIT 1",
	/* the terms of events_dedupe's WHERE, so that the index serves it:
	 * one seek to the end of (node, service) */
	[ST_MAX_SEQ] =
		"SELECT seq FROM events WHERE node = ? AND service = ? AND verdict <> 'invalid'"
		" ORDER BY seq DESC LIMIT 1",
	[ST_MAX_EVENT] = "SELECT COALESCE(MAX(id), 0) FROM events",
	/* an upsert, not INSERT OR REPLACE: a known provider's row is updated
	 * in place (its key columns, so its index entry, unchanged), where a
	 * REPLACE deleted the row and its index entry and inserted both again
	 * under a new rowid (docs/BENCHMARKS-rounds.md, issue 19, round 4) */
	[ST_PUT_PROVIDER] =
		"INSERT INTO providers(federation, region, node, service, key, value,"
		" public, seq, expires_at, updated_at, tombstone) VALUES(?,?,?,?,?,?,?,?,?,?,?)"
		" ON CONFLICT(federation, region, node, service, key) DO UPDATE SET"
		" value = excluded.value, public = excluded.public, seq = excluded.seq,"
		" expires_at = excluded.expires_at, updated_at = excluded.updated_at,"
		" tombstone = excluded.tombstone",
	[ST_DEL_PROVIDER] =
		"DELETE FROM providers WHERE federation = ? AND region = ? AND node = ?"
		" AND service = ? AND key = ?",
	[ST_EACH_PROVIDER] =
		"SELECT federation, region, node, service, key, value, public, seq, expires_at,"
		" updated_at, tombstone FROM providers",
	[ST_ADD_NOTE] = "INSERT INTO notes(at, run_id, kind, text) VALUES(?,?,?,?)",
	[ST_ADD_INPUT] = "INSERT INTO inputs(at, after_event, kind, n, text) VALUES(?,?,?,?,?)",
	[ST_ADD_PARAMS] = "INSERT INTO params(at, json) VALUES(?,?)",
	[ST_ADD_RUN] =
		"INSERT INTO runs(reason, queued_at, started_at, status, changed_keys,"
		" values_before, values_after) VALUES(?,?,?,'running',?,?,?)",
	[ST_LINK_EVENTS] =
		"INSERT OR IGNORE INTO run_events(run_id, event_id) SELECT ?, id FROM events"
		" WHERE id > ? AND id <= ? AND verdict IN ('applied', 'expired')",
	[ST_FINISH_RUN] =
		"UPDATE runs SET finished_at = ?, exit_status = ?, status = ?, deferred_ms = ?,"
		" output_tail = ? WHERE id = ?",
	[ST_NOTIFY] = "UPDATE runs SET notify_status = ? WHERE id = ?",
	[ST_RUNNING_RUNS] = "SELECT id FROM runs WHERE status = 'running' ORDER BY id",
	[ST_INTERRUPT] = "UPDATE runs SET status = 'interrupted' WHERE id = ?",
	[ST_LAST_OK] = "SELECT values_after FROM runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
	[ST_STARTS] = "SELECT started_at FROM runs WHERE started_at >= ? ORDER BY started_at",
	[ST_LAST_RUN] =
		"SELECT id, reason, started_at, finished_at, exit_status, status FROM runs"
		" ORDER BY id DESC LIMIT 1",
	[ST_META_GET] = "SELECT v FROM meta WHERE k = ?",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)",
	[ST_META_DEL] = "DELETE FROM meta WHERE k = ?",
	[ST_OFFSET_GET] = "SELECT offset, at FROM offsets WHERE stream = ?",
	[ST_OFFSET_SET] = "INSERT OR REPLACE INTO offsets(stream, offset, at) VALUES(?, ?, ?)",
};

struct pb_audit_writer {
	sqlite3 *db;
	int in_tx;
	sqlite3_stmt *st[ST__COUNT];
};

static int audit_fail(struct pb_audit_writer *w, int rc, const char *what, struct pb_err *err)
{
	int full = rc == SQLITE_FULL || sqlite3_extended_errcode(w->db) == SQLITE_FULL ||
		   sqlite3_errcode(w->db) == SQLITE_FULL;

	return pb_err_set(err, full ? EX_CANTCREAT : EX_IOERR, "audit log %s: %s: %s",
			  sqlite3_db_filename(w->db, "main"), what, sqlite3_errmsg(w->db));
}

/* The statement, reset and with no bindings; NULL + err on failure. */
static sqlite3_stmt *audit_stmt(struct pb_audit_writer *w, enum audit_stmt id, struct pb_err *err)
{
	sqlite3_stmt *st = w->st[id];
	int rc;

	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	rc = sqlite3_prepare_v3(w->db, audit_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &w->st[id], NULL);
	if (rc != SQLITE_OK) {
		audit_fail(w, rc, "preparing a statement", err);
		return NULL;
	}
	return w->st[id];
}

/* Steps st, a statement of at most one row: 1 with a row (read it, then
 * sqlite3_reset st), 0 with none, -1 with err (st reset). */
static int audit_row(struct pb_audit_writer *w, sqlite3_stmt *st, const char *what,
		     struct pb_err *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	sqlite3_reset(st);
	return audit_fail(w, rc, what, err);
}

/* Steps a statement whose rows, if any, do not matter, and resets it;
 * 0 or -1. */
static int audit_done(struct pb_audit_writer *w, sqlite3_stmt *st, const char *what,
		      struct pb_err *err)
{
	int rc = audit_row(w, st, what, err);

	sqlite3_reset(st);
	return rc < 0 ? -1 : 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_i64(sqlite3_stmt *st, int i, int64_t v, int null_below)
{
	if (v < null_below)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

struct pb_audit_writer *pb_audit_writer_new(sqlite3 *db, struct pb_err *err)
{
	struct pb_audit_writer *w = calloc(1, sizeof(*w));

	if (!w) {
		pb_err_set(err, EX_OSERR, "out of memory");
		return NULL;
	}
	w->db = db;
	return w;
}

void pb_audit_writer_free(struct pb_audit_writer *w)
{
	int i;

	if (!w)
		return;
	pb_audit_rollback(w);
	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(w->st[i]);
	free(w);
}

sqlite3 *pb_audit_writer_db(struct pb_audit_writer *w)
{
	return w->db;
}

/* Runs a BEGIN or COMMIT statement and notes whether a transaction is
 * open after it. */
static int audit_tx(struct pb_audit_writer *w, enum audit_stmt id, const char *what, int in_tx,
		    struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, id, err);

	if (!st || audit_done(w, st, what, err) < 0)
		return -1;
	w->in_tx = in_tx;
	return 0;
}

int pb_audit_begin(struct pb_audit_writer *w, struct pb_err *err)
{
	return audit_tx(w, ST_BEGIN, "begin", 1, err);
}

int pb_audit_begin_read(struct pb_audit_writer *w, struct pb_err *err)
{
	if (!sqlite3_get_autocommit(w->db))
		return 0;
	return audit_tx(w, ST_BEGIN_READ, "begin", 1, err);
}

int pb_audit_in_tx(struct pb_audit_writer *w)
{
	return !sqlite3_get_autocommit(w->db);
}

int pb_audit_commit(struct pb_audit_writer *w, struct pb_err *err)
{
	return audit_tx(w, ST_COMMIT, "commit", 0, err);
}

void pb_audit_rollback(struct pb_audit_writer *w)
{
	if (!sqlite3_get_autocommit(w->db))
		sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
	w->in_tx = 0;
}

int64_t pb_audit_add_event(struct pb_audit_writer *w, const struct pb_audit_event *e,
			   struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_ADD_EVENT, err);

	if (!st)
		return -1;
	bind_text(st, 1, e->msg_id);
	sqlite3_bind_int64(st, 2, e->received_at);
	bind_text(st, 3, e->kind);
	bind_text(st, 4, e->federation);
	bind_text(st, 5, e->region);
	bind_text(st, 6, e->node);
	bind_text(st, 7, e->service);
	bind_text(st, 8, e->key);
	bind_text(st, 9, e->value);
	bind_i64(st, 10, e->seq, 0);
	bind_i64(st, 11, e->ttl_s, 0);
	bind_i64(st, 12, e->public, 0);
	bind_text(st, 13, e->verdict);
	bind_text(st, 14, e->detail);
	sqlite3_bind_int(st, 15, e->redelivered != 0);
	bind_text(st, 16, e->source ? e->source : "live");
	bind_text(st, 17, e->exchange);
	bind_text(st, 18, e->routing_key);
	sqlite3_bind_int(st, 19, e->changed != 0);
	bind_i64(st, 20, e->lease_from, 1);
	if (audit_done(w, st, "adding an event", err) < 0)
		return -1;
	return sqlite3_last_insert_rowid(w->db);
}

int pb_audit_seen(struct pb_audit_writer *w, const char *node, const char *service,
		  int64_t seq, const char *msg_id, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_SEEN_COPY, err);
	int found;

	if (!st)
		return -1;
	bind_text(st, 1, node);
	bind_text(st, 2, service);
	sqlite3_bind_int64(st, 3, seq);
	bind_text(st, 4, msg_id);
	found = audit_row(w, st, "looking up an event id", err);
	sqlite3_reset(st);
	if (found != 0)
		return found;
	/* not a copy: the id under another seq still makes it a duplicate
	 * (the id decides before the seq), at the price of a walk of the
	 * (node, service)'s rows, which only events that are not copies pay:
	 * stale ones, or an id re-sent with its seq changed */
	if (!(st = audit_stmt(w, ST_SEEN, err)))
		return -1;
	bind_text(st, 1, node);
	bind_text(st, 2, service);
	bind_text(st, 3, msg_id);
	found = audit_row(w, st, "looking up an event id", err);
	sqlite3_reset(st);
	return found;
}

int pb_audit_max_seq(struct pb_audit_writer *w, const char *node, const char *service,
		     int64_t *max, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_MAX_SEQ, err);
	int found;

	if (!st)
		return -1;
	bind_text(st, 1, node);
	bind_text(st, 2, service);
	found = audit_row(w, st, "looking up the last seq of a node", err);
	*max = found > 0 ? sqlite3_column_int64(st, 0) : INT64_MIN;
	sqlite3_reset(st);
	return found < 0 ? -1 : 0;
}

/* Runs a one-integer query; -1 on error. */
static int64_t audit_int_query(struct pb_audit_writer *w, enum audit_stmt id, const char *what,
			       struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, id, err);
	int64_t v = 0;
	int found;

	if (!st)
		return -1;
	found = audit_row(w, st, what, err);
	if (found > 0)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return found < 0 ? -1 : v;
}

int64_t pb_audit_max_event_id(struct pb_audit_writer *w, struct pb_err *err)
{
	return audit_int_query(w, ST_MAX_EVENT, "reading the last event id", err);
}

/* Binds, from 1, the five columns that name a provider's key. */
static void bind_provider(sqlite3_stmt *st, const char *federation, const char *region,
			  const char *node, const char *service, const char *key)
{
	bind_text(st, 1, federation);
	bind_text(st, 2, region);
	bind_text(st, 3, node);
	bind_text(st, 4, service);
	bind_text(st, 5, key);
}

int pb_audit_put_provider(struct pb_audit_writer *w, const char *federation, const char *region,
			  const char *node, const char *service, const char *key,
			  const char *value, int public, int64_t seq, int64_t expires_at,
			  int64_t updated_at, int tombstone, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_PUT_PROVIDER, err);

	if (!st)
		return -1;
	bind_provider(st, federation, region, node, service, key);
	bind_text(st, 6, tombstone ? NULL : value);
	sqlite3_bind_int(st, 7, public != 0);
	sqlite3_bind_int64(st, 8, seq);
	if (expires_at == PB_TIME_NEVER)
		sqlite3_bind_null(st, 9);
	else
		sqlite3_bind_int64(st, 9, expires_at);
	sqlite3_bind_int64(st, 10, updated_at);
	sqlite3_bind_int(st, 11, tombstone != 0);
	return audit_done(w, st, "storing a provider", err);
}

int pb_audit_del_provider(struct pb_audit_writer *w, const char *federation, const char *region,
			  const char *node, const char *service, const char *key,
			  struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_DEL_PROVIDER, err);

	if (!st)
		return -1;
	bind_provider(st, federation, region, node, service, key);
	return audit_done(w, st, "removing a provider", err);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

int pb_audit_each_provider(struct pb_audit_writer *w,
			   int (*cb)(const struct pb_audit_provider *pv, void *ctx), void *ctx,
			   struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_EACH_PROVIDER, err);
	int rc, res = 0;

	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pb_audit_provider pv;

		pv.federation = col_text(st, 0);
		pv.region = col_text(st, 1);
		pv.node = col_text(st, 2);
		pv.service = col_text(st, 3);
		pv.key = col_text(st, 4);
		pv.value = (const char *)sqlite3_column_text(st, 5);
		pv.public = sqlite3_column_int(st, 6);
		pv.seq = sqlite3_column_int64(st, 7);
		pv.expires_at = sqlite3_column_type(st, 8) == SQLITE_NULL ? PB_TIME_NEVER
									  : sqlite3_column_int64(st, 8);
		pv.updated_at = sqlite3_column_int64(st, 9);
		pv.tombstone = sqlite3_column_int(st, 10) || !pv.value;
		if ((res = cb(&pv, ctx)) != 0)
			break;
	}
	if (res == 0 && rc != SQLITE_DONE)
		res = audit_fail(w, rc, "reading the providers", err);
	sqlite3_reset(st);
	return res;
}

int pb_audit_add_input(struct pb_audit_writer *w, int64_t at, int64_t after_event,
		       const char *kind, int64_t n, const char *text, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_ADD_INPUT, err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	sqlite3_bind_int64(st, 2, after_event);
	bind_text(st, 3, kind);
	sqlite3_bind_int64(st, 4, n);
	bind_text(st, 5, text);
	return audit_done(w, st, "adding an input", err);
}

int pb_audit_add_note(struct pb_audit_writer *w, int64_t at, int64_t run_id, const char *kind,
		      const char *text, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_ADD_NOTE, err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	bind_i64(st, 2, run_id, 1);
	bind_text(st, 3, kind);
	bind_text(st, 4, text);
	return audit_done(w, st, "adding a note", err);
}

int pb_audit_add_params(struct pb_audit_writer *w, int64_t at, const char *json,
			struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_ADD_PARAMS, err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, at);
	bind_text(st, 2, json);
	return audit_done(w, st, "adding the parameters", err);
}

int64_t pb_audit_add_run(struct pb_audit_writer *w, const struct pb_audit_run *run,
			 int64_t first_event, int64_t last_event, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_ADD_RUN, err);
	int64_t id;

	if (!st)
		return -1;
	bind_text(st, 1, run->reason);
	bind_i64(st, 2, run->queued_at, 1);
	bind_i64(st, 3, run->started_at, 1);
	bind_text(st, 4, run->changed_keys);
	bind_text(st, 5, run->values_before);
	bind_text(st, 6, run->values_after);
	if (audit_done(w, st, "adding a run", err) < 0)
		return -1;
	id = sqlite3_last_insert_rowid(w->db);
	if (last_event > first_event) {
		if (!(st = audit_stmt(w, ST_LINK_EVENTS, err)))
			return -1;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, first_event);
		sqlite3_bind_int64(st, 3, last_event);
		if (audit_done(w, st, "linking events to a run", err) < 0)
			return -1;
	}
	return id;
}

int pb_audit_finish_run(struct pb_audit_writer *w, const struct pb_audit_run *run,
			struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_FINISH_RUN, err);

	if (!st)
		return -1;
	bind_i64(st, 1, run->finished_at, 1);
	bind_i64(st, 2, run->exit_status, 0);
	bind_text(st, 3, run->status);
	sqlite3_bind_int64(st, 4, run->deferred_ms > 0 ? run->deferred_ms : 0);
	if (run->tail)
		sqlite3_bind_blob(st, 5, run->tail, (int)run->tail_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, run->id);
	return audit_done(w, st, "finishing a run", err);
}

int pb_audit_set_notify_status(struct pb_audit_writer *w, int64_t run_id, int status,
			       struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_NOTIFY, err);

	if (!st)
		return -1;
	bind_i64(st, 1, status, 0);
	sqlite3_bind_int64(st, 2, run_id);
	return audit_done(w, st, "storing the notify status", err);
}

int pb_audit_interrupt_runs(struct pb_audit_writer *w, int64_t now, struct pb_err *err)
{
	int64_t ids[64];
	int n = 0, total = 0, rc, i;
	sqlite3_stmt *st;

	do {	/* in rounds: the select must be done before the updates */
		if (!(st = audit_stmt(w, ST_RUNNING_RUNS, err)))
			return -1;
		n = 0;
		while (n < 64 && (rc = sqlite3_step(st)) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(st, 0);
		if (n < 64 && rc != SQLITE_DONE) {
			sqlite3_reset(st);
			return audit_fail(w, rc, "reading running runs", err);
		}
		sqlite3_reset(st);
		for (i = 0; i < n; i++) {
			if (!(st = audit_stmt(w, ST_INTERRUPT, err)))
				return -1;
			sqlite3_bind_int64(st, 1, ids[i]);
			if (audit_done(w, st, "marking a run interrupted", err) < 0 ||
			    pb_audit_add_note(w, now, ids[i], "interrupted",
					      "the daemon stopped during this run (crash or kill)", err) < 0)
				return -1;
		}
		total += n;
	} while (n == 64);
	return total;
}

int pb_audit_last_ok_values(struct pb_audit_writer *w, char **json, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_LAST_OK, err);
	int found;

	*json = NULL;
	if (!st)
		return -1;
	found = audit_row(w, st, "reading the last successful run", err);
	if (found > 0)
		*json = col_dup(st, 0);
	sqlite3_reset(st);
	return found < 0 ? -1 : 0;
}

int pb_audit_run_starts_since(struct pb_audit_writer *w, int64_t since, int64_t *out, int max,
			      struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_STARTS, err);
	int n = 0, rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == max) {	/* keep the newest max */
			memmove(out, out + 1, (size_t)(max - 1) * sizeof(*out));
			n--;
		}
		if (max > 0)
			out[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return audit_fail(w, rc, "reading recent run starts", err);
	return n;
}

int pb_audit_last_run(struct pb_audit_writer *w, struct pb_audit_run_info *out,
		      struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_LAST_RUN, err);
	int found;

	if (!st)
		return -1;
	memset(out, 0, sizeof(*out));
	found = audit_row(w, st, "reading the last run", err);
	if (found > 0) {
		out->id = sqlite3_column_int64(st, 0);
		snprintf(out->reason, sizeof(out->reason), "%s", col_text(st, 1));
		out->started_at = sqlite3_column_int64(st, 2);
		out->finished_at = sqlite3_column_int64(st, 3);
		out->exit_status = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1
									     : sqlite3_column_int(st, 4);
		snprintf(out->status, sizeof(out->status), "%s", col_text(st, 5));
	}
	sqlite3_reset(st);
	return found;
}

int pb_audit_meta_get(struct pb_audit_writer *w, const char *k, char **value, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_META_GET, err);
	int found;

	*value = NULL;
	if (!st)
		return -1;
	bind_text(st, 1, k);
	found = audit_row(w, st, "reading meta", err);
	if (found > 0)
		*value = col_dup(st, 0);
	sqlite3_reset(st);
	return found < 0 ? -1 : 0;
}

int pb_audit_meta_set(struct pb_audit_writer *w, const char *k, const char *value,
		      struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, value ? ST_META_SET : ST_META_DEL, err);

	if (!st)
		return -1;
	bind_text(st, 1, k);
	if (value)
		bind_text(st, 2, value);
	return audit_done(w, st, "writing meta", err);
}

int pb_audit_offset_get(struct pb_audit_writer *w, const char *stream, int64_t *offset,
			int64_t *at, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_OFFSET_GET, err);
	int found;

	if (!st)
		return -1;
	bind_text(st, 1, stream);
	found = audit_row(w, st, "reading a stream offset", err);
	if (found > 0) {
		*offset = sqlite3_column_int64(st, 0);
		*at = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return found;
}

int pb_audit_offset_set(struct pb_audit_writer *w, const char *stream, int64_t offset,
			int64_t at, struct pb_err *err)
{
	sqlite3_stmt *st = audit_stmt(w, ST_OFFSET_SET, err);

	if (!st)
		return -1;
	bind_text(st, 1, stream);
	sqlite3_bind_int64(st, 2, offset);
	sqlite3_bind_int64(st, 3, at);
	return audit_done(w, st, "storing a stream offset", err);
}

/* ---- retention (consumer.audit_retention_days) ---------------------------
 *
 * A step deletes at most o->max_rows rows of each table, in one
 * transaction, then gives up to o->vacuum_pages free pages back to the file
 * system (auto_vacuum INCREMENTAL). What is never deleted, whatever its
 * age:
 * - events after o->keep_events_after (not yet covered by a run: a pending
 *   change, or after the base below), and for each (node, service) the
 *   events of its highest seq up to there (the duplicate and stale checks
 *   start from that seq: an older redelivery is then judged stale, a copy
 *   of the newest a duplicate; and a replay from the base sees the same
 *   seq as the daemon did);
 * - runs that started at or after o->keep_runs_from (the throttle window
 *   is read back from them after a restart), the last run, the last
 *   successful one (its values are what a change is measured against),
 *   and any still running.
 * And nothing after the base: a start or snapshot input (the core's
 * whole state: provbus-audit replay begins at it) older than the cutoff
 * or with no input between the cutoff and it, and never one before the
 * base of an earlier step (prune_base). Rows older than the cutoff but
 * after the base wait for a newer one (the daemon writes a snapshot a
 * day, when no run is going: consumer/daemon.c).
 * The inputs before the base go; meta "inputs_from" names the base (set
 * in the step that first deletes anything before it, before any step
 * has finished: the log is consistent from it at every commit), so that
 * a replay begins there, and knows the rows before it are a pruned
 * remainder (the newest seqs, the last runs), not the inputs of an older
 * provbus.
 * A log with no base older than the cutoff is pruned by age alone up to
 * its first base (its rows before it are from before inputs existed). */
#define PRUNE_EVENTS \
	"SELECT e.id FROM events e WHERE e.id <= ?2 AND e.received_at < ?1 AND" \
	" (e.verdict = 'invalid' OR e.node IS NULL OR e.service IS NULL OR e.seq IS NULL OR" \
	"  EXISTS (SELECT 1 FROM events x WHERE x.node = e.node AND x.service = e.service" \
	"          AND x.verdict <> 'invalid' AND x.seq > e.seq AND x.id <= ?2))" \
	" ORDER BY e.id LIMIT ?3"
#define PRUNE_RUNS \
	"SELECT id FROM runs WHERE started_at < ?1 AND started_at < ?2 AND status <> 'running'" \
	" AND id <> (SELECT COALESCE(MAX(id), 0) FROM runs)" \
	" AND id <> (SELECT COALESCE(MAX(id), 0) FROM runs WHERE status = 'ok')" \
	" ORDER BY id LIMIT ?3"

/* Runs one DELETE whose ?1 is the cutoff, ?2 keep (what the table keeps
 * past it), ?3 the row limit; adds the rows deleted to *deleted. */
static int prune_exec(sqlite3 *db, const char *sql, const struct pb_audit_prune *o,
		      int64_t keep, int64_t *deleted, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, o->cutoff);
		sqlite3_bind_int64(st, 2, keep);
		sqlite3_bind_int64(st, 3, o->max_rows);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		pb_err_set(err, rc == SQLITE_FULL ? EX_CANTCREAT : EX_IOERR, "%s: pruning: %s",
			   sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	if (deleted)
		*deleted += sqlite3_changes(db);
	sqlite3_finalize(st);
	return 0;
}

/* meta "inputs_from": the base a replay begins with, once retention
 * deleted rows before it. */
static int prune_meta_from(sqlite3 *db, int64_t base, struct pb_err *err)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta(k, v) VALUES('inputs_from', '%lld')",
		 (long long)base);
	return pb_audit_exec(db, sql, "pruning", err);
}

/* 1 when the log holds an event received before cutoff (the events_time
 * index: O(log n)). The events' DELETE walks the table in id order and
 * scanned every row to find none: at a daemon's start, with 500,000 rows,
 * a tenth of the CPU of the drain that followed. */
static int events_before(sqlite3 *db, int64_t cutoff)
{
	sqlite3_stmt *st = NULL;
	int old = 1;	/* unknown: let the DELETE look */

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM events WHERE received_at < ?1 LIMIT 1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cutoff);
		old = sqlite3_step(st) != SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return old;
}

/* One row of a query, its ?1 and ?2 (those it has) bound: 1 with its
 * first three columns in v, 0 when none, -1 on error. */
static int prune_row(sqlite3 *db, const char *sql, int64_t a1, int64_t a2, int64_t v[3])
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, a1);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, a2);
	rc = sqlite3_step(st);
	for (int i = 0; i < 3 && rc == SQLITE_ROW; i++)
		v[i] = sqlite3_column_int64(st, i);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The base by the cutoff alone: 1 with its id, instant and last event in
 * b, 0 when no base is older than cutoff (every row older than cutoff is
 * then before the log's first base), -1 when a query fails. It is the
 * newest one older than cutoff, or a newer one when no input lies between
 * the cutoff and it (a restart's start input after a quiet spell): the
 * rows before it are then all older than the cutoff, and its state
 * covers them. */
static int base_by_cutoff(sqlite3 *db, int64_t cutoff, int64_t b[3])
{
	int64_t x[3];
	int rc = prune_row(db, "SELECT id, at, after_event FROM inputs WHERE kind IN ('start', 'snapshot')"
			       " AND at < ?1 ORDER BY at DESC LIMIT 1", cutoff, 0, b);

	if (rc <= 0)
		return rc;
	/* the first input since the cutoff (the scan starts at the base: a
	 * day of inputs at most when the daemon writes its snapshots) */
	rc = prune_row(db, "SELECT id, at, after_event FROM inputs WHERE id > ?1 AND at >= ?2"
			   " ORDER BY id LIMIT 1", b[0], cutoff, x);
	if (rc < 0)
		return -1;
	rc = prune_row(db, rc ? "SELECT id, at, after_event FROM inputs WHERE kind IN ('start', 'snapshot')"
				" AND id <= ?1 ORDER BY id DESC LIMIT 1"
			      : "SELECT id, at, after_event FROM inputs WHERE kind IN ('start', 'snapshot')"
				" ORDER BY id DESC LIMIT 1",
		       rc ? x[0] : 0, 0, x);
	if (rc > 0)
		memcpy(b, x, sizeof(x));
	return rc < 0 ? -1 : 1;
}

/* The base (see above), as base_by_cutoff, but never one before the base
 * an earlier step pruned up to (meta inputs_from): once retention is
 * raised by a reload, or the clock stepped back, the cutoff alone would
 * pick an older base, or none, while rows after it are gone already. */
static int prune_base(sqlite3 *db, int64_t cutoff, int64_t b[3])
{
	int64_t m[3];
	int rc = base_by_cutoff(db, cutoff, b),
	    rm = rc < 0 ? -1 : prune_row(db, "SELECT id, at, after_event FROM inputs WHERE id ="
					     " (SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'inputs_from')",
					 0, 0, m);

	if (rm < 0)
		return -1;
	if (rm && (!rc || b[0] < m[0])) {
		memcpy(b, m, sizeof(m));
		rc = 1;
	}
	return rc;
}

int64_t pb_audit_prune_step(sqlite3 *db, const struct pb_audit_prune *arg, struct pb_err *err)
{
	struct pb_audit_prune lim = *arg, *o = &lim;
	int64_t n = 0, n_in = 0, b[3] = { 0, 0, 0 };
	char sql[64];
	int old_events, has_base;

	if (pb_audit_exec(db, "BEGIN IMMEDIATE", "pruning", err) < 0)
		return -1;
	/* nothing at or after the base */
	if ((has_base = prune_base(db, o->cutoff, b)) < 0) {
		pb_err_set(err, EX_IOERR, "%s: pruning: %s", sqlite3_db_filename(db, "main"),
			   sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (has_base) {
		if (o->cutoff > b[1])
			o->cutoff = b[1];
		if (o->keep_events_after > b[2])
			o->keep_events_after = b[2];
		if (o->keep_runs_from > b[1])
			o->keep_runs_from = b[1];
	}
	old_events = events_before(db, o->cutoff);
	if ((old_events &&
	     (prune_exec(db, "DELETE FROM run_events WHERE event_id IN (" PRUNE_EVENTS ")", o,
			 o->keep_events_after, NULL, err) < 0 ||
	      prune_exec(db, "DELETE FROM events WHERE id IN (" PRUNE_EVENTS ")", o,
			 o->keep_events_after, &n, err) < 0)) ||
	    prune_exec(db, "DELETE FROM run_events WHERE run_id IN (" PRUNE_RUNS ")", o,
		       o->keep_runs_from, NULL, err) < 0 ||
	    prune_exec(db, "DELETE FROM runs WHERE id IN (" PRUNE_RUNS ")", o, o->keep_runs_from,
		       &n, err) < 0 ||
	    prune_exec(db, "DELETE FROM notes WHERE id IN (SELECT id FROM notes WHERE at < ?1"
			   " AND run_id IS NOT ?2 ORDER BY id LIMIT ?3)", o, -1, &n, err) < 0 ||
	    /* the core's inputs before the base: a replay begins at it */
	    (has_base &&
	     (prune_exec(db, "DELETE FROM inputs WHERE id IN (SELECT id FROM inputs WHERE id < ?2"
			     " ORDER BY id LIMIT ?3)", o, b[0], &n_in, err) < 0 ||
	      (n + n_in && prune_meta_from(db, b[0], err) < 0))) ||
	    pb_audit_exec(db, "COMMIT", "pruning", err) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	/* the freed pages back to the file system, a few at a time */
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", o->vacuum_pages);
	if (pb_audit_exec(db, sql, "giving free pages back", err) < 0)
		return -1;
	return n + n_in;
}

int64_t pb_audit_last_base_at(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t at = -1;

	if (sqlite3_prepare_v2(db, "SELECT MAX(at) FROM inputs WHERE kind IN ('start', 'snapshot')", -1,
			       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		at = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return at;
}

int pb_audit_incremental_vacuum_on(sqlite3 *db, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int mode = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA auto_vacuum", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		mode = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (mode == 2)
		return 0;
	/* a log made before retention existed: the mode takes a VACUUM,
	 * once (it rewrites the file) */
	if (pb_audit_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM;",
			  "switching to incremental vacuum", err) < 0)
		return -1;
	return 1;
}
