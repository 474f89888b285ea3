#!/usr/bin/env bash
# Scenario 8: the audit log's disk fills up. The consumer's state_dir is a
# small tmpfs (a loop-mounted ext4 when tmpfs is refused; root only: the
# scenario is skipped otherwise). With the disk full, the daemon cannot
# commit audit rows, so it stops acknowledging: the broker keeps the events
# (the queue holds them), the daemon says why (log, status audit_failing),
# keeps answering, and when space comes back it resumes: 0 lost.
#   RL_EVENTS (default 3000), RL_FS_MB (default 2)
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup s8-disk-full
n=${RL_EVENTS:-4000}
prefetch=2000	# the daemon's basic.qos (CS_PREFETCH): what it may hold unacked
mb=${RL_FS_MB:-2}

if [ "$(id -u)" -ne 0 ]; then
	rl_result skipped=not-root
	pb_skip_all "not root: cannot mount a small file system"
fi
rl_topology fed r1
rl_apply
rl_consumer c1 r1 "K001 K002 K003 K004 K005"
state=$T/c1/state
rl_mount_tmpfs "$state" "${mb}m"
ok $? "a ${mb} MB file system mounted on the consumer's state_dir"
df -h "$state" | sed 's/^/# /'
rl_consumer_start c1
pid=$BG_PID
rl_wait_idle c1 60
ok $? "consumer up and idle"
db=$state/audit.db
Q=provbus.fed.node.c1
before=$(rl_sql "$db" "SELECT count(*) FROM events")

# fill it up
dd if=/dev/zero of="$state/filler" bs=16k status=none 2>/dev/null
avail=$(df --output=avail -k "$state" | tail -n1 | tr -d ' ')
is "$avail" 0 "the file system is full"

salt=$(printf '%08x' $((RANDOM * 32768 + RANDOM)))
awk -v n="$n" -v salt="$salt" 'BEGIN {
	for (i = 1; i <= n; i++) {
		k = sprintf("K%03d", (i - 1) % 5 + 1)
		printf "r1.provides.%s\t{\"v\":1,\"id\":\"%s-3333-4000-8000-%012x\",\"kind\":\"provides\",\"federation\":\"fed\",\"region\":\"r1\",\"node\":\"pv\",\"service\":\"svc\",\"key\":\"%s\",\"value\":\"http://pv/%s/%d\",\"public\":false,\"seq\":%d,\"ttl_s\":0,\"ts\":\"2026-01-01T00:00:00Z\"}\n", k, salt, i, k, k, i, i
	}
}' >"$T/events.tsv"
pbtest-amqp "$URL" publish-lines provbus.fed --confirm --persistent --content-type application/json \
	--timeout-ms 60000 <"$T/events.tsv" >"$T/publish.log" 2>&1
ok $? "$n events confirmed by the broker"

wait_for 30 bash -c "[ \"\$(provbus-consumer -c '$T/c1.json' status | jq -r .audit_failing)\" = true ]"
ok $? "status says audit_failing: true"
like "$(tr '\n' ' ' <"$T/c1.log")" "(disk is full|disk full|No space|no space|ENOSPC)" "the log says the disk is full"
diag "log: $(grep -iE 'full|space' "$T/c1.log" | head -n 2 | tr '\n' ' ' | cut -c1-300)"
sleep 3
a1=$(rl_sql "$db" "SELECT count(*) FROM events" 2>/dev/null)
r1=$(rl_queue_ready "$Q")
sleep 3
a2=$(rl_sql "$db" "SELECT count(*) FROM events" 2>/dev/null)
r2=$(rl_queue_ready "$Q")
stuck=$((n - (a2 - before)))
diag "audited while full: $((a2 - before)) of $n; ready in the queue: $r1 then $r2 (plus up to the prefetch unacked)"
is "$a2" "$a1" "nothing more is audited while the disk is full"
[ "${r2:-0}" -ge $((stuck - prefetch)) ] && [ "${r2:-0}" -gt 0 ]
ok $? "the broker keeps the unaudited events: $r2 ready (of $stuck not audited; <= $prefetch are held unacked)"
kill -0 "$pid"; ok $? "the daemon keeps running"
t0=$(rl_now)
timeout 1 provbus-consumer -c "$T/c1.json" status >/dev/null
ok $? "status answers within 1 s ($(( $(rl_now) - t0 )) ms)"

# space again
rm -f "$state/filler"
t_free=$(rl_now)
wait_for 120 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(DISTINCT msg_id) FROM events WHERE node = 'pv'\")\" -ge $n ]"
ok $? "space back: the daemon resumes and audits every event"
recovery_ms=$(( $(rl_now) - t_free ))
distinct=$(rl_sql "$db" "SELECT count(DISTINCT msg_id) FROM events WHERE node = 'pv'")
is "$((n - distinct))" 0 "0 lost"
wait_for 30 bash -c "[ \"\$(provbus-consumer -c '$T/c1.json' status | jq -r .audit_failing)\" = false ]"
ok $? "status: audit_failing false again"
is "$(rl_queue_ready "$Q")" 0 "the queue is drained"
twice=$(rl_sql "$db" "SELECT count(*) FROM (SELECT msg_id FROM events WHERE verdict IN ('applied','stale') GROUP BY msg_id HAVING count(*) > 1)")
is "$twice" 0 "no event applied twice"
dups=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='duplicate'")
rl_wait_idle c1 60
ok $? "idle again"
like "$(cat "$T/c1/app.env")" "E_K005='http://pv/K005/$n'" "the env file holds the last values"
is "$(rl_json_get "$(rl_status "$T/c1.json")" .last_run.status)" ok "the last run succeeded"

rl_consumer_stop c1
is "$?" 0 "SIGTERM: exit 0"
rl_result sent=$n audited=$distinct lost=$((n - distinct)) duplicated_detected=$dups audited_while_full=$((a2 - before)) \
	ready_while_full=$r2 recovery_s="$(rl_secs "$recovery_ms")" fs_mb=$mb
pb_done
