/* test_audit.c — the audit log's file: created 0600 with the current
 * schema, the duplicate check, the migration from schema 1, a newer
 * schema refused, and the runs a restart reads back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "suite_main.h"

static char dir[256], path[300];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/pb-audit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.db", dir);
}

static void teardown(void)
{
	char p[320];
	const char *sfx[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* 1 when the query plan of sql names index */
static int plan_uses(sqlite3 *db, const char *sql, const char *index)
{
	char q[512];
	sqlite3_stmt *st = NULL;
	int found = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		found |= d && strstr(d, index) != NULL;
	}
	sqlite3_finalize(st);
	return found;
}

static struct pb_audit_event row(const char *id, const char *node, int64_t seq, const char *verdict)
{
	return (struct pb_audit_event){
		.msg_id = id, .received_at = 1000, .kind = "provides", .federation = "f",
		.region = "r1", .node = node, .service = "api", .key = "API_URL", .value = "x",
		.seq = seq, .ttl_s = 0, .public = 0, .verdict = verdict, .redelivered = 0,
		.source = "live", .exchange = "provbus.f", .routing_key = "r1.provides.API_URL",
	};
}

START_TEST(created_0600_current_schema)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *db = pb_audit_open(path, 0, &e);
	struct stat sb;

	ck_assert_msg(db != NULL, "%s", e.msg);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), PB_AUDIT_SCHEMA_VERSION);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'events_dedupe'"), 1);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'seen_ids'"), 0);
	pb_audit_close(db);
}
END_TEST

START_TEST(seen_by_id_node_service_seq)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *db = pb_audit_open(path, 0, &e);
	struct pb_audit_writer *w;
	struct pb_audit_event a = row("id-a", "n1", 7, "applied");
	struct pb_audit_event bad = row("id-bad", "n1", 8, "invalid");
	struct pb_audit_event st = row("id-st", "n2", 1, "stale");

	ck_assert_ptr_nonnull(db);
	w = pb_audit_writer_new(db, &e);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(pb_audit_seen(w, "n1", "api", 7, "id-a", &e), 0);
	ck_assert_int_eq(pb_audit_begin(w, &e), 0);
	ck_assert_int_gt(pb_audit_add_event(w, &a, &e), 0);
	ck_assert_int_gt(pb_audit_add_event(w, &bad, &e), 0);
	ck_assert_int_gt(pb_audit_add_event(w, &st, &e), 0);
	ck_assert_int_eq(pb_audit_commit(w, &e), 0);
	/* a copy (the same seq), and the id under another seq: the id
	 * decides (provbus-consumer(1)) */
	ck_assert_int_eq(pb_audit_seen(w, "n1", "api", 7, "id-a", &e), 1);
	ck_assert_int_eq(pb_audit_seen(w, "n1", "api", 5, "id-a", &e), 1);
	ck_assert_int_eq(pb_audit_seen(w, "n2", "api", 1, "id-st", &e), 1);	/* any verdict */
	/* an invalid row does not make its id seen */
	ck_assert_int_eq(pb_audit_seen(w, "n1", "api", 8, "id-bad", &e), 0);
	/* another id at the same place, or the id elsewhere */
	ck_assert_int_eq(pb_audit_seen(w, "n1", "api", 7, "id-b", &e), 0);
	ck_assert_int_eq(pb_audit_seen(w, "n1", "web", 7, "id-a", &e), 0);
	ck_assert_int_eq(pb_audit_seen(w, "n9", "api", 7, "id-a", &e), 0);
	/* the lookup is the index's, not a scan */
	ck_assert(plan_uses(db, "SELECT 1 FROM events WHERE node = 'n1' AND service = 'api'"
			    " AND msg_id = 'x' AND verdict <> 'invalid'", "events_dedupe"));
	pb_audit_writer_free(w);
	pb_audit_close(db);
}
END_TEST

/* The VM steps of the last id lookups pb_audit_seen ran (its statements
 * start "SELECT 1 FROM events"), summed, through the profile trace. */
static int64_t seen_steps;

static int count_steps(unsigned type, void *ctx, void *p, void *x)
{
	sqlite3_stmt *st = p;
	const char *sql = sqlite3_sql(st);

	(void)ctx;
	(void)x;
	if (type == SQLITE_TRACE_PROFILE && sql && !strncmp(sql, "SELECT 1 FROM events", 20))
		seen_steps += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
	return 0;
}

static int64_t steps_of_seen(struct pb_audit_writer *w, const char *node, int64_t seq,
			     const char *id, int want)
{
	struct pb_err e = PB_ERR_INIT;

	seen_steps = 0;
	ck_assert_int_eq(pb_audit_seen(w, node, "api", seq, id, &e), want);
	return seen_steps;
}

