-- A small hand-written audit log (load into a db made by
-- `pbtest-auditgen -o DB --empty`), every time relative to
-- T = 2026-01-01T00:00:00Z (1767225600000 ms). quiet 2000 ms.
--
--   T+0      daemon start, startup run 1 (ok)
--   T+5 s    DB_URL := db-1 (applied, changes)      -> run 2 at T+7 s (ok)
--   T+5.5 s  the same message again (duplicate, redelivered)
--   T+6 s    OTHER_KEY (foreign)
--   T+20 s   DB_URL := db-2 (B)
--   T+21 s   DB_URL := db-1 (A again: no change, no run)
--   T+25 s   an old seq (stale)
--   T+30 s   API_URL := api-1 (changes)              -> run 3 at T+32 s (fails)
--   T+31 s   an invalid message
--   run 4: the retry, 1000 ms after run 3 ended
--   T+50 s   CACHE_URL := c-1 with a 10 s lease        -> run 5 at T+52 s
--   T+60 s   the lease runs out (expired, by the daemon) -> run 6 (expiry) at T+62 s
--
-- By hand, `replay --quiet-ms 500` gives 7 runs: startup; T+5.5 s; T+20.5 s
-- (B; lasts like recorded run 3 and fails, A comes meanwhile and makes
-- the values clean again); its retry at T+29.49 s; then API_URL, which
-- came during the retry, as a follow-up right after it (T+33.488 s);
-- CACHE_URL at T+50.5 s; the expiry, due at T+60.5 s, is the seventh
-- start in 600 s: the throttle (6 per 600 s) holds it until T+600 s, the
-- first start plus the window.
BEGIN;
INSERT INTO params(at, json) VALUES(1767225600000,
 '{"quiet_ms":2000,"max_wait_ms":30000,"throttle_runs":6,"throttle_per_s":600,"splay_ms":0,"retry_max":5,"retry_base_ms":1000,"event":"start"}');

INSERT INTO events(id, msg_id, received_at, kind, federation, region, node, service, key, value,
 seq, ttl_s, public, verdict, detail, redelivered, source, exchange, routing_key, changed) VALUES
 (1, '11111111-1111-4111-8111-111111111111', 1767225605000, 'provides', 'fleet', 'us-east-1', 'db-1', 'db',
  'DB_URL', 'mysql://db-1:3306/app', 1, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.DB_URL', 1),
 (2, '11111111-1111-4111-8111-111111111111', 1767225605500, 'provides', 'fleet', 'us-east-1', 'db-1', 'db',
  'DB_URL', 'mysql://db-1:3306/app', 1, 0, 0, 'duplicate', NULL, 1, 'live', 'provbus.fleet', 'us-east-1.provides.DB_URL', 0),
 (3, '33333333-3333-4333-8333-333333333333', 1767225606000, 'provides', 'fleet', 'us-east-1', 'x-1', 'x',
  'OTHER_KEY', 'x', 1, 0, 0, 'foreign', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.OTHER_KEY', 0),
 (4, '44444444-4444-4444-8444-444444444444', 1767225620000, 'provides', 'fleet', 'us-east-1', 'db-1', 'db',
  'DB_URL', 'mysql://db-2:3306/app', 2, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.DB_URL', 1),
 (5, '55555555-5555-4555-8555-555555555555', 1767225621000, 'provides', 'fleet', 'us-east-1', 'db-1', 'db',
  'DB_URL', 'mysql://db-1:3306/app', 3, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.DB_URL', 1),
 (6, '66666666-6666-4666-8666-666666666666', 1767225625000, 'provides', 'fleet', 'us-east-1', 'db-1', 'db',
  'DB_URL', 'mysql://old:3306/app', 1, 0, 0, 'stale', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.DB_URL', 0),
 (7, '77777777-7777-4777-8777-777777777777', 1767225630000, 'provides', 'fleet', 'us-east-1', 'api-1', 'api',
  'API_URL', 'http://api-1:80', 1, 0, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.API_URL', 1),
 (8, NULL, 1767225631000, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, 'invalid', 'field ''v'': want 1', 0, 'live', 'provbus.fleet', 'us-east-1.provides.API_URL', 0),
 (9, '99999999-9999-4999-8999-999999999999', 1767225650000, 'provides', 'fleet', 'us-east-1', 'c-1', 'cache',
  'CACHE_URL', 'redis://c-1:6379', 1, 10, 0, 'applied', NULL, 0, 'live', 'provbus.fleet', 'us-east-1.provides.CACHE_URL', 1),
 (10, NULL, 1767225660000, NULL, 'fleet', 'us-east-1', 'c-1', 'cache',
  'CACHE_URL', 'redis://c-1:6379', 1, NULL, 0, 'expired', 'lease ran out at 2026-01-01T00:01:00.000Z', 0, 'daemon', NULL, NULL, 1);

INSERT INTO runs(id, reason, queued_at, started_at, finished_at, exit_status, status, deferred_ms,
 changed_keys, values_before, values_after, output_tail, notify_status) VALUES
 (1, 'startup', 1767225600000, 1767225600003, 1767225601000, 0, 'ok', 0, '[]', '{}', '{}',
  CAST('starting chef' || char(10) || 'done' AS BLOB), NULL),
 (2, 'change', 1767225607000, 1767225607004, 1767225609000, 0, 'ok', 0, '["DATABASE_URL"]', '{}',
  '{"DATABASE_URL":"mysql://db-1:3306/app"}', CAST('converged' AS BLOB), 0),
 (3, 'change', 1767225632000, 1767225632010, 1767225640000, 1, 'failed', 0, '["API_URL"]',
  '{"DATABASE_URL":"mysql://db-1:3306/app"}',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}',
  CAST('line 1' || char(10) || 'ERROR: recipe api::default failed' AS BLOB), 0),
 (4, 'retry', 1767225641000, 1767225641002, 1767225645000, 0, 'ok', 0, '["API_URL"]',
  '{"DATABASE_URL":"mysql://db-1:3306/app"}',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}', CAST('ok' AS BLOB), 0),
 (5, 'change', 1767225652000, 1767225652003, 1767225653000, 0, 'ok', 0, '["CACHE"]',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}',
  '{"API_URL":"http://api-1:80","CACHE":"redis://c-1:6379","DATABASE_URL":"mysql://db-1:3306/app"}',
  CAST('ok' AS BLOB), 0),
 (6, 'expiry', 1767225662000, 1767225662005, 1767225663000, 0, 'ok', 0, '["CACHE"]',
  '{"API_URL":"http://api-1:80","CACHE":"redis://c-1:6379","DATABASE_URL":"mysql://db-1:3306/app"}',
  '{"API_URL":"http://api-1:80","DATABASE_URL":"mysql://db-1:3306/app"}', CAST('ok' AS BLOB), 0);

INSERT INTO run_events(run_id, event_id) VALUES (2, 1), (3, 4), (3, 5), (3, 7), (5, 9), (6, 10);
INSERT INTO notes(at, run_id, kind, text) VALUES
 (1767225640001, 3, 'retry', 'run 3 failed (exit 1): retry 1 of 5 in 1000 ms');
INSERT INTO providers(federation, region, node, service, key, value, public, seq, expires_at,
 updated_at, tombstone) VALUES
 ('fleet', 'us-east-1', 'db-1', 'db', 'DB_URL', 'mysql://db-1:3306/app', 0, 3, NULL, 1767225621000, 0),
 ('fleet', 'us-east-1', 'api-1', 'api', 'API_URL', 'http://api-1:80', 0, 1, NULL, 1767225630000, 0);
COMMIT;
