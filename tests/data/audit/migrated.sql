-- A log migrated from schema 2 (load after aba.sql into the same db):
-- aba.sql is what an older provbus wrote (no inputs rows); then this
-- provbus started on it at T+700 s (T = 2026-01-01T00:00:00Z,
-- 1767225600000 ms), recording every input of its decision core from
-- there (lib/audit.h: the inputs table):
--
--   T+700 s      daemon start (the providers and the last good values
--                restored from the log; no start in the throttle window)
--   T+700.001 s  the startup run asked for -> run 7 at T+700.002 s (ok)
--   T+710 s      DB_URL := db-3 (applied, changes)  -> run 8 at T+712.001 s
--                (due at T+712 s: quiet 2000 ms)
--
-- `provbus-audit replay` replays runs 1-6 from inputs derived from the
-- older rows, runs 7-8 from the recorded inputs: 8 runs, all matching.
BEGIN;
INSERT INTO params(at, json) VALUES(1767226300000,
 '{"quiet_ms":2000,"max_wait_ms":30000,"throttle_runs":6,"throttle_per_s":600,"splay_ms":0,"retry_max":5,"retry_base_ms":1000,"event":"start"}');

INSERT INTO events(id, msg_id, received_at, kind, federation, region, node, service, key, value,
 seq, ttl_s, public, verdict, detail, redelivered, source, exchange, routing_key, changed) VALUES
 (11, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 1767226310000, 'provides', 'fleet', 'us-east-1', 'db-1', 'db',
  'DB_URL', 'mysql://db-3:3306/app', 4, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.DB_URL', 1);

INSERT INTO inputs(id, at, after_event, kind, n, text) VALUES
 (1, 1767226300000, 10, 'start', 0,
  '{"params":{"quiet_ms":2000,"max_wait_ms":30000,"throttle_runs":6,"throttle_per_s":600,"splay_ms":0,"retry_max":5,"retry_base_ms":1000,"public_only":0,"wants":[["API_URL","API_URL",null],["CACHE","CACHE_URL",null],["DATABASE_URL","DB_URL",null]],"statics":[],"federation":"fleet","keys":["API_URL","CACHE_URL","DB_URL"],"regions":["us-east-1"]},"starts":[],"ok_values":{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"},"owed_full":0,"owed_keys":[],"paused":0,"providers":[["fleet","us-east-1","api-1","api","API_URL","http://api-1:80",0,1,9223372036854775807,1767225630000,0],["fleet","us-east-1","db-1","db","DB_URL","mysql://db-1:3306/app",0,3,9223372036854775807,1767225621000,0]]}'),
 (2, 1767226300001, 10, 'request', 0, NULL),
 (3, 1767226300002, 10, 'started', 7, NULL),
 (4, 1767226301000, 10, 'finished', 0, NULL),
 (5, 1767226310000, 11, 'settle', 0, NULL),
 (6, 1767226312001, 11, 'started', 8, NULL),
 (7, 1767226313000, 11, 'finished', 0, NULL);

INSERT INTO runs(id, reason, queued_at, started_at, finished_at, exit_status, status, deferred_ms,
 changed_keys, values_before, values_after, output_tail, notify_status) VALUES
 (7, 'startup', 1767226300001, 1767226300002, 1767226301000, 0, 'ok', 0, '[]',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}', CAST('ok' AS BLOB), NULL),
 (8, 'change', 1767226312000, 1767226312001, 1767226313000, 0, 'ok', 0, '["DATABASE_URL"]',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-3:3306/app"}', CAST('ok' AS BLOB), NULL);
INSERT INTO run_events(run_id, event_id) VALUES (8, 11);
COMMIT;
