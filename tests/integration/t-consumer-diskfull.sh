#!/usr/bin/env bash
# provbus-consumer when the audit log cannot be written (disk full): no
# ack (the broker keeps the events), the error logged (not once per
# event), the commit retried; once there is room again every event is
# audited exactly once and acked. The state dir is a 4 MB tmpfs: skipped
# where mounting is not allowed.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup cdiskfull
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

pbc_init web-01 us-east-1 '"quiet_ms": 300, "max_wait_ms": 60000, "audit_retention_days": 30'
pbc_manifest app '{"API_URL": "{API_URL}"}'
if ! mount -t tmpfs -o size=4m,mode=0700 pbc-tmpfs "$ST" 2>/dev/null; then
	pb_skip_all "cannot mount a tmpfs here (needs root and mount rights)"
fi
unmount() { [ -n "${CPID:-}" ] && kill -KILL "$CPID" 2>/dev/null; wait 2>/dev/null; umount "$ST" 2>/dev/null; }
trap 'unmount; _pb_cleanup' EXIT
Q=provbus.$F.node.web-01
A() { pbtest-amqp "$URL" "$@"; }
pbc_start
pbc_wait_ends 1; ok $? "startup run"

# fill the file system
dd if=/dev/zero of="$ST/filler" bs=16k >/dev/null 2>&1
ok "$([ "$(df --output=avail "$ST" | tail -n 1)" -lt 64 ]; echo $?)" "the state dir is full"
# more than the prefetch (2000): the rest must stay ready in the queue
pbc_gen 4000 100 | pbc_pub
pbc_wait_eq 10 true pbc_status .audit_failing; ok $? "status: the audit log is failing"
sleep 1.5
rows=$(pbc_sql "SELECT COUNT(*) FROM events")
ok "$([ "$rows" -lt 4000 ]; echo $?)" "not all rows could be written ($rows)"
left=$(A count "$Q")
# the rows that were committed could be acked: a WAL checkpointed when the
# daemon was idle (provbus-consumer(1)) is written again from its start,
# into space the file already had, so a few commits may still succeed on
# the full disk; what is acked is at most what is committed, and at most
# the prefetch (2000) is delivered and unacked: ready >= 4000 - 2000 - rows
rows=$(pbc_sql "SELECT COUNT(*) FROM events")	# again: after the count
ok "$([ "$left" -ge $((2000 - rows)) ]; echo $?)" "nothing acked but committed rows meanwhile: $left events still ready in the queue ($rows rows committed, at most the prefetch delivered, unacked)"
n=$(grep -c "disk full" "$T/consumer.log")
ok "$([ "$n" -ge 1 ] && [ "$n" -le 2 ]; echo $?)" "the error is logged, not once per event ($n lines)"
kill -0 "$CPID"; ok $? "the daemon runs on"
# waiting for room, it sleeps between retries; it once spun when the audit
# retention step came due meanwhile (held back, it made the loop's timeout
# 0): retention turned off and on again by reloads makes it due now
_reloads() { grep -c 'reloaded (' "$T/consumer.log"; }
for d in 0 30; do
	r0=$(_reloads)
	sed -i "s/\"audit_retention_days\": [0-9]*/\"audit_retention_days\": $d/" "$C"
	pbc_wait_ge 10 $((r0 + 1)) _reloads; ok $? "retention $d days (reloaded)"
done
# (the retry of its commit each second: 30 ms here, 510 under the
# sanitizers; spinning: 1840 ms without them)
cpu() { awk '{print $14 + $15}' "/proc/$CPID/stat"; }
c0=$(cpu); sleep 2; c1=$(cpu)
ok "$([ $((c1 - c0)) -lt $((50 * PB_SLOW)) ]; echo $?)" \
	"it does not spin while the disk is full: $(( (c1 - c0) * 10 )) ms of CPU in 2 s (limit $((500 * PB_SLOW)))"

rm "$ST/filler"
pbc_wait_rows 4000; ok $? "room again: every event audited"
is "$(pbc_sql "SELECT COUNT(*) || ':' || COUNT(DISTINCT msg_id) FROM events WHERE node LIKE 'node-%'")" "4000:4000" "exactly once each"
pbc_wait_eq 10 0 A count "$Q"; ok $? "and acked: the queue is empty"
pbc_wait_eq 5 false pbc_status .audit_failing; ok $? "status: the audit log is fine again"
like "$(cat "$T/consumer.log")" "audit log writable again" "the recovery is logged"
pbc_stop; is "$CRC" 0 "exit 0"
CPID=
pb_done
