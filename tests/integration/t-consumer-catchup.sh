#!/usr/bin/env bash
# provbus-consumer's history catch-up ends at the stream's end as of its
# start, not at a pause (provbus-consumer(1), docs/protocol.md): a new node
# reads all of a 30,000-event history although delivery stops for 3 s in
# the middle (the consumer talks to the broker through a socat relay that
# is SIGSTOPped). The old rule, 500 ms of silence, ended such a catch-up
# after a fraction of the stream and the first run missed providers.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup ccatchup
. "$PB_ROOT/tests/data/consumer/lib-consumer.sh"
command -v socat >/dev/null || pb_skip_all "socat not installed"

N=30000 NODES=100
pbc_init web-01
pbc_manifest app '{"API_URL": "{API_URL}"}'
pbc_gen $N $NODES | pbc_pub; ok $? "$N events in the history"

BP=$(sed -E 's#^amqp://[^@]*@[^:/]*:([0-9]+)/.*#\1#' <<<"$URL")
PP=$(pb_free_port)
listening() { grep -qi ":$(printf %04X "$PP") 00000000:0000 0A" /proc/net/tcp; }
# one connection, no fork: stopping this process stops the consumer's traffic
pb_bg relay socat "TCP-LISTEN:$PP,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$BP"
RELAY=$BG_PID
wait_for 10 listening; ok $? "the relay listens"
jq --arg u "${URL/:$BP\//:$PP/}" '.broker.urls = [$u]' "$C" >"$C.new" && mv "$C.new" "$C"

pb_bg consumer provbus-consumer -c "$C" -vv run
CPID=$BG_PID
wait_for 30 grep -q "catch-up started" "$T/consumer.log"; ok $? "the catch-up started"
kill -STOP "$RELAY"
sleep 3	# the stimulus: 3 s without a delivery, 6 times the old quiet rule
kill -CONT "$RELAY"
wait_for 120 grep -q "catch-up done" "$T/consumer.log"; ok $? "the catch-up ended"
like "$(grep "catch-up done" "$T/consumer.log")" "read=$N .*end=offset" \
	"it read all $N events and ended at the stream's end offset"
ok "$(grep -c "ending it anyway" "$T/consumer.log")" "the safety net did not fire"
is "$(pbc_sql "SELECT COUNT(*) FROM events WHERE source = 'history'")" $N "all $N have an audit row from the history"
is "$(pbc_sql "SELECT offset FROM offsets WHERE stream = 'provbus.$F.history'")" $N "the offset reached is the stream's end"
pbc_wait_ends 1 60; ok $? "the startup run ran"
is "$(pbc_sql "SELECT values_after FROM runs WHERE id = 1" | jq -r '.API_URL' | tr ',' '\n' | grep -c ":$((N / NODES))\$")" $NODES \
	"the first run has all $NODES providers, each at its last value"
pbc_stop; is "$CRC" 0 "stopped"
pb_done
