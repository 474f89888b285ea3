# shellcheck shell=bash disable=SC2034
# (SC2034: FL_NETEM_MODE, FL_CRED_MODE, FL_NBROKERS are read by the caller)
# tests/fleet/lib.sh — a small fleet of "hosts" on a private network, for
# the partition scenarios (tests/fleet/run.sh, make partition).
#
# Every host is a network namespace of its own (named $FL_ID-HOST) with one
# interface, eth0, whose other end sits on a bridge (br0) inside one more
# namespace of ours ($FL_ID-net). The subnet (FL_SUBNET, default 10.213.0)
# exists only inside these namespaces: nothing of the machine's own network
# is touched, addressed or reconfigured, and no address outside the bridge
# (or a host's own loopback) is ever a target. Faults are applied inside a
# host's namespace only: nftables rules (a table of our own), tc netem on
# its eth0, its eth0 down/up.
#
# Everything the harness starts is tracked by PID; fl_cleanup (on EXIT,
# also after INT/TERM) stops those, then any process still inside one of
# our namespaces (all of them started by us: an epmd a broker spawned),
# then deletes the namespaces, which removes the veths and the bridge.
#
#   fl_init DIR            work dir, the network namespace with the bridge
#   fl_host NAME IP        a host: namespace, veth to the bridge, address
#   fl_in NAME CMD...      runs CMD inside host NAME's namespace
#   fl_bg NAME LOG CMD...  same, in the background; PID in FL_PID (tracked)
#   fl_cut NAME IP...      host NAME drops every packet to or from IPs
#   fl_uncut NAME          removes NAME's drop rules
#   fl_netem NAME ARGS...  tc netem on NAME's eth0 (fl_netem NAME: removes it)
#   fl_relay NAME MS MAP...  a delay relay on NAME's loopback (no netem here)
#   fl_link NAME up|down   NAME's eth0 up or down
#   fl_cleanup             (the EXIT trap) everything above undone
set -uo pipefail

FL_SUBNET=${FL_SUBNET:-10.213.0}
FL_ID=${FL_ID:-pbf$$}
FL_HOSTS=()
FL_PIDS=()
FL_DIR=""
FL_FAILED=0
FL_RELAY_HOST=""
FL_RELAY_PID=""
FL_TC=/usr/sbin/tc
[ -x "$FL_TC" ] || FL_TC=tc

fl_log() { echo "# $(date +%H:%M:%S) $*"; }
fl_die() { echo "fleet: $*" >&2; exit 1; }
fl_now() { date +%s%3N; }

fl_ns() { echo "$FL_ID-$1"; }

# fl_wait SECS CMD...: polls CMD every FL_POLL (0.25) s until it exits 0; 1 on timeout
fl_wait() {
	local secs=$1 end; shift
	end=$(( $(date +%s) + secs ))
	while ! "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep "${FL_POLL:-0.25}"
	done
}

fl_init() { # fl_init DIR
	[ "$(id -u)" -eq 0 ] || fl_die "network namespaces need root"
	command -v ip >/dev/null || fl_die "ip (iproute2) not found"
	command -v nft >/dev/null || fl_die "nft (nftables) not found: deploy/install-deps.sh"
	FL_DIR=$1
	mkdir -p "$FL_DIR"
	trap fl_cleanup EXIT
	trap 'FL_FAILED=1; exit 130' INT TERM HUP
	ip netns add "$(fl_ns net)" || fl_die "ip netns add $(fl_ns net) failed"
	FL_HOSTS+=(net)
	ip -n "$(fl_ns net)" link add br0 type bridge &&
		ip -n "$(fl_ns net)" link set br0 up || fl_die "could not make the bridge in $(fl_ns net)"
}

fl_host() { # fl_host NAME IP
	local name=$1 ip=$2 ns; ns=$(fl_ns "$1")
	ip netns add "$ns" || fl_die "ip netns add $ns failed"
	FL_HOSTS+=("$name")
	# the veth is made inside our bridge namespace, its peer lands in the host's
	ip -n "$(fl_ns net)" link add "v-$name" type veth peer name eth0 netns "$ns" &&
		ip -n "$(fl_ns net)" link set "v-$name" master br0 up &&
		ip -n "$ns" addr add "$ip/24" dev eth0 &&
		ip -n "$ns" link set eth0 up &&
		ip -n "$ns" link set lo up || fl_die "could not wire host $name ($ip)"
	echo "$ip" >"$FL_DIR/$name.ip"
}
fl_ip() { cat "$FL_DIR/$1.ip"; }

