#!/usr/bin/env bash
# provbus-publish's outbox: an unreachable broker spools (75, the count and
# the outbox named), the next run sends the old events first, in order,
# `flush` alone works, nothing is lost or sent twice; --dry-run leaves the
# outbox alone; a held send lock makes a run wait then spool (75); two
# publishers at once deliver every event exactly once; an unwritable
# state_dir with the broker away is 69, with the broker up still works.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup pubspool

F=spf R=us-east-1 NODE=www-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/up.json" "$NODE" "$F" "$R"
C=$T/up.json SD=$T/$NODE/services.d ST=$T/$NODE/state DB=$T/$NODE/state/outbox.db
# the same node with its broker on a closed loopback port
sed 's#"urls": \["[^"]*"\]#"urls": ["amqp://guest:guest@127.0.0.1:1/x"]#' "$C" >"$T/down.json"
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null
cat >"$SD/www.json" <<'EOT'
{"id": "www", "environment": {"PORT": 8080},
 "provides": {"WWW_URL": "http://{HOST}:{PORT}", "WWW_HOST": "{HOST}", "WWW_PORT": "{PORT}"}}
EOT
sql() { sqlite3 "$DB" "$1"; }
grab() { A get cap --count "$1" --timeout-ms 3000 >"$2"; A count cap; }

# --- broker unreachable: 75, spooled, in order
for i in 1 2 3; do
	provbus-publish -c "$T/down.json" provides 2>"$T/err"; rc=$?
	is $rc 75 "run $i with the broker away: 75"
done
like "$(cat "$T/err")" "9 events spooled to $DB; they will be sent by the next publish or \`provbus-publish flush\`" \
	"the message counts the spooled events and names the outbox"
is "$(sql 'SELECT count(*) FROM outbox')" 9 "the outbox holds 9 events"
is "$(sql 'SELECT group_concat(seq, "") FROM (SELECT seq FROM outbox ORDER BY n)')" 111222333 "spooled with seqs 1, 2, 3"
sql 'SELECT id FROM outbox ORDER BY n' >"$T/spooled1"
out=$(provbus-publish -c "$T/down.json" --dry-run provides); is $? 0 "--dry-run with the broker away: 0"
is "$(echo "$out" | jq -r .seq | sort -u)" 4 "--dry-run shows seq 4"
is "$(sql 'SELECT count(*) FROM outbox') $(sql 'SELECT last FROM seq')" "9 3" "--dry-run changed neither the outbox nor the seq"
out=$(provbus-publish -c "$T/down.json" --dry-run flush)
is "$(echo "$out" | jq -r .id)" "$(cat "$T/spooled1")" "flush --dry-run prints the spooled events, oldest first"

# --- back: the next run sends the old events first, then its own
provbus-publish -c "$C" provides 2>"$T/err"; is $? 0 "provides with the broker back: 0"
is "$(grab 12 "$T/run.jsonl")" 0 "12 messages, no more"
is "$(jq -r '.body | fromjson | .seq' "$T/run.jsonl" | tr -d '\n')" 111222333444 "in order: the spooled runs first, then the new one"
is "$(jq -r '.body | fromjson | .id' "$T/run.jsonl" | head -n 9)" "$(cat "$T/spooled1")" "the spooled events went in their spooled order"
is "$(sql 'SELECT count(*) FROM outbox')" 0 "the outbox is empty"

# --- flush alone
provbus-publish -c "$T/down.json" provides 2>/dev/null; is $? 75 "broker away again: 75"
provbus-publish -c "$T/down.json" retire www 2>/dev/null; is $? 75 "retire with the broker away: 75"
sql 'SELECT id FROM outbox ORDER BY n' >"$T/spooled2"
provbus-publish -c "$C" flush 2>"$T/err"; is $? 0 "flush: 0"
is "$(grab 6 "$T/flush.jsonl")" 0 "flush sent 6, no more"
is "$(jq -r '.body | fromjson | .id' "$T/flush.jsonl")" "$(cat "$T/spooled2")" "flush: the spooled events, in order"
is "$(jq -r '.body | fromjson | "\(.seq)\(.kind)"' "$T/flush.jsonl" | sort -u | tr '\n' ' ')" "5provides 6retire " "seq 5 provides, seq 6 retire"
provbus-publish -c "$C" flush 2>"$T/err"; is $? 0 "flush of an empty outbox: 0"
is "$(A count cap)" 0 "an empty flush sends nothing"

