#!/usr/bin/env bash
# provbus-publish with two broker URLs when the first one takes the
# connection and then fails the send (provbus-json(5) broker.urls: tried in
# order, on failure the next): the first URL goes through a relay
# (pbtest-delay, 600 ms each way, so the confirms are on their way for
# over a second), and the relay is killed with -9 once the publisher says
# it is connected. The run must go on through the second URL in the same
# process: exit 0, every event confirmed and in the broker, nothing left
# spooled. (Before, it stopped at the first URL's failure: exit 75.)
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup pubfail

F=pfo R=us-east-1 NODE=fo-01
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
pb_node_config "$T/c.json" "$NODE" "$F" "$R"
SD=$T/$NODE/services.d DB=$T/$NODE/state/outbox.db
A() { pbtest-amqp "$URL" "$@"; }
A queue cap --bind "provbus.$F:#" >/dev/null
cat >"$SD/api.json" <<'EOT'
{"id": "api", "local_port": 80, "provides": {"FO_URL": "http://{HOST}:{PORT}", "FO_HOST": "{HOST}"}}
EOT

# the relay to the broker, on a free port (another process may take the
# port between the probe and the bind: then try another)
relay_up() { [ -e "$T/relay.ready" ] || ! kill -0 "$RELAY" 2>/dev/null; }
for _ in 1 2 3 4 5; do
	RP=$(pb_free_port)
	rm -f "$T/relay.ready"
	pb_bg relay pbtest-delay -d 600 --on --ready "$T/relay.ready" "$RP=127.0.0.1:$PORT"
	RELAY=$BG_PID
	wait_for 10 relay_up
	[ -e "$T/relay.ready" ] && break
done
ok "$([ -e "$T/relay.ready" ]; echo $?)" "the relay listens on 127.0.0.1:$RP"

# two URLs: the relay first, the broker itself second
relay_url=${URL/127.0.0.1:$PORT/127.0.0.1:$RP}
jq --arg a "$relay_url" --arg b "$URL" '.broker.urls = [$a, $b]' "$T/c.json" >"$T/two.json"

connected_via_relay() { grep -q "connected url=amqp://guest@127.0.0.1:$RP" "$T/pub.err"; }
provbus-publish -c "$T/two.json" -v --timeout 30 provides api 2>"$T/pub.err" &
PUB=$!
wait_for 30 connected_via_relay; ok $? "the publisher connected through the relay (the first URL)"
kill -KILL "$RELAY"; wait "$RELAY" 2>/dev/null
wait "$PUB"; rc=$?
is "$rc" 0 "the first URL failed during the send: the second took the rest, exit 0"
like "$(cat "$T/pub.err")" "trying the next broker URL" "the log says it moved to the next URL"
like "$(cat "$T/pub.err")" "events? confirmed by the broker amqp://guest@127.0.0.1:$PORT" "confirmed by the second URL"
is "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM outbox')" 0 "nothing left spooled"
ids=$(A get cap --count 10 --timeout-ms 3000 | grep -o '"message_id":"[^"]*"' | cut -d'"' -f4 | sort -u | wc -l)
is "$ids" 2 "both events (FO_URL, FO_HOST) are in the broker"
[ "$rc" = 0 ] || diag "$(cat "$T/pub.err")"

pb_done
