/* outbox.c — the publisher's spool (see outbox.h).
 *
 * Two publishers on one node (the chef handler and a timer, or an operator
 * running `flush`) share this file. Writing events is safe by itself:
 * each announcement is one BEGIN IMMEDIATE transaction, so seqs and row
 * order are serialised by sqlite. *Sending* is not: two senders reading
 * the same rows would both publish them. We serialise senders with an
 * exclusive flock on STATE_DIR/outbox.lock held for the whole send,
 * rather than claiming rows in a transaction, because
 * - "oldest first" is then trivially kept: one sender walks the table in
 *   n order, a second waits and finds only what is left;
 * - a sender that dies (SIGKILL, OOM) drops the flock with its file
 *   descriptor; claimed rows would need a lease and a reclaim rule;
 * - the cost is only that a second publisher waits (bounded by its
 *   --timeout) — and its events are already spooled, so the first
 *   sender usually sends them too.
 * The lock is a separate file because sqlite itself takes POSIX locks on
 * outbox.db, which an flock on the same file would not interact with but
 * would confuse a reader. */
#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "pbtime.h"

#define SCHEMA_VERSION 1

/* Durability, and what it costs. Measured (ext4, one 10-key `provides`):
 * sqlite's defaults made 5 fdatasyncs a run, 3 of them before the first
 * byte went to the broker (a new WAL's header, its directory, the commit)
 * and 2 at exit (the checkpoint sqlite runs when the last connection
 * closes, before it unlinks the WAL and its -shm). Now:
 * - the spool transaction (seqs, events, provided keys) is the
 *   durability point: WAL + synchronous FULL, one fdatasync of the WAL at
 *   its commit, before anything is sent (plus one of state_dir, which
 *   sqlite does once per process for the WAL's directory entry);
 * - the delete of confirmed events is not synced (see pb_outbox_delete):
 *   lost to a power cut, it only sends them again, and consumers drop
 *   duplicates by id;
 * - the WAL outlives the process (SQLITE_FCNTL_PERSIST_WAL, no checkpoint
 *   on close), so the next run appends to it: no header to sync;
 * - checkpoints are ours: sqlite's automatic one would run inside the
 *   spool commit, on the path to the broker. pb_outbox_close truncates
 *   the WAL into the database (SQLITE_CHECKPOINT_TRUNCATE: 2 fdatasyncs)
 *   after the send, once it holds CHECKPOINT_PAGES pages: about every 12
 *   runs of one service (a run writes ~5 pages). The bound matters: every
 *   process is the WAL's first opener and rebuilds its index by reading
 *   and checksumming it all (a cost per page: docs/BENCHMARKS.md), and
 *   forgets what an earlier process checkpointed, so a
 *   passive checkpoint never lets the WAL shrink: only a truncate does.
 * Crash safety is sqlite's: a checkpoint syncs the WAL before copying it
 * and the database before truncating the WAL; a torn unsynced tail of the
 * WAL is dropped by its checksums on recovery, never a synced commit. */
#define CHECKPOINT_PAGES 64

