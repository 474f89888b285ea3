#!/usr/bin/env bash
# Scenario 1: kill -9 of the broker while events flow from publishers
# (provbus-publish runs) to 5 consumers; restart it. 0 lost: every event
# the publishers got confirmed (in the end: every event they made, since
# the spooled ones are sent by later runs) is in the audit log of every
# consumer that requires its key; each consumer reconnects by itself (same
# PID); once the flow stops each consumer makes exactly one trailing
# provision run, with the last values.
#
# A private broker (it is killed). Quorum queues (the default).
#   RL_PUBLISHERS (5) x RL_RUNS (100) runs x RL_KEYS (100) keys per run =
#   50,000 events; consumer i requires every key whose number mod 5 is not
#   i-1 (80 % of them). RL_KILL_AT (30): kill when this % of the events
#   expected by the first consumer is audited.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_own_broker
rl_setup s1-broker-kill
npub=${RL_PUBLISHERS:-5}
nruns=${RL_RUNS:-100}
nkeys=${RL_KEYS:-100}
kill_at=${RL_KILL_AT:-30}
ncons=5
total=$((npub * nruns * nkeys))

rl_topology fed r1
rl_apply
allkeys=$(for i in $(seq 1 "$nkeys"); do printf 'K%03d ' "$i"; done)
keys_of() { # keys_of CONSUMER-INDEX
	local i=$1 k
	for k in $(seq 1 "$nkeys"); do [ $((k % 5)) -eq $((i - 1)) ] || printf 'K%03d ' "$k"; done
}
per_cons=$(( npub * nruns * $(keys_of 1 | wc -w) ))

# provision: record the run, take a moment
cat >"$T/provision.sh" <<EOT
#!/bin/sh
echo "\$(date +%s%3N) \$PROVBUS_REASON \$PROVBUS_RUN_ID" >>"\$RL_RUNLOG"
sleep 0.2
EOT
chmod +x "$T/provision.sh"

declare -A cpid
for i in $(seq 1 $ncons); do
	RL_MAX_WAIT_MS=5000 rl_consumer "c$i" r1 "$(keys_of "$i")"
	RL_RUNLOG=$T/c$i.runs rl_consumer_start "c$i"
	cpid[$i]=$BG_PID
done
for i in $(seq 1 $ncons); do rl_wait_idle "c$i" 90 || diag "c$i not idle: $(rl_state "c$i")"; done
up=0; for i in $(seq 1 $ncons); do rl_is_idle "c$i" && up=$((up + 1)); done
is "$up" $ncons "$ncons consumers connected and idle"

for p in $(seq 1 "$npub"); do rl_publisher "p$p" r1 "$allkeys"; done

# the publishers: RL_RUNS announcements each, every one changing every value
publisher_loop() { # publisher_loop P
	local p=$1 g rc
	for g in $(seq 1 "$nruns"); do
		rl_set_gen "p$p" "$g"
		provbus-publish -c "$T/p$p.json" --timeout 5 provides >>"$T/p$p.publish.log" 2>&1
		rc=$?
		echo "$(rl_now) $g $rc" >>"$T/p$p.rc"
	done
}
t0=$(rl_now)
pubpids=()
for p in $(seq 1 "$npub"); do publisher_loop "$p" & pubpids+=($!); rl_track_pid $!; done

# kill -9 of the broker once kill_at % of c1's events are audited
db1=$T/c1/state/audit.db
wait_for 600 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db1' \"SELECT count(*) FROM events WHERE node LIKE 'p%'\")\" -ge $((per_cons * kill_at / 100)) ]"
ok $? "$kill_at % of the flow reached c1"
t_kill=$(rl_now)
"$PB_BROKER" kill "$PB_BROKER_DIR" 1
ok $? "kill -9 of the broker"
at_kill=$(rl_sql "$db1" "SELECT count(*) FROM events WHERE node LIKE 'p%'")
sleep 3
discon=0
for i in $(seq 1 $ncons); do [ "$(rl_json_get "$(rl_status "$T/c$i.json")" .connected)" = false ] && discon=$((discon + 1)); done
is "$discon" $ncons "every consumer's status says connected: false while the broker is down"
"$PB_BROKER" restart "$PB_BROKER_DIR" 1 >"$T/restart.log" 2>&1
ok $? "broker restarted"
t_back=$(rl_now)

# each consumer reconnects by itself
recon_ms=""
for i in $(seq 1 $ncons); do
	if rl_wait_connected "c$i" 120; then recon_ms="$recon_ms $(( $(rl_now) - t_back ))"; else recon_ms="$recon_ms never"; fi
done
same=0
for i in $(seq 1 $ncons); do kill -0 "${cpid[$i]}" 2>/dev/null && same=$((same + 1)); done
like "$recon_ms" "^( [0-9]+){$ncons}$" "each consumer reconnected by itself (ms after the broker was back:$recon_ms)"
is "$same" $ncons "... the same processes (never exited)"

