#!/usr/bin/env bash
# A pruned audit log still replays exactly (provbus-audit(1) replay,
# provbus.json(5) consumer.audit_retention_days). Retention deletes the
# core's inputs only up to a base: a start input, or a snapshot input (the
# core's whole state, written by an idle daemon when the log's newest base
# is a day old), and replay begins there with the state the daemon had.
#
# The rows are made by real daemons, then moved back in time (every
# timestamp of every table, by the same amount), with 30 days of retention:
# A. restarts: daemon 1 lives 80 days ago, daemon 2 40 days ago, daemon 3
#    now; daemon 3's start is the base (no input between the cutoff and it);
# B. one daemon that never restarts, its last value's runs failed (given
#    up): its log is moved back 2 days under it (a snapshot follows), 25
#    more, a new value, 10 more: the snapshot,
#    35 days old, is the base; the start input and the rows before the
#    snapshot go, the new value's stay (10 days old), and replay
#    reproduces its run from the snapshot's state.
# C. (not retention) a restart inside the throttle window: a start input
#    is a base, and must carry the window.
# D. a run that does not end: no snapshot, a warning, one as soon as it
#    ends; a snapshot of a daemon paused with a change waiting is a base
#    a replay runs that change from.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup cretreplay
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

pbc_init web-01 us-east-1 '"audit_retention_days": 0'	# (30 from daemon 3 on)
pbc_manifest app '{"K": "{API_URL}"}'
DAY=86400000

# shift DAYS: every timestamp of the log, DAYS days earlier
shift_log() {
	local s=$(($1 * DAY))
	sqlite3 -cmd ".timeout 5000" "$ST/audit.db" "BEGIN;
UPDATE events SET received_at = received_at - $s;
UPDATE inputs SET at = at - $s;
UPDATE runs SET queued_at = queued_at - $s, started_at = started_at - $s,
	finished_at = finished_at - $s;
UPDATE notes SET at = at - $s;
UPDATE params SET at = at - $s;
UPDATE providers SET updated_at = updated_at - $s;
UPDATE offsets SET at = at - $s;
COMMIT;"
}
# life N SEQ...: a daemon's life: each value announced, its run awaited
life() {
	local n=$1 seq runs; shift
	runs=$(pbc_ends)
	pbc_start "consumer$n"
	pbc_wait_ends $((runs + 1)); ok $? "daemon $n: its startup run"
	for seq in "$@"; do
		runs=$(pbc_ends)
		pbc_ev provides us-east-1 api-1 api API_URL "http://10.0.0.$seq:1100" "$seq" | pbc_pub
		pbc_wait_ends $((runs + 1)); ok $? "daemon $n: the run of value $seq"
	done
	pbc_stop; is "$CRC" 0 "daemon $n: exit 0"
}

# --- A: restarts
life 1 1 2
shift_log 40
life 2 3 4
shift_log 40
# a prune under way (a step deletes at most 1000 rows of each table): its
# base, daemon 2's start, is in meta, daemon 1's start input is still
# there, and its first event is gone; the replay begins at the base
cp "$ST/audit.db" "$T/half.db"
sqlite3 "$T/half.db" "INSERT OR REPLACE INTO meta(k, v) SELECT 'inputs_from', MAX(id) FROM inputs WHERE kind = 'start';
	DELETE FROM run_events WHERE event_id = (SELECT MIN(id) FROM events WHERE seq IS NOT NULL);
	DELETE FROM events WHERE id = (SELECT MIN(id) FROM events WHERE seq IS NOT NULL)"
out=$(provbus-audit -d "$T/half.db" replay 2>&1)
like "$out" "matches recorded runs \(3 runs" "A: a log half-way through a prune replays from the base in meta (daemon 2's runs)"
like "$out" "note: the log was pruned .* 3 recorded runs before it left out" "A: ... daemon 1's runs left out"
is "$(provbus-audit -d "$T/half.db" replay --json | jq -c 'select(.type == "summary") | [.matches, .recorded_runs, .recorded_runs_pruned, (.pruned_before | type)]')" \
	'[true,3,3,"string"]' "A: ... and --json says so"
sed -i 's/"audit_retention_days": 0/"audit_retention_days": 30/' "$C"
life 3 5
is "$(pbc_sql "SELECT group_concat(seq) FROM (SELECT seq FROM events WHERE seq IS NOT NULL ORDER BY id)")" \
	"4,5" "A: daemon 1's and 2's events pruned, but the newest of api-1 (the base: daemon 3's start)"
