#!/usr/bin/env bash
# provbus-audit on a log written by the real daemon: a provbus-consumer
# against the test broker gets bursts of events (with a duplicate, a stale
# seq, a foreign key, an A->B->A flip and a failing run with its retry),
# is stopped, and then: replay with the recorded parameters matches the
# recorded runs; a what-if with a longer quiet period gives fewer runs;
# explain lists the right events; the --json outputs parse and have every
# documented field. No jq: JSON is checked with pbtest-auditgen check-jsonl.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup auditlive

F=alive
pb_topology "$F" us-east-1
pb_apply >/dev/null || { echo "not ok - provbus-schema apply"; exit 1; }
C=$T/web-1.json
pb_node_config "$C" web-1 "$F" us-east-1 "\"consumer\": {
    \"provision\": [\"$PB_ROOT/tests/data/consumer/provision.sh\", \"$T/runs.log\", \"0.3\", \"$T/exit\"],
    \"env_file\": \"$T/web-1/app.env\",
    \"quiet_ms\": $(pb_slow 800), \"max_wait_ms\": $(pb_slow 6000), \"retry\": {\"max\": 2, \"base_ms\": 500},
    \"throttle\": {\"runs\": 100, \"per_s\": 60}, \"verify_sender\": false}"
printf '{"id": "app", "requires": {"API_URL": "{API_URL}", "DATABASE_URL": "{DB_URL}"}}\n' \
	>"$T/web-1/services.d/app.json"
DB=$T/web-1/state/audit.db
echo 0 >"$T/exit"
: >"$T/runs.log"

aud_status() { provbus-consumer -c "$C" status 2>/dev/null; }
aud_idle() { aud_status | grep -q '"state":"idle"'; }
aud_ends() { [ "$(grep -c '^end ' "$T/runs.log")" -ge "$1" ]; }
# one event: KIND NODE KEY VALUE SEQ [ID]
aud_ev() {
	local id=${6:-$(cat /proc/sys/kernel/random/uuid)} v="\"$4\""
	[ "$1" = retire ] && v=null
	printf 'us-east-1.%s.%s\t{"v":1,"id":"%s","kind":"%s","federation":"%s","region":"us-east-1","node":"%s","service":"svc","key":"%s","value":%s,"public":false,"seq":%s,"ttl_s":0,"ts":"%s"}\n' \
		"$1" "$3" "$id" "$1" "$F" "$2" "$3" "$v" "$5" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
}
aud_end_status() { grep -q "^end [0-9]* [0-9]* $1\$" "$T/runs.log"; }

pb_bg consumer provbus-consumer -c "$C" -v run
CPID=$BG_PID
wait_for 30 aud_idle; ok $? "the consumer is up and idle"
wait_for 10 aud_ends 1; ok $? "its startup run ended"
# one publisher for the whole test: events go out as they are written to fd 3
exec 3> >(exec pbtest-amqp "$URL" publish-lines "provbus.$F" --confirm --persistent 2>"$T/pub.log")
PUB=$!
_pb_pids+=("$PUB")

# burst 1: API_URL from four nodes, 50 ms apart (within the quiet period)
# (the lines are made first: forks under load must not stretch the gaps)
burst=(); for i in 1 2 3 4; do burst+=("$(aud_ev provides "api-$i" API_URL "http://10.0.0.$i:80" 1)"); done
for l in "${burst[@]}"; do printf '%s\n' "$l" >&3; sleep 0.05; done
wait_for 10 aud_ends 2; ok $? "burst 1: one run"
wait_for 10 aud_idle
# burst 2: DB_URL, a duplicate (same id twice), a stale seq
dup=$(cat /proc/sys/kernel/random/uuid)
three=$({ aud_ev provides db-1 DB_URL "mysql://10.0.1.1:3306/app" 5 "$dup"
  aud_ev provides db-1 DB_URL "mysql://10.0.1.1:3306/app" 5 "$dup"
  aud_ev provides db-1 DB_URL "mysql://10.0.1.9:3306/old" 3; })
last=$(aud_ev provides db-2 DB_URL "mysql://10.0.1.2:3306/app" 1)
printf '%s\n' "$three" >&3
sleep 0.05
printf '%s\n' "$last" >&3
wait_for 10 aud_ends 3; ok $? "burst 2: one run"
wait_for 10 aud_idle
# A -> B -> A within the quiet period: no run
b=$(aud_ev provides api-1 API_URL "http://10.0.0.99:80" 2) a=$(aud_ev provides api-1 API_URL "http://10.0.0.1:80" 3)
printf '%s\n' "$b" >&3
sleep 0.1
printf '%s\n' "$a" >&3
pb_sleep 1.5
is "$(grep -c '^start ' "$T/runs.log")" 3 "A->B->A started no run"
# a failing run and its retry
echo 1 >"$T/exit"
aud_ev retire api-4 API_URL "" 4 >&3
wait_for 10 aud_end_status 1; ok $? "a run failed"
echo 0 >"$T/exit"
wait_for 10 aud_ends 5; ok $? "its retry ended"
wait_for 10 aud_idle
# a last burst spread over a second: one run (each event re-arms the quiet timer)
burst=(); for i in 5 6 7 8 9; do burst+=("$(aud_ev provides "api-$i" API_URL "http://10.0.0.$i:80" 1)"); done
for l in "${burst[@]}"; do printf '%s\n' "$l" >&3; sleep 0.2; done
wait_for 10 aud_ends 6; ok $? "the last burst: one run"
wait_for 10 aud_idle
exec 3>&-
pb_stop_pid "$CPID"
n_runs=$(sqlite3 "$DB" "select count(*) from runs")
is "$n_runs" 6 "six runs recorded (startup, 3 bursts, a failure and its retry)"
diag "$(provbus-audit -d "$DB" runs)"

# --- replay with the recorded parameters matches -------------------------------
out=$(provbus-audit -d "$DB" replay)
like "$out" "matches recorded runs \\($n_runs runs;" "replay of the daemon's log matches its runs"
[[ $out =~ matches ]] || diag "$out"
like "$(provbus-audit -d "$DB" replay --json | tail -n1)" '"matches":true' "replay --json says so too"

# --- a what-if with a longer quiet period gives fewer runs ----------------------
out=$(provbus-audit -d "$DB" replay --quiet-ms "$(pb_slow 10000)" --max-wait-ms "$(pb_slow 60000)")
like "$out" "with quiet $(pb_slow 10000) ms, max-wait $(pb_slow 60000) ms: [0-9]+ runs? instead of $n_runs" "what-if: says how many runs instead of how many"
fewer=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9]*\) runs\{0,1\} instead.*/\1/p')
ok $(( fewer < n_runs ? 0 : 1 )) "what-if: fewer runs with a quiet period of $(pb_slow 10) s ($fewer < $n_runs)"

