#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pbtime.h"

static const char audit_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);"
	"CREATE TABLE IF NOT EXISTS events("
	" id INTEGER PRIMARY KEY, msg_id TEXT, received_at INTEGER NOT NULL,"
	" kind TEXT, federation TEXT, region TEXT, node TEXT, service TEXT, key TEXT,"
	" value TEXT, seq INTEGER, ttl_s INTEGER, public INTEGER,"
	" verdict TEXT NOT NULL, detail TEXT, redelivered INTEGER NOT NULL DEFAULT 0,"
	" source TEXT NOT NULL DEFAULT 'live', exchange TEXT, routing_key TEXT,"
	" changed INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS events_time ON events(received_at);"
	"CREATE INDEX IF NOT EXISTS events_key ON events(key, received_at);"
	"CREATE TABLE IF NOT EXISTS seen_ids(msg_id TEXT PRIMARY KEY) WITHOUT ROWID;"
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
	" run_id INTEGER, kind TEXT NOT NULL, text TEXT);";

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

static int audit_create(sqlite3 *db, const char *path, struct pb_err *err)
{
	char sql[256], ts[PB_TIME_BUF];

	if (pb_audit_exec(db, "BEGIN IMMEDIATE", path, err) < 0)
		return -1;
	if (pb_audit_exec(db, audit_schema, path, err) < 0)
		goto fail;
	snprintf(sql, sizeof(sql),
		 "INSERT OR IGNORE INTO meta(k, v) VALUES('schema', 'provbus-audit'),"
		 "('created_at', '%s'); PRAGMA user_version = %d;",
		 pb_time_format(pb_now_ms(), ts), PB_AUDIT_SCHEMA_VERSION);
	if (pb_audit_exec(db, sql, path, err) < 0)
		goto fail;
	return pb_audit_exec(db, "COMMIT", path, err);
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
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
		if (pb_audit_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", path, err) < 0)
			goto fail;
		if (version == 0 && audit_create(db, path, err) < 0)
			goto fail;
		/* WAL and shm files must not be more open than the db */
		chmod(path, 0600);
	}
	if (!audit_is_ours(db)) {
		pb_err_set(err, EX_NOINPUT, "%s: not a provbus audit log (no meta.schema row)", path);
		goto fail;
	}
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

void pb_audit_close(sqlite3 *db)
{
	sqlite3_close(db);
}
