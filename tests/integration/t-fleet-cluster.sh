#!/usr/bin/env bash
# t-fleet-cluster: a cluster whose streams are not stored on every node.
# RabbitMQ reads a stream only on a node that holds a replica of it, over
# AMQP 0-9-1 and the stream protocol alike; a node added to a cluster after
# the streams were declared holds none until `rabbitmq-streams
# add_replica`. A 2-node cluster of its own (rabbitmq_stream on), both
# streams' replicas removed from node 2:
#   - a new consumer with broker.urls [node 2, node 1] catches up from
#     node 1 (the value published before it started reaches its env file),
#     its log naming node 2's refusal and the add_replica command;
#   - provbus-fleet with those URLs says once that node 2 has no replica,
#     reads from node 1 and answers as a read of node 1 alone does
#     (converged, providers --json);
#   - with node 2 alone: exit 69, naming the stream and the add_replica
#     command, over either protocol.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
rl_own_broker --nodes 2 --plugins rabbitmq_stream
rl_setup fleetcl
F=pbc
. "$PB_ROOT/tests/data/fleet/lib-fleet.sh"

P2=$(echo "$PB_BROKER_PORTS" | cut -d' ' -f2)
S1=$(echo "$PB_BROKER_STREAM_PORTS" | cut -d' ' -f1)
S2=$(echo "$PB_BROKER_STREAM_PORTS" | cut -d' ' -f2)
N2=$(echo "$PB_BROKER_NODES" | cut -d' ' -f2)
url2() { echo "amqp://$1:pw-$1@127.0.0.1:$P2/$(urlenc "$VHOST")"; }

pb_topology "$F" us-east-1
pb_apply >/dev/null; ok $? "topology applied on the cluster (both streams on both nodes)"
pbf_users "$T/defs.json" prov:us-east-1 c1:us-east-1; ok $? "node users imported"
for s in history fleet; do
	"$PB_BROKER" streams "$PB_BROKER_DIR" delete_replica --vhost "$VHOST" "provbus.$F.$s" "$N2" >/dev/null 2>&1 || break
done
ok $? "the replicas of both streams removed from node 2 ($N2)"
out=$(pbtest-amqp "$(url2 c1)" stream "provbus.$F.history" --offset first --count 1 --timeout-ms 3000 2>&1)
like "$out" "replica" "node 2 cannot serve the history stream (the broker says: no replica)"

pbf_prov
provbus-publish -c "$T/prov.json" provides >/dev/null; ok $? "prov provides API_URL (before the consumer exists)"

# --- a new consumer: [node 2, node 1]
pbf_node c1 us-east-1
sed -i "s|\"urls\": \[|\"urls\": [\"$(url2 c1)\", |" "$T/c1.json"
pb_bg c1 provbus-consumer -c "$T/c1.json" run
wait_for 60 grep -q "API_URL='http://10.9.9.9:1100'" "$T/c1/app.env"
ok $? "the consumer caught up from node 1: API_URL in its env file"
like "$(cat "$T/c1.log")" "replica on the local node" "  its log names node 2's refusal"
like "$(cat "$T/c1.log")" "another of broker.urls is tried next; to read it here, rabbitmq-streams add_replica --vhost VHOST provbus\.$F\.history NODE" \
	"  and what to do about it"

# --- provbus-fleet with [node 2, node 1]
printf 'pw-observer\n' >"$T/obs.pw"
obs1() { provbus-fleet --url "amqp://provbus-observer@127.0.0.1:$PORT/$(urlenc "$VHOST")" \
	--password-file "$T/obs.pw" --federation "$F" "$@"; }
conv1() { obs1 --no-cache --stream-port 0 converged API_URL 2>/dev/null | grep -q '^converged: 1 of 1 '; }
pbf_wait 60 conv1; ok $? "node 1 alone: c1 converged"
# (over the stream protocol the nodes of this cluster share one host, so
# --stream-port alone picks the node: S1 is node 1's listener)
for sp in 0 "$S1"; do
	proto=$([ "$sp" = 0 ] && echo "AMQP 0-9-1" || echo "stream protocol, node 1's port")
	provbus-fleet -c "$T/c1.json" --stream-port "$sp" --no-cache converged API_URL >"$T/conv.out" 2>"$T/conv.err"
	is "$?:$(cat "$T/conv.out")" "0:converged: 1 of 1 live consumers ran with today's values" \
		"[node 2, node 1], $proto: converged, exit 0"
	if [ "$sp" = 0 ]; then
		is "$(grep -c 'no replica on this broker node.*trying the next broker URL' "$T/conv.err")" 1 \
			"  one notice says node 2 has no replica and the next URL is tried"
	fi
	provbus-fleet -c "$T/c1.json" --stream-port "$sp" --no-cache providers API_URL --json >"$T/prov-c.json" 2>/dev/null
	obs1 --no-cache --stream-port "$sp" providers API_URL --json >"$T/prov-1.json" 2>/dev/null
	[ -s "$T/prov-1.json" ] && cmp -s "$T/prov-c.json" "$T/prov-1.json"
	ok $? "  providers --json: the same bytes as node 1 alone"
done

# --- node 2 alone
for sp in 0 "$S2"; do
	proto=$([ "$sp" = 0 ] && echo "AMQP 0-9-1" || echo "stream protocol")
	provbus-fleet --url "$(url2 c1)" --federation "$F" --stream-port "$sp" --no-cache nodes >/dev/null 2>"$T/n2.err"
	is "$?" 69 "node 2 alone, $proto: exit 69"
	like "$(cat "$T/n2.err")" "provbus\.$F\.(history|fleet) has no replica on this broker node" "  naming the stream"
	like "$(cat "$T/n2.err")" "rabbitmq-streams add_replica --vhost '$VHOST' provbus\.$F\.(history|fleet) NODE" \
		"  and the command that adds one"
done
pb_done
