#!/usr/bin/env bash
# provbus-consumer under a broker memory alarm (provbus-consumer(1): a daemon never
# dies on a broker problem). RabbitMQ blocks the connections that publish
# and sends connection.blocked only to those; a consumer's connection is
# never blocked, and it must go on consuming: the queue drains during an
# alarm (that is what the alarm is waiting for). So here: events queued
# before the alarm are received, audited and provisioned while it is on,
# the daemon stays connected and does not report itself blocked, and after
# the alarm it goes on as before, same process, same connection.
# The alarm is broker-wide: this script runs alone (tests/run.sh SERIAL).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup calarm
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

pb_alarm_script

pbc_init alarm-01 us-east-1 '"quiet_ms": 0'
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_start
pbc_wait_ends 1; ok $? "the startup run"
conns0=$(pb_ctl list_connections -q pid 2>/dev/null | wc -l)

# --- events queued while the daemon is stopped, then the alarm
kill -STOP "$CPID"
pbc_gen 20 5 | pbc_pub; ok $? "20 events published before the alarm"
pb_ctl set_vm_memory_high_watermark 0 >/dev/null
wait_for 10 alarm_on; ok $? "memory alarm on"
kill -CONT "$CPID"
pbc_wait_rows 20; ok $? "during the alarm: the 20 queued events are received and audited"
pbc_wait_ends 2; ok $? "during the alarm: a provision run for them"
is "$(pbc_run_field start 2 3)" change "run 2: reason change"
is "$(pbc_status -c '[.connected, .blocked]')" "[true,false]" \
	"during the alarm: connected, not blocked (a consumer does not publish)"
sleep "$(pb_slow 2)"
kill -0 "$CPID" 2>/dev/null; ok $? "the daemon is still running"
is "$(pbc_status .counts.applied)" 20 "status counts the 20 events"

# --- after the alarm: the same daemon goes on
pb_ctl set_vm_memory_high_watermark 0.4 >/dev/null
wait_for 10 alarm_off; ok $? "memory alarm cleared"
pbc_ev provides us-east-1 late-1 s API_URL http://late:1 1 | pbc_pub; ok $? "an event after the alarm"
pbc_wait_ends 3; ok $? "after the alarm: a run for it"
like "$(tr '\0' '\n' <"$RUNS.3.env" | grep '^API_URL=')" "http://late:1" "run 3 has the new value"
is "$(grep -c 'connection lost\|reconnect' "$T/consumer.log")" 0 "no reconnect in the log"
is "$(pb_ctl list_connections -q pid 2>/dev/null | wc -l)" "$conns0" "the broker sees as many connections as before"
pbc_stop
is "$CRC" 0 "SIGTERM: exit 0"
pb_done