fl_in() { local ns; ns=$(fl_ns "$1"); shift; ip netns exec "$ns" "$@"; }

fl_track() { FL_PIDS+=("$1"); }
fl_bg() { # fl_bg NAME LOG CMD...
	local ns; ns=$(fl_ns "$1"); local log=$2; shift 2
	setsid ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null &
	FL_PID=$!
	fl_track "$FL_PID"
}

# Faults. Each host has at most one table of ours, "pbfleet".
fl_cut() { # fl_cut NAME IP...
	local name=$1; shift
	local set; set=$(IFS=,; echo "$*")
	fl_in "$name" nft -f - <<EOT
table inet pbfleet
delete table inet pbfleet
table inet pbfleet {
	chain in { type filter hook input priority 0; policy accept; ip saddr { $set } drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr { $set } drop; }
}
EOT
}
fl_uncut() { fl_in "$1" nft delete table inet pbfleet 2>/dev/null || true; }
# fl_netem NAME [loss P%] [delay D]: tc netem on NAME's eth0; no ARGS
# removes it. A kernel without netem (gVisor, a kernel built without
# sch_netem) gets the loss from an nftables rule on NAME's eth0 instead
# (numgen random), and the delay from NAME's delay relay when it has one
# (fl_relay: every byte NAME's programs send to a broker or receive from
# it waits D, both ways), else none. FL_NETEM_MODE says what was applied:
# "tc-netem", "nft-loss+relay-delay" or "nft-loss-only".
fl_netem_probe() { # fl_netem_probe NAME: 0 when tc netem works on NAME's eth0
	fl_in "$1" "$FL_TC" qdisc replace dev eth0 root netem delay 0ms 2>"$FL_DIR/netem.err" || return 1
	fl_in "$1" "$FL_TC" qdisc del dev eth0 root 2>/dev/null
	return 0
}
fl_netem() {
	local name=$1; shift
	if [ $# -eq 0 ]; then
		fl_in "$name" "$FL_TC" qdisc del dev eth0 root 2>/dev/null
		fl_in "$name" nft delete table inet pbfleet_loss 2>/dev/null
		[ "${FL_RELAY_HOST:-}" != "$name" ] || kill -USR2 "$FL_RELAY_PID" 2>/dev/null
		return 0
	fi
	if fl_in "$name" "$FL_TC" qdisc replace dev eth0 root netem "$@" 2>"$FL_DIR/netem.err"; then
		FL_NETEM_MODE=tc-netem
		return 0
	fi
	local loss="" delay=""
	while [ $# -gt 0 ]; do
		case $1 in loss) loss=${2%\%}; shift 2 ;; delay) delay=$2; shift 2 ;; *) shift ;; esac
	done
	[ -n "$loss" ] || return 1
	FL_NETEM_MODE=nft-loss-only
	if [ -n "$delay" ] && [ "${FL_RELAY_HOST:-}" = "$name" ] && kill -USR1 "$FL_RELAY_PID" 2>/dev/null; then
		FL_NETEM_MODE=nft-loss+relay-delay
	fi
	fl_log "tc netem refused ($(head -n 1 "$FL_DIR/netem.err")): $loss% loss by nftables on $name's eth0, $([ "$FL_NETEM_MODE" = nft-loss-only ] && echo "no delay" || echo "$delay each way by its delay relay")"
	fl_in "$name" nft -f - <<EOT
table inet pbfleet_loss {
	chain in { type filter hook input priority -10; policy accept; iifname "eth0" numgen random mod 100 < $loss drop; }
	chain out { type filter hook output priority -10; policy accept; oifname "eth0" numgen random mod 100 < $loss drop; }
}
EOT
}
# fl_relay NAME MS PORT=IP:PORT...: a delay relay (pbtest-delay, from
# PB_TOOLS) on NAME's loopback, relaying each 127.0.0.1:PORT to IP:PORT;
# its delay (MS each way) is off until fl_netem NAME ... delay turns it on
fl_relay() {
	local name=$1 ms=$2; shift 2
	local tool=${PB_TOOLS:-build/tools}/pbtest-delay
	[ -x "$tool" ] || { fl_log "no $tool (make tests-build): no delay relay"; return 1; }
	rm -f "$FL_DIR/$name.relay.ready"
	fl_bg "$name" "$FL_DIR/$name.relay.log" "$tool" -d "$ms" --ready "$FL_DIR/$name.relay.ready" "$@"
	FL_RELAY_PID=$FL_PID FL_RELAY_HOST=$name
	fl_wait 10 test -e "$FL_DIR/$name.relay.ready" || { fl_log "the delay relay on $name did not start: $(tail -n 2 "$FL_DIR/$name.relay.log")"; FL_RELAY_HOST=""; return 1; }
}
# fl_relay_delayed: the bytes the relay delayed by the last time its delay
# was turned off
fl_relay_delayed() { sed -n 's/.*delay 0 ms (\([0-9]*\) bytes delayed so far).*/\1/p' "$FL_DIR/$FL_RELAY_HOST.relay.log" | tail -n 1; }
fl_link() { fl_in "$1" ip link set eth0 "$2"; }