/* A copy of an event (a redelivery: same node, service, seq and id) is
 * found with the same work whether its node's history holds 10 rows or
 * 5,000: the lookup seeks, it does not walk the node's rows (a daemon
 * re-judging 32,768 redeliveries of a node with 160,000 rows walked them
 * all for each, at 100 % CPU for minutes). */
START_TEST(seen_copy_is_a_seek)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *db = pb_audit_open(path, 0, &e);
	struct pb_audit_writer *w;
	char id[32];
	int64_t small, big, other;

	ck_assert_ptr_nonnull(db);
	w = pb_audit_writer_new(db, &e);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(pb_audit_begin(w, &e), 0);
	for (int i = 1; i <= 5000; i++) {
		struct pb_audit_event a;

		snprintf(id, sizeof(id), "big-%d", i);
		a = row(id, "big", i, "applied");
		ck_assert_int_gt(pb_audit_add_event(w, &a, &e), 0);
		if (i <= 10) {
			snprintf(id, sizeof(id), "small-%d", i);
			a = row(id, "small", i, "applied");
			ck_assert_int_gt(pb_audit_add_event(w, &a, &e), 0);
		}
	}
	ck_assert_int_eq(pb_audit_commit(w, &e), 0);
	sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, count_steps, NULL);
	small = steps_of_seen(w, "small", 9, "small-9", 1);
	big = steps_of_seen(w, "big", 4990, "big-4990", 1);
	ck_assert_int_gt(small, 0);
	ck_assert_msg(big <= small + 10, "a copy's lookup took %lld VM steps with 5,000 rows,"
		      " %lld with 10", (long long)big, (long long)small);
	/* an id that is not a copy walks the node's rows (exact, not fast):
	 * the measure above can tell a walk from a seek */
	other = steps_of_seen(w, "big", 4, "big-4990", 1);
	ck_assert_msg(other > 50 * small, "%lld steps for a walk of 5,000 rows", (long long)other);
	sqlite3_trace_v2(db, 0, NULL, NULL);
	pb_audit_writer_free(w);
	pb_audit_close(db);
}
END_TEST

/* A schema 1 log (seen_ids table, no index) opened for writing becomes
 * schema 2 with its ids still seen; read-only opening leaves it alone. */
START_TEST(migrates_schema_1)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *raw = NULL, *db;
	struct pb_audit_writer *w;

	ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(raw,
		"CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT);"
		"INSERT INTO meta VALUES('schema', 'provbus-audit');"
		"CREATE TABLE events(id INTEGER PRIMARY KEY, msg_id TEXT, received_at INTEGER NOT NULL,"
		" kind TEXT, federation TEXT, region TEXT, node TEXT, service TEXT, key TEXT,"
		" value TEXT, seq INTEGER, ttl_s INTEGER, public INTEGER, verdict TEXT NOT NULL,"
		" detail TEXT, redelivered INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'live',"
		" exchange TEXT, routing_key TEXT, changed INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE seen_ids(msg_id TEXT PRIMARY KEY) WITHOUT ROWID;"
		"INSERT INTO events(msg_id, received_at, node, service, seq, verdict)"
		" VALUES('old-1', 1, 'n1', 'api', 3, 'applied');"
		"INSERT INTO seen_ids VALUES('old-1');"
		"PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);

	db = pb_audit_open(path, 1, &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), 1);
	pb_audit_close(db);

	db = pb_audit_open(path, 0, &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), PB_AUDIT_SCHEMA_VERSION);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'seen_ids'"), 0);
	/* schema 3: the core's inputs and the events' lease start */
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'inputs'"), 1);
	ck_assert_int_eq(query_int(db, "SELECT count(lease_from) FROM events"), 0);
	w = pb_audit_writer_new(db, &e);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(pb_audit_seen(w, "n1", "api", 3, "old-1", &e), 1);
	pb_audit_writer_free(w);
	pb_audit_close(db);
}
END_TEST

static int64_t add_run(struct pb_audit_writer *w, const char *reason, int64_t started,
		       const char *status, const char *values_after)
{
	struct pb_err e = PB_ERR_INIT;
	struct pb_audit_run r = { .reason = reason, .queued_at = started, .started_at = started,
				  .exit_status = -1, .values_after = values_after,
				  .notify_status = -1 };

	r.id = pb_audit_add_run(w, &r, 0, 0, &e);
	ck_assert_msg(r.id > 0, "%s", e.msg);
	if (strcmp(status, "running") != 0) {
		r.finished_at = started + 5;
		r.exit_status = strcmp(status, "ok") ? 1 : 0;
		r.status = status;
		ck_assert_msg(pb_audit_finish_run(w, &r, &e) == 0, "%s", e.msg);
	}
	return r.id;
}

