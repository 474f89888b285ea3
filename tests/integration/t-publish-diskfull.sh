#!/usr/bin/env bash
# provbus-publish when the outbox cannot be written for want of room
# (provbus-publish(1)): the events are still sent; exit 0 with a warning when all are
# confirmed, else exit 74 naming the file (nothing could be kept). The
# state_dir is a small tmpfs, filled up: skipped where mounting is not
# allowed.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup pubfull

F=pubfull R=us-east-1 NODE=full-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/node.json" "$NODE" "$F" "$R"
C=$T/node.json SD=$T/$NODE/services.d ST=$T/$NODE/state DB=$T/$NODE/state/outbox.db
sed 's#"urls": \["[^"]*"\]#"urls": ["amqp://guest:guest@127.0.0.1:1/x"]#' "$C" >"$T/down.json"
if ! mount -t tmpfs -o size=512k,mode=0700 pubfull-tmpfs "$ST" 2>/dev/null; then
	echo "ok 2 # SKIP cannot mount a tmpfs here (needs root and mount rights)"
	exit 0
fi
trap 'umount "$ST" 2>/dev/null; _pb_cleanup' EXIT
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null; ok $? "capture queue bound to provbus.$F with #"
keys=""
for i in $(seq 0 19); do keys="$keys\"FULL_K$i\": \"http://{HOST}:{PORT}/$(head -c 300 /dev/zero | tr '\0' x)$i\","; done
echo "{\"id\": \"full\", \"local_port\": 7000, \"provides\": {${keys%,}}}" >"$SD/full.json"

provbus-publish -c "$C" provides 2>"$T/err"; is $? 0 "a first run creates the outbox: 0"
is "$(A get cap --count 20 --timeout-ms 3000 | wc -l)" 20 "20 events delivered"
# fill the file system
dd if=/dev/zero of="$ST/filler" bs=4k >/dev/null 2>&1
ok "$([ "$(df --output=avail "$ST" | tail -n 1)" -lt 8 ]; echo $?)" "the state_dir is full"

ok "$([ -s "$ST/outbox.floor" ]; echo $?)" "the seq floor's file exists before the disk fills"
provbus-publish -c "$C" provides 2>"$T/err"; rc=$?
is $rc 0 "disk full, broker up: sent anyway, 0"
like "$(cat "$T/err")" "warning: .*$DB.*(full|disk)" "with a warning naming the outbox and why"
A get cap --count 20 --timeout-ms 3000 >"$T/full.jsonl"
is "$(jq -r '.body | fromjson | .key' "$T/full.jsonl" | sort -u | wc -l)" 20 \
	"the 20 events of the run were delivered"
is "$(jq -r '.body | fromjson | .seq' "$T/full.jsonl" | sort -u)" 2 "with seq 2, after the first run's 1"

provbus-publish -c "$T/down.json" --timeout 2 provides 2>"$T/err"; rc=$?
is $rc 74 "disk full, broker away: 74"
like "$(cat "$T/err")" "$DB: nothing could be kept" "the message names the outbox file"
like "$(cat "$T/err")" "20 events not sent" "and says how many events were not sent"

rm "$ST/filler"
provbus-publish -c "$T/down.json" --timeout 2 provides 2>"$T/err"; is $? 75 "room again, broker away: 75 (spooled)"
provbus-publish -c "$C" flush 2>"$T/err"; is $? 0 "flush: 0"
# the runs on the full disk could not store their seqs (2, sent, and 3,
# taken by the run that sent nothing) in outbox.db: a later run taking one
# again would be judged stale by every consumer
is "$(A get cap --count 20 --timeout-ms 3000 | jq -r '.body | fromjson | .seq' | sort -u)" 4 \
	"the next run's events have seq 4, above those the full disk could not store"
is "$(sqlite3 "$DB" 'PRAGMA integrity_check')" ok "outbox.db passes the integrity check"

# Full again, with an event spooled and outbox.db's -wal and -shm gone (an
# operator's sqlite3 closed it): the run reads the file as immutable, sends
# the spooled event first, and takes a seq above it
provbus-publish -c "$T/down.json" --timeout 2 provides 2>"$T/err"; is $? 75 "broker away: seq 5 spooled"
sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
ok "$([ ! -e "$DB-shm" ] && [ ! -e "$DB-wal" ]; echo $?)" "outbox.db alone, no -wal or -shm"
dd if=/dev/zero of="$ST/filler" bs=4k >/dev/null 2>&1
provbus-publish -c "$C" provides 2>"$T/err"; is $? 0 "disk full again, broker up: 0"
A get cap --count 40 --timeout-ms 3000 >"$T/full2.jsonl"
is "$(jq -r '.body | fromjson | .seq' "$T/full2.jsonl" | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" "5x20 6x20 " \
	"the spooled seq 5 first, then the run's own seq 6"
like "$(cat "$T/err")" "20 spooled events read into memory, to be sent first" "the log says the spooled events go first"
# full, and the broker away, with events spooled before (seq 5, sent from
# memory above but not deleted from the file, and seq 7): those stay in
# the file; the run's own (seq 8) cannot be kept
rm "$ST/filler"
provbus-publish -c "$T/down.json" --timeout 2 provides 2>"$T/err"; is $? 75 "room, broker away: seq 7 spooled"
dd if=/dev/zero of="$ST/filler2" bs=4k >/dev/null 2>&1
provbus-publish -c "$T/down.json" --timeout 2 provides 2>"$T/err"; rc=$?
is $rc 74 "full, broker away, 20 spooled before: 74"
like "$(cat "$T/err")" "nothing could be kept: .*; 20 events not sent \\(and 40 spooled before stay in the file\\)" \
	"the message counts the run's events and those still spooled apart"
is "$(sqlite3 "$DB" 'SELECT count(*), min(seq), max(seq) FROM outbox')" "40|5|7" "the file still holds them"
rm "$ST/filler2"
provbus-publish -c "$C" flush 2>"$T/err"; is $? 0 "room, broker back: flush 0"
is "$(A get cap --count 40 --timeout-ms 3000 | jq -r '.body | fromjson | .seq' | sort -u | tr '\n' ' ')" "5 7 " \
	"the flush sent seq 5 again (consumers drop the copies by id) and seq 7"
dd if=/dev/zero of="$ST/filler" bs=4k >/dev/null 2>&1
# the floor cannot be kept (here a folder stands in its place): the events
# are still sent (0), with a warning that a later run may take the seq again
rm "$ST/outbox.floor" && mkdir "$ST/outbox.floor"
provbus-publish -c "$C" provides 2>"$T/err"; is $? 0 "disk full and no floor to keep: still sent, 0"
like "$(cat "$T/err")" "warning: $ST/outbox.floor: cannot keep seq 8 \\(Is a directory\\).*judge its events stale" \
	"with a warning naming the file, the seq and what a later run risks"
is "$(A get cap --count 40 --timeout-ms 3000 | wc -l)" 20 "the run's events, sent"
rmdir "$ST/outbox.floor"
rm "$ST/filler"
pb_done
