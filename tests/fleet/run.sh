#!/usr/bin/env bash
# tests/fleet/run.sh [SCENARIO...]   (make partition; root)
#
# A fleet of separate hosts, each a network namespace on a private bridge
# (tests/fleet/lib.sh): three RabbitMQ nodes b1-b3 clustered over that
# network with the project's sample configuration (deploy/rabbitmq/
# rabbitmq.conf: TLS only, client certificates, quorum queues,
# pause_minority, definitions from provbus-schema export with one user per
# node), publisher hosts p1-p2 running provbus-publish in a loop and
# consumer hosts c1-c3 running the provbus-consumer daemon, every program
# given the URLs of all three brokers (each host its own order). Then the
# scenarios, one after the other, each with its own service and keys:
#
#   minority     b1 cut off from b2 and b3 (pause_minority stops it), healed
#   consumer-cut c2 cut off from the broker it is connected to, the cluster fine
#   netem        p1's link drops 30% of packets and delays them 200 ms
#   heal-burst   b2 cut off; the partition heals while publishers burst
#   kill9        b3 cut off, then killed with -9; healed, restarted
#   flap         b1's link down and up (3/6/9 s down, 3 s up) for FL_FLAP_S
#
# The checker (Jepsen style): every event whose publisher run exited 0
# (confirmed) or 75 (spooled; flushed at the end of the scenario) must be
# in every consumer's audit log exactly once with a verdict that is not
# `duplicate` (lost = never; double = more than once); every consumer
# converges (its env file holds each key's value from the providers' last
# announcements, its last run succeeded with them, nothing pending), no
# two runs of one consumer overlap, and no daemon exits. One row per
# scenario: sent, confirmed, spooled, audited, lost, duplicates detected,
# seconds from the heal to convergence.
#
#   PB_BIN (default bin)   the programs under test
#   FL_SHORT=1             short holds (the reliability short form)
#   FL_FLAP_S (default 36) how long the flapping lasts
#   FL_KEYS (default 3)    keys per announcement
#   FL_OUT                 where logs go (default a temp dir; kept on failure
#                          or with FL_KEEP=1); FL_RESULTS: a file that gets
#                          the table
# Exit 0 when every scenario passed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
PB_BIN=${PB_BIN:-$ROOT/bin}
[[ $PB_BIN == /* ]] || PB_BIN=$ROOT/$PB_BIN
PB_TOOLS=${PB_TOOLS:-$ROOT/build/tools}	# pbtest-delay (the relay, without netem)
[[ $PB_TOOLS == /* ]] || PB_TOOLS=$ROOT/$PB_TOOLS
export PATH="$PB_BIN:$PATH" LC_ALL=C.UTF-8
# shellcheck disable=SC1091
. "$ROOT/tests/fleet/lib.sh"

ALL_SCENARIOS="minority consumer-cut netem heal-burst kill9 flap"
SCENARIOS=${*:-$ALL_SCENARIOS}
for s in $SCENARIOS; do
	case " $ALL_SCENARIOS " in *" $s "*) ;; *) echo "fleet: unknown scenario $s (want: $ALL_SCENARIOS)" >&2; exit 64 ;; esac
done
for p in provbus-publish provbus-consumer provbus-schema provbus-fleet; do
	[ -x "$PB_BIN/$p" ] || { echo "fleet: $PB_BIN/$p missing: make" >&2; exit 1; }
done
NKEYS=${FL_KEYS:-3}
SHORT=${FL_SHORT:-}
hold() { # hold FULL SHORT: a fault's duration in seconds
	if [ -n "$SHORT" ]; then echo "$2"; else echo "$1"; fi
}
OUT=${FL_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/provbus-partition.XXXXXX")}
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
T0=$(date +%s)
fl_init "$OUT"

PUBS="p1 p2"
CONS="c1 c2 c3"
NB=3
V=%2Fprovbus
FAILED=()
SCEN_TIMES=""
declare -A CPID

fl_before_cleanup() {
	if [ -s "$RESULTS" ]; then
		echo; column -t <"$RESULTS"
		[ -z "${FL_RESULTS:-}" ] || cp "$RESULTS" "$FL_RESULTS"
	fi
}

# --- the hosts
fl_host b1 "$FL_SUBNET.11"; fl_host b2 "$FL_SUBNET.12"; fl_host b3 "$FL_SUBNET.13"
fl_host p1 "$FL_SUBNET.21"; fl_host p2 "$FL_SUBNET.22"
fl_host c1 "$FL_SUBNET.31"; fl_host c2 "$FL_SUBNET.32"; fl_host c3 "$FL_SUBNET.33"
fl_host o1 "$FL_SUBNET.41"	# the observer: provbus-fleet, never faulted
fl_log "hosts up on $FL_SUBNET.0/24 (namespaces $FL_ID-*)"
fl_certs b1 b2 b3 $PUBS $CONS o1
# the netem scenario's 200 ms: tc netem where the kernel has it; else
# (gVisor has no sch_netem) p1 reaches the brokers through a delay relay
# on its own loopback (tests/tools/pbtest-delay, off until the fault),
# and the loss comes from nftables on its eth0
RELAY=""
if ! fl_netem_probe p1; then
	fl_relay p1 200 "56711=$FL_SUBNET.11:5671" "56712=$FL_SUBNET.12:5671" "56713=$FL_SUBNET.13:5671" &&
		RELAY=p1
	fl_log "no tc netem here ($(head -n 1 "$OUT/netem.err")): $([ -n "$RELAY" ] && echo "p1 reaches the brokers through a delay relay on its loopback" || echo "no delay relay either (netem-loss-only)")"
fi

# --- every scenario's service and keys, known from the start: the
# consumers require them all, so their queues are bound once
keys_of() { local s=$1 k; for k in $(seq 1 "$NKEYS"); do printf 'S%s_K%s ' "$s" "$k"; done; }
scen_index() { local i=0 s; for s in $ALL_SCENARIOS; do i=$((i + 1)); [ "$s" = "$1" ] && echo $i; done; }
ALL_KEYS=""
for s in $ALL_SCENARIOS; do ALL_KEYS="$ALL_KEYS$(keys_of "$(scen_index "$s")")"; done

cat >"$OUT/topology.json" <<EOT
{"vhost": "/provbus", "federations": {"fleet": {"regions": ["r1"]}},
 "nodes": [$(for n in $PUBS $CONS; do printf '%s{"name": "%s", "federation": "fleet", "region": "r1"}' "${sep:-}" "$n"; sep=", "; done)]}
EOT
fl_credentials "$OUT/topology.json" "$OUT/definitions.json"
fl_log "definitions: provbus-schema export, users and passwords: $FL_CRED_MODE"
tb=$(date +%s)
fl_brokers_start $NB "$ROOT/deploy/rabbitmq/rabbitmq.conf" "$OUT/definitions.json" || exit 1
cluster_whole() { # cluster_whole I: broker I sees all nodes running, no partition
	[ "$(fl_cluster_view "$1")" = "$NB 0" ]
}
FL_POLL=1 fl_wait 120 cluster_whole 1 || { echo "fleet: the cluster did not form: b1 sees '$(fl_cluster_view 1)'" >&2; exit 1; }
defs_loaded() { fl_ctl 1 list_exchanges -p /provbus name 2>/dev/null | grep -qx provbus.fleet; }
FL_POLL=1 fl_wait 60 defs_loaded ||
	{ echo "fleet: the definitions were not loaded (no exchange provbus.fleet)" >&2; exit 1; }
# the definitions made the history stream when b1 was alone: its only
# replica is there, and a consumer connected elsewhere cannot read it for
# its catch-up (406 "does not have a replica on the local node"). The
# operator's step after the cluster formed: a replica on every node.
# One replica at a time, each waited for (the stream's status, asked
# through the new member's node, lists that node): adding them as fast as
# the CLI goes left, twice in eight boots, a node whose stream coordinator
# never started ("ra: failed to start a server rabbit_stream_coordinator")
# and streams that answered every publish and read with 541/506 "Stream
# not found".
stream_has() { # stream_has I ST: broker I's view of stream ST lists node I
	fl_in_uts "$1" timeout 30 "$RMQ_BIN/rabbitmq-streams" -q -n "$(fl_broker_node "$1")" stream_status --vhost /provbus "$2" \
		2>/dev/null | grep -q "$(fl_broker_node "$1")"
}
for st in provbus.fleet.history provbus.fleet.fleet; do
	for i in $(seq 2 $NB); do
		fl_in_uts 1 timeout 60 "$RMQ_BIN/rabbitmq-streams" -q -n "$(fl_broker_node 1)" add_replica --vhost /provbus \
			"$st" "$(fl_broker_node "$i")" >>"$OUT/streams.log" 2>&1 ||
			fl_log "could not add a replica of $st on b$i: $(tail -n 1 "$OUT/streams.log")"
		FL_POLL=1 fl_wait 60 stream_has "$i" "$st" || fl_log "b$i does not list itself in $st's status 60 s after add_replica"
	done
done
BOOT_S=$(( $(date +%s) - tb ))
fl_log "3 brokers clustered in $BOOT_S s: $(for i in 1 2 3; do printf '%s ' "$(fl_broker_node $i)"; done)"

urls_from() { # urls_from NODE I: the broker URLs for NODE, starting at broker I
	local n=$1 i=$2 j out=""
	local b
	for j in 0 1 2; do
		b=$(( (i - 1 + j) % NB + 1 ))
		if [ "$n" = "$RELAY" ]; then out="$out${out:+, }\"amqps://$n@127.0.0.1:5671$b/$V\""
		else out="$out${out:+, }\"amqps://$n@$(fl_broker_ip $b):5671/$V\""; fi
	done
	echo "[$out]"
}
# verify_hostname is off: the brokers are known by IP, and rabbitmq-c checks
# a certificate's DNS names only (the chain is still verified against the CA)
node_conf() { # node_conf NODE FIRST-BROKER [CONSUMER-MEMBERS]
	local n=$1 d=$OUT/$1 cons=""
	mkdir -p "$d/services.d" "$d/state"
	[ -z "${3:-}" ] || cons=$(printf ',\n  "consumer": {%s}' "$3")
	cat >"$d/provbus.json" <<EOT
{
  "node": "$n", "federation": "fleet", "region": "r1", "host": "$(fl_ip "$n")",
  "broker": {"urls": $(urls_from "$n" "$2"), "password_file": "$FL_DIR/creds/$n",
    "tls": {"ca": "$FL_DIR/tls/ca.pem", "cert": "$FL_DIR/tls/$n.pem", "key": "$FL_DIR/tls/$n.key", "verify_hostname": false},
    "heartbeat_s": 5},
  "services_dir": "$d/services.d",
  "state_dir": "$d/state"$cons
}
EOT
}

# a provision command that records each run and succeeds
cat >"$OUT/provision.sh" <<'EOT'
#!/bin/sh
echo "$(date +%s%3N) ${PROVBUS_REASON:-?} ${PROVBUS_RUN_ID:-?}" >>"$1"
exit 0
EOT
chmod +x "$OUT/provision.sh"

i=0
for c in $CONS; do
	i=$((i + 1))
	node_conf "$c" "$i" "\"env_file\": \"$OUT/$c/app.env\", \"provision\": [\"$OUT/provision.sh\", \"$OUT/$c/runs.log\"],
    \"quiet_ms\": 300, \"max_wait_ms\": 3000, \"throttle\": {\"runs\": 1000, \"per_s\": 60},
    \"retry\": {\"max\": 5, \"base_ms\": 200}, \"lock_file\": \"$OUT/$c/provision.lock\", \"queue_type\": \"quorum\""
	req=""
	for k in $ALL_KEYS; do req="$req${req:+, }\"E_$k\": \"{$k}\""; done
	echo "{\"id\": \"app-$c\", \"requires\": {$req}}" >"$OUT/$c/services.d/app.json"
	fl_bg "$c" "$OUT/$c.log" provbus-consumer -c "$OUT/$c/provbus.json" -f run
	CPID[$c]=$FL_PID
done
i=0
for p in $PUBS; do i=$((i + 1)); node_conf "$p" "$i"; done
# the observer o1: provbus-fleet as the export's provbus-observer user
# (read on the fleet and history streams, nothing else), one configuration
# per broker (via-bI.json: that broker's URL only), as a stream is read
# from the replica on the node a client is connected to
node_conf o1 1
sed -i "s|amqps://o1@|amqps://provbus-observer@|g; s|creds/o1\"|creds/provbus-observer\"|" "$OUT/o1/provbus.json"
for i in $(seq 1 $NB); do
	jq --arg u "amqps://provbus-observer@$(fl_broker_ip "$i"):5671/$V" '.broker.urls = [$u]' "$OUT/o1/provbus.json" >"$OUT/o1/via-b$i.json"
done
fleet() { local i=$1; shift; fl_in o1 env XDG_CACHE_HOME="$OUT/o1/cache" timeout -k 1 90 provbus-fleet -c "$OUT/o1/via-b$i.json" "$@"; }

status() { timeout -k 1 5 provbus-consumer -c "$OUT/$1/provbus.json" status 2>/dev/null; }
idle() { kill -0 "${CPID[$1]}" 2>/dev/null || { echo "fleet: $1 exited" >&2; exit 1; }; [ "$(status "$1" | jq -r '[.connected, .state] | @tsv' 2>/dev/null)" = "$(printf 'true\tidle')" ]; }
all_idle() { local c; for c in $CONS; do idle "$c" || return 1; done; }
# Seen twice in eight boots (RabbitMQ 3.10.8): a node that joined logs
# "ra: failed to start a server rabbit_stream_coordinator" and from then on
# every read of a stream through it ends in 541 INTERNAL_ERROR, so its
# consumers never settle. The remedy tried: restart the nodes that joined
# (b2..bN) once, and say so.
BOOT_RESTARTS=0
if ! fl_wait 60 all_idle; then
	fl_log "consumers not settled after 60 s ($(for c in $CONS; do printf '%s:%s ' "$c" "$(status "$c" | jq -r .state)"; done)): restarting b2..b$NB"
	for i in $(seq 2 $NB); do fl_broker_stop "$i"; fl_broker_restart "$i" || exit 1; BOOT_RESTARTS=$((BOOT_RESTARTS + 1)); done
	FL_POLL=1 fl_wait 120 cluster_whole 1 || { echo "fleet: the cluster did not form again" >&2; exit 1; }
fi
fl_wait 120 all_idle || { echo "fleet: the consumers did not connect and settle:" >&2; for c in $CONS; do echo "$c: $(status "$c")" >&2; tail -n 5 "$OUT/$c.log" >&2; done; exit 1; }
fl_log "consumers up: $(for c in $CONS; do printf '%s->%s ' "$c" "$(status "$c" | jq -r .broker | sed 's|.*@||; s|:.*||')"; done)"

# ----------------------------------------------------------- publishers
set_gen() { # set_gen P S GEN: P's manifest of service sS announces GEN
	local p=$1 s=$2 g=$3 k prov=""
	for k in $(keys_of "$s"); do prov="$prov${prov:+, }\"$k\": \"http://{NODE}/$k/{GEN}\""; done
	echo "{\"id\": \"s$s\", \"environment\": {\"GEN\": \"$g\"}, \"provides\": {$prov}}" >"$OUT/$p/services.d/s$s.json.tmp"
	mv "$OUT/$p/services.d/s$s.json.tmp" "$OUT/$p/services.d/s$s.json"
}
pub_loop() { # pub_loop P S DIR: announces service sS, GEN 1, 2, ... until DIR/stop
	local p=$1 s=$2 d=$3 g=0 rc t
	while [ ! -e "$d/stop" ]; do
		g=$((g + 1))
		set_gen "$p" "$s" "$g"
		t=$(fl_now)
		fl_in "$p" provbus-publish -c "$OUT/$p/provbus.json" --timeout 5 provides "s$s" >>"$d/$p.publish.log" 2>&1
		rc=$?
		echo "$g $rc $t $(fl_now)" >>"$d/$p.runs"
		[ -e "$d/burst" ] || sleep 0.3
	done
}
# warm_up: every publisher gets a confirm for an announcement (service s0,
# which no consumer requires: it goes to the history stream only) before
# the first scenario. Seen once under heavy load: a node whose stream
# coordinator never formed ("coordinator unavailable") confirmed nothing
# for good; that is said here, not in a scenario's figures.
warm_up() {
	local p
	for p in $PUBS; do
		echo '{"id": "s0", "provides": {"S0_K": "http://{NODE}/S0"}}' >"$OUT/$p/services.d/s0.json"
		FL_POLL=1 fl_wait 90 fl_in "$p" provbus-publish -c "$OUT/$p/provbus.json" --timeout 5 provides s0 >>"$OUT/$p.warmup.log" 2>&1 ||
			{ echo "fleet: $p gets no confirm from the cluster after 90 s: $(tail -n 1 "$OUT/$p.warmup.log")" >&2; return 1; }
		rm -f "$OUT/$p/services.d/s0.json"
	done
}
spooled() { fl_in "$1" provbus-publish -c "$OUT/$1/provbus.json" --dry-run flush 2>/dev/null | grep -c '"id"'; }
flush_all() { # flush_all DIR [TRIES]: every publisher's outbox sent; 1 if one stays
	local p d=$1 n
	for p in $PUBS; do
		for _ in $(seq 1 "${2:-20}"); do
			n=$(spooled "$p")
			[ "${n:-1}" -eq 0 ] && break
			fl_in "$p" provbus-publish -c "$OUT/$p/provbus.json" --timeout 10 flush >>"$d/$p.publish.log" 2>&1 ||
				sleep 1
		done
		n=$(spooled "$p")
		[ "${n:-1}" -eq 0 ] || { echo "# $p: $n events still spooled"; return 1; }
	done
}

# ---------------------------------------------------------------- checker
# expected DIR S: DIR/expected.csv (node,service,key,value) for every run
# that exited 0 or 75; DIR/final: the env lines every consumer must end with
expected() {
	local d=$1 s=$2 p g rc k last vals
	: >"$d/expected.csv"
	for p in $PUBS; do
		[ -f "$d/$p.runs" ] || continue
		while read -r g rc _ _; do
			case $rc in 0 | 75) for k in $(keys_of "$s"); do echo "$p,s$s,$k,http://$p/$k/$g"; done >>"$d/expected.csv" ;; esac
		done <"$d/$p.runs"
	done
	: >"$d/final"
	for k in $(keys_of "$s"); do
		vals=""
		for p in $PUBS; do
			last=$(awk '$2 == 0 || $2 == 75 {g = $1} END {print g}' "$d/$p.runs" 2>/dev/null)
			[ -z "$last" ] || vals="$vals http://$p/$k/$last"
		done
		vals=$(echo "$vals" | tr ' ' '\n' | sed '/^$/d' | LC_ALL=C sort -u | paste -sd, -)
		[ -z "$vals" ] || echo "export E_$k='$vals'" >>"$d/final"
	done
}
# audit_counts C DIR S: "audited lost double dups invalid extra" for consumer C
audit_counts() {
	local c=$1 d=$2 s=$3 db=$OUT/$1/state/audit.db
	sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 10000' "$db" \
		"CREATE TEMP TABLE exp(node TEXT, service TEXT, key TEXT, value TEXT);" \
		".import --csv --schema temp $d/expected.csv exp" \
		"CREATE TEMP TABLE got AS SELECT e.node, e.key, e.value,
		   (SELECT count(*) FROM main.events v WHERE v.node = e.node AND v.service = e.service
		     AND v.key = e.key AND v.value = e.value AND v.verdict IN ('applied', 'stale')) AS n
		   FROM exp e;" \
		"SELECT (SELECT count(*) FROM got WHERE n >= 1), (SELECT count(*) FROM got WHERE n = 0),
		   (SELECT count(*) FROM got WHERE n > 1),
		   (SELECT count(*) FROM main.events WHERE service = 's$s' AND verdict = 'duplicate'),
		   (SELECT count(*) FROM main.events WHERE verdict = 'invalid'),
		   (SELECT count(*) FROM main.events v WHERE v.service = 's$s' AND v.verdict IN ('applied', 'stale')
		     AND NOT EXISTS (SELECT 1 FROM exp e WHERE e.node = v.node AND e.key = v.key AND e.value = v.value));"
}
overlapping_runs() { # overlapping_runs C: runs of C that started before the previous one finished
	sqlite3 -batch -noheader -cmd '.timeout 10000' "$OUT/$1/state/audit.db" \
		"SELECT count(*) FROM runs a JOIN runs b ON b.id = (SELECT min(id) FROM runs WHERE id > a.id)
		 WHERE b.started_at IS NOT NULL AND a.finished_at IS NOT NULL AND b.started_at < a.finished_at;"
}
converged() { # converged C DIR: env file has every final line, last run ok, nothing pending
	local c=$1 d=$2 st
	st=$(status "$c") || return 1
	[ "$(jq -r '[.connected, .state, .pending, .last_run.exit_status] | @tsv' <<<"$st")" = "$(printf 'true\tidle\tfalse\t0')" ] || return 1
	grep -qvxFf "$OUT/$c/app.env" "$d/final" && return 1
	return 0
}
all_converged() { local c; for c in $CONS; do converged "$c" "$1" || return 1; done; }
# The fleet's own view, from o1 (provbus-fleet reads the fleet and history
# streams) through broker I. fleet_view I writes OUT/fleet-bI: the env
# lines every consumer must have by the providers provbus-fleet computes
# (values of a key sorted, joined by commas, as the consumer writes them;
# every consumer requires every key of the scenarios, in the one region,
# so those keys' providers in the federation are each consumer's:
# `providers --node C` prints the same), and OUT/fleet-bI.conv: provbus-fleet converged --json.
fleet_view() {
	local i=$1 prc
	# shellcheck disable=SC2086 # (the keys, one word each)
	fleet "$i" providers $ALL_KEYS --json >"$OUT/fleet-b$i.json" 2>>"$OUT/fleet.err"
	prc=$?
	jq -rs 'group_by(.key)[] | "export E_\(.[0].key)='"'"'\(map(.value) | unique | join(","))'"'"'"' "$OUT/fleet-b$i.json" |
		LC_ALL=C sort >"$OUT/fleet-b$i"
	fleet "$i" converged --json >"$OUT/fleet-b$i.conv" 2>>"$OUT/fleet.err"
	# unreadable: provbus-fleet could not read the streams through bI (an
	# error, exit 69/75/77/78: no view at all), as opposed to a view
	# (converged exits 0 or 1)
	case "$prc $?" in "0 0" | "0 1") rm -f "$OUT/fleet-b$i.unreadable" ;; *) touch "$OUT/fleet-b$i.unreadable" ;; esac
}
fleet_agrees() { # fleet_agrees C I: C's env file holds exactly the last fleet_view I
	[ -s "$OUT/fleet-b$2" ] && [ "$(cat "$OUT/fleet-b$2")" = "$(grep '^export E_' "$OUT/$1/app.env" | LC_ALL=C sort)" ]
}
fleet_converged() { # fleet_converged C I: the last fleet_view I has C converged
	jq -se --arg c "$1" 'any(.[]; .node == $c and .converged == true)' "$OUT/fleet-b$2.conv" >/dev/null 2>&1
}
fleet_view_ok() { # fleet_view_ok I: through broker I, every consumer converged and agrees
	local c; fleet_view "$1"
	for c in $CONS; do fleet_converged "$c" "$1" && fleet_agrees "$c" "$1" || return 1; done
}
FLEET_TODO=""
fleet_todo_ok() { # the brokers in FLEET_TODO whose view is not right yet stay there
	local i left=""
	for i in $FLEET_TODO; do fleet_view_ok "$i" || left="$left $i"; done
	FLEET_TODO=$left
	[ -z "$left" ]
}
all_audited() { # all_audited DIR S: no consumer still misses an expected event
	local c
	for c in $CONS; do [ "$(audit_counts "$c" "$1" "$2" | cut -d' ' -f2)" = 0 ] || return 1; done
}

# -------------------------------------------------------------- scenarios
conn_ip() { status "$1" | jq -r .broker | sed 's|.*@||; s|:.*||'; }
broker_of_ip() { local i; for i in $(seq 1 $NB); do [ "$(fl_broker_ip "$i")" = "$1" ] && echo "$i"; done; }
others() { local i; for i in $(seq 1 $NB); do [ "$i" = "$1" ] || printf '%s ' "$(fl_broker_ip "$i")"; done; }
cut_broker() { # cut_broker I: broker I and the other brokers no longer reach each other
	# shellcheck disable=SC2046
	fl_cut "b$1" $(others "$1")
}
# whole_after_heal VICTIM: waits for the cluster to be whole again, seen
# from every node. pause_minority brings a paused node back by itself when
# it sees the majority again, but RabbitMQ 3.10 (Erlang 25) does not always
# make it: seen here, a node whose restart hangs after "Faking
# nodedown/nodeup" (global), and a cut shorter than the failure detection
# that leaves a partition on record with every node running, which nothing
# heals. The operator's remedy, a restart of the node, is applied to
# VICTIM after FL_HEAL_WAIT (default 40) seconds, and the row says so
# (manual_heal 1).
whole_after_heal() {
	local v=$1 i
	for i in $(seq 1 $NB); do
		FL_POLL=1 fl_wait "${FL_HEAL_WAIT:-40}" cluster_whole "$i" && continue
		fl_log "b$i still sees '$(fl_cluster_view "$i")' (running, partitions) after ${FL_HEAL_WAIT:-40} s more: restarting b$v"
		MANUAL_HEAL=1
		fl_broker_stop "$v"
		fl_broker_restart "$v"
		break
	done
	for i in $(seq 1 $NB); do FL_POLL=1 fl_wait 120 cluster_whole "$i" || { echo "# b$i sees '$(fl_cluster_view "$i")' after the heal"; return 1; }; done
}

run_scenario() { # run_scenario NAME
	local name=$1 s d p c n t_heal t_conv rc=0 fault_ok=1 line victim=0 label=$1 restart=""
	local t_start; t_start=$(date +%s)
	MANUAL_HEAL=0
	s=$(scen_index "$name")
	d=$OUT/scenario-$name
	mkdir -p "$d"
	fl_log "== $name (service s$s, keys $(keys_of "$s"))"
	PUB_PIDS=()
	for p in $PUBS; do pub_loop "$p" "$s" "$d" & PUB_PIDS+=($!); fl_track $!; done
	sleep 2 # the flow runs before the fault
	case $name in
	minority)
		fl_log "cut b1 off from b2, b3 for $(hold 30 25) s"
		victim=1; cut_broker 1; sleep "$(hold 30 25)"
		fl_uncut b1; t_heal=$(fl_now) ;;
	consumer-cut)
		local ip; ip=$(conn_ip c2)
		[ -n "$ip" ] && [ "$ip" != null ] || { echo "# c2 not connected before the fault"; fault_ok=0; }
		fl_log "cut c2 off from its broker $ip for $(hold 15 10) s"
		fl_cut c2 "$ip"; sleep "$(hold 15 10)"
		fl_log "c2 now on $(conn_ip c2)"
		fl_uncut c2; t_heal=$(fl_now) ;;
	netem)
		fl_log "p1's link: 30% loss, 200 ms delay for $(hold 20 10) s"
		fl_netem p1 loss 30% delay 200ms || fault_ok=0
		sleep "$(hold 20 10)"
		fl_netem p1; t_heal=$(fl_now)
		if [ "${FL_NETEM_MODE:-}" = nft-loss+relay-delay ]; then
			local delayed; delayed=$(fl_relay_delayed)
			fl_log "the relay delayed ${delayed:-0} bytes of p1's"
			[ "${delayed:-0}" -gt 0 ] || { echo "# the delay relay delayed nothing: p1 did not go through it"; fault_ok=0; }
		fi
		[ "${FL_NETEM_MODE:-}" != nft-loss-only ] || label=netem-loss-only ;;
	heal-burst)
		fl_log "cut b2 off, $(hold 25 25) s; burst; heal 2 s into it"
		victim=2; cut_broker 2; sleep "$(hold 25 25)"
		touch "$d/burst"; sleep 2
		fl_uncut b2; t_heal=$(fl_now)
		sleep "$(hold 8 4)" ;;
	kill9)
		fl_log "cut b3 off, then kill -9 it"
		victim=3; cut_broker 3; sleep "$(hold 20 20)"
		fl_broker_kill 3 || fault_ok=0
		sleep "$(hold 8 4)"
		fl_uncut b3; t_heal=$(fl_now)
		restart=3 ;;	# after the figures: the fleet must converge without it
	flap)
		local end downs=(3 6 9) k=0
		end=$(( $(date +%s) + ${FL_FLAP_S:-36} ))
		fl_log "b1's link flapping for ${FL_FLAP_S:-36} s"; victim=1
		while [ "$(date +%s)" -lt "$end" ]; do
			fl_link b1 down; sleep "${downs[$((k % 3))]}"; fl_link b1 up; sleep 3; k=$((k + 1))
		done
		t_heal=$(fl_now) ;;
	esac
	touch "$d/stop"
	for p in "${PUB_PIDS[@]}"; do wait "$p"; done
	fl_log "healed; publishers stopped $(( ($(fl_now) - t_heal) / 1000 )) s after"
	# the outboxes: a cluster that is not whole again may refuse them for
	# minutes (seen: the streams of a minority that did not come back,
	# "Stream not found", every publish closed with 541): after 6 tries,
	# the cluster is made whole first (the operator's remedy, below), then
	# the flush goes on
	if ! flush_all "$d" 6; then
		fl_log "outboxes not empty: the cluster first"
		[ "$victim" = 0 ] || whole_after_heal "$victim" || fault_ok=0
		flush_all "$d" || rc=1
	fi
	expected "$d" "$s"
	fl_wait 120 all_audited "$d" "$s"
	fl_log "flushed, audited $(( ($(fl_now) - t_heal) / 1000 )) s after the heal"
	fl_wait 120 all_converged "$d" || { rc=1; for c in $CONS; do converged "$c" "$d" || echo "# $c did not converge: $(status "$c" | jq -c '{connected, state, pending, last_run}')"; done; }
	fl_log "converged $(( ($(fl_now) - t_heal) / 1000 )) s after the heal"
	# converged at: the end of the last run of the consumer that got there
	# last (the run that applied the final values), not when this script
	# looked (its broker checks are slow)
	t_conv=0
	for c in $CONS; do
		n=$(date -d "$(status "$c" | jq -r '.last_run.finished_at // empty')" +%s%3N 2>/dev/null) || n=$(fl_now)
		[ "${n:-0}" -gt "$t_conv" ] || continue
		t_conv=$n
	done
	[ "$t_conv" -gt 0 ] || t_conv=$(fl_now)
	[ "$t_conv" -ge "$t_heal" ] || t_conv=$t_heal	# there before the heal
	# the figures
	local sent=0 conf=0 spool=0 other=0 n
	for p in $PUBS; do
		n=$(wc -l <"$d/$p.runs"); sent=$((sent + n * NKEYS))
		conf=$((conf + $(awk '$2 == 0' "$d/$p.runs" | wc -l) * NKEYS))
		spool=$((spool + $(awk '$2 == 75' "$d/$p.runs" | wc -l) * NKEYS))
		other=$((other + $(awk '$2 != 0 && $2 != 75' "$d/$p.runs" | wc -l) * NKEYS))
	done
	local exp aud=0 lost=0 dbl=0 dups=0 inv=0 extra=0 a l b u v x ov=0 dead=0
	exp=$(wc -l <"$d/expected.csv")
	for c in $CONS; do
		read -r a l b u v x <<<"$(audit_counts "$c" "$d" "$s")"
		aud=$((aud + a)); lost=$((lost + l)); dbl=$((dbl + b)); dups=$((dups + u)); inv=$((inv + v)); extra=$((extra + x))
		[ "$l" = 0 ] && [ "$b" = 0 ] || echo "# $c: $l lost, $b audited more than once"
		n=$(overlapping_runs "$c"); ov=$((ov + n))
		kill -0 "${CPID[$c]}" 2>/dev/null || { dead=$((dead + 1)); echo "# $c exited: $(tail -n 3 "$OUT/$c.log")"; }
	done
	# the cluster whole again before the next scenario (a broker fault only)
	if [ -n "$restart" ]; then fl_log "restarting b$restart"; fl_broker_restart "$restart" || fault_ok=0; fi
	if [ "$victim" != 0 ]; then whole_after_heal "$victim" || fault_ok=0; fi
	# the fleet as provbus-fleet sees it, through each broker once the
	# cluster is whole (a node left out serves its own, stale, replica of
	# the streams): every consumer converged, its values those of the
	# providers the fleet stream says it counts. fleet_view: the brokers
	# through which all of that held.
	local fleet_view i unread=0
	FLEET_TODO=$(seq 1 $NB)
	FL_POLL=1 fl_wait 60 fleet_todo_ok
	fleet_view=$((NB - $(wc -w <<<"$FLEET_TODO")))
	for i in $FLEET_TODO; do
		if [ -e "$OUT/fleet-b$i.unreadable" ]; then
			unread=$((unread + 1))
			echo "# the fleet through b$i: unreadable ($(tail -n 1 "$OUT/fleet.err"))"
			continue
		fi
		for c in $CONS; do
			fleet_converged "$c" "$i" || echo "# the fleet through b$i: $c not converged: $(jq -c --arg c "$c" 'select(.node == $c)' "$OUT/fleet-b$i.conv")"
			fleet_agrees "$c" "$i" && continue
			echo "# $c: env file and provbus-fleet providers through b$i differ:"
			diff "$OUT/fleet-b$i" <(grep '^export E_' "$OUT/$c/app.env" | LC_ALL=C sort) | sed 's/^/#   /'
		done
	done
	# every view read must be right, and a majority of the brokers give one
	[ $((fleet_view + unread)) -eq "$NB" ] && [ $((fleet_view * 2)) -gt "$NB" ] || rc=1
	fl_log "the fleet's view checked $(( ($(fl_now) - t_heal) / 1000 )) s after the heal"
	local conv_s
	conv_s=$(awk -v ms="$((t_conv - t_heal))" 'BEGIN {printf "%.1f", ms / 1000}')
	[ "$lost" -eq 0 ] && [ "$dbl" -eq 0 ] && [ "$inv" -eq 0 ] && [ "$ov" -eq 0 ] && [ "$dead" -eq 0 ] &&
		[ "$fault_ok" -eq 1 ] && [ "$aud" -eq $((exp * $(wc -w <<<"$CONS"))) ] || rc=1
	local verdict=PASS; [ $rc -eq 0 ] || { verdict=FAIL; FAILED+=("$name"); }
	[ -s "$RESULTS" ] || echo "scenario sent confirmed spooled unconfirmed audited/expected lost double duplicates converge_s manual_heal fleet_view fleet_unreadable result" >>"$RESULTS"
	line="$label $sent $conf $spool $other $aud/$((exp * $(wc -w <<<"$CONS"))) $lost $dbl $dups $conv_s $MANUAL_HEAL $fleet_view/$NB $unread $verdict"
	echo "$line" >>"$RESULTS"
	SCEN_TIMES="$SCEN_TIMES $name $(( $(date +%s) - t_start )) s,"
	fl_log "$line (invalid $inv, unexpected-but-audited $extra, overlapping runs $ov, daemons exited $dead)"
}

tw=$(date +%s)
warm_up || exit 1
fl_log "every publisher confirmed in $(( $(date +%s) - tw )) s"
BOOT_S=$(( $(date +%s) - tb ))
for sc in $SCENARIOS; do run_scenario "$sc"; done
if [ -n "${FL_HOLD:-}" ]; then	# a look at the fleet before it goes: rm the file
	touch "$OUT/hold"; fl_log "holding until $OUT/hold is removed"
	while [ -e "$OUT/hold" ]; do sleep 1; done
fi
fl_log "done in $(( $(date +%s) - T0 )) s (fleet up $BOOT_S s: boot, cluster, consumers, a first confirm, $BOOT_RESTARTS nodes restarted at boot;${SCEN_TIMES%,}); load average $(cut -d' ' -f1-3 /proc/loadavg); fleet: $NB brokers, $(wc -w <<<"$PUBS") publishers, $(wc -w <<<"$CONS") consumers, $NKEYS keys per announcement"
if [ ${#FAILED[@]} -gt 0 ]; then
	echo "FAILED: ${FAILED[*]}"
	exit 1
fi
exit 0
