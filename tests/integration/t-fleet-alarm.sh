#!/usr/bin/env bash
# The consumer's reports under a broker memory alarm (docs/protocol.md): the
# daemons keep consuming and provisioning (their reports wait in the
# audit log's outbox_reports), and the reports arrive after the alarm,
# so provbus-fleet converged then exits 0.
# The alarm is broker-wide: this script runs alone (tests/run.sh SERIAL).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup falarm
F=pbfa
. "$PB_ROOT/tests/data/fleet/lib-fleet.sh"

pb_alarm_script

pb_topology "$F" us-east-1
pb_apply >/dev/null; ok $? "topology applied"
pbf_users "$T/defs.json" a1:us-east-1 a2:us-east-1 prov:us-east-1; ok $? "users imported"
# presence every 60 s (its lease, 180 s, outlasts the alarm); no
# heartbeats: a daemon is SIGSTOPped while rabbitmqctl (slow on a busy
# machine) sets the alarm
PBF_PRESENCE_S=60 PBF_HEARTBEAT_S=0
declare -A PID
for n in a1 a2; do
	pbf_node "$n" us-east-1
	pb_bg "$n" provbus-consumer -c "$T/$n.json" -v run
	PID[$n]=$BG_PID
done
alive2() { [ "$(pbf_fleet nodes --json 2>/dev/null | jq -s '[.[] | select(.state == "alive" and .last_run.status == "ok")] | length')" = 2 ]; }
pbf_wait 40 alive2; ok $? "two consumers alive, their startup runs reported"

# an event queued while the daemons are stopped, then the alarm
for n in a1 a2; do kill -STOP "${PID[$n]}"; done
ev='{"v":1,"id":"6a1b2c3d-0000-4000-8000-00000000000a","kind":"provides","federation":"'$F'","region":"us-east-1","node":"prov","service":"api","key":"API_URL","value":"http://alarm:1","public":false,"seq":1,"ttl_s":0,"ts":"'$(date -u +%Y-%m-%dT%H:%M:%S.000Z)'"}'
pbtest-amqp "$(pbf_url prov)" publish "provbus.$F" us-east-1.provides.API_URL --body "$ev" --user-id prov --confirm --persistent >/dev/null
ok $? "API_URL published before the alarm"
pb_ctl set_vm_memory_high_watermark 0 >/dev/null
pbf_wait 90 alarm_on; ok $? "memory alarm on"
for n in a1 a2; do kill -CONT "${PID[$n]}"; done
ran2() { grep -q 'http://alarm:1' "$T/a1/app.env" && grep -q 'http://alarm:1' "$T/a2/app.env" &&
	[ "$(sqlite3 "$T/a1/state/audit.db" "SELECT COUNT(*) FROM runs WHERE status = 'ok'")" -ge 2 ] &&
	[ "$(sqlite3 "$T/a2/state/audit.db" "SELECT COUNT(*) FROM runs WHERE status = 'ok'")" -ge 2 ]; }
wait_for 20 ran2; ok $? "during the alarm: both consume the event and provision with it"
held() { [ "$(sqlite3 "$T/$1/state/audit.db" "SELECT COUNT(*) FROM outbox_reports WHERE kind = 'run'")" -ge 1 ]; }
held a1 && held a2; ok $? "during the alarm: their run reports wait in outbox_reports"
for n in a1 a2; do kill -0 "${PID[$n]}"; done; ok $? "both daemons still run"
pbf_fleet converged API_URL >"$T/during.out" 2>&1; rc=$?
is "$rc" 1 "during the alarm: not converged (the run reports have not arrived)"
like "$(cat "$T/during.out")" "a1: still pending" "a1 still pending"

pb_ctl set_vm_memory_high_watermark 0.4 >/dev/null
pbf_wait 90 alarm_off; ok $? "memory alarm cleared"
pbf_fleet converged API_URL --wait 30 >"$T/after.out" 2>&1; rc=$?
is "$rc" 0 "after the alarm: the run reports arrive, converged exits 0"
empty() { [ "$(sqlite3 "$T/$1/state/audit.db" "SELECT COUNT(*) FROM outbox_reports WHERE kind = 'run'")" = 0 ]; }
wait_for 10 empty a1; ok $? "a1's outbox of run reports is empty again"
is "$(grep -c 'broker connection lost' "$T/a1.log")" 0 "a1's consuming connection was never lost"
pb_done