fl_stop_pid() { # fl_stop_pid PID [GRACE-S]: TERM, then KILL after GRACE
	local pid=$1 grace=${2:-20} t=0
	case $pid in '' | 0 | 1 | *[!0-9]*) return 0 ;; esac
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.2; t=$((t + 1))
		if [ $t -ge $((grace * 5)) ]; then kill -KILL "$pid" 2>/dev/null; break; fi
	done
	wait "$pid" 2>/dev/null
	return 0
}

fl_cleanup() {
	local rc=$? p h ns pids
	trap - EXIT INT TERM HUP
	[ $rc -eq 0 ] || FL_FAILED=1
	if declare -F fl_before_cleanup >/dev/null; then fl_before_cleanup; fi
	for p in "${FL_PIDS[@]}"; do fl_stop_pid "$p" 15; done
	# anything still inside our namespaces was started by us (a broker's
	# epmd, a publisher that outlived its loop): killed by its PID
	for h in "${FL_HOSTS[@]}"; do
		ns=$(fl_ns "$h")
		pids=$(ip netns pids "$ns" 2>/dev/null)
		for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	done
	for h in "${FL_HOSTS[@]}"; do
		ns=$(fl_ns "$h")
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
			sleep 0.2
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$FL_DIR" ]; then
		if [ "$FL_FAILED" -eq 0 ] && [ -z "${FL_KEEP:-}" ]; then rm -rf "$FL_DIR"
		else echo "# fleet files kept in $FL_DIR"; fi
	fi
	exit $rc
}

# ---------------------------------------------------------------- brokers
#   fl_certs               a CA, a server certificate per broker (IP in its
#                          subjectAltName), a client certificate per host
#   fl_credentials TOPO    the definitions with per-node users and their
#                          password files (FL_DIR/creds/NODE)
#   fl_brokers_start N     N RabbitMQ nodes rabbit@IP on hosts b1..bN,
#                          clustered by the sample's classic_config
#   fl_ctl I ARGS...       rabbitmqctl against broker I, from its host
#   fl_broker_kill I / fl_broker_restart I
RMQ_BIN=${RMQ_BIN:-/usr/lib/rabbitmq/bin}
FL_NBROKERS=0

