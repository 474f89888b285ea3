#!/usr/bin/env bash
# provbus-consumer and the history stream (provbus-consumer(1)): a node started after
# the providers announced learns them from the history before its first
# run (only what it accepts gets a row); a restart that finds its queue
# reads no history; a lost queue is re-declared and caught up from the
# offset reached; a manifest change (inotify) and a config change (SIGHUP)
# add keys and regions, re-bind on the fly and catch up the new ones; a
# broken file keeps the old configuration.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup chistory
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

# The config file is a symlink into $T/real: inotify watches the link's
# directory, so an edit of the target is seen only through SIGHUP.
mkdir -p "$T/real"
pbc_init web-01
mv "$C" "$T/real/web-01.json"
ln -s "$T/real/web-01.json" "$C"
pbc_manifest app '{"API_URL": "{API_URL}"}'
Q=provbus.$F.node.web-01
A() { pbtest-amqp "$URL" "$@"; }

# --- the providers announce before the node exists
{ pbc_ev provides us-east-1 api-01 api API_URL http://10.0.0.1:80 1
  pbc_ev provides us-east-1 api-02 api API_URL http://10.0.0.2:80 1
  pbc_ev provides us-east-1 api-03 api API_URL http://10.0.0.3:80 1
  pbc_ev retire us-east-1 api-03 api API_URL "" 2
  pbc_ev provides us-east-1 db-01 db DB_URL mysql://10.0.1.1/app 1
  pbc_ev provides eu-west-1 api-eu api API_URL http://10.9.0.1:80 1
  pbc_ev provides us-east-1 mq-01 mq MQ_URL amqp://10.0.2.1 1
  pbc_ev provides us-east-1 old-01 lease API_URL http://10.0.0.99:80 1 1
} | pbc_pub
sleep 1.2	# old-01's lease (1 s) runs out before the node starts
pbc_start
is "$(pbc_sql "SELECT group_concat(node || ':' || kind || ':' || verdict, ' ') FROM (SELECT * FROM events WHERE source = 'history' ORDER BY id)")" \
	"api-01:provides:applied api-02:provides:applied api-03:provides:applied api-03:retire:applied old-01:provides:applied" \
	"catch-up: the accepted events applied, source history; other keys and regions skipped without a row"
is "$(pbc_sql "SELECT verdict || ':' || source FROM events WHERE node = 'old-01' ORDER BY id DESC LIMIT 1")" "expired:daemon" \
	"a lease that ran out before the catch-up: applied from its own time, then expired"
is "$(pbc_status .counts.history_skipped)" 3 "status: 3 history messages skipped"
pbc_wait_ends 1; ok $? "the startup run ran"
is "$(pbc_sql "SELECT reason || ':' || values_after FROM runs WHERE id = 1")" \
	'startup:{"API_URL":"http://10.0.0.1:80,http://10.0.0.2:80"}' "the first run already has the providers from the history"
ok "$([ "$(pbc_sql "SELECT MIN(started_at) FROM runs")" -ge "$(pbc_sql "SELECT MAX(received_at) FROM events WHERE source = 'history'")" ]; echo $?)" \
	"the first run started after the catch-up"
off=$(pbc_sql "SELECT offset FROM offsets WHERE stream = 'provbus.$F.history'")
is "$off" 8 "the offset reached is stored (last offset + 1)"
like "$(cat "$T/consumer.log")" "catch-up done.*read=8" "the log says the catch-up read 8"

# --- a restart that finds its queue reads no history
pbc_stop; is "$CRC" 0 "stopped"
pbc_ev provides us-east-1 api-04 api API_URL http://10.0.0.4:80 1 | pbc_pub
rows=$(pbc_sql "SELECT COUNT(*) FROM events")
pbc_start consumer2
pbc_wait_rows $((rows + 1)); ok $? "the event sent while it was down arrives"
is "$(pbc_sql "SELECT source || ':' || verdict FROM events WHERE node = 'api-04'")" "live:applied" "... from the queue it kept"
ok "$(grep -c "catch-up started" "$T/consumer2.log")" "no catch-up after a restart that found the queue"

