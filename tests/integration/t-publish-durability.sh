#!/usr/bin/env bash
# provbus-publish's durability point and what it costs (provbus-publish(1): "nothing
# is ever lost between chef-solo and the broker": the outbox is on disk
# (fsync) before the program exits 75; when every event is confirmed, no
# fsync is owed):
# - a run whose events are all confirmed syncs nothing (the spool commit is
#   in the page cache, which a killed process does not lose);
# - a run that exits 75 syncs the outbox's WAL before it says so;
# - the outbox's WAL outlives the run (no checkpoint and no unlink at every
#   exit); a checkpoint after the send truncates it when it gets big;
# - a publisher killed (-9) while it waits for a broker that never answers
#   has its events spooled already (the connect runs beside the spool); the
#   next run delivers them, and the outbox file is intact.
# The sync checks need strace (skipped without it, or when ptrace is not
# allowed).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup pubdur

F=durf R=us-east-1 NODE=dur-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/node.json" "$NODE" "$F" "$R"
C=$T/node.json SD=$T/$NODE/services.d ST=$T/$NODE/state DB=$T/$NODE/state/outbox.db
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null; ok $? "capture queue bound to provbus.$F with #"
keys=""
for i in 0 1 2 3 4 5 6 7 8 9; do keys="$keys\"DUR_K$i\": \"http://{HOST}:{PORT}/$i\","; done
echo "{\"id\": \"dur\", \"local_port\": 7000, \"provides\": {${keys%,}}}" >"$SD/dur.json"
sql() { sqlite3 "$DB" "$1"; }

provbus-publish -c "$C" provides 2>"$T/err"; is $? 0 "first run (creates the outbox): 0"
is "$(A get cap --count 10 --timeout-ms 3000 | wc -l)" 10 "10 events delivered"

# --- runs under strace: which files are synced, and when
if strace -f -o /dev/null true 2>/dev/null; then
	# (LeakSanitizer cannot run under ptrace: off for this run of a
	# sanitizer build, a no-op for a plain one)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -y -s 200 -e trace=fsync,fdatasync,sendto,unlink,unlinkat -o "$T/trace" \
		provbus-publish -c "$C" provides 2>"$T/err"
	is $? 0 "second run, under strace: 0"
	first_pub=$(grep -n 'sendto(.*\.provides\.DUR_K' "$T/trace" | head -n1 | cut -d: -f1)
	ok "$([ -n "$first_pub" ]; echo $?)" "the run published (line ${first_pub:-none} of the trace)"
	is "$(grep -c 'sync(' "$T/trace")" 0 "all confirmed: nothing synced (no fsync owed)"
	is "$(grep -c 'unlink.*outbox' "$T/trace")" 0 "no file of the outbox is unlinked at exit"
	# the broker away: the WAL is synced before the run says "spooled" (75)
	sed "s#\"urls\": \[\"[^\"]*\"\]#\"urls\": [\"amqp://guest:guest@127.0.0.1:1/x\"]#" "$C" >"$T/away.json"
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -y -s 200 -e trace=fsync,fdatasync,write -o "$T/trace75" \
		provbus-publish -c "$T/away.json" --timeout 2 provides 2>"$T/err"
	is $? 75 "broker away, under strace: 75"
	wal_sync=$(grep -n 'sync([0-9]*<[^>]*outbox\.db-wal>' "$T/trace75" | head -n1 | cut -d: -f1)
	said=$(grep -n 'write(2<.*events spooled to' "$T/trace75" | head -n1 | cut -d: -f1)
	ok "$([ -n "$wal_sync" ] && [ -n "$said" ] && [ "$wal_sync" -lt "$said" ]; echo $?)" \
		"exit 75: the WAL is synced (line ${wal_sync:-none}) before 'spooled' is said (line ${said:-none})"
	provbus-publish -c "$C" flush 2>"$T/err"; is $? 0 "flush of that run: 0"
	A purge cap >/dev/null
else
	diag "strace cannot trace here: sync checks skipped"
	pb_skip 7 "strace unavailable (deploy/install-deps.sh installs it)"
fi
ok "$([ -s "$DB-wal" ]; echo $?)" "the WAL is still there after the run"
like "$(stat -c %a "$DB-wal" "$DB-shm" | sort -u | tr '\n' ' ')" '^600 $' "outbox.db-wal and -shm are mode 0600"

