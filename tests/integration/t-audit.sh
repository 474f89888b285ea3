#!/usr/bin/env bash
# provbus-audit on synthetic logs (provbus-audit(1)): events, runs, explain, export,
# replay (reproduces the recorded starts; what-ifs; differences explained).
# The logs come from pbtest-auditgen (runs decided by lib/debounce.c as
# the daemon drives it) and from a hand-written fixture whose replay was
# worked out by hand (tests/data/audit/aba.sql). No broker traffic.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup audit

A=provbus-audit
DB=$T/gen.db
pbtest-auditgen -o "$DB" -n 3000 --hours 1 --seed 7 --fail-every 5 --defer-every 4 --manual 2 >/dev/null
ok $? "pbtest-auditgen made a log"
q() { sqlite3 "$DB" "$1"; }
n_events=$(q "select count(*) from events")
n_runs=$(q "select count(*) from runs")
diag "$n_events events, $n_runs runs"

# --- events ------------------------------------------------------------------
out=$($A -d "$DB" events)
is "$?" 0 "events exits 0"
is "$(printf '%s\n' "$out" | wc -l)" "$((n_events + 1))" "events: a header and one line per event"
like "$(printf '%s\n' "$out" | head -n1)" '^ +ID +RECEIVED_AT +VERDICT +KIND +KEY' "events: table header"
# aligned: the VERDICT column starts at the same offset on every line
cols=$(printf '%s\n' "$out" | head -n 50 | awk '{ print index($0, $3) }' | sort -u | wc -l)
is "$cols" 1 "events: columns aligned"

fields=id,msg_id,received_at,kind,federation,region,node,service,key,value,seq,verdict,redelivered
$A -d "$DB" events --json >"$T/events.jsonl"
is "$(wc -l <"$T/events.jsonl")" "$n_events" "events --json: one line per event"
check "events --json: every object has every documented field" pbtest-auditgen check-jsonl "$fields" <"$T/events.jsonl"
like "$(head -n1 "$T/events.jsonl")" '"redelivered":(true|false)' "events --json: redelivered is a boolean"
like "$(head -n1 "$T/events.jsonl")" '"received_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"' "events --json: RFC 3339 times"

out=$($A -d "$DB" events --key KEY_03 --json)
is "$(printf '%s\n' "$out" | grep -vc '"key":"KEY_03"')" 0 "events --key: only that key"
is "$(printf '%s\n' "$out" | wc -l)" "$(q "select count(*) from events where key='KEY_03'")" "events --key: all of them"
out=$($A -d "$DB" events --verdict stale --json)
is "$(printf '%s\n' "$out" | grep -vc '"verdict":"stale"')" 0 "events --verdict: only that verdict"
is "$(printf '%s\n' "$out" | wc -l)" "$(q "select count(*) from events where verdict='stale'")" "events --verdict: all of them"

# time filters: absolute and relative (the generated log ends a minute ago)
mid=$(q "select strftime('%Y-%m-%dT%H:%M:%fZ', received_at/1000.0, 'unixepoch') from events where id = 1500")
mid_ms=$(q "select received_at from events where id = 1500")
got=$($A -d "$DB" events --since "$mid" --json | wc -l)
is "$got" "$(q "select count(*) from events where received_at >= $mid_ms")" "events --since RFC 3339"
got=$($A -d "$DB" events --until "$mid" --json | wc -l)
is "$got" "$(q "select count(*) from events where received_at <= $mid_ms")" "events --until RFC 3339 (inclusive)"
now_ms=$(($(date +%s) * 1000))
got=$($A -d "$DB" events --since -15m --json | wc -l)
want=$(q "select count(*) from events where received_at >= $now_ms - 900000")
# the clock moved between the two reads: allow the events of a second
ok $(( got >= want - 5 && got <= want + 5 ? 0 : 1 )) "events --since -15m ($got, want ~$want)"

