#!/usr/bin/env bash
# consumer.audit_retention_days (provbus.json(5)): a log holding a year of rows,
# made before retention existed (no incremental vacuum), is pruned to 30
# days in small steps and the file shrinks; the throttle window (60 days
# here), the newest announcement of every (node, service) (the duplicate
# and stale checks start from it) and the last runs are never pruned.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup cretention
# Its log is a year of rows made by sqlite3 below, not by a daemon (every
# run carries the value "x"): no replay can reproduce them, so the
# cleanup's replay check (tests/integration/lib.sh) is not for this log.
PB_NO_REPLAY_CHECK=1
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

pbc_init web-01 us-east-1 '"audit_retention_days": 30, "throttle": {"runs": 1000, "per_s": 5184000}'
pbc_manifest app '{"K0": "{KEY_00}"}'
DB=$ST/audit.db
DAY=86400000
NOW=$(date +%s%3N)
# a year of rows: 120000 events of 20 nodes, a run every 2 hours (720 in
# the 60-day throttle window), a note a day, every event covered by a run;
# node "old-1" announced seq 1..5 only, 200 days ago
pbtest-auditgen -o "$DB" --empty >/dev/null; ok $? "an empty log"
sqlite3 "$DB" <<EOT
PRAGMA auto_vacuum = NONE; VACUUM;
WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 119999)
INSERT INTO events(msg_id, received_at, kind, federation, region, node, service, key, value,
		   seq, ttl_s, public, verdict, redelivered, source, changed)
SELECT lower(hex(randomblob(16))), $NOW - 365 * $DAY + n * (365 * $DAY / 120000), 'provides', '$F',
       'us-east-1', 'n' || (n % 20), 'svc', 'KEY_00', 'http://n' || (n % 20) || ':' || n,
       n / 20 + 1, 0, 0, 'applied', 0, 'live', 0 FROM i;
WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 5)
INSERT INTO events(msg_id, received_at, kind, federation, region, node, service, key, value,
		   seq, ttl_s, public, verdict, redelivered, source, changed)
SELECT '00000000-0000-4000-8000-00000000000' || n, $NOW - 200 * $DAY + n, 'provides', '$F',
       'us-east-1', 'old-1', 'svc', 'KEY_00', 'http://old-1:' || n, n, 0, 0, 'applied', 0, 'live', 0 FROM i;
WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 4379)
INSERT INTO runs(reason, queued_at, started_at, finished_at, exit_status, status, changed_keys,
		 values_before, values_after)
SELECT 'change', $NOW - 365 * $DAY + n * 7200000 + 1000, $NOW - 365 * $DAY + n * 7200000 + 1000,
       $NOW - 365 * $DAY + n * 7200000 + 1900, 0, 'ok', '["K0"]', '{}', '{"K0":"x"}' FROM i;
INSERT INTO meta(k, v) SELECT 'run_mark', MAX(id) FROM events;
INSERT INTO run_events(run_id, event_id) SELECT r.id, r.id * 13 FROM runs r;
WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 364)
INSERT INTO notes(at, kind, text) SELECT $NOW - 365 * $DAY + n * $DAY, 'reload', 'a day' FROM i;
EOT
ok $? "a year of synthetic rows"
is "$(sqlite3 "$DB" 'PRAGMA auto_vacuum')" 0 "made like a log from before retention (auto_vacuum none)"
size0=$(stat -c %s "$DB")
# (the window's start moves while the test runs: count from 10 min in)
cut=$((NOW - 30 * DAY)) win=$((NOW - 60 * DAY + 600000))
win_runs=$(sqlite3 "$DB" "SELECT COUNT(*) FROM runs WHERE started_at >= $win AND started_at < $NOW")
diag "log: $size0 bytes, $(sqlite3 "$DB" 'SELECT COUNT(*) FROM events') events, $win_runs runs in the 60-day window"

pbc_start
like "$(cat "$T/consumer.log")" "switched to incremental vacuum" "the old log is switched to incremental vacuum (once)"
_old_events() { pbc_sql "SELECT COUNT(*) FROM events WHERE received_at < $cut"; }
pbc_wait_eq 120 1 _old_events; ok $? "events older than 30 days pruned, but the newest announcement of old-1 ($(_old_events) left)"
is "$(pbc_sql "SELECT group_concat(seq) FROM events WHERE node = 'old-1'")" "5" "old-1: its newest seq kept, the older ones pruned"
_small() { [ "$(stat -c %s "$DB")" -lt $((size0 / 4)) ]; }
wait_for 120 _small; ok $? "the file shrank to under a quarter ($(stat -c %s "$DB") of $size0 bytes)"
is "$(pbc_sql 'PRAGMA auto_vacuum')" 2 "incremental vacuum on"
is "$(pbc_sql "SELECT COUNT(*) FROM runs WHERE started_at >= $win AND started_at < $NOW")" "$win_runs" \
	"every run of the 60-day throttle window kept (older than the 30 days)"
is "$(pbc_sql "SELECT COUNT(*) FROM runs WHERE started_at < $win")" 0 "older runs pruned"
is "$(pbc_sql "SELECT COUNT(*) FROM notes WHERE at < $cut")" 0 "older notes pruned"
is "$(pbc_sql "SELECT COUNT(*) FROM run_events WHERE event_id NOT IN (SELECT id FROM events)")" 0 \
	"no run_events row left pointing at a pruned event"
is "$(pbc_sql 'PRAGMA integrity_check')" ok "integrity check"

# the dedupe horizon: a copy of old-1's newest event is a duplicate, a copy
# of a pruned older one is stale, a new one is applied
ev() { # ID SEQ
	printf 'us-east-1.provides.KEY_00\t{"v":1,"id":"%s","kind":"provides","federation":"%s","region":"us-east-1","node":"old-1","service":"svc","key":"KEY_00","value":"http://old-1:%s","public":false,"seq":%s,"ttl_s":0,"ts":"%s"}\n' \
		"$1" "$F" "$2" "$2" "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"
}
{ ev 00000000-0000-4000-8000-000000000005 5; ev 00000000-0000-4000-8000-000000000003 3
  ev 00000000-0000-4000-8000-000000000006 6; } | pbc_pub
pbc_wait_rows 1 "node = 'old-1' AND seq = 6"; ok $? "the three copies arrived"
is "$(pbc_sql "SELECT group_concat(seq || ':' || verdict, ' ') FROM (SELECT * FROM events WHERE node = 'old-1' AND received_at > $cut ORDER BY id)")" \
	"5:duplicate 3:stale 6:applied" "after the prune: the newest copy is a duplicate, a pruned one stale, a new one applied"
pbc_stop; is "$CRC" 0 "exit 0"
pb_done