# --- a held send lock: the run waits --timeout, then spools (75)
( exec 9>"$ST/outbox.lock"; flock -x 9; exec sleep 30 ) &
LOCK_PID=$!	# the sleep itself holds the lock: killing it frees the lock
_pb_pids+=("$LOCK_PID")
wait_for 5 sh -c "! flock -n -x '$ST/outbox.lock' true"
ok $? "another process holds the send lock"
start=$(date +%s%N)
provbus-publish -c "$C" --timeout 1 provides 2>"$T/err"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is $rc 75 "send lock held elsewhere: 75"
like "$(cat "$T/err")" "outbox\.lock" "the message names the lock"
ok "$([ "$ms" -ge 900 ] && [ "$ms" -lt "$(pb_slow 5000)" ]; echo $?)" "it waited about --timeout (${ms} ms)"
is "$(sql 'SELECT count(*) FROM outbox')" 3 "its events are spooled"
kill "$LOCK_PID"; wait "$LOCK_PID" 2>/dev/null
provbus-publish -c "$C" flush 2>/dev/null; is $? 0 "flush once the lock is free: 0"
is "$(grab 3 /dev/null)" 0 "3 sent"

# --- two publishers at once, with events spooled from an outage
for i in 1 2 3 4; do provbus-publish -c "$T/down.json" provides 2>/dev/null; done
is "$(sql 'SELECT count(*) FROM outbox')" 12 "12 events spooled"
sql 'SELECT id FROM outbox' >"$T/ids"
provbus-publish -c "$C" provides 2>"$T/p1.err" &
P1=$!
provbus-publish -c "$C" provides 2>"$T/p2.err" &
P2=$!
wait $P1; r1=$?
wait $P2; r2=$?
is "$r1 $r2" "0 0" "both publishers exit 0"
is "$(grab 18 "$T/two.jsonl")" 0 "18 messages (12 spooled + 2 runs of 3), no more"
is "$(jq -r .properties.message_id "$T/two.jsonl" | sort | uniq -d | wc -l)" 0 "no event sent twice"
is "$(jq -r .properties.message_id "$T/two.jsonl" | sort -u | wc -l)" 18 "18 distinct events"
is "$(sort "$T/ids" | comm -23 - <(jq -r .properties.message_id "$T/two.jsonl" | sort) | wc -l)" 0 "every spooled event was delivered"
is "$(jq -r '.body | fromjson | .seq' "$T/two.jsonl" | sort -n | uniq -c | awk '{print $1}' | sort -u)" 3 \
	"each seq covers exactly one announcement of 3 keys"
is "$(sql 'SELECT count(*) FROM outbox')" 0 "the outbox is empty"

# --- state_dir not writable (a regular file in its path; we may be root)
: >"$T/blocker"
sed "s#\"state_dir\": \"[^\"]*\"#\"state_dir\": \"$T/blocker/state\"#" "$T/down.json" >"$T/ro-down.json"
sed "s#\"state_dir\": \"[^\"]*\"#\"state_dir\": \"$T/blocker/state\"#" "$C" >"$T/ro-up.json"
provbus-publish -c "$T/ro-down.json" provides 2>"$T/err"; rc=$?
is $rc 69 "state_dir not writable and broker away: 69"
like "$(cat "$T/err")" "nothing spooled" "the message says nothing was spooled"
like "$(cat "$T/err")" "$T/blocker/state" "the message names the state_dir"
provbus-publish -c "$T/ro-up.json" provides 2>"$T/err"; rc=$?
is $rc 0 "state_dir not writable, broker up: sent anyway, 0"
like "$(cat "$T/err")" "warning: .*$T/blocker/state" "with a warning naming the state_dir"
is "$(grab 3 /dev/null)" 0 "3 sent"

pb_done