is "$(pbc_sql "SELECT kind || (at > $(date +%s%3N) - $DAY) FROM inputs ORDER BY id LIMIT 1")" "start1" \
	"A: the inputs begin with daemon 3's start"
out=$(provbus-audit -d "$ST/audit.db" replay 2>&1)
like "$out" "matches recorded runs" "A: the pruned log replays exactly"
like "$out" "note: the log was pruned .* left out" "A: replay says the log was pruned"

# --- B: one daemon, never restarted
B_LOG=$T/web-02.log
pbc_init web-02 us-east-1 '"audit_retention_days": 0'
pbc_manifest app '{"K": "{API_URL}"}'
retention() { # DAYS: the config changed (the daemon reloads it)
	sed -i "s/\"audit_retention_days\": [0-9]*/\"audit_retention_days\": $1/" "$C"
}
_snapshots() { pbc_sql "SELECT COUNT(*) FROM inputs WHERE kind = 'snapshot'"; }
_reloads() { grep -c 'reloaded (' "$B_LOG"; }
retention_off() {
	local r0; r0=$(_reloads)
	retention 0
	pbc_wait_ge 20 $((r0 + 1)) _reloads; ok $? "B: retention turned off (reloaded)"
}
value() { # SEQ: announced, its run awaited
	local runs; runs=$(pbc_ends)
	pbc_ev provides us-east-1 api-1 api API_URL "http://10.0.0.$1:1100" "$1" | pbc_pub
	pbc_wait_ends $((runs + 1)); ok $? "B: the run of value $1"
}
pbc_start web-02
pbc_wait_ends 1; ok $? "B: the startup run"
value 6
# value 7's run fails, and its retries (2): given up until the next change,
# the core is at rest with values other than the last good run's
echo 1 >"$T/web-02.exit"
runs=$(pbc_ends)
pbc_ev provides us-east-1 api-1 api API_URL "http://10.0.0.7:1100" 7 | pbc_pub
pbc_wait_ends $((runs + 3)); ok $? "B: value 7's run and its two retries failed"
pbc_wait_idle 20; ok $? "B: then idle (retries given up)"
rm -f "$T/web-02.exit"
shift_log 2
retention 30
pbc_wait_eq 20 1 _snapshots; ok $? "B: a snapshot input once the newest base is 2 days old"
like "$(pbc_sql "SELECT text FROM inputs WHERE kind = 'snapshot'")" '"providers":\[\[[^]]*"api-1","api","API_URL","http://10.0.0.7:1100",0,7,' \
	"B: it holds the providers (api-1 at seq 7)"
like "$(pbc_sql "SELECT text FROM inputs WHERE kind = 'snapshot'")" '"fails_in_row":3,' \
	"B: and the failed runs in a row"
retention_off
# the start 27 days ago, the snapshot 25; then value 8, which the
# replay of the last 30 days must reproduce from the snapshot's state
shift_log 25
value 8
shift_log 10
retention 30
pbc_wait_eq 20 2 _snapshots; ok $? "B: a second snapshot (the first is 35 days old)"
_starts() { pbc_sql "SELECT COUNT(*) FROM inputs WHERE kind = 'start'"; }
pbc_wait_eq 20 0 _starts; ok $? "B: the start input pruned (the base is the first snapshot)"
value 9
pbc_stop; is "$CRC" 0 "B: exit 0"
is "$(pbc_sql "SELECT group_concat(seq) FROM (SELECT seq FROM events WHERE seq IS NOT NULL ORDER BY id)")" \
	"7,8,9" "B: the events before the snapshot pruned but the newest of api-1 before it (value 8's, 10 days old, kept)"
is "$(pbc_sql "SELECT kind FROM inputs ORDER BY id LIMIT 1")" "snapshot" "B: the inputs begin with the first snapshot"
out=$(provbus-audit -d "$ST/audit.db" replay 2>&1)
like "$out" "matches recorded runs \(2 runs" "B: the pruned log replays exactly from the snapshot: value 8's run and 9's"
printf '%s\n' "$out" | tail -n 3 | sed 's/^/# /'

