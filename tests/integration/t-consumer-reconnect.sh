#!/usr/bin/env bash
# provbus-consumer and a broker that goes away (provbus-consumer(1)): on a broker
# the test starts itself, the daemon fails over past a dead URL, keeps
# consuming while events flow, survives the broker being stopped for
# ~15 s (status: connected false), reconnects by itself when it is back,
# and nothing is missing. A missing exchange at startup is exit 78.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup creconnect
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"

# A broker of our own, to stop and restart.
B=$T/broker
"$PB_BROKER" start "$B" >/dev/null || { echo "not ok - own broker did not start"; exit 1; }
cleanup_broker() { "$PB_BROKER" stop "$B" >/dev/null 2>&1; }
trap 'cleanup_broker; _pb_cleanup' EXIT
BPORT=$(. "$B/broker.env"; echo "${PB_BROKER_PORTS%% *}")
"$PB_BROKER" ctl "$B" add_vhost "$VHOST" >/dev/null
"$PB_BROKER" ctl "$B" set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
URL="amqp://guest:guest@127.0.0.1:$BPORT/$(urlenc "$VHOST")"

# --- the exchange does not exist yet: exit 78 with the hint
PBC_NO_APPLY=1 pbc_init web-01
sed -i "s|\"urls\": \[\"[^\"]*\"\]|\"urls\": [\"amqp://guest:guest@127.0.0.1:1/x\", \"$URL\"]|" "$C"
pbc_manifest app '{"API_URL": "{API_URL}"}'
out=$(timeout 30 provbus-consumer -c "$C" run 2>&1); rc=$?
is "$rc" 78 "exchange missing at startup: exit 78"
like "$out" "exchange provbus\.$F not found: run provbus-schema apply" "with the hint"
provbus-schema --url "$URL" apply "$T/topology.json" >/dev/null; ok $? "topology applied on our broker"

pbc_start
t_up=$(date +%s%3N)
like "$(pbc_status .broker)" ":$BPORT/" "connected past the dead first URL"

# A publisher that keeps sending one event every 100 ms, retrying an event
# until the broker confirms it; it logs the confirmed ids.
publisher() {
	local i=0 line
	while [ ! -f "$T/stop-pub" ]; do
		i=$((i + 1))
		line=$(pbc_ev provides us-east-1 "api-$i" api API_URL "http://10.0.0.$((i % 250)):80" 1)
		until printf '%s\n' "$line" | pbtest-amqp "$URL" publish-lines "provbus.$F" --confirm --persistent \
			--timeout-ms 2000 >/dev/null 2>&1; do
			[ -f "$T/stop-pub" ] && return
			sleep 0.3
		done
		printf '%s\n' "$line" | cut -f2 | jq -r .id >>"$T/sent"
		sleep 0.1
	done
}
: >"$T/sent"
publisher &
PUB=$!
_pb_pids+=("$PUB")
_sent() { wc -l <"$T/sent"; }
pbc_wait_ge 10 3 _sent; ok $? "events flow"
pbc_wait_rows 3; ok $? "and are audited"

# the fast reconnect schedule is for a connection that had been healthy,
# up 5 s or more (PB_BACKOFF_HEALTHY_MS; a shorter one counts as flapping
# and keeps the 250 ms to 30 s schedule): let it be that old first
up_ms=$(( $(date +%s%3N) - t_up ))
left=$(( 5500 - up_ms ))
[ "$left" -le 0 ] || sleep "$(( left / 1000 )).$(printf '%03d' $(( left % 1000 )))"
"$PB_BROKER" stopnode "$B" 1; ok $? "broker stopped"
t_stop=$(date +%s)
pbc_wait_eq 10 false pbc_status .connected; ok $? "status: connected false"
is "$(pbc_status .state)" connecting "status: state connecting"
sleep 6
kill -0 "$CPID"; ok $? "the daemon runs on without a broker"
like "$(cat "$T/consumer.log")" "broker connection lost" "the loss is logged"
"$PB_BROKER" restart "$B" 1 >/dev/null; ok $? "broker back after $(( $(date +%s) - t_stop )) s"
t_back=$(date +%s%3N)
pbc_wait_eq 40 true pbc_status .connected; ok $? "the daemon reconnected by itself"
recon_ms=$(( $(date +%s%3N) - t_back ))
diag "reconnected $(( $(date +%s) - t_stop )) s after the broker stopped"
# the connection had been healthy: retries at most 1.5 s apart (provbus.json(5)'s
# 30 s cap is for URLs that never worked), so the broker is found within
# ~1.5 s of accepting connections again, however long it was away; the bound
# leaves room for the status polls of a loaded machine
[ "$recon_ms" -le $(( $(pb_slow 5) * 1000 )) ]
ok $? "reconnected ${recon_ms} ms after the broker was back (bound $(pb_slow 5) s)"
sleep 1
touch "$T/stop-pub"; wait "$PUB"
n=$(wc -l <"$T/sent")
diag "events confirmed by the broker: $n"
_all_sent() { [ "$(pbc_sql "SELECT COUNT(DISTINCT msg_id) FROM events WHERE msg_id IN ($(sed "s/.*/'&'/" "$T/sent" | paste -sd,))")" = "$n" ]; }
wait_for 20 _all_sent; ok $? "every confirmed event is audited: nothing missing"
is "$(pbc_sql "SELECT COUNT(*) FROM (SELECT msg_id FROM events WHERE verdict != 'duplicate' GROUP BY msg_id HAVING COUNT(*) > 1)")" 0 \
	"and judged once"
pbc_wait_eq 10 0 pbtest-amqp "$URL" count "provbus.$F.node.web-01"; ok $? "the queue is drained"
pbc_stop; is "$CRC" 0 "exit 0"
pb_done