# --- explain lists the right events ------------------------------------------------------------
r2=$(sqlite3 "$DB" "select id from runs where reason = 'change' order by id limit 1")
out=$(provbus-audit -d "$DB" explain "$r2")
like "$out" "run $r2: change run, ok \\(exit 0\\)" "explain: the first change run"
like "$out" 'API_URL  \(4 events: 4 applied\)' "explain: the four API_URL events of burst 1"
like "$out" 'API_URL'$'\n''    before  \(not set\)'$'\n''    after   http://10.0.0.1:80,http://10.0.0.2:80,http://10.0.0.3:80,http://10.0.0.4:80' \
	"explain: API_URL before and after"
r3=$(sqlite3 "$DB" "select id from runs where reason = 'change' order by id limit 1 offset 1")
out=$(provbus-audit -d "$DB" explain "$r3")
like "$out" 'DB_URL  \(2 events: 2 applied\)' "explain: the DB_URL run covers the two applied DB_URL events"
like "$out" 'DATABASE_URL'$'\n''    before  \(not set\)'$'\n''    after   mysql://10.0.1.1:3306/app,mysql://10.0.1.2:3306/app' \
	"explain: DATABASE_URL before and after"
fr=$(sqlite3 "$DB" "select id from runs where status = 'failed'")
like "$(provbus-audit -d "$DB" explain "$fr")" 'failed \(exit 1\)' "explain: the failed run"
like "$(provbus-audit -d "$DB" runs)" "retry +[0-9TZ:.-]+ +[0-9TZ:.-]+ +[0-9TZ:.-]+ +[0-9.]+ m?s +ok" "runs: the retry"

# --- every verdict the daemon wrote, and the --json outputs ---------------------------------
is "$(provbus-audit -d "$DB" events --verdict duplicate --json | grep -c '"redelivered":')" 1 "events --verdict duplicate: the duplicate"
is "$(provbus-audit -d "$DB" events --verdict stale --json | grep -c '"value":"mysql://10.0.1.9:3306/old"')" 1 "events --verdict stale: the old seq"
provbus-audit -d "$DB" events --json >"$T/ev.jsonl"
check "events --json of the daemon's log: every field" pbtest-auditgen check-jsonl \
	id,msg_id,received_at,kind,federation,region,node,service,key,value,seq,verdict,redelivered <"$T/ev.jsonl"
provbus-audit -d "$DB" runs --json >"$T/runs.jsonl"
check "runs --json of the daemon's log: every field" pbtest-auditgen check-jsonl \
	id,reason,queued_at,started_at,finished_at,exit_status,events,changed_keys <"$T/runs.jsonl"
provbus-audit -d "$DB" export --jsonl >"$T/export.jsonl"
check "export --jsonl of the daemon's log parses" pbtest-auditgen check-jsonl type <"$T/export.jsonl"
like "$(grep -c '"type":"param"' "$T/export.jsonl")" '^[1-9]' "export: the params row the daemon wrote"
# -c: the daemon's own config finds the log
is "$(provbus-audit -c "$C" runs --json | wc -l)" "$n_runs" "-c: the log of the node config's state_dir"

pb_done