for pp in "${pubpids[@]}"; do wait "$pp"; done
pub_ms=$(( $(rl_now) - t0 ))
# whatever is still spooled goes now
for p in $(seq 1 "$npub"); do
	for _ in 1 2 3 4 5; do provbus-publish -c "$T/p$p.json" --timeout 10 flush >>"$T/p$p.publish.log" 2>&1 && break; sleep 2; done
done
rcs=$(cat "$T"/p*.rc | awk '{print $3}' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
diag "publisher runs by exit status: $rcs"
like "$rcs" "^0:[0-9]+ (75:[0-9]+ )?$" "publisher runs exit 0, or 75 (spooled) while the broker was away"
like "$rcs" "75:" "some publisher runs found the broker away and spooled"
left=0
for p in $(seq 1 "$npub"); do
	c=$(provbus-publish -c "$T/p$p.json" --dry-run flush 2>/dev/null | grep -c '"id"')
	left=$((left + c))
done
is "$left" 0 "every publisher's outbox is empty: all $total events confirmed"

# every consumer gets every event of its keys
t_drain=$(rl_now)
for i in $(seq 1 $ncons); do
	wait_for 600 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$T/c$i/state/audit.db' \"SELECT count(DISTINCT msg_id) FROM events WHERE node LIKE 'p%' AND verdict != 'invalid'\")\" -ge $per_cons ]"
done
drain_ms=$(( $(rl_now) - t_drain ))
for i in $(seq 1 $ncons); do rl_wait_idle "c$i" 120; done
sleep 2

audited_all=0 lost_all=0 dup_all=0 trailing="" foreign=0 invalid=0
for i in $(seq 1 $ncons); do
	db=$T/c$i/state/audit.db
	got=$(rl_sql "$db" "SELECT count(DISTINCT msg_id) FROM events WHERE node LIKE 'p%' AND verdict != 'invalid'")
	triples=$(rl_sql "$db" "SELECT count(*) FROM (SELECT DISTINCT node, key, seq FROM events WHERE node LIKE 'p%' AND verdict != 'invalid')")
	dups=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='duplicate'")
	foreign=$((foreign + $(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='foreign'")))
	invalid=$((invalid + $(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='invalid'")))
	audited_all=$((audited_all + got)); dup_all=$((dup_all + dups))
	lost=$((per_cons - triples)); lost_all=$((lost_all + lost))
	is "$got $triples" "$per_cons $per_cons" "c$i: all $per_cons events of its keys audited (each (node, key, seq) once or more)"
	# exactly one run started after the last change it received
	last_change=$(rl_sql "$db" "SELECT max(received_at) FROM events WHERE verdict='applied' AND changed=1")
	n_after=$(rl_sql "$db" "SELECT count(*) FROM runs WHERE started_at >= $last_change")
	st=$(rl_sql "$db" "SELECT status FROM runs WHERE started_at >= $last_change")
	trailing="$trailing $n_after"
	is "$n_after:$st" "1:ok" "c$i: exactly one trailing provision run after the last change, and it succeeded"
	# its values: every key, the last generation of every publisher
	vals=$(rl_json_get "$(rl_status "$T/c$i.json")" '.values | to_entries | map(.value) | .[]' | tr ',' '\n' | grep -c "/$nruns\$")
	is "$vals" $(( $(keys_of "$i" | wc -w) * npub )) "c$i: its values are the last ones of all $npub publishers"
	envl=$(grep -c "^export E_K" "$T/c$i/app.env")
	is "$envl" "$(keys_of "$i" | wc -w)" "c$i: the env file has one line per required key"
done
is "$foreign $invalid" "0 0" "no foreign or invalid verdicts (routing only brought required keys)"
# no run after the trailing one, a while later
sleep 3
more=0
for i in $(seq 1 $ncons); do
	db=$T/c$i/state/audit.db
	last_change=$(rl_sql "$db" "SELECT max(received_at) FROM events WHERE verdict='applied' AND changed=1")
	[ "$(rl_sql "$db" "SELECT count(*) FROM runs WHERE started_at >= $last_change")" -eq 1 ] || more=$((more + 1))
done
is "$more" 0 "still one trailing run each, 3 s later"

stopped=0
for i in $(seq 1 $ncons); do rl_consumer_stop "c$i" && stopped=$((stopped + 1)); done
is "$stopped" $ncons "every consumer exits 0 on SIGTERM"
rl_result sent=$total consumers=$ncons expected_per_consumer=$per_cons audited=$audited_all lost=$lost_all \
	duplicated_detected=$dup_all audited_c1_at_kill=$at_kill \
	broker_down_s="$(rl_secs $((t_back - t_kill)))" \
	reconnect_ms="$(echo $recon_ms | tr ' ' ',')" reconnect_max_ms="$(echo $recon_ms | awk '{ m = 0; for (i = 1; i <= NF; i++) { if ($i !~ /^[0-9]+$/) { m = "never"; break } if ($i > m) m = $i } print m }')" recovery_s="$(rl_secs $((t_drain + drain_ms - t_back)))" \
	publish_s=$((pub_ms / 1000)) trailing_runs="$(echo $trailing | tr ' ' ',')" publisher_exits="$(echo $rcs | tr ' ' ',')"
pb_done
