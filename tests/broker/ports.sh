# tests/broker/ports.sh — sourced by pb-broker, the test and bench
# libraries: the one way a test picks a loopback port.
#
# Ports come from outside the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range). A port inside it can be
# taken by any outgoing connection while its server is down: a broker
# stopped for a restart test then cannot bind its own port again
# (eaddrinuse), and a client that keeps reconnecting to 127.0.0.1:P can
# even be handed P as its own source port and connect to itself.

pb_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The candidate range "LO N": ports LO .. LO+N-1, below the ephemeral
# range when there is room there, otherwise above it.
pb_port_range() {
	local elo=32768 ehi=60999
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
		read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range
	fi
	if [ "$elo" -ge 12000 ]; then
		echo "10000 $(( elo - 10000 ))"
	elif [ "$ehi" -le 63000 ]; then
		echo "$(( ehi + 1 )) $(( 65000 - ehi ))"
	else # the ephemeral range covers nearly everything: take our chances
		echo "20000 40000"
	fi
}

# pb_pick_port [USED...]: a port nobody listens on now and not among
# USED (binding it may still race with another process: a caller that
# binds retries with a new port).
pb_pick_port() {
	local lo n p tries=0
	read -r lo n <<<"$(pb_port_range)"
	while :; do
		p=$(( lo + (RANDOM * 32768 + RANDOM) % n ))
		tries=$(( tries + 1 ))
		[ "$tries" -lt 500 ] || { echo "pb_pick_port: no free port in $lo..$(( lo + n - 1 ))" >&2; return 1; }
		case " $* " in *" $p "*) continue ;; esac
		pb_port_in_use "$p" || { echo "$p"; return 0; }
	done
}