# --- the WAL stays small: once it is big enough, a run truncates it into
# the database after its send (each run rebuilds the WAL's index from it)
runs=0 seen=0 max=0
while [ $runs -lt 60 ] && [ $seen -eq 0 ]; do
	provbus-publish -c "$C" -v -v provides 2>"$T/run.err" || { diag "run $runs failed: $(tail -n2 "$T/run.err")"; break; }
	runs=$((runs + 1))
	size=$(stat -c %s "$DB-wal" 2>/dev/null || echo missing)
	[ "$size" = missing ] || [ "$size" -le "$max" ] || max=$size
	grep -q 'checkpoint:' "$T/run.err" && seen=1
done
is "$seen" 1 "a checkpoint ran after some run ($runs runs)"
is "$size" 0 "it truncated the WAL"
ok "$([ "$max" -gt 0 ] && [ "$max" -lt $((512 * 1024)) ]; echo $?)" "the WAL stayed under 512 KiB (at most $max bytes)"
is "$(sql 'PRAGMA integrity_check')" ok "outbox.db passes sqlite's integrity check"
n_before=2; [ -s "$T/trace75" ] && n_before=3
is "$(sql 'SELECT count(*) FROM outbox') $(sql 'SELECT last FROM seq')" "0 $((runs + n_before))" \
	"nothing left spooled; seq counts every run ($((runs + n_before)))"
A purge cap >/dev/null; ok $? "capture queue purged"

# --- kill -9 while the broker never answers: the events were spooled
# A loopback port that completes the TCP handshake (listen backlog) but
# never answers the AMQP header.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$T/hole.port" &
HOLE=$!; _pb_pids+=("$HOLE")
wait_for 5 test -s "$T/hole.port"
HP=$(cat "$T/hole.port")
sed "s#\"urls\": \[\"[^\"]*\"\]#\"urls\": [\"amqp://guest:guest@127.0.0.1:$HP/x\"]#" "$C" >"$T/hole.json"
n0=$(sql 'SELECT last FROM seq')
provbus-publish -c "$T/hole.json" --timeout 60 provides 2>"$T/hole.err" &
PUB=$!; _pb_pids+=("$PUB")
wait_for 10 sh -c "[ \"\$(sqlite3 '$DB' 'SELECT count(*) FROM outbox')\" = 10 ]"
ok $? "while it waits for the broker, its 10 events are already spooled"
sleep 0.3
kill -0 "$PUB" 2>/dev/null; ok $? "the publisher is still waiting for the broker"
kill -KILL "$PUB"; wait "$PUB" 2>/dev/null
is "$(sql 'PRAGMA integrity_check')" ok "after kill -9: outbox.db passes the integrity check"
is "$(sql 'SELECT count(*) FROM outbox') $(sql 'SELECT DISTINCT seq FROM outbox')" "10 $((n0 + 1))" \
	"after kill -9: the 10 events of seq $((n0 + 1)) are spooled"
sql 'SELECT id FROM outbox ORDER BY n' >"$T/spooled"
# the connect starts only once there are events to send: a bad manifest
# or an unknown service never waits for the silent broker (--timeout 60)
echo '{"id": "dur", "provides": {' >"$SD/broken.json"
t0=$(date +%s%N)
provbus-publish -c "$T/hole.json" --timeout 60 provides 2>"$T/bad.err"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
rm -f "$SD/broken.json"
is "$rc" 65 "a bad manifest, silent broker: 65"
ok "$([ "$ms" -lt $((5000 * PB_SLOW)) ]; echo $?)" "a bad manifest, silent broker: exits at once ($ms ms), not after --timeout"
t0=$(date +%s%N)
provbus-publish -c "$T/hole.json" --timeout 60 retire nosuch 2>"$T/bad.err"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
is "$rc" 65 "retire of an unknown service, silent broker: 65"
ok "$([ "$ms" -lt $((5000 * PB_SLOW)) ]; echo $?)" "retire of an unknown service, silent broker: exits at once ($ms ms)"
is "$(sql 'SELECT count(*) FROM outbox')" 10 "the failed runs spooled nothing more"
provbus-publish -c "$C" flush 2>"$T/err"; is $? 0 "flush against the real broker: 0"
A get cap --count 10 --timeout-ms 3000 >"$T/flushed.jsonl"
is "$(jq -r '.body | fromjson | .id' "$T/flushed.jsonl")" "$(cat "$T/spooled")" "the spooled events went out, in order"
is "$(sql 'SELECT count(*) FROM outbox')" 0 "the outbox is empty"
pb_done