/* What a restart reads back from the runs: the runs a crash left running
 * become interrupted (each with a note, however many), the baseline of
 * the next change is the newest run that succeeded (not a failed or
 * interrupted one), and the throttle's window is the newest starts at or
 * after its beginning. */
START_TEST(runs_read_back)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *db = pb_audit_open(path, 0, &e);
	struct pb_audit_writer *w;
	struct pb_audit_run_info last;
	int64_t starts[8], ok1, failed, running;
	char *json = NULL, sql[160];

	ck_assert_msg(db != NULL, "%s", e.msg);
	w = pb_audit_writer_new(db, &e);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(pb_audit_last_ok_values(w, &json, &e), 0);
	ck_assert_ptr_null(json);	/* no run yet: no baseline */
	ck_assert_int_eq(pb_audit_begin(w, &e), 0);
	ok1 = add_run(w, "startup", 100, "ok", "{\"A\":\"1\"}");
	failed = add_run(w, "change", 200, "failed", "{\"A\":\"2\"}");
	running = add_run(w, "change", 300, "running", "{\"A\":\"3\"}");
	for (int i = 0; i < 69; i++)	/* more than one round of 64 */
		add_run(w, "change", 400 + i, "running", "{\"A\":\"4\"}");
	ck_assert_int_eq(pb_audit_commit(w, &e), 0);

	ck_assert_int_eq(pb_audit_last_ok_values(w, &json, &e), 0);
	ck_assert_str_eq(json, "{\"A\":\"1\"}");
	free(json);

	ck_assert_int_eq(pb_audit_begin(w, &e), 0);
	ck_assert_int_eq(pb_audit_interrupt_runs(w, 1000, &e), 70);
	ck_assert_int_eq(pb_audit_commit(w, &e), 0);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'"), 70);
	snprintf(sql, sizeof(sql), "SELECT status = 'interrupted' FROM runs WHERE id = %lld",
		 (long long)running);
	ck_assert_int_eq(query_int(db, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT status = 'ok' FROM runs WHERE id = %lld", (long long)ok1);
	ck_assert_int_eq(query_int(db, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT status = 'failed' FROM runs WHERE id = %lld",
		 (long long)failed);
	ck_assert_int_eq(query_int(db, sql), 1);
	ck_assert_int_eq(query_int(db, "SELECT count(DISTINCT run_id) FROM notes WHERE kind = "
				       "'interrupted' AND at = 1000"), 70);
	ck_assert_int_eq(pb_audit_interrupt_runs(w, 2000, &e), 0);	/* none left */

	/* interrupted runs are no baseline either */
	ck_assert_int_eq(pb_audit_last_ok_values(w, &json, &e), 0);
	ck_assert_str_eq(json, "{\"A\":\"1\"}");
	free(json);

	/* the throttle window: starts at or after since, the newest max */
	ck_assert_int_eq(pb_audit_run_starts_since(w, 0, starts, 8, &e), 8);
	ck_assert_int_eq(starts[0], 461);
	ck_assert_int_eq(starts[7], 468);
	ck_assert_int_eq(pb_audit_run_starts_since(w, 200, starts, 2, &e), 2);
	ck_assert_int_eq(starts[0], 467);
	ck_assert_int_eq(starts[1], 468);
	ck_assert_int_eq(pb_audit_run_starts_since(w, 465, starts, 8, &e), 4);
	ck_assert_int_eq(starts[0], 465);
	ck_assert_int_eq(pb_audit_run_starts_since(w, 468, starts, 8, &e), 1);
	ck_assert_int_eq(starts[0], 468);
	ck_assert_int_eq(pb_audit_run_starts_since(w, 469, starts, 8, &e), 0);

	ck_assert_int_eq(pb_audit_last_run(w, &last, &e), 1);
	ck_assert_int_eq(last.started_at, 468);
	ck_assert_str_eq(last.status, "interrupted");
	ck_assert_str_eq(last.reason, "change");
	ck_assert_int_eq(last.exit_status, -1);
	pb_audit_writer_free(w);
	pb_audit_close(db);
}
END_TEST

START_TEST(newer_schema_refused)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *db = pb_audit_open(path, 0, &e);

	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	pb_audit_close(db);
	ck_assert_ptr_null(pb_audit_open(path, 0, &e));
	ck_assert_int_eq(e.code, EX_DATAERR);
	ck_assert_msg(strstr(e.msg, "schema version 99 is newer") != NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, path) != NULL, "%s", e.msg);
}
END_TEST

/* Upserting a provider again updates its row in place (same rowid, the
 * new values), not a delete and an insert (INSERT OR REPLACE). */