# --- the queue is lost: declared again, caught up from the offset reached
A delete-queue "$Q" >/dev/null; ok $? "queue deleted under the daemon"
pbc_ev provides us-east-1 api-05 api API_URL http://10.0.0.5:80 1 | pbc_pub
wait_for 20 grep -q "catch-up done" "$T/consumer2.log"; ok $? "the daemon noticed, re-declared and caught up"
wait_for 10 pbc_connected; ok $? "connected again"
is "$(A count "$Q")" 0 "the queue exists again"
pbc_wait_rows 1 "node = 'api-05' AND verdict = 'applied'"; ok $? "the event sent while the queue was gone is applied"
like "$(grep "catch-up started" "$T/consumer2.log")" "from_offset=8" "the catch-up started from the offset reached, not the window"
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE source = 'history' AND node IN ('api-01', 'api-02')")" 2 \
	"the events before the offset were not read again"
pbc_ev provides us-east-1 api-06 api API_URL http://10.0.0.6:80 1 | pbc_pub
pbc_wait_rows 1 "node = 'api-06' AND source = 'live'"; ok $? "live events flow again"

# --- a manifest adds a key (inotify): bound at once, caught up from the history
pbc_manifest db '{"DATABASE_URL": "{DB_URL}"}'
pbc_wait_status .bound_keys '["API_URL","DB_URL"]'; ok $? "inotify: the new key is bound"
pbc_wait_rows 1 "node = 'db-01' AND source = 'history' AND verdict = 'applied'"; ok $? "the new key's provider learned from the history"
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE source = 'history' AND key = 'API_URL' AND node IN ('api-01', 'api-02')")" 2 \
	"the key catch-up reads only the new key"
pbc_ev provides us-east-1 db-02 db DB_URL mysql://10.0.1.2/app 1 | pbc_pub
pbc_wait_rows 1 "node = 'db-02' AND source = 'live'"; ok $? "and its live events arrive"
wait_for 10 grep -qx "export DATABASE_URL='mysql://10.0.1.1/app,mysql://10.0.1.2/app'" "$T/web-01/app.env"
ok $? "a run wrote DATABASE_URL with both providers to the env file"
like "$(pbc_sql "SELECT json FROM params ORDER BY id DESC LIMIT 1")" '"event":"reload"' "the reload is in the params table"

# --- a broken manifest keeps the old configuration
echo '{"id": "broken", "requires": ' >"$SD/broken.json"
wait_for 10 grep -q "reload (inotify) failed.*broken.json" "$T/consumer2.log"; ok $? "a broken manifest: reload failed, logged with the file"
is "$(pbc_status -c .bound_keys)" '["API_URL","DB_URL"]' "the old configuration stays"
kill -0 "$CPID"; ok $? "the daemon runs on"
n=$(grep -c "reloaded (inotify)" "$T/consumer2.log")
rm "$SD/broken.json"
pbc_wait_ge 10 $((n + 1)) grep -c "reloaded (inotify)" "$T/consumer2.log"
ok $? "the fixed manifest dir is reloaded"

