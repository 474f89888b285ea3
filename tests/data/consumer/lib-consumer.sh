# tests/data/consumer/lib-consumer.sh — helpers of the t-consumer-*.sh
# scripts, sourced after tests/integration/lib.sh and pb_setup.
#
#   pbc_init NODE [REGION] [CONSUMER-JSON-MEMBERS] [EXTRA-TOP-MEMBERS]
#                         topology of federation $F with regions us-east-1
#                         and eu-west-1 applied (once), a node config in $C,
#                         its services dir $SD, state dir $ST, runs log $RUNS
#                         (PBC_NO_APPLY=1: only write the topology file);
#                         the provision command sleeps the seconds in
#                         $T/NODE.sleep and exits with $T/NODE.exit (when
#                         those files exist); while $T/NODE.hold exists a
#                         run does not end
#   pbc_manifest ID REQUIRES-JSON   writes $SD/ID.json requiring those
#   pbc_ev KIND REGION NODE SERVICE KEY VALUE SEQ [TTL] [ID]
#                         one "ROUTING_KEY<TAB>BODY" line of a v1 event
#   pbc_gen N NODES [KEY] [REGION] [SEQ0]  N event lines from NODES nodes (fast)
#   pbc_pub               publishes stdin's lines to provbus.$F (confirmed)
#   pbc_start [NAME]      starts the daemon (-vv, log $T/NAME.log), waits for
#                         it to be connected; its pid in $CPID
#   pbc_stop              SIGTERM, waits; its exit status in $CRC
#   pbc_sql QUERY         sqlite3 on the audit log
#   pbc_status [JQ ARGS]  status JSON (through jq -r ARGS when given)
#   pbc_runs              the number of runs started (lines "start" in $RUNS)
#   pbc_wait_rows N [WHERE]  waits (20 s) for N audit rows (WHERE clause)
#   pbc_wait_eq S WANT CMD... / pbc_wait_ge S MIN CMD...  waits until CMD's
#                         output is WANT / at least MIN (CMD runs each time)
#   pbc_wait_status JQ WANT [S]  waits until status | jq -c JQ prints WANT
PBC_DATA=$PB_ROOT/tests/data/consumer
F=${F:-pbc}

pbc_init() {
	local node=$1 region=${2:-us-east-1} cons=${3:-} top=${4:-}
	if [ ! -f "$T/.applied" ]; then
		pb_topology "$F" us-east-1 eu-west-1
		if [ -z "${PBC_NO_APPLY:-}" ]; then
			pb_apply >/dev/null || { echo "not ok - provbus-schema apply"; exit 1; }
			: >"$T/.applied"
		fi
	fi
	C=$T/$node.json SD=$T/$node/services.d ST=$T/$node/state RUNS=$T/$node.runs
	# test defaults, unless CONSUMER-JSON-MEMBERS sets them (duplicate keys are errors);
	# verify_sender false: these tests publish every node's events as guest
	local d k
	for k in provision env_file quiet_ms max_wait_ms retry throttle verify_sender; do
		[[ $cons == *"\"$k\""* ]] && continue
		case $k in
		provision) d="\"provision\": [\"$PBC_DATA/provision.sh\", \"$RUNS\", \"$T/$node.sleep\", \"$T/$node.exit\", \"$T/$node.hold\"]" ;;
		env_file) d="\"env_file\": \"$T/$node/app.env\"" ;;
		quiet_ms) d='"quiet_ms": 200' ;;
		max_wait_ms) d='"max_wait_ms": 3000' ;;
		retry) d='"retry": {"max": 2, "base_ms": 200}' ;;
		throttle) d='"throttle": {"runs": 100, "per_s": 60}' ;;
		verify_sender) d='"verify_sender": false' ;;
		esac
		cons=${cons:+$cons, }$d
	done
	pb_node_config "$C" "$node" "$F" "$region" "\"consumer\": {$cons}${top:+, $top}"
	: >"$RUNS"
}

pbc_manifest() { # ID REQUIRES-JSON [EXTRA-MEMBERS]
	printf '{"id": "%s", "requires": %s%s}\n' "$1" "$2" "${3:+, $3}" >"$SD/.$1.tmp"
	mv "$SD/.$1.tmp" "$SD/$1.json"
}

pbc_uuid() { cat /proc/sys/kernel/random/uuid; }

pbc_ev() { # KIND REGION NODE SERVICE KEY VALUE SEQ [TTL] [ID] [PUBLIC]
	local kind=$1 region=$2 node=$3 service=$4 key=$5 value=$6 seq=$7
	local ttl=${8:-0} id=${9:-} public=${10:-false} v
	[ -n "$id" ] || id=$(pbc_uuid)
	if [ "$kind" = retire ]; then v=null; else v=$(jq -cn --arg v "$value" '$v'); fi
	printf '%s.%s.%s\t{"v":1,"id":"%s","kind":"%s","federation":"%s","region":"%s","node":"%s","service":"%s","key":"%s","value":%s,"public":%s,"seq":%s,"ttl_s":%s,"ts":"%s"}\n' \
		"$region" "$kind" "$key" "$id" "$kind" "$F" "$region" "$node" "$service" "$key" \
		"$v" "$public" "$seq" "$ttl" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
}