START_TEST(provider_upserted_in_place)
{
	struct pb_err e = PB_ERR_INIT;
	sqlite3 *db = pb_audit_open(path, 0, &e);
	struct pb_audit_writer *w;
	char id[32], node[32];
	int64_t rowid;

	ck_assert_ptr_nonnull(db);
	w = pb_audit_writer_new(db, &e);
	ck_assert_int_eq(pb_audit_begin(w, &e), 0);
	for (int i = 0; i < 20; i++) {
		struct pb_audit_event a;

		snprintf(id, sizeof(id), "id-%d", i);
		snprintf(node, sizeof(node), "n%d", i);
		a = row(id, node, i, "applied");
		ck_assert_int_gt(pb_audit_add_event(w, &a, &e), 0);
		ck_assert_int_eq(pb_audit_put_provider(w, "f", "r1", node, "api", "API_URL", id, 1, i,
						       INT64_MAX, 1000 + i, 0, &e), 0);
	}
	ck_assert_msg(pb_audit_commit(w, &e) == 0, "%s", e.msg);
	rowid = query_int(db, "SELECT rowid FROM providers WHERE node = 'n7'");
	ck_assert_int_eq(pb_audit_begin(w, &e), 0);
	ck_assert_int_eq(pb_audit_put_provider(w, "f", "r1", "n7", "api", "API_URL", "y", 0, 99,
					       5000, 2000, 1, &e), 0);
	ck_assert_int_eq(pb_audit_commit(w, &e), 0);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM providers"), 20);
	ck_assert_int_eq(query_int(db, "SELECT rowid FROM providers WHERE node = 'n7'"), rowid);
	ck_assert_int_eq(query_int(db, "SELECT seq * 1000 + public * 100 + tombstone * 10 +"
				       " (value IS NULL) FROM providers WHERE node = 'n7'"
				       " AND expires_at = 5000 AND updated_at = 2000"), 99011);
	pb_audit_writer_free(w);
	pb_audit_close(db);
}
END_TEST

/* Retention never prunes up to a base before the one an earlier step
 * pruned up to (meta inputs_from): retention raised by a reload. Events
 * id 1 (t 100, seq 1), 2 (t 300, seq 5), 3 (t 500, seq 6) of one (node,
 * service); bases B0 (t 200, after event 1) and B1 (t 400, after event
 * 2), a settle input at 380 between them, inputs_from = B1 (a step of 40
 * days' retention went up to it). */
static void prune_log(sqlite3 *db, int with_b0)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO events(id, msg_id, received_at, node, service, seq, verdict)"
		 " VALUES(1, 'a', 100, 'n', 's', 1, 'applied'), (2, 'b', 300, 'n', 's', 5, 'applied'),"
		 " (3, 'c', 500, 'n', 's', 6, 'applied');"
		 "%s"
		 "INSERT INTO inputs(id, at, after_event, kind) VALUES(2, 380, 2, 'settle'),"
		 " (3, 400, 2, 'snapshot'), (4, 510, 3, 'settle');"
		 "INSERT INTO meta(k, v) VALUES('inputs_from', '3');",
		 with_b0 ? "INSERT INTO inputs(id, at, after_event, kind) VALUES(1, 200, 1, 'start');" : "");
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

START_TEST(prune_never_before_its_base)
{
	struct pb_err e = PB_ERR_INIT;
	struct pb_audit_prune o = { 350, 100, 0, 1000, 0 };	/* cutoff 350: 30 days became 60 */

	for (int with_b0 = 1; with_b0 >= 0; with_b0--) {
		sqlite3 *db = pb_audit_open(path, 0, &e);

		ck_assert_ptr_nonnull(db);
		prune_log(db, with_b0);
		ck_assert_int_ge(pb_audit_prune_step(db, &o, &e), 0);
		/* B0 (if any, older than the cutoff, with an input between the
		 * cutoff and B1) would have been the base by the cutoff alone */
		ck_assert_int_eq(query_int(db, "SELECT v FROM meta WHERE k = 'inputs_from'"), 3);
		ck_assert_int_eq(query_int(db, "SELECT MIN(id) FROM inputs"), 3);
		/* event 2, the newest seq before B1, stays though seq 6 came after */
		ck_assert_int_eq(query_int(db, "SELECT group_concat(id, '') FROM events"), 23);
		pb_audit_close(db);
		unlink(path);
	}
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *t = tcase_create("file");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, created_0600_current_schema);
	tcase_add_test(t, seen_by_id_node_service_seq);
	tcase_add_test(t, seen_copy_is_a_seek);
	tcase_add_test(t, migrates_schema_1);
	tcase_add_test(t, newer_schema_refused);
	tcase_add_test(t, runs_read_back);
	tcase_add_test(t, provider_upserted_in_place);
	tcase_add_test(t, prune_never_before_its_base);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return pb_suite_run(audit_suite());
}