# --- a region added in the config (SIGHUP): the region's events from the history
sed -i 's/"quiet_ms": 200/"regions": ["us-east-1", "eu-west-1"], "quiet_ms": 200/' "$T/real/web-01.json"
sleep 0.6
is "$(pbc_status -c .regions)" '["us-east-1"]' "an edit of the symlinked config is not seen by inotify"
kill -HUP "$CPID"
pbc_wait_status .regions '["eu-west-1","us-east-1"]'; ok $? "SIGHUP: the region is accepted"
pbc_wait_rows 1 "node = 'api-eu' AND source = 'history' AND verdict = 'applied'"; ok $? "its provider learned from the history"
pbc_ev provides eu-west-1 api-eu2 api API_URL http://10.9.0.2:80 1 | pbc_pub
pbc_wait_rows 1 "node = 'api-eu2' AND source = 'live'"; ok $? "the new region's live events are bound"
# a typo as an operator makes one: a missing comma (a JSON syntax error;
# the file still names its state_dir, where the control socket is)
cp "$T/real/web-01.json" "$T/real/good.json"
sed 's/"quiet_ms": 200/"quiet_ms": 200 "oops": 1/' "$T/real/good.json" >"$T/real/web-01.json.new"
mv "$T/real/web-01.json.new" "$T/real/web-01.json"
kill -HUP "$CPID"
wait_for 10 grep -q "reload (SIGHUP) failed" "$T/consumer2.log"; ok $? "SIGHUP with a broken config: failed, logged"
kill -0 "$CPID"; ok $? "the daemon runs on"
# provbus-consumer(1): the control verbs work while the file on disk is broken (they
# need only the control socket). Asked with the broken file in place.
is "$(pbc_status -c '[.connected, .regions, .config.loads]' 2>"$T/status.err")" '[true,["eu-west-1","us-east-1"],false]' \
	"status with the config file broken: still connected, with the last good configuration; config.loads false"
like "$(cat "$T/status.err")" "warning: .*web-01\.json:[0-9]+:[0-9]+: '\}' expected near '\"oops\"'" \
	"... and the client warns that the file on disk does not load, naming it and the fault"
like "$(pbc_status -r .config.error 2>/dev/null)" "expected near" "... and status says why the daemon could not load it"
mv "$T/real/good.json" "$T/real/web-01.json"
is "$(pbc_status -c '[.connected, .regions]')" '[true,["eu-west-1","us-east-1"]]' "and after it is repaired"
pbc_stop; is "$CRC" 0 "exit 0"

# --- a busy stream (a message every few ms, never idle): the catch-up still ends
busy() {
	while [ ! -f "$T/stop-busy" ]; do
		pbc_gen 20 5 NOISE_KEY | pbtest-amqp "$URL" publish-lines "provbus.$F" >/dev/null 2>&1
		sleep 0.05
	done
}
busy &
BUSY=$!
_pb_pids+=("$BUSY")
sleep 1
pbc_init web-02
pbc_manifest app '{"API_URL": "{API_URL}"}'
t0=$(date +%s%3N)
pbc_start web02
pbc_connected; ok $? "web-02 caught up while the stream kept growing"
diag "catch-up of a busy stream: $(( $(date +%s%3N) - t0 )) ms"
like "$(cat "$T/web02.log")" "catch-up done" "the catch-up ended"
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE source = 'history' AND key = 'API_URL' AND verdict = 'applied'")" 8 \
	"it learned every API_URL event of its region from the history"
is "$(pbc_status -c '.providers.API_URL | length')" 5 "5 live providers"
touch "$T/stop-busy"; wait "$BUSY"
pbc_stop; is "$CRC" 0 "exit 0"

# --- a new node whose broker does not answer owes the whole catch-up from
# its start, not only once it finds its queue missing: its first run waits
# for it (the startup run after 30 s without a broker is for a node that
# has caught up once; a new one would run with an empty env file)
u=$URL; URL=amqp://guest:guest@127.0.0.1:9/%2F	# nothing listens on port 9
pbc_init web-03
URL=$u
pbc_manifest app '{"API_URL": "{API_URL}"}'
pb_bg web03 provbus-consumer -c "$C" -vv run
CPID=$BG_PID
wait_for 10 grep -q "a new node: the first run waits" "$T/web03.log"
ok $? "the daemon says the first run waits for the catch-up"
is "$(pbc_sql "SELECT json_extract(text, '\$.owed_full') FROM inputs WHERE kind = 'start' ORDER BY id DESC LIMIT 1")" 1 \
	"its start input owes the full catch-up (what holds the startup run, in the daemon and in replay)"
pbc_stop; is "$CRC" 0 "exit 0"
is "$(pbc_sql "SELECT COUNT(*) FROM runs")" 0 "no run started"
pb_done