# --- runs --------------------------------------------------------------------------
out=$($A -d "$DB" runs)
is "$(printf '%s\n' "$out" | wc -l)" "$((n_runs + 1))" "runs: a header and one line per run"
like "$(printf '%s\n' "$out" | head -n1)" 'ID +REASON +QUEUED_AT +STARTED_AT +FINISHED_AT' "runs: table header"
like "$out" ' failed +1 ' "runs: a failed run shows its exit status"
$A -d "$DB" runs --json >"$T/runs.jsonl"
is "$(wc -l <"$T/runs.jsonl")" "$n_runs" "runs --json: one line per run"
check "runs --json: every object has every documented field" pbtest-auditgen check-jsonl \
	id,reason,queued_at,started_at,finished_at,exit_status,events,changed_keys <"$T/runs.jsonl"
r2=$(sed -n 2p "$T/runs.jsonl")
ids=$(q "select group_concat(event_id, ',') from (select event_id from run_events where run_id = 2 order by event_id)")
like "$r2" "\"events\":\\[$ids\\]" "runs --json: events are the run's event ids"
like "$r2" '"changed_keys":\["KEY_' "runs --json: changed_keys is an array"

# --- explain --------------------------------------------------------------------------
X=$T/aba.db
pbtest-auditgen -o "$X" --empty >/dev/null && sqlite3 "$X" <"$PB_ROOT/tests/data/audit/aba.sql"
ok $? "the hand-written fixture loads"
out=$($A -d "$X" explain 3)
is "$?" 0 "explain exits 0"
like "$out" 'run 3: change run, failed \(exit 1\)' "explain: reason and status"
like "$out" 'API_URL'$'\n''    before  \(not set\)'$'\n''    after   http://api-1:80' "explain: value before and after"
like "$out" 'DB_URL  \(2 events: 2 applied\)' "explain: events grouped by key with verdicts"
like "$out" '#4 .*mysql://db-2:3306/app' "explain: lists the events"
like "$out" 'ERROR: recipe api::default failed' "explain: the output tail"
like "$out" 'retry 1 of 5' "explain: the run's notes"
out=$($A -d "$X" explain 2 --json)
printf '%s\n' "$out" >"$T/explain.jsonl"
check "explain --json: the run object and its details" pbtest-auditgen check-jsonl \
	id,reason,queued_at,started_at,finished_at,exit_status,events,changed_keys,values_before,values_after,changes,events_by_key <"$T/explain.jsonl"
like "$out" '"changes":\[\{"env":"DATABASE_URL","before":null,"after":"mysql://db-1:3306/app"\}\]' "explain --json: changes"
out=$($A -d "$X" explain 999 2>&1)
is "$?" 65 "explain of an unknown run: exit 65"
like "$out" "no run 999 in the audit log" "explain of an unknown run: says so"

# --- export --------------------------------------------------------------------------------
$A -d "$X" export --jsonl >"$T/export.jsonl"
is "$?" 0 "export exits 0"
check "export: every line is an object with a type" pbtest-auditgen check-jsonl type <"$T/export.jsonl"
for t in event:10 run:6 param:1 note:1 provider:2; do
	is "$(grep -c "^{\"type\":\"${t%%:*}\"" "$T/export.jsonl")" "${t#*:}" "export: ${t#*:} ${t%%:*} line(s)"
done
check "export: events carry the documented fields" pbtest-auditgen check-jsonl "$fields" --type event <"$T/export.jsonl"

# --- replay --------------------------------------------------------------------------------
out=$($A -d "$DB" replay)
is "$?" 0 "replay exits 0"
like "$out" "matches recorded runs \\($n_runs runs;" "replay with the recorded parameters matches the generated runs"
out=$($A -d "$DB" replay --json)
printf '%s\n' "$out" >"$T/replay.jsonl"
check "replay --json: lines parse" pbtest-auditgen check-jsonl type <"$T/replay.jsonl"
is "$(grep -c '"type":"run"' "$T/replay.jsonl")" "$n_runs" "replay --json: one object per simulated run"
check "replay --json: a simulated run has the provbus-audit(1) run members" \
	pbtest-auditgen check-jsonl id,reason,queued_at,started_at,finished_at,exit_status,events,changed_keys --type run <"$T/replay.jsonl"
# where the replay matches, a simulated run covers the recorded run's
# events and changes the same keys
rec2=$($A -d "$DB" runs --json | jq -c 'select(.id == 2) | [.events, .changed_keys]')
sim2=$(jq -c 'select(.type == "run" and .recorded_id == 2) | [.events, .changed_keys]' "$T/replay.jsonl")
is "$sim2" "$rec2" "replay --json: events (ids) and changed_keys as recorded (run 2)"
like "$(tail -n1 "$T/replay.jsonl")" '"type":"summary".*"matches":true' "replay --json: a summary saying it matches"

out=$($A -d "$DB" replay --quiet-ms 60000)
like "$out" "with quiet 60000 ms: [0-9]+ runs? instead of $n_runs" "what-if: says how many runs instead of how many"
fewer=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9]*\) runs\{0,1\} instead.*/\1/p')
ok $(( fewer < n_runs ? 0 : 1 )) "what-if: a longer quiet period gives fewer runs ($fewer < $n_runs)"
out=$($A -d "$DB" replay --throttle 1/3600)
like "$out" "with throttle 1/3600 s: [0-9] runs? instead of $n_runs" "what-if: throttle"