struct pb_outbox {
	sqlite3 *db;
	char *path;		/* STATE_DIR/outbox.db */
	char *lock_path;	/* STATE_DIR/outbox.lock */
	int lock_fd;		/* -1 until pb_outbox_lock */
	int memory;
	int wal_pages;		/* WAL size after our last commit (wal_hook) */
	char *floor_path;	/* STATE_DIR/outbox.floor (see "The seq floor") */
	int floor_fd;		/* a memory outbox's, flocked; -1 otherwise */
	int floor_errno;	/* why a memory outbox could not open it */
	int64_t floor;		/* no seq at or below it is taken */
	int64_t copied_max;	/* a memory outbox: the last row copied from the file */
	sqlite3_stmt *st_add;	/* cached: one per event */
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS seq ("
	" node TEXT NOT NULL, service TEXT NOT NULL, last INTEGER NOT NULL,"
	" PRIMARY KEY (node, service)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS outbox ("
	" n INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL, exchange TEXT NOT NULL, routing_key TEXT NOT NULL,"
	" kind TEXT NOT NULL, service TEXT NOT NULL, seq INTEGER NOT NULL,"
	" ts_ms INTEGER NOT NULL, body TEXT NOT NULL, spooled_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS provided ("
	" node TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL,"
	" federation TEXT NOT NULL, public INTEGER NOT NULL,"
	" PRIMARY KEY (node, service, federation, key)) WITHOUT ROWID;";

/* A write that failed for want of room or by an I/O error is EX_IOERR
 * (the caller may still send without the file, provbus-publish(1)); the code the
 * caller chose otherwise. */
static int db_err(struct pb_outbox *ob, int code, const char *what, struct pb_err *err)
{
	int sc = ob->db ? (sqlite3_extended_errcode(ob->db) & 0xff) : SQLITE_OK;

	if (sc == SQLITE_FULL || sc == SQLITE_IOERR)
		code = EX_IOERR;
	return pb_err_set(err, code, "%s: %s: %s", ob->path, what,
			  ob->db ? sqlite3_errmsg(ob->db) : "cannot open");
}

static int exec(struct pb_outbox *ob, const char *sql, const char *what, struct pb_err *err)
{
	if (sqlite3_exec(ob->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(ob, EX_CANTCREAT, what, err);
	return 0;
}

static char *join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* mkdir -p dir, mode 0700 for what it creates. */
static int make_dir(const char *dir, struct pb_err *err)
{
	char *copy = strdup(dir), *p;
	int rc = -1;

	if (!copy)
		return pb_err_set(err, EX_OSERR, "out of memory");
	for (p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(copy, 0700) && errno != EEXIST) {
			pb_err_set(err, EX_CANTCREAT, "state_dir %s: cannot create %s: %s", dir, copy,
				   strerror(errno));
			goto out;
		}
		*p = c;
		if (!c)
			break;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static struct pb_outbox *outbox_new(const char *state_dir, struct pb_err *err)
{
	struct pb_outbox *ob = calloc(1, sizeof(*ob));

	if (!ob || !(ob->path = join_path(state_dir, "outbox.db")) ||
	    !(ob->lock_path = join_path(state_dir, "outbox.lock")) ||
	    !(ob->floor_path = join_path(state_dir, "outbox.floor"))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		pb_outbox_close(ob);
		return NULL;
	}
	ob->lock_fd = ob->floor_fd = -1;
	return ob;
}

/* ---- the seq floor ----
 *
 * A run that cannot write outbox.db (disk full) still sends its events
 * (provbus-publish(1)), but it cannot store the seqs it took: the next run
 * would take them again, and consumers would judge its events stale (a
 * seq not above one they have). So such a run first raises the floor in
 * STATE_DIR/outbox.floor, a file of FLOOR_LEN bytes that every run with a
 * writable outbox makes when it is missing: rewriting bytes a file already
 * has needs no room on the file system. Every run takes its seqs above
 * the floor (0 unless a run went without the file). */
#define FLOOR_LEN 32

static int64_t floor_read_fd(int fd)
{
	char text[FLOOR_LEN + 1];
	ssize_t n = pread(fd, text, FLOOR_LEN, 0);
	long long v;

	if (n <= 0)
		return 0;
	text[n] = '\0';
	v = strtoll(text, NULL, 10);
	return v > 0 ? (int64_t)v : 0;
}

static void floor_format(char buf[FLOOR_LEN], int64_t v)
{
	memset(buf, ' ', FLOOR_LEN);
	buf[snprintf(buf, FLOOR_LEN, "%lld", (long long)v)] = ' ';
	buf[FLOOR_LEN - 1] = '\n';
}

/* The floor, for an outbox on disk or read-only: made (at 0) when missing
 * and the outbox is writable; best effort, a run without it only cannot
 * go without the file later. */
static void floor_load(struct pb_outbox *ob, int create)
{
	int fd = open(ob->floor_path, O_RDONLY | O_CLOEXEC);
	char buf[FLOOR_LEN];

	if (fd >= 0) {
		ob->floor = floor_read_fd(fd);
		close(fd);
		return;
	}
	if (!create || errno != ENOENT)
		return;
	fd = open(ob->floor_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	floor_format(buf, 0);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd))
		pb_log_info("%s: %s", ob->floor_path, strerror(errno));
	close(fd);
}

/* A memory outbox raises the floor to seq before sending anything of it.
 * When it cannot, the events still go (provbus-publish(1): the outbox cannot
 * be written, the events are still sent), with a warning that says what
 * the next run risks. */
static void floor_keep(struct pb_outbox *ob, int64_t seq)
{
	char buf[FLOOR_LEN];
	const char *why = strerror(ob->floor_errno);

	if (ob->floor_fd >= 0) {
		floor_format(buf, seq);
		if (pwrite(ob->floor_fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
		    !fdatasync(ob->floor_fd)) {
			ob->floor = seq;
			return;
		}
		why = strerror(errno);
	}
	pb_log_warn("%s: cannot keep seq %lld (%s): until the state_dir is writable again, a "
		    "later run may take it again, and consumers would judge its events stale",
		    ob->floor_path, (long long)seq, why);
}

static int create_schema(struct pb_outbox *ob, struct pb_err *err)
{
	int version = -1, rc = -1;
	sqlite3_stmt *st = NULL;

	if (exec(ob, "BEGIN IMMEDIATE", "cannot write", err))
		goto out;
	if (sqlite3_prepare_v2(ob->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		db_err(ob, EX_CANTCREAT, "cannot read", err);
		goto rollback;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > SCHEMA_VERSION) {
		pb_err_set(err, EX_CONFIG,
			   "%s: made by a newer provbus-publish (schema %d, this one knows %d): upgrade provbus",
			   ob->path, version, SCHEMA_VERSION);
		goto rollback;
	}
	/* an up-to-date file needs no write (and no fsync) */
	if (version < SCHEMA_VERSION &&
	    (exec(ob, schema, "cannot create tables", err) ||
	     exec(ob, "PRAGMA user_version = 1", "cannot write", err)))
		goto rollback;
	if (exec(ob, "COMMIT", "cannot write", err))
		goto rollback;
	rc = 0;
	goto out;
rollback:
	sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	return rc;
}

/* sqlite's wal_hook, after each commit of ours: remember the WAL's size
 * for pb_outbox_close (this hook also replaces the automatic checkpoint) */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct pb_outbox *ob = arg;

	(void)db;
	(void)name;
	ob->wal_pages = pages;
	return SQLITE_OK;
}

/* The WAL and checkpoint policy of the header comment. */
static int setup_wal(struct pb_outbox *ob, struct pb_err *err)
{
	int persist = 1;

	if (sqlite3_db_config(ob->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK ||
	    sqlite3_file_control(ob->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist) != SQLITE_OK)
		return db_err(ob, EX_CANTCREAT, "cannot set up the WAL", err);
	/* WAL: readers (a dry run, the operator's sqlite3) never block the
	 * sender; synchronous NORMAL: no sync at a commit, pb_outbox_sync
	 * syncs what must outlive a power cut (the events left unconfirmed) */
	if (exec(ob, "PRAGMA journal_mode = WAL", "cannot set WAL mode", err) ||
	    exec(ob, "PRAGMA synchronous = NORMAL", "cannot write", err))
		return -1;
	sqlite3_wal_hook(ob->db, wal_hook, ob);
	return 0;
}

struct pb_outbox *pb_outbox_open(const char *state_dir, int busy_ms, struct pb_err *err)
{
	struct pb_outbox *ob = outbox_new(state_dir, err);
	mode_t old;
	int rc;

	if (!ob)
		return NULL;
	if (make_dir(state_dir, err))
		goto fail;
	/* the file, its -wal and -shm: 0600 (events name hosts and ports) */
	old = umask(077);
	rc = sqlite3_open_v2(ob->path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		db_err(ob, EX_CANTCREAT, "cannot open", err);
		goto fail;
	}
	/* best effort: an operator's stricter or looser choice on an existing
	 * file is overridden, since the file names hosts and ports */
	if (chmod(ob->path, 0600) && errno != EPERM)
		goto fail_chmod;
	sqlite3_busy_timeout(ob->db, busy_ms > 0 ? busy_ms : 10000);
	if (setup_wal(ob, err) || create_schema(ob, err))
		goto fail;
	floor_load(ob, 1);
	return ob;
fail_chmod:
	pb_err_set(err, EX_CANTCREAT, "%s: cannot chmod 0600: %s", ob->path, strerror(errno));
fail:
	pb_outbox_close(ob);
	return NULL;
}

/* Copies the counters, the provided keys and the spooled events of
 * outbox.db (opened with the URI parameters params) into a memory outbox,
 * all or nothing. 0, or -1 with why (sqlite's message) when the file
 * cannot be read so. */
static int copy_from_disk(struct pb_outbox *ob, const char *params, char *why, size_t size)
{
	char *uri = sqlite3_mprintf("file:%s?%s", ob->path, params);
	char *sql = uri ? sqlite3_mprintf("ATTACH %Q AS disk", uri) : NULL;
	int rc = -1;

	snprintf(why, size, "out of memory");
	if (sql && sqlite3_exec(ob->db, sql, NULL, NULL, NULL) == SQLITE_OK) {
		if (sqlite3_exec(ob->db,
				 "BEGIN;"
				 "INSERT OR REPLACE INTO main.seq SELECT * FROM disk.seq;"
				 "INSERT OR REPLACE INTO main.provided SELECT * FROM disk.provided;"
				 "INSERT INTO main.outbox SELECT * FROM disk.outbox;"
				 "COMMIT",
				 NULL, NULL, NULL) == SQLITE_OK)
			rc = 0;
		else {
			snprintf(why, size, "%s", sqlite3_errmsg(ob->db));
			sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
		}
		sqlite3_exec(ob->db, "DETACH disk", NULL, NULL, NULL);
	} else if (sql) {
		snprintf(why, size, "%s", sqlite3_errmsg(ob->db));
	}
	sqlite3_free(sql);
	sqlite3_free(uri);
	return rc;
}

/* No -wal file, or an empty one: the database file alone holds every
 * commit, so it can be read as immutable (no -shm needed). */
static int no_wal(const struct pb_outbox *ob)
{
	char wal[PATH_MAX];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", ob->path);
	return stat(wal, &st) ? errno == ENOENT : st.st_size == 0;
}

struct pb_outbox *pb_outbox_open_memory(const char *state_dir, struct pb_err *err)
{
	struct pb_outbox *ob = outbox_new(state_dir, err);
	char why[256];
	int64_t n = 0;
	sqlite3_stmt *st = NULL;

	if (!ob)
		return NULL;
	ob->memory = 1;
	if (sqlite3_open_v2(":memory:", &ob->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK || create_schema(ob, err)) {
		pb_err_set(err, EX_OSERR, "cannot create an outbox in memory");
		goto fail;
	}
	/* the floor, held until the end of the run: two runs without the file
	 * take their seqs one after the other */
	if ((ob->floor_fd = open(ob->floor_path, O_RDWR | O_CLOEXEC)) >= 0) {
		while (flock(ob->floor_fd, LOCK_EX) && errno == EINTR)
			;
		ob->floor = floor_read_fd(ob->floor_fd);
	} else {
		ob->floor_errno = errno;
	}
	if (access(ob->path, F_OK))
		return ob;	/* no file: no seq taken yet, nothing spooled */
	/* keep seqs increasing and the spool first: read the file as it is
	 * (read-only; when its -shm cannot be made, as immutable, provided
	 * no WAL holds commits the database file lacks) */
	if (copy_from_disk(ob, "mode=ro", why, sizeof(why)) &&
	    (!no_wal(ob) || copy_from_disk(ob, "immutable=1", why, sizeof(why)))) {
		pb_log_warn("%s: cannot read the seqs it keeps (%s): this run's seqs start above "
			    "%lld, and may repeat earlier ones (consumers would judge those events "
			    "stale); its spooled events stay there",
			    ob->path, why, (long long)ob->floor);
		return ob;
	}
	if (sqlite3_prepare_v2(ob->db, "SELECT count(*), coalesce(max(n), 0) FROM outbox", -1, &st,
			       NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
		ob->copied_max = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (n > 0)
		pb_log_notice("%s: %lld spooled event%s read into memory, to be sent first; they stay "
			      "in the file (a later run sends them again, consumers drop the copies by id)",
			      ob->path, (long long)n, n == 1 ? "" : "s");
	return ob;
fail:
	pb_outbox_close(ob);
	return NULL;
}

struct pb_outbox *pb_outbox_open_readonly(const char *state_dir, struct pb_err *err)
{
	struct pb_outbox *ob = outbox_new(state_dir, err);

	if (!ob)
		return NULL;
	if (access(ob->path, F_OK)) {
		pb_err_set(err, EX_NOINPUT, "%s: %s", ob->path, strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(ob->path, &ob->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		db_err(ob, EX_NOINPUT, "cannot open", err);
		goto fail;
	}
	sqlite3_busy_timeout(ob->db, 5000);
	floor_load(ob, 0);
	return ob;
fail:
	pb_outbox_close(ob);
	return NULL;
}

/* Once the WAL is big enough, a checkpoint that truncates it. It waits
 * for no one (busy handler off): with another process in the file it
 * fails, and a later run does it. Its failure costs nothing but a longer
 * WAL. */
static void checkpoint(struct pb_outbox *ob)
{
	int log = 0, done = 0;

	if (ob->memory || !ob->db || ob->wal_pages < CHECKPOINT_PAGES)
		return;
	sqlite3_busy_timeout(ob->db, 0);
	if (sqlite3_wal_checkpoint_v2(ob->db, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &done) !=
	    SQLITE_OK)
		pb_log_info("%s: checkpoint of %d WAL pages not done now: %s", ob->path,
			    ob->wal_pages, sqlite3_errmsg(ob->db));
	else
		pb_log_debug("%s: checkpoint: %d WAL pages into the database, WAL truncated",
			     ob->path, ob->wal_pages);
}

void pb_outbox_close(struct pb_outbox *ob)
{
	if (!ob)
		return;
	sqlite3_finalize(ob->st_add);
	checkpoint(ob);
	if (ob->db)
		sqlite3_close(ob->db);
	if (ob->lock_fd >= 0)
		close(ob->lock_fd);	/* drops the flock */
	if (ob->floor_fd >= 0)
		close(ob->floor_fd);
	free(ob->path);
	free(ob->lock_path);
	free(ob->floor_path);
	free(ob);
}

const char *pb_outbox_path(const struct pb_outbox *ob)
{
	return ob->path;
}

int pb_outbox_in_memory(const struct pb_outbox *ob)
{
	return ob->memory;
}

int pb_outbox_begin(struct pb_outbox *ob, struct pb_err *err)
{
	return exec(ob, "BEGIN IMMEDIATE", "cannot write", err);
}

int pb_outbox_commit(struct pb_outbox *ob, struct pb_err *err)
{
	return exec(ob, "COMMIT", "cannot write", err);
}

void pb_outbox_rollback(struct pb_outbox *ob)
{
	if (!sqlite3_get_autocommit(ob->db))
		sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
}

static int prepare(struct pb_outbox *ob, const char *sql, sqlite3_stmt **st, struct pb_err *err)
{
	if (sqlite3_prepare_v2(ob->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_err(ob, EX_SOFTWARE, "cannot prepare a statement", err);
	}
	return 0;
}

int pb_outbox_last_seq(struct pb_outbox *ob, const char *node, const char *service,
		       int64_t *last, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, s;

	*last = 0;
	if (prepare(ob, "SELECT last FROM seq WHERE node = ?1 AND service = ?2", &st, err))
		goto out;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		*last = sqlite3_column_int64(st, 0);
	else if (s != SQLITE_DONE) {
		db_err(ob, EX_IOERR, "cannot read seq", err);
		goto out;
	}
	if (*last < ob->floor)
		*last = ob->floor;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_take_seq(struct pb_outbox *ob, const char *node, const char *service,
		       int64_t *seq, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t last;
	int rc = -1;

	if (pb_outbox_last_seq(ob, node, service, &last, err))
		goto out;
	if (prepare(ob, "INSERT OR REPLACE INTO seq (node, service, last) VALUES (?1, ?2, ?3)",
		    &st, err))
		goto out;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, last + 1);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(ob, EX_CANTCREAT, "cannot write seq", err);
		goto out;
	}
	if (ob->memory)
		floor_keep(ob, last + 1);
	*seq = last + 1;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_add(struct pb_outbox *ob, const struct pb_event *ev, const char *exchange,
		  const char *routing_key, const char *body, size_t body_len,
		  struct pb_err *err)
{
	int64_t ts_ms = 0;
	struct pb_err terr = PB_ERR_INIT;
	sqlite3_stmt *st;

	if (!ob->st_add &&
	    prepare(ob,
		    "INSERT INTO outbox (id, exchange, routing_key, kind, service, seq, ts_ms,"
		    " body, spooled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		    &ob->st_add, err))
		return -1;
	st = ob->st_add;
	if (pb_time_parse_rfc3339(ev->ts, &ts_ms, &terr))
		ts_ms = pb_now_ms();
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, ev->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, exchange, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, routing_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, pb_kind_name(ev->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ev->service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, ev->seq);
	sqlite3_bind_int64(st, 7, ts_ms);
	sqlite3_bind_text(st, 8, body, (int)body_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, pb_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(ob, EX_CANTCREAT, "cannot spool an event", err);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return 0;
}

void pb_provided_free(struct pb_provided *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].key);
		free(p[i].federation);
	}
	free(p);
}

int pb_outbox_provided(struct pb_outbox *ob, const char *node, const char *service,
		       struct pb_provided **out, size_t *n, struct pb_err *err)
{
	struct pb_provided *p = NULL;
	size_t used = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc = -1, s;

	*out = NULL;
	*n = 0;
	if (prepare(ob,
		    "SELECT key, federation, public FROM provided WHERE node = ?1 AND service = ?2"
		    " ORDER BY federation, key", &st, err))
		goto out;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (used == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct pb_provided *np = realloc(p, ncap * sizeof(*np));
			if (!np) {
				pb_err_set(err, EX_OSERR, "out of memory");
				goto out;
			}
			p = np;
			cap = ncap;
		}
		p[used].key = strdup((const char *)sqlite3_column_text(st, 0));
		p[used].federation = strdup((const char *)sqlite3_column_text(st, 1));
		p[used].public = sqlite3_column_int(st, 2);
		used++;
		if (!p[used - 1].key || !p[used - 1].federation) {
			pb_err_set(err, EX_OSERR, "out of memory");
			goto out;
		}
	}
	if (s != SQLITE_DONE) {
		db_err(ob, EX_IOERR, "cannot read the provided keys", err);
		goto out;
	}
	*out = p;
	*n = used;
	p = NULL;
	used = 0;
	rc = 0;
out:
	pb_provided_free(p, used);
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_set_provided(struct pb_outbox *ob, const char *node, const char *service,
			   const struct pb_provided *p, size_t n, struct pb_err *err)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	int rc = -1;

	if (prepare(ob, "DELETE FROM provided WHERE node = ?1 AND service = ?2", &del, err) ||
	    prepare(ob,
		    "INSERT OR REPLACE INTO provided (node, service, key, federation, public)"
		    " VALUES (?1, ?2, ?3, ?4, ?5)", &ins, err))
		goto out;
	sqlite3_bind_text(del, 1, node, -1, SQLITE_STATIC);
	sqlite3_bind_text(del, 2, service, -1, SQLITE_STATIC);
	if (sqlite3_step(del) != SQLITE_DONE) {
		db_err(ob, EX_CANTCREAT, "cannot write the provided keys", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, node, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, service, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, p[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, p[i].federation, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 5, p[i].public);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			db_err(ob, EX_CANTCREAT, "cannot write the provided keys", err);
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	return rc;
}

void pb_outbox_row_release(struct pb_outbox_row *row)
{
	free(row->exchange);
	free(row->routing_key);
	free(row->kind);
	free(row->service);
	free(row->body);
	memset(row, 0, sizeof(*row));
}

int pb_outbox_count(struct pb_outbox *ob, int64_t *count, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*count = 0;
	if (prepare(ob, "SELECT count(*) FROM outbox", &st, err))
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_err(ob, EX_IOERR, "cannot count the spooled events", err);
		goto out;
	}
	*count = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int64_t pb_outbox_still_on_disk(struct pb_outbox *ob)
{
	sqlite3_stmt *st = NULL;
	int64_t n = 0;

	if (!ob->memory || !ob->copied_max)
		return 0;
	if (sqlite3_prepare_v2(ob->db, "SELECT count(*) FROM outbox WHERE n <= ?1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, ob->copied_max);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

static char *column_dup(sqlite3_stmt *st, int i, size_t *len)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	char *s = malloc(n + 1);

	if (s) {
		if (n)
			memcpy(s, t, n);
		s[n] = '\0';
	}
	if (len)
		*len = n;
	return s;
}

int pb_outbox_read(struct pb_outbox *ob, int64_t after, size_t max, struct pb_outbox_row *rows,
		   size_t *got, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t k = 0;
	int rc = -1, s;

	*got = 0;
	if (prepare(ob,
		    "SELECT n, id, exchange, routing_key, kind, service, seq, ts_ms, body"
		    " FROM outbox WHERE n > ?1 ORDER BY n LIMIT ?2", &st, err))
		goto out;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (k < max && (s = sqlite3_step(st)) == SQLITE_ROW) {
		struct pb_outbox_row *r = &rows[k];

		memset(r, 0, sizeof(*r));
		r->n = sqlite3_column_int64(st, 0);
		snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 1));
		r->exchange = column_dup(st, 2, NULL);
		r->routing_key = column_dup(st, 3, NULL);
		r->kind = column_dup(st, 4, NULL);
		r->service = column_dup(st, 5, NULL);
		r->seq = sqlite3_column_int64(st, 6);
		r->ts_ms = sqlite3_column_int64(st, 7);
		r->body = column_dup(st, 8, &r->body_len);
		k++;
		if (!r->exchange || !r->routing_key || !r->kind || !r->service || !r->body) {
			pb_err_set(err, EX_OSERR, "out of memory");
			goto out;
		}
	}
	if (k < max && s != SQLITE_DONE) {
		db_err(ob, EX_IOERR, "cannot read the spooled events", err);
		goto out;
	}
	*got = k;
	k = 0;
	rc = 0;
out:
	while (k > 0)
		pb_outbox_row_release(&rows[--k]);
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_exchanges(struct pb_outbox *ob, char ***out, size_t *n, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	char **list = NULL;
	size_t used = 0;
	int rc = -1, s;

	*out = NULL;
	*n = 0;
	if (prepare(ob, "SELECT DISTINCT exchange FROM outbox ORDER BY exchange", &st, err))
		goto out;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		char **nl = realloc(list, (used + 1) * sizeof(*nl));
		if (!nl || !(nl[used] = column_dup(st, 0, NULL))) {
			list = nl ? nl : list;
			pb_err_set(err, EX_OSERR, "out of memory");
			goto out;
		}
		list = nl;
		used++;
	}
	if (s != SQLITE_DONE) {
		db_err(ob, EX_IOERR, "cannot read the spooled events", err);
		goto out;
	}
	*out = list;
	*n = used;
	list = NULL;
	used = 0;
	rc = 0;
out:
	while (used > 0)
		free(list[--used]);
	free(list);
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_delete(struct pb_outbox *ob, const int64_t *ns, size_t n, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (!n)
		return 0;
	/* a delete lost to a power cut only sends an event twice (consumers
	 * drop it by id): no fsync for it (WAL + NORMAL) */
	if (prepare(ob, "DELETE FROM outbox WHERE n = ?1", &st, err) || pb_outbox_begin(ob, err))
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ns[i]);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_err(ob, EX_IOERR, "cannot delete a confirmed event", err);
			pb_outbox_rollback(ob);
			goto out;
		}
	}
	if (pb_outbox_commit(ob, err)) {
		pb_outbox_rollback(ob);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_delete_announcement(struct pb_outbox *ob, const char *service, int64_t seq,
				  const char *exchange, int64_t *deleted, struct pb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*deleted = 0;
	if (prepare(ob, "DELETE FROM outbox WHERE service = ?1 AND seq = ?2 AND exchange = ?3",
		    &st, err))
		goto out;
	sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, seq);
	sqlite3_bind_text(st, 3, exchange, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(ob, EX_IOERR, "cannot delete refused events", err);
		goto out;
	}
	*deleted = sqlite3_changes(ob->db);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int pb_outbox_lock(struct pb_outbox *ob, int64_t timeout_ms, struct pb_err *err)
{
	int64_t deadline = pb_mono_ms() + timeout_ms;
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	mode_t old;

	if (ob->memory || ob->lock_fd >= 0)
		return 0;
	old = umask(077);
	ob->lock_fd = open(ob->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	umask(old);
	if (ob->lock_fd < 0)
		return pb_err_set(err, EX_CANTCREAT, "%s: %s", ob->lock_path, strerror(errno));
	/* polled rather than blocking: the wait is bounded by --timeout and
	 * needs no signal (alarm) to break it */
	while (flock(ob->lock_fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			pb_err_set(err, EX_IOERR, "%s: cannot lock: %s", ob->lock_path,
				   strerror(errno));
			goto fail;
		}
		if (pb_mono_ms() >= deadline) {
			pb_err_set(err, EX_TEMPFAIL,
				   "%s: another provbus-publish is still sending after %lld ms",
				   ob->lock_path, (long long)timeout_ms);
			goto fail;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
fail:
	close(ob->lock_fd);
	ob->lock_fd = -1;
	return -1;
}

/* fdatasync of one file (absent: nothing to do), or fsync of a directory */
static int sync_path(const char *path, int dir, struct pb_err *err)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : pb_err_set(err, EX_IOERR, "%s: cannot open to sync: %s",
						       path, strerror(errno));
	if ((dir ? fsync(fd) : fdatasync(fd)) && !(dir && errno == EINVAL))
		rc = pb_err_set(err, EX_IOERR, "%s: cannot sync: %s", path, strerror(errno));
	close(fd);
	return rc;
}

int pb_outbox_sync(struct pb_outbox *ob, struct pb_err *err)
{
	char *wal = NULL, *dir = NULL, *slash;
	int rc = -1;

	if (ob->memory)
		return 0;
	if (!(wal = sqlite3_mprintf("%s-wal", ob->path)) || !(dir = strdup(ob->path))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (sync_path(wal, 0, err) || sync_path(ob->path, 0, err) || sync_path(dir, 1, err))
		goto out;
	rc = 0;
out:
	sqlite3_free(wal);
	free(dir);
	return rc;
}
