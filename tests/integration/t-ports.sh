#!/usr/bin/env bash
# t-ports: the ports tests pick (tests/broker/ports.sh) stay outside the
# kernel's ephemeral range, so no outgoing connection can take a port a
# stopped broker must bind again, and none is picked twice. No broker
# needed (the shared one only stands in for "a port in use").
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"

read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range
diag "ephemeral range $elo..$ehi, picking from $(pb_port_range)"
bad=""
for _ in $(seq 1 200); do
	p=$(pb_free_port) || { bad="$bad none"; break; }
	if [ "$p" -ge "$elo" ] && [ "$p" -le "$ehi" ]; then bad="$bad $p"; fi
	if [ "$p" -lt 1024 ] || [ "$p" -gt 65535 ]; then bad="$bad $p"; fi
done
is "${bad:-none}" none "200 picked ports: none inside the ephemeral range or outside 1024..65535"

bad=""
for p in $PB_BROKER_PORTS $PB_BROKER_DIST_PORTS $PB_BROKER_EPMD_PORT ${PB_BROKER_STREAM_PORTS:-}; do
	if [ "$p" -ge "$elo" ] && [ "$p" -le "$ehi" ]; then bad="$bad $p"; fi
done
is "${bad:-none}" none "the test broker's own ports (AMQP, distribution, epmd, stream) are outside it too"

# a range of two ports whose first is in use (the broker's): the second
pb_port_range() { echo "$PORT 2"; }
is "$(pb_free_port)" "$((PORT + 1))" "a port in use is never picked"
# ... and the second named as already used: nothing left, a clear error
out=$(pb_free_port "$((PORT + 1))" 2>&1); rc=$?
is "$rc" 1 "no free port left: exit 1"
like "$out" "no free port in $PORT\.\.$((PORT + 1))" "  saying which range"

pb_done