out=$($A -d "$X" replay)
like "$out" 'matches recorded runs \(6 runs;' "fixture: replay matches (A->B->A made no run, a lease ran out)"
like "$out" 'no inputs rows in the log .*: replayed from inputs derived from its events, runs, notes and params rows' "fixture: a log without inputs rows is replayed from derived inputs, and says so"
like "$out" '00:01:02\.005Z +expiry +1 ' "fixture: the expiry run, started at its recorded instant after the lease ran out"
out=$($A -d "$X" replay --quiet-ms 500)
like "$out" 'with quiet 500 ms: 7 runs instead of 6' "fixture: what-if as worked out by hand"
like "$out" '00:10:00\.000Z +expiry .*after the end of the log' "fixture: what-if: the throttle holds the seventh start in 600 s"
like "$out" '00:00:29\.490Z +retry' "fixture: what-if retry 1000 ms after the failed run"

# only runs in the window are reported; the state still comes from the start
out=$($A -d "$X" replay --since 2026-01-01T00:00:30Z)
like "$out" 'matches recorded runs \(4 runs;' "replay --since: only the runs in the window"

# differences are listed with their known causes: a run recorded a
# second before the core lets it go (its values changed at T+5 s, quiet
# 2 s) was not decided by the core
cp "$X" "$T/moved.db"
sqlite3 "$T/moved.db" "update runs set started_at = started_at - 1000 where id = 2"
out=$($A -d "$T/moved.db" replay)
like "$out" 'differs from recorded runs: 1 difference' "a moved run: replay says it differs"
like "$out" 'recorded run 2 \(change, started 2026-01-01T00:00:06.004Z\) was not reproduced: the core does not start a run at that instant' "a moved run: names it"
# a recorded lock wait is an input, not a difference
cp "$X" "$T/locked.db"
sqlite3 "$T/locked.db" "update runs set deferred_ms = 1500 where id = 2"
like "$($A -d "$T/locked.db" replay)" 'matches recorded runs \(6 runs;' "a run that waited for the lock: its wait is an input, it matches"

