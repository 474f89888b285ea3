#!/usr/bin/env bash
# Scenario 2: kill -9 of a consumer in the middle of a stream of events and
# in the middle of a provision run; restart it. 0 lost (every event sent is
# in the audit log; those committed but not acked before the kill come
# back redelivered and are recorded as duplicates), the interrupted run is
# recorded as interrupted, a startup run follows, and the env file ends
# with the last values.
#   RL_EVENTS (default 20000), RL_VALGRIND=1 (the restarted daemon under
#   memcheck; use small counts)
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup s2-consumer-kill
n=${RL_EVENTS:-20000}
keys="K001 K002 K003 K004 K005"

# a provision run that lasts 1.5 s, so the kill can land inside one
cat >"$T/provision.sh" <<EOT
#!/bin/sh
echo "\$(date +%s%3N) \$PROVBUS_REASON \$PROVBUS_RUN_ID \$\$" >>$T/runs.log
sleep 1.5
EOT
chmod +x "$T/provision.sh"

rl_topology fed r1
rl_apply
RL_MAX_WAIT_MS=1500 rl_consumer c1 r1 "$keys"
rl_consumer_start c1
pid1=$BG_PID
rl_wait_idle c1 60
ok $? "consumer up and idle"
db=$T/c1/state/audit.db
Q=provbus.fed.node.c1

salt=$(printf '%08x' $((RANDOM * 32768 + RANDOM)))
awk -v n="$n" -v salt="$salt" 'BEGIN {
	for (i = 1; i <= n; i++) {
		k = sprintf("K%03d", (i - 1) % 5 + 1)
		printf "r1.provides.%s\t{\"v\":1,\"id\":\"%s-2222-4000-8000-%012x\",\"kind\":\"provides\",\"federation\":\"fed\",\"region\":\"r1\",\"node\":\"pv\",\"service\":\"svc\",\"key\":\"%s\",\"value\":\"http://pv/%s/%d\",\"public\":false,\"seq\":%d,\"ttl_s\":0,\"ts\":\"2026-01-01T00:00:00Z\"}\n", k, salt, i, k, k, i, i
	}
}' >"$T/events.tsv"

# the stream, in the background, paced in chunks so it lasts while we kill
( split -l 1000 -d -a 4 "$T/events.tsv" "$T/chunk."
  for f in "$T"/chunk.*; do
	pbtest-amqp "$URL" publish-lines provbus.fed --confirm --persistent --content-type application/json \
		--timeout-ms 60000 <"$f" || echo "publish failed: $f"
	sleep 0.2
  done ) >"$T/publish.log" 2>&1 &
pubpid=$!
rl_track_pid $pubpid

# kill -9 when at least a quarter is audited AND a provision run is going
killed=""
for _ in $(seq 1 1200); do
	got=$(rl_sql "$db" "SELECT count(*) FROM events WHERE source='live'" 2>/dev/null)
	running=$(rl_sql "$db" "SELECT count(*) FROM runs WHERE status='running'" 2>/dev/null)
	if [ "${got:-0}" -ge $((n / 4)) ] && [ "${running:-0}" -ge 1 ]; then
		kill -KILL "$pid1"; killed=$(rl_now); break
	fi
	sleep 0.05
done
[ -n "$killed" ]; ok $? "kill -9 of the consumer during the stream and during a run ($got of $n audited)"
wait "$pid1" 2>/dev/null
# the orphaned provision process (its own process group) is left to
# finish: it ends 1.5 s after it started
at_kill=$(rl_sql "$db" "SELECT count(*) FROM events WHERE source='live'")
run_at_kill=$(rl_sql "$db" "SELECT id FROM runs WHERE status='running'")
diag "at the kill: $at_kill events audited, run $run_at_kill running"
sleep 1

# restart it
t_restart=$(rl_now)
rl_consumer_start c1
rl_wait_connected c1 60
ok $? "the restarted consumer connects"
reconnect_ms=$(( $(rl_now) - t_restart ))
wait "$pubpid"
is "$(grep -c failed "$T/publish.log")" 0 "the whole stream of $n events was confirmed by the broker"
wait_for 300 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(DISTINCT msg_id) FROM events WHERE source='live'\")\" -ge $n ]"
ok $? "all $n events audited after the restart"
drain_ms=$(( $(rl_now) - t_restart ))
rl_wait_idle c1 120
ok $? "the consumer settles (idle)"

distinct=$(rl_sql "$db" "SELECT count(DISTINCT msg_id) FROM events WHERE source IN ('live','history') AND verdict != 'invalid'")
lost=$((n - distinct))
is "$lost" 0 "0 lost ($distinct distinct events of $n)"
dups=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='duplicate'")
redeliv=$(rl_sql "$db" "SELECT count(*) FROM events WHERE redelivered=1")
redeliv_dup=$(rl_sql "$db" "SELECT count(*) FROM events WHERE redelivered=1 AND verdict='duplicate'")
diag "duplicates detected: $dups; redelivered: $redeliv ($redeliv_dup of them duplicates)"
twice=$(rl_sql "$db" "SELECT count(*) FROM (SELECT msg_id FROM events WHERE verdict IN ('applied','stale') GROUP BY msg_id HAVING count(*) > 1)")
is "$twice" 0 "no event judged applied/stale twice (a redelivery is a duplicate)"
is "$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='invalid'")" 0 "no invalid rows"
is "$(rl_queue_ready "$Q")" 0 "the queue is drained"

# the runs
interrupted=$(rl_sql "$db" "SELECT id FROM runs WHERE status='interrupted'" | tr '\n' ' ')
is "$interrupted" "$run_at_kill " "the run going at the kill (id $run_at_kill) is recorded as interrupted"
is "$(rl_sql "$db" "SELECT count(*) FROM runs WHERE status='running'")" 0 "no run left 'running'"
like "$(rl_sql "$db" "SELECT kind FROM notes" | tr '\n' ' ')" "interrupted" "a note records the interruption"
next=$(rl_sql "$db" "SELECT reason || ':' || status FROM runs WHERE id > ${run_at_kill:-0} ORDER BY id LIMIT 1")
is "$next" "startup:ok" "the next run is a startup run, and it succeeds"
last_ok=$(rl_sql "$db" "SELECT values_after FROM runs WHERE status='ok' ORDER BY id DESC LIMIT 1")
want=$(for k in $keys; do last=$(awk -F'\t' -v rk="r1.provides.$k" '$1 == rk {l = $2} END {print l}' "$T/events.tsv" | jq -r .value); printf '"E_%s":"%s",' "$k" "$last"; done)
want="{${want%,}}"
is "$(jq -cS . <<<"$last_ok")" "$(jq -cS . <<<"$want")" "the last successful run had the last values"
wrong=""
for k in $keys; do
	grep -q "^export E_$k='$(jq -r ".E_$k" <<<"$want")'\$" "$T/c1/app.env" || wrong="$wrong E_$k"
done
is "$wrong" "" "the env file holds the last values"
[ -z "$wrong" ] || sed 's/^/#   /' "$T/c1/app.env"
pb_ctl list_consumers -p "$VHOST" >/dev/null 2>&1

rl_consumer_stop c1
rc=$?
is "$rc" 0 "SIGTERM: exit 0"
rl_valgrind_check c1 "$rc"
rl_result sent=$n audited=$distinct lost=$lost duplicated_detected=$dups redelivered=$redeliv \
	audited_at_kill=$at_kill interrupted_run=$run_at_kill reconnect_s="$(rl_secs "$reconnect_ms")" \
	recovery_s="$(rl_secs "$drain_ms")"
pb_done