# --- C: a restart inside the throttle window (1 run per 5 s): the start
# input carries the window, and replay holds the second startup run back
# as the daemon did
pbc_init web-03 us-east-1 '"throttle": {"runs": 1, "per_s": 5}'
pbc_manifest app '{"K": "{API_URL}"}'
pbc_start web-03a
pbc_wait_ends 1; ok $? "C: the first startup run"
pbc_stop
pbc_start web-03b
pbc_wait_ends 2 20; ok $? "C: the second startup run, after a restart"
pbc_stop; is "$CRC" 0 "C: exit 0"
gap=$(pbc_sql "SELECT MAX(started_at) - MIN(started_at) FROM runs")
[ "$gap" -ge 5000 ]; ok $? "C: the second run held back by the throttle ($gap ms after the first)"
like "$(pbc_sql "SELECT text FROM inputs WHERE kind = 'start' ORDER BY id DESC LIMIT 1")" '"starts":\[[0-9]+\]' \
	"C: the second start input holds the first run's start"
out=$(provbus-audit -d "$ST/audit.db" replay 2>&1)
like "$out" "matches recorded runs \(2 runs" "C: the log replays exactly"

# --- D: what is pending goes in a snapshot. A run that does not end keeps
# the core from rest: no snapshot, and a warning once the newest base is 2
# days old; one as soon as the run ends. Paused with a change waiting, the
# core is at rest: the snapshot holds the pause and the change, and a
# replay from it runs the change at the resume as the daemon did.
pbc_init web-04 us-east-1 '"audit_retention_days": 0'
pbc_manifest app '{"K": "{API_URL}"}'
D_LOG=$T/web-04.log
_snap() { pbc_sql "SELECT COUNT(*) FROM inputs WHERE kind = 'snapshot'"; }
_reloads() { grep -c 'reloaded (' "$D_LOG"; }
retention_d() { # DAYS: the config changed, the reload awaited
	local r0; r0=$(_reloads)
	sed -i "s/\"audit_retention_days\": [0-9]*/\"audit_retention_days\": $1/" "$C"
	pbc_wait_ge 20 $((r0 + 1)) _reloads; ok $? "D: retention $1 (reloaded)"
}
pbc_start web-04
pbc_wait_ends 1; ok $? "D: the startup run"
: >"$T/web-04.hold"
pbc_ev provides us-east-1 api-1 api API_URL "http://10.0.0.10:1100" 10 | pbc_pub
pbc_wait_eq 20 2 pbc_runs; ok $? "D: a run that does not end"
shift_log 3
retention_d 30
_warned() { grep -c 'no snapshot input since' "$D_LOG"; }
pbc_wait_ge 20 1 _warned; ok $? "D: a warning: no snapshot input for 3 days"
like "$(grep -m1 'no snapshot input since' "$D_LOG")" "warning: audit retention: .*a run going" "D: ... saying why"
is "$(_snap)" 0 "D: and no snapshot input while the run goes"
rm -f "$T/web-04.hold"
pbc_wait_ends 2; ok $? "D: the run ends"
pbc_wait_eq 20 1 _snap; ok $? "D: at rest: a snapshot input then (not at the next check, 10 min on)"
provbus-consumer -c "$C" pause >/dev/null; ok $? "D: paused"
pbc_ev provides us-east-1 api-1 api API_URL "http://10.0.0.11:1100" 11 | pbc_pub
pbc_wait_rows 1 "seq = 11"; ok $? "D: a change while paused"
retention_d 0
shift_log 2
retention_d 30
pbc_wait_eq 20 2 _snap; ok $? "D: paused with a change waiting: a snapshot input"
like "$(pbc_sql "SELECT text FROM inputs WHERE kind = 'snapshot' ORDER BY id DESC LIMIT 1")" \
	'"paused":1,.*"pending":\{[^}]*"change_pending":1' "D: ... holding the pause and the change"
retention_d 0
shift_log 40
retention_d 30
_d_starts() { pbc_sql "SELECT COUNT(*) FROM inputs WHERE kind = 'start'"; }
pbc_wait_eq 20 0 _d_starts; ok $? "D: pruned up to the paused snapshot (40 days old)"
provbus-consumer -c "$C" resume >/dev/null; ok $? "D: resumed"
pbc_wait_ends 3; ok $? "D: the change's run"
pbc_stop; is "$CRC" 0 "D: exit 0"
out=$(provbus-audit -d "$ST/audit.db" replay 2>&1)
like "$out" "matches recorded runs \(1 run;" "D: replayed from the paused snapshot: the change runs at the resume, as recorded"
pb_done
