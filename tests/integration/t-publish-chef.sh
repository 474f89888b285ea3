#!/usr/bin/env bash
# The Chef integration: deploy/chef/provbus-chef-solo (chef-solo under the
# provision lock, then provbus-publish provides) with a fake chef-solo, and
# deploy/chef/provbus_handler.rb (a report handler) run by ruby against
# stand-ins for Chef::Handler and Mixlib::ShellOut (skipped without ruby).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup pubchef

F=chf R=us-east-1 NODE=app-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/node.json" "$NODE" "$F" "$R"
C=$T/node.json SD=$T/$NODE/services.d
sed 's#"urls": \["[^"]*"\]#"urls": ["amqp://guest:guest@127.0.0.1:1/x"]#' "$C" >"$T/down.json"
cat >"$SD/app.json" <<'EOT'
{"id": "app", "local_port": 8080, "provides": {"APP_URL": "http://{HOST}:{PORT}"}}
EOT
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null
WRAP=$PB_ROOT/deploy/chef/provbus-chef-solo
LOCK=$T/run/provision.lock

# a fake chef-solo: records its arguments and whether the lock was held,
# starts a long-lived "service" (as chef does), exits $FAKE_STATUS
cat >"$T/chef-solo" <<EOT
#!/bin/sh
echo "\$*" >"$T/chef.args"
if flock -n "$LOCK" true 2>/dev/null; then echo free; else echo held; fi >"$T/chef.lock"
sleep 5 </dev/null >/dev/null 2>&1 &
echo \$! >"$T/chef.service"
exit \${FAKE_STATUS:-0}
EOT
chmod +x "$T/chef-solo"
export PROVBUS_CHEF_SOLO=$T/chef-solo

# --- success: chef-solo under the lock, then the announcement
"$WRAP" --lock "$LOCK" -c "$C" --ttl 300 -- -j /etc/chef/node.json -l warn >"$T/out" 2>&1; rc=$?
is $rc 0 "wrapper: chef-solo ok, published: 0"
is "$(cat "$T/chef.args")" "-j /etc/chef/node.json -l warn" "chef-solo got the arguments after --"
is "$(cat "$T/chef.lock")" held "chef-solo ran while the lock was held"
is "$(A get cap --count 1 --timeout-ms 2000 | jq -r '"\(.routing_key) \(.body | fromjson | .ttl_s)"')" "$R.provides.APP_URL 300" \
	"the wrapper announced the node's provides, with --ttl"
flock -n "$LOCK" true; is $? 0 "a service chef-solo started does not keep the lock"
kill "$(cat "$T/chef.service")" 2>/dev/null

# --- chef-solo fails: its status, nothing announced
FAKE_STATUS=3 "$WRAP" --lock "$LOCK" -c "$C" >"$T/out" 2>&1; rc=$?
is $rc 3 "chef-solo failed: the wrapper exits with its status"
like "$(cat "$T/out")" "nothing announced" "and says nothing was announced"
sleep 0.3
is "$(A count cap)" 0 "nothing was published"
kill "$(cat "$T/chef.service")" 2>/dev/null

# --- the lock held by a provision run: the wrapper waits for it
( exec 9>"$LOCK"; flock -x 9; exec sleep 1.5 ) &
HOLDER=$!; _pb_pids+=("$HOLDER")
wait_for 5 sh -c "! flock -n '$LOCK' true"
start=$(date +%s%N)
"$WRAP" --lock "$LOCK" -c "$C" >"$T/out" 2>&1; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is $rc 0 "lock held elsewhere: the wrapper waited, then ran: 0"
like "$(cat "$T/out")" "waiting for $LOCK" "it said it was waiting"
ok "$([ "$ms" -ge 800 ]; echo $?)" "it waited for the holder (${ms} ms)"
A get cap --count 1 --timeout-ms 2000 >/dev/null
kill "$(cat "$T/chef.service")" 2>/dev/null