# pbc_gen N NODES [KEY] [REGION] [SEQ0]: N provides events of KEY from NODES
# nodes (node-0 ..), seq SEQ0.. per node, each value distinct; fast (awk)
pbc_gen() {
	local n=$1 nodes=$2 key=${3:-API_URL} region=${4:-us-east-1} seq0=${5:-1}
	# the ids come from /dev/urandom (16 bytes each): mawk's srand() folds
	# large seeds together, so seeded rand() repeated ids across bursts
	od -An -v -tx1 -N $((16 * n)) /dev/urandom | tr -s ' \n' '\n\n' | grep . |
	awk -v n="$n" -v nodes="$nodes" -v key="$key" -v region="$region" -v f="$F" \
		-v seq0="$seq0" -v ts="$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" '
	{ b[k++] = $1 }
	k == 16 {
		id = b[0] b[1] b[2] b[3] "-" b[4] b[5] "-4" substr(b[6], 2) b[7] "-8" substr(b[8], 2) b[9] "-" \
		     b[10] b[11] b[12] b[13] b[14] b[15]
		node = "node-" (i % nodes); seq = seq0 + int(i / nodes)
		printf "%s.provides.%s\t{\"v\":1,\"id\":\"%s\",\"kind\":\"provides\",\"federation\":\"%s\",\"region\":\"%s\",\"node\":\"%s\",\"service\":\"svc\",\"key\":\"%s\",\"value\":\"http://%s:%d\",\"public\":false,\"seq\":%d,\"ttl_s\":0,\"ts\":\"%s\"}\n", region, key, id, f, region, node, key, node, seq, seq, ts
		i++; k = 0
	}'
}

pbc_pub() { pbtest-amqp "$URL" publish-lines "provbus.$F" --confirm --persistent >/dev/null; }

# (jq 1.6 -e exits 0 on empty input: test the text first)
pbc_connected() {
	local s; s=$(provbus-consumer -c "$C" status 2>/dev/null) && [ -n "$s" ] &&
		jq -e '.connected and .state != "catching-up" and .state != "connecting"' <<<"$s" >/dev/null
}

pbc_start() { # [NAME]
	local name=${1:-consumer}
	pb_bg "$name" provbus-consumer -c "$C" -vv run
	CPID=$BG_PID
	wait_for 30 pbc_connected || { diag "consumer did not connect; log:"; tail -n 20 "$T/$name.log" | sed 's/^/#   /'; }
}

pbc_stop() {
	kill -TERM "$CPID" 2>/dev/null
	wait "$CPID"; CRC=$?
}

pbc_sql() { sqlite3 -cmd ".timeout 5000" "$ST/audit.db" "$1"; }

pbc_status() { # [JQ ARGS...]
	if [ $# -gt 0 ]; then provbus-consumer -c "$C" status | jq -r "$@"
	else provbus-consumer -c "$C" status; fi
}

pbc_runs() { grep -c '^start ' "$RUNS"; }
# the field N of the run log line of KIND (start|end) of run ID
pbc_run_field() { awk -v k="$1" -v id="$2" -v f="$3" '$1 == k && $2 == id {print $f}' "$RUNS"; }
pbc_ends() { grep -c '^end ' "$RUNS"; }

_pbc_rows_ge() { [ "$(pbc_sql "SELECT COUNT(*) FROM events ${2:+WHERE $2}")" -ge "$1" ]; }
pbc_wait_rows() { wait_for 20 _pbc_rows_ge "$1" "${2:-}"; }

_pbc_ends_ge() { [ "$(pbc_ends)" -ge "$1" ]; }
pbc_wait_ends() { wait_for "${2:-20}" _pbc_ends_ge "$1"; }

_pbc_eq() { local want=$1; shift; [ "$("$@")" = "$want" ]; }
_pbc_ge() { local want=$1; shift; [ "$("$@")" -ge "$want" ]; }
pbc_wait_eq() { local s=$1; shift; wait_for "$s" _pbc_eq "$@"; }   # SECONDS WANT CMD...
pbc_wait_ge() { local s=$1; shift; wait_for "$s" _pbc_ge "$@"; }   # SECONDS MIN CMD...
_pbc_status_is() { [ "$(pbc_status -c "$1")" = "$2" ]; }
pbc_wait_status() { wait_for "${3:-10}" _pbc_status_is "$1" "$2"; } # JQ WANT [SECONDS]

_pbc_idle() { [ "$(pbc_status .state)" = idle ]; }
pbc_wait_idle() { wait_for "${1:-20}" _pbc_idle; }
