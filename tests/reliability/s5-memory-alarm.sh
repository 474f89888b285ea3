#!/usr/bin/env bash
# Scenario 5: a memory alarm on the broker (set_vm_memory_high_watermark 0,
# then back to 0.4). The broker blocks publishing connections and says so
# with connection.blocked. The publisher does not hang: it exits 75 after
# --timeout with its events spooled; the consumer keeps answering status
# (and shows blocked when the broker told it: RabbitMQ only blocks
# connections that publish, so a consumer is not blocked and keeps
# receiving — a consumer started during the alarm drains its queue); when
# the alarm clears, the
# next publish delivers everything and the consumer applies it: 0 lost.
#
# The alarm is broker-wide: it runs on the test broker and is always
# cleared at exit (rl_cleanup), so the scenarios after it are not hurt.
#   RL_RUNS (default 5): publisher runs during the alarm
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_setup s5-memory-alarm
runs=${RL_RUNS:-5}
keys="K001 K002 K003"

rl_topology fed r1
rl_apply
rl_consumer c1 r1 "$keys"
rl_consumer_start c1
pid=$BG_PID
rl_wait_idle c1 60
ok $? "consumer up and idle"
db=$T/c1/state/audit.db
rl_publisher p1 r1 "$keys"
provbus-publish -c "$T/p1.json" provides >"$T/p0.log" 2>&1
ok $? "a first announcement goes through"
wait_for 20 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM events WHERE node='p1'\")\" -ge 3 ]"
ok $? "... and is audited"

# events that wait in the consumer's queue while it is stopped
rl_consumer_stop c1
for i in $(seq 1 20); do rl_send K001 "http://pq/$i" r1 pq; done
is "$(rl_queue_ready provbus.fed.node.c1)" 20 "20 events wait in the stopped consumer's queue"

# the alarm
RL_ALARM=1
pb_ctl set_vm_memory_high_watermark 0 >/dev/null
ok $? "memory alarm raised (vm_memory_high_watermark 0)"
wait_for 20 bash -c "'$PB_BROKER' ctl '$PB_BROKER_DIR' eval 'rabbit_alarm:get_alarms().' 2>/dev/null | grep -q memory"
ok $? "the broker reports the memory alarm"

# publishers: blocked, exit 75 after --timeout, spooled
bad=0 maxms=0
for g in $(seq 1 "$runs"); do
	rl_set_gen p1 "$g"
	t0=$(rl_now)
	timeout 60 provbus-publish -c "$T/p1.json" --timeout 3 provides >"$T/alarm-$g.log" 2>&1
	rc=$?
	ms=$(( $(rl_now) - t0 )); [ $ms -gt $maxms ] && maxms=$ms
	[ $rc -eq 75 ] || { bad=$((bad + 1)); diag "run $g: exit $rc"; }
done
is "$bad" 0 "$runs publisher runs during the alarm each exit 75"
[ "$maxms" -lt 15000 ]; ok $? "none hangs: the longest took $maxms ms (--timeout 3)"
like "$(tr '\n' ' ' <"$T/alarm-1.log")" "(blocked|block|timeout|timed out|confirm)" "the publisher says why (blocked / no confirm)"
diag "publisher: $(tr '\n' ' ' <"$T/alarm-1.log" | cut -c1-300)"
spooled=$(provbus-publish -c "$T/p1.json" --dry-run flush 2>/dev/null | grep -c '"id"')
is "$spooled" $((runs * 3)) "all $((runs * 3)) events of those runs are spooled"

# the consumer, started during the alarm: it connects and drains its queue
rl_consumer_start c1
pid=$BG_PID
rl_wait_connected c1 30
ok $? "a consumer started during the alarm connects"
wait_for 30 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM events WHERE node='pq'\")\" -ge 20 ]"
ok $? "... and receives and audits the 20 queued events (consuming and acking are not blocked)"
sleep 2
t0=$(rl_now)
st=$(timeout 1 provbus-consumer -c "$T/c1.json" status)
ok $? "the consumer's status answers within 1 s during the alarm ($(( $(rl_now) - t0 )) ms)"
blocked=$(rl_json_get "$st" .blocked)
diag "consumer during the alarm: state=$(rl_json_get "$st" .state) connected=$(rl_json_get "$st" .connected) blocked=$blocked"
kill -0 "$pid"; ok $? "the consumer keeps running"
grep -qi 'blocked' "$T/c1.log" && diag "consumer log: $(grep -i blocked "$T/c1.log" | head -n 2 | tr '\n' ' ')"

# alarm cleared
pb_ctl set_vm_memory_high_watermark 0.4 >/dev/null
ok $? "memory alarm cleared (0.4)"
t_clear=$(rl_now)
RL_ALARM=""
wait_for 30 bash -c "! '$PB_BROKER' ctl '$PB_BROKER_DIR' eval 'rabbit_alarm:get_alarms().' 2>/dev/null | grep -q memory"
rl_set_gen p1 $((runs + 1))
for _ in 1 2 3 4 5; do
	provbus-publish -c "$T/p1.json" --timeout 5 provides >"$T/after.log" 2>&1 && break
	sleep 1
done
ok $? "after the alarm the next run exits 0"
is "$(provbus-publish -c "$T/p1.json" --dry-run flush 2>/dev/null | grep -c '"id"')" 0 "the outbox is empty"
want=$(( (runs + 2) * 3 ))
is "$(rl_sql "$db" "SELECT count(DISTINCT msg_id) FROM events WHERE node='pq'")" 20 "the 20 queued events were audited once each"
wait_for 30 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(DISTINCT msg_id) FROM events WHERE node='p1'\")\" -ge $want ]"
ok $? "the consumer audited all $want events (the spooled ones too)"
recovery_ms=$(( $(rl_now) - t_clear ))
got=$(rl_sql "$db" "SELECT count(DISTINCT msg_id) FROM events WHERE node='p1'")
order=$(rl_sql "$db" "SELECT seq FROM events WHERE node='p1' AND source='live' ORDER BY id" | awk 'NR > 1 && $1 < p {b++} {p = $1} END {print b + 0}')
is "$order" 0 "received in the order announced (seq never goes back)"
rl_wait_idle c1 30
st=$(rl_status "$T/c1.json")
is "$(rl_json_get "$st" .blocked)" false "the consumer is not blocked any more"
is "$(rl_json_get "$st" .connected)" true "... and connected"
like "$(cat "$T/c1/app.env")" "E_K003='http://p1/K003/$((runs + 1))'" "its env file has the last values"
dups=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='duplicate'")

rl_consumer_stop c1
is "$?" 0 "SIGTERM: exit 0"
rl_result sent=$((want + 20)) audited=$((got + 20)) lost=$((want - got)) duplicated_detected=$dups spooled_during_alarm=$spooled \
	longest_blocked_publish_ms=$maxms consumer_blocked_flag=$blocked recovery_s="$(rl_secs "$recovery_ms")"
pb_done
