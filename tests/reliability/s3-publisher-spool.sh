#!/usr/bin/env bash
# Scenario 3: a publisher while the broker is down. Each run spools its
# events in STATE_DIR/outbox.db and exits 75; a broker that accepts the TCP
# connection but never answers costs at most --timeout; when the broker is
# back, the next run delivers everything spooled, oldest first, then its
# own events: 0 lost, in order.
#
# The broker "goes away" behind a loopback relay (socat) in front of the
# shared test broker, so nothing else is disturbed.
#   RL_RUNS (default 20): runs while down; RL_KEYS (default 5): keys per run
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup s3-publisher-spool
runs=${RL_RUNS:-20}
nkeys=${RL_KEYS:-5}
keys=$(for i in $(seq 1 "$nkeys"); do printf 'K%03d ' "$i"; done)

rl_topology fed r1
rl_apply
# a queue that sees every event of the federation, in the order the broker routed them
pbtest-amqp "$URL" queue rl-check --durable --bind provbus.fed:'#' >/dev/null
ok $? "check queue declared and bound to provbus.fed"

PP=$(rl_free_port)
rl_publisher pub1 r1 "$keys" "[\"amqp://guest:guest@127.0.0.1:$PP/$(urlenc "$VHOST")\"]"
cfg=$T/pub1.json

# --- the broker is down: nothing listens on the port
bad=0
t0=$(rl_now)
for g in $(seq 1 "$runs"); do
	rl_set_gen pub1 "$g"
	provbus-publish -c "$cfg" --timeout 3 provides >"$T/down-$g.log" 2>&1
	rc=$?
	[ $rc -eq 75 ] || { bad=$((bad + 1)); diag "run $g: exit $rc: $(tail -n2 "$T/down-$g.log")"; }
done
down_ms=$(( $(rl_now) - t0 ))
is "$bad" 0 "$runs runs with the broker down each exit 75 (spooled), $((down_ms / runs)) ms a run"
like "$(cat "$T/down-$runs.log")" "[0-9]+ .*(spool|outbox)" "the last run says how many events are spooled"
spooled=$(provbus-publish -c "$cfg" --dry-run flush 2>/dev/null | grep -c '"id"')
is "$spooled" $((runs * nkeys)) "the outbox holds every event of the $runs runs"

# --- the port accepts connections but nothing answers (a hung broker)
socat "TCP-LISTEN:$PP,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'sleep 60' >/dev/null 2>&1 &
hole=$!
rl_track_pid "$hole"
wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PP"
rl_set_gen pub1 $((runs + 1))
t0=$(rl_now)
provbus-publish -c "$cfg" --timeout 3 provides >"$T/hole.log" 2>&1
rc=$?
hole_ms=$(( $(rl_now) - t0 ))
is "$rc" 75 "a broker that never answers: exit 75"
[ "$hole_ms" -lt 15000 ]; ok $? "... after $hole_ms ms with --timeout 3 (no hang)"
pkill -KILL -P "$hole" 2>/dev/null; kill -KILL "$hole" 2>/dev/null; wait "$hole" 2>/dev/null

# --- the broker is back
rl_proxy "$PP" "$PORT"
rl_set_gen pub1 $((runs + 2))
t0=$(rl_now)
provbus-publish -c "$cfg" provides >"$T/up.log" 2>&1
rc=$?
recovery_ms=$(( $(rl_now) - t0 ))
is "$rc" 0 "the broker back: the next run exits 0"
spooled=$(provbus-publish -c "$cfg" --dry-run flush 2>/dev/null | grep -c '"id"')
is "$spooled" 0 "the outbox is empty"

want=$(( (runs + 2) * nkeys ))
got_json=$T/got.jsonl
pbtest-amqp "$URL" get rl-check --count "$want" --timeout-ms 5000 >"$got_json" 2>"$T/get.err"
got=$(wc -l <"$got_json")
is "$got" "$want" "all $want events reached the broker (spooled and new)"
jq -r '.body | fromjson | "\(.seq)\t\(.id)\t\(.value)"' "$got_json" >"$T/got.tsv" 2>"$T/jq.err"
is "$(wc -l <"$T/got.tsv")" "$got" "every message is a JSON event"
# in order: seq never goes down, and each seq carries all its keys
order=$(awk -F'\t' 'NR > 1 && $1 < prev {bad++} {prev = $1} END {print bad + 0}' "$T/got.tsv")
is "$order" 0 "delivered oldest first (seq never goes back)"
seqs=$(cut -f1 "$T/got.tsv" | sort -n | uniq -c | awk -v k="$nkeys" '$1 != k {bad++} END {print NR " " bad + 0}')
is "$seqs" "$((runs + 2)) 0" "seqs 1..$((runs + 2)) each with all $nkeys keys"
gens=$(cut -f3 "$T/got.tsv" | sed 's|.*/||' | awk 'NR > 1 && $1 < prev {bad++} {prev = $1} END {print bad + 0}')
is "$gens" 0 "values in the order they were announced"
dups=$(cut -f2 "$T/got.tsv" | sort | uniq -d | wc -l)
is "$dups" 0 "no event sent twice"
# what the publisher's own log says about the redelivery
like "$(cat "$T/up.log")" "." "the run that delivered says something"
diag "up.log: $(tr '\n' ' ' <"$T/up.log" | cut -c1-300)"

lost=$(( want - got ))
rl_result sent=$want audited=$got lost=$lost duplicated_detected=$dups recovery_s="$(rl_secs "$recovery_ms")" \
	runs_down=$runs ms_per_down_run=$((down_ms / runs)) hung_broker_ms=$hole_ms
pb_done