S=$T/splay.db
pbtest-auditgen -o "$S" -n 2000 --hours 1 --seed 11 --splay-ms 4000 >/dev/null
out=$($A -d "$S" replay)
like "$out" 'matches recorded runs' "a log with splay matches"
like "$out" 'splay delays of [0-9]+ runs? were replayed from the log' "and says where the splay came from"
sqlite3 "$S" "delete from notes where kind = 'splay'"
like "$($A -d "$S" replay)" 'matches recorded runs' "without the daemon's splay notes: the delays come from the recorded starts"
R=$T/restart.db
pbtest-auditgen -o "$R" -n 2000 --hours 1 --seed 12 --restart --throttle 3/300 >/dev/null
is "$(sqlite3 "$R" "select count(*) from params")" 2 "a log with a daemon restart"
like "$($A -d "$R" replay)" 'matches recorded runs' "a log with a restart and throttling matches"
# a log as provbus wrote it before schema 3: no inputs table, no
# events.lease_from; replayed as it is (read-only) from derived inputs
V2=$T/schema2.db
cp "$DB" "$V2"
sqlite3 "$V2" "DROP TABLE inputs; ALTER TABLE events DROP COLUMN lease_from; PRAGMA user_version = 2"
out=$($A -d "$V2" replay)
like "$out" "matches recorded runs \\($n_runs runs; exact: the decision core fed the derived inputs" "a schema 2 log: replay matches exactly from derived inputs"
is "$(sqlite3 "$V2" "pragma user_version")" 2 "a schema 2 log: replay leaves it as it was"
like "$($A -d "$V2" replay --json | tail -n1)" '"matches":true,"tolerance_ms":0,"exact":true,"inputs":"derived"' "a schema 2 log: replay --json says the inputs are derived"
sqlite3 "$V2" "update runs set values_after = '{\"KEY_00\":\"not-this\"}' where id = 3"
like "$($A -d "$V2" replay)" '1 run\(s\) started with values other than the recorded ones' "a schema 2 log: a run recorded with other values differs"

# a log migrated from schema 2: the older runs from derived inputs, the
# later ones from the recorded inputs (tests/data/audit/migrated.sql)
M=$T/migrated.db
pbtest-auditgen -o "$M" --empty >/dev/null && sqlite3 "$M" <"$PB_ROOT/tests/data/audit/aba.sql" &&
	sqlite3 "$M" <"$PB_ROOT/tests/data/audit/migrated.sql"
ok $? "the migrated fixture loads"
out=$($A -d "$M" replay)
like "$out" 'matches recorded runs \(8 runs; exact: the decision core fed the recorded and derived inputs' "a migrated log: every run matches, recorded and derived inputs"
like "$out" 'note: 6 recorded runs from before the log held .* replayed from inputs derived from its rows' "a migrated log: says which runs came from derived inputs"
sqlite3 "$M" "update runs set started_at = started_at - 1000 where id = 2; update runs set queued_at = queued_at - 1000 where id = 8"
out=$($A -d "$M" replay)
like "$out" 'recorded run 2 \(change, started [^)]*\) was not reproduced' "a migrated log: a difference in the derived part is found"
like "$out" 'recorded run 8 \(started [^)]*\) is a change run queued at 2026-01-01T00:11:51.000Z, the replay.s a change run queued at 2026-01-01T00:11:52.000Z' "a migrated log: a difference in the recorded part is found (queued_at)"

# --- the db from the node config ------------------------------------------------------------
mkdir -p "$T/node/state" "$T/node/services.d"
cp "$X" "$T/node/state/audit.db"
cat >"$T/node.json" <<EOT
{"node": "web-1", "federation": "fleet", "region": "us-east-1",
 "broker": {"urls": ["amqp://guest@127.0.0.1:5672/x"]},
 "services_dir": "$T/node/services.d", "state_dir": "$T/node/state"}
EOT
is "$($A -c "$T/node.json" runs --json | wc -l)" 6 "-c: the audit log of the node config's state_dir"
is "$(PROVBUS_CONFIG=$T/node.json $A runs --json | wc -l)" 6 "\$PROVBUS_CONFIG names the config"
is "$($A -c /nonexistent.json -d "$X" runs --json | wc -l)" 6 "-d wins over -c (no config needed)"

# --- help, version -------------------------------------------------------------------------
out=$($A --help)
is "$?" 0 "--help exits 0"
like "$out" 'replay +\[--since T\]' "--help lists the verbs"
like "$out" '65 bad data \(no such run id' "--help documents the exit status of an unknown run"
like "$($A --version)" '^provbus-audit [0-9]+\.[0-9]+' "--version"

pb_done