# --- started by provbus-consumer (PROVBUS_RUN_ID set, the daemon holds the lock)
( exec 9>"$LOCK"; flock -x 9; exec sleep 10 ) &
HOLDER=$!; _pb_pids+=("$HOLDER")
wait_for 5 sh -c "! flock -n '$LOCK' true"
PROVBUS_RUN_ID=42 timeout "$(pb_slow 5)" "$WRAP" --lock "$LOCK" -c "$C" >"$T/out" 2>&1; rc=$?
is $rc 0 "under provbus-consumer: no second lock, no deadlock: 0"
like "$(cat "$T/out")" "not locking again" "it says why it does not lock"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null
A get cap --count 1 --timeout-ms 2000 >/dev/null
kill "$(cat "$T/chef.service")" 2>/dev/null

# --- broker away: 75 from provbus-publish is reported, the wrapper exits 0
"$WRAP" --lock "$LOCK" -c "$T/down.json" >"$T/out" 2>&1; rc=$?
is $rc 0 "broker away: spooled, the wrapper exits 0"
like "$(cat "$T/out")" "spooled" "it says the events are spooled"
kill "$(cat "$T/chef.service")" 2>/dev/null
provbus-publish -c "$C" flush 2>/dev/null; is $? 0 "flush sends them"
is "$(A get cap --count 1 --timeout-ms 2000 | wc -l)" 1 "the spooled announcement arrived"

# --- the report handler
if ! command -v ruby >/dev/null 2>&1; then
	pb_skip 1 "the Chef handler: no ruby here"
else
	STUBS=$PB_ROOT/tests/data/publish/chef-stubs
	H=$PB_ROOT/deploy/chef/provbus_handler.rb
	ruby -c "$H" >/dev/null; ok $? "the handler is valid ruby"
	opts=$(jq -nc --arg p "$PB_BIN/provbus-publish" --arg c "$C" '{path: $p, config: $c}')
	ruby -I "$STUBS" "$STUBS/run-handler.rb" "$H" success "$opts" >"$T/h.out" 2>&1; rc=$?
	is $rc 0 "handler on a successful run: ok"
	like "$(cat "$T/h.out")" "INFO: provbus: .*provbus-publish -c $C provides: announced" "it logs the command and its success"
	is "$(A get cap --count 1 --timeout-ms 2000 | jq -r .routing_key)" "$R.provides.APP_URL" "the handler announced"
	ruby -I "$STUBS" "$STUBS/run-handler.rb" "$H" failure "$opts" >"$T/h.out" 2>&1
	is "$(cat "$T/h.out")" "" "handler on a failed run: does nothing"
	sleep 0.3
	is "$(A count cap)" 0 "nothing announced after a failed run"
	opts=$(jq -nc --arg p "$PB_BIN/provbus-publish" --arg c "$T/down.json" \
		'{path: $p, config: $c, args: ["provides", "--ttl", "600"]}')
	ruby -I "$STUBS" "$STUBS/run-handler.rb" "$H" success "$opts" >"$T/h.out" 2>&1
	like "$(cat "$T/h.out")" "WARN: provbus: .*--ttl 600: exit 75" "broker away: a warning with the exit status"
	like "$(cat "$T/h.out")" "WARN: provbus: .*spooled" "and provbus-publish's own message"
	opts=$(jq -nc '{path: "/nonexistent/provbus-publish"}')
	ruby -I "$STUBS" "$STUBS/run-handler.rb" "$H" success "$opts" >"$T/h.out" 2>&1; rc=$?
	is $rc 0 "a missing binary does not fail the Chef run"
	like "$(cat "$T/h.out")" "ERROR: provbus: cannot run /nonexistent/provbus-publish" "it is logged as an error"
	# no path: the installed provbus-publish (on PATH; make install PREFIX=/usr
	# puts it in /usr/bin), not a fixed /usr/local/bin
	opts=$(jq -nc --arg c "$C" '{config: $c}')
	PATH=$PB_BIN:$PATH ruby -I "$STUBS" "$STUBS/run-handler.rb" "$H" success "$opts" >"$T/h.out" 2>&1
	like "$(cat "$T/h.out")" "INFO: provbus: $PB_BIN/provbus-publish -c $C provides: announced" \
		"without path: the provbus-publish found on PATH"
	A purge cap >/dev/null
	ruby -I "$STUBS" "$STUBS/run-handler.rb" "$H" success '{"bogus": 1}' >"$T/h.out" 2>&1
	like "$(cat "$T/h.out")" "unknown option.*bogus" "an unknown handler option is refused"
fi

pb_done