fl_certs() {
	local c=$FL_DIR/tls h
	mkdir -p "$c"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=provbus-fleet-ca -keyout "$c/ca.key" -out "$c/ca.pem" >/dev/null 2>&1 ||
		fl_die "openssl: could not make the test CA"
	for h in "$@"; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$h" \
			-keyout "$c/$h.key" -out "$c/$h.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$c/$h.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial \
			-days 2 -out "$c/$h.pem" \
			-extfile <(printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$(fl_ip "$h")" "$h") \
			>/dev/null 2>&1 || fl_die "openssl: could not make the certificate of $h"
		chmod 0600 "$c/$h.key"
	done
}

# fl_credentials TOPOLOGY DEFS: the broker definitions (provbus-schema
# export) with one user per node and its password. With an export that
# keeps the passwords itself (--credentials DIR) that is used; else the
# users of the plain export get a password here: a random one in
# FL_DIR/creds/NODE (mode 0600, what the node's broker.password_file
# names), its RabbitMQ hash (rabbit_password_hashing_sha256: base64 of a
# 4-byte salt and SHA-256(salt + password)) written into the user.
fl_credentials() {
	local topo=$1 defs=$2 creds=$FL_DIR/creds u pw
	mkdir -p "$creds"; chmod 0700 "$creds"
	if provbus-schema export --credentials "$creds" "$topo" >"$defs" 2>"$FL_DIR/export.err"; then
		FL_CRED_MODE="export --credentials"
		return 0
	fi
	provbus-schema export "$topo" >"$defs" 2>>"$FL_DIR/export.err" ||
		fl_die "provbus-schema export $topo failed: $(cat "$FL_DIR/export.err")"
	FL_CRED_MODE="export + harness passwords"
	for u in $(jq -r '.users[].name' "$defs"); do
		[ -s "$creds/$u" ] || (umask 077; head -c 32 /dev/urandom | base64 -w0 >"$creds/$u")
		pw=$(cat "$creds/$u")
		local hash
		hash=$(PW=$pw perl -MDigest::SHA=sha256 -MMIME::Base64 -e \
			'open my $r, "<", "/dev/urandom" or die; read $r, my $s, 4; print encode_base64($s . sha256($s . $ENV{PW}), "")')
		jq --arg u "$u" --arg h "$hash" \
			'(.users[] | select(.name == $u)) |= (.password_hash = $h | .hashing_algorithm = "rabbit_password_hashing_sha256")' \
			"$defs" >"$defs.tmp" && mv "$defs.tmp" "$defs"
	done
}

fl_broker_ip() { fl_ip "b$1"; }
fl_broker_node() { echo "rabbit@$(fl_broker_ip "$1")"; }

# the environment of broker I (also what its rabbitmqctl needs)
fl_broker_env() {
	local i=$1 nd=$FL_DIR/rmq/b$1
	echo HOME="$FL_DIR/rmq/home" RABBITMQ_NODENAME="$(fl_broker_node "$i")" RABBITMQ_USE_LONGNAME=true \
		RABBITMQ_MNESIA_BASE="$nd/mnesia" RABBITMQ_LOG_BASE="$nd/log" RABBITMQ_PID_FILE="$nd/pid" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$FL_DIR/rmq/enabled_plugins" \
		RABBITMQ_CONFIG_FILE="$nd/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$nd/advanced.config" \
		RABBITMQ_CONF_ENV_FILE="$nd/rabbitmq-env.conf" ERL_CRASH_DUMP="$nd/log/erl_crash.dump" LC_ALL=C.UTF-8 LANG=C.UTF-8
}

# fl_in_uts I CMD...: CMD in broker I's namespace with the host name set to
# its IP (an Erlang long node name needs a dotted host name: the CLI's own
# node is named after it)
fl_in_uts() {
	local i=$1; shift
	# shellcheck disable=SC2046
	fl_in "b$i" env -u NOTIFY_SOCKET $(fl_broker_env "$i") \
		unshare --uts sh -c 'hostname "$0" && exec "$@"' "$(fl_broker_ip "$i")" "$@"
}

fl_ctl() { local i=$1; shift; fl_in_uts "$i" timeout 60 "$RMQ_BIN/rabbitmqctl" -q -n "$(fl_broker_node "$i")" "$@"; }

# fl_broker_conf I SAMPLE DEFS: the sample rabbitmq.conf with its addresses
# (rabbit@rmq-N -> rabbit@IP of bN) and paths (/etc/rabbitmq/ -> the node's
# folder) changed, nothing else; its TLS files and definitions in place
fl_broker_conf() {
	local i=$1 sample=$2 defs=$3 nd=$FL_DIR/rmq/b$1 j
	mkdir -p "$nd/tls" "$nd/log" "$nd/mnesia"
	local sed_nodes=""
	for j in $(seq 1 9); do sed_nodes="$sed_nodes;s|rabbit@rmq-$j\\b|rabbit@$FL_SUBNET.1$j|g"; done
	sed "s|/etc/rabbitmq/|$nd/|g$sed_nodes" "$sample" >"$nd/rabbitmq.conf"
	# settings this RabbitMQ does not know stop its boot: left out, and said
	local k dropped=""
	for k in ${FL_UNKNOWN_SETTINGS:-quorum_queue.initial_group_size default_queue_type}; do
		if grep -q "^$k *=" "$nd/rabbitmq.conf"; then
			sed -i "/^$k *=/d" "$nd/rabbitmq.conf"
			dropped="$dropped $k"
		fi
	done
	[ -z "$dropped" ] || [ "$i" != 1 ] || fl_log "left out of the sample (unknown to RabbitMQ $(fl_rmq_version)):$dropped"
	cp "$FL_DIR/tls/ca.pem" "$nd/tls/ca.pem"
	cp "$FL_DIR/tls/b$i.pem" "$nd/tls/server.pem"
	cp "$FL_DIR/tls/b$i.key" "$nd/tls/server.key"
	cp "$defs" "$nd/provbus-definitions.json"
	# the one change that is not an address or a path: the Erlang
	# distribution's tick (default 60 s, a partition is seen after 45-75 s)
	# at 10 s, so that a scenario sees a split within seconds
	echo "[{kernel, [{net_ticktime, ${FL_NET_TICKTIME:-10}}]}]." >"$nd/advanced.config"
	# the Erlang VMs (3 nodes and every rabbitmqctl, on a few shared
	# cores) do not spin waiting for work: less CPU taken from the rest of
	# the fleet, nothing changed in what the brokers do
	cat >"$nd/rabbitmq-env.conf" <<'EOT'
SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
CTL_ERL_ARGS="+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"
EOT
}

fl_broker_launch() { # fl_broker_launch I: starts node I (does not wait)
	local i=$1 nd=$FL_DIR/rmq/b$1
	rm -f "$nd/pid"
	# shellcheck disable=SC2046 # (words: NAME=VALUE pairs without spaces)
	fl_bg "b$i" "$nd/log/console.log" env -u NOTIFY_SOCKET $(fl_broker_env "$i") \
		unshare --uts sh -c 'hostname "$0" && exec "$@"' "$(fl_broker_ip "$i")" "$RMQ_BIN/rabbitmq-server"
	echo "$FL_PID" >"$nd/launcher.pid"
}
fl_rmq_version() { dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null | cut -d- -f1; }
fl_broker_wait() { # fl_broker_wait I SECS: the node booted (rabbitmqctl wait)
	local i=$1 nd=$FL_DIR/rmq/b$1 lp
	lp=$(cat "$nd/launcher.pid")
	# the pid file appears early in the boot; a node that dies before is seen here
	fl_wait "$2" bash -c "[ -s '$nd/pid' ] || ! kill -0 $lp 2>/dev/null"
	if ! kill -0 "$lp" 2>/dev/null ||
	   ! fl_in_uts "$i" timeout "$2" "$RMQ_BIN/rabbitmqctl" -n "$(fl_broker_node "$i")" wait "$nd/pid" --timeout "$2" >"$nd/log/wait.log" 2>&1; then
		echo "fleet: broker b$i did not boot; the end of $nd/log/console.log:" >&2
		tail -n 25 "$nd/log/console.log" >&2
		return 1
	fi
}

fl_brokers_start() { # fl_brokers_start N SAMPLE DEFS
	local n=$1 sample=$2 defs=$3 i
	FL_NBROKERS=$n
	mkdir -p "$FL_DIR/rmq/home"; chmod 0700 "$FL_DIR/rmq/home"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F >"$FL_DIR/rmq/home/.erlang.cookie"
	chmod 0400 "$FL_DIR/rmq/home/.erlang.cookie"
	echo "[]." >"$FL_DIR/rmq/enabled_plugins"
	for i in $(seq 1 "$n"); do fl_broker_conf "$i" "$sample" "$defs"; done
	# the first node forms the cluster, the others find it in the peer list
	fl_broker_launch 1
	fl_broker_wait 1 180 || return 1
	for i in $(seq 2 "$n"); do fl_broker_launch "$i"; done
	for i in $(seq 2 "$n"); do fl_broker_wait "$i" 180 || return 1; done
}

fl_broker_pid() { cat "$FL_DIR/rmq/b$1/pid" 2>/dev/null; }
fl_broker_kill() { # kill -9 of broker I
	local pid; pid=$(fl_broker_pid "$1")
	[ -n "$pid" ] || return 1
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -f "$FL_DIR/rmq/b$1/pid"
}
fl_broker_stop() { # broker I stopped (TERM, KILL after 20 s)
	fl_stop_pid "$(fl_broker_pid "$1")" 20
	fl_stop_pid "$(cat "$FL_DIR/rmq/b$1/launcher.pid" 2>/dev/null)" 5
	rm -f "$FL_DIR/rmq/b$1/pid"
}
fl_broker_restart() { fl_broker_launch "$1"; fl_broker_wait "$1" 180; }

# fl_cluster_view I: "RUNNING PARTITIONS" as broker I sees them (or nothing)
fl_cluster_view() {
	fl_ctl "$1" eval 'io:format("~b ~b~n", [length(rabbit_nodes:all_running()), length(rabbit_node_monitor:partitions())]).' 2>/dev/null | head -n 1
}
