# shellcheck shell=bash
# tests/reliability/lib.sh — sourced by the reliability scenarios
# (tests/reliability/s*.sh) and the security tests (t-security*.sh).
#
# Source it instead of tests/integration/lib.sh (it sources that one, so
# ok/is/like/wait_for/pb_bg/pb_setup ... are all there). Needs PB_ROOT,
# PB_BIN, PB_TOOLS and PB_BROKER_DIR (tests/run.sh or
# tests/reliability/run.sh set them).
#
#   rl_own_broker [pb-broker start options]   a private broker (or cluster)
#          for this script alone, stopped at exit; call BEFORE pb_setup;
#          then PB_BROKER_DIR, PORT, BROKER_URL and PB_BROKER_PORTS (one
#          per node) name it
#   rl_setup NAME          pb_setup NAME + rl's cleanup (own brokers,
#          mounts, extra PIDs), RL_NAME
#   rl_topology F REGION... + rl_apply: pb_topology/pb_apply, federation F
#   rl_consumer NAME REGION KEYS [EXTRA-CONSUMER-MEMBERS] [URLS-JSON]
#          a consumer node config in $T/NAME.json: requires KEYS (space
#          separated: env E_KEY = {KEY}), provision = $T/provision.sh,
#          fast debounce; NAME's dirs under $T/NAME/
#   rl_publisher NAME REGION KEYS [URLS-JSON]   a publisher node config
#          $T/NAME.json with one service "svc" providing KEYS
#   rl_set_gen NAME GEN    rewrites NAME's manifest so every value ends in GEN
#   rl_status CONFIG [TIMEOUT-S]   provbus-consumer status (bounded:
#          TIMEOUT-S, default 5, x PB_SLOW)
#   rl_json_get JSON FIELD         jq -r FIELD of a JSON text
#   rl_connected CONFIG    0 when status says connected
#   rl_sql DB SQL          sqlite3 query (busy timeout 10 s), one row a line
#   rl_rss PID             VmRSS of PID in kB
#   rl_now                 wall clock in ms; rl_secs MS: MS in seconds (1 decimal)
#   rl_event ID KIND FED REGION NODE SERVICE KEY VALUE SEQ   a v1 event body
#   rl_result KEY=VALUE... prints "# RESULT ..." and appends it to
#          $RL_RESULTS when set (the driver's summary)
#   rl_track_pid PID       killed (KILL) at exit, e.g. an orphaned child
#   rl_tmpdir              RL_TMPDIR: a temp dir removed at exit (usable before rl_setup)
#   rl_mount_tmpfs DIR SIZE   mounts a tmpfs (root) or a loop file system,
#          unmounted at exit; 1 when neither is possible
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"

RL_BROKERS=()
RL_MOUNTS=()
RL_LOOPS=()
RL_EXTRA_PIDS=()
RL_TMPDIRS=()
RL_USERS=()
RL_NAME=""

rl_now() { date +%s%3N; }
rl_secs() { awk -v ms="$1" 'BEGIN {printf "%.1f", ms / 1000}'; } # rl_secs MS -> seconds, 1 decimal

rl_use_broker() { # rl_use_broker DIR: points the helpers at that broker
	PB_BROKER_DIR=$1
	export PB_BROKER_DIR
	# shellcheck disable=SC1091
	. "$PB_BROKER_DIR/broker.env"
	PORT=${PB_BROKER_PORTS%% *}
	BROKER_URL="amqp://guest:guest@127.0.0.1:$PORT"
}

rl_own_broker() { # rl_own_broker [--nodes N] [--conf-extra F]
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/pbrl-broker.XXXXXX")
	RL_BROKERS+=("$d")
	if ! "$PB_BROKER" start "$d/b" "$@" >"$d/start.log" 2>&1; then
		echo "not ok - could not start a private broker ($*):"; sed 's/^/#   /' "$d/start.log"
		exit 1
	fi
	rl_use_broker "$d/b"
	trap rl_cleanup EXIT
}

rl_free_port() { pb_pick_port "$@"; } # a free loopback port (tests/broker/ports.sh)

# rl_proxy PORT TARGET-PORT: a TCP relay on loopback (socat), for a broker
# that can go away and come back without touching the real one; PID in
# RL_PROXY_PID (stop it with rl_proxy_stop)
rl_proxy() {
	socat "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$2" >/dev/null 2>&1 &
	RL_PROXY_PID=$!
	rl_track_pid "$RL_PROXY_PID"
	wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"
}
rl_proxy_stop() { # kills the relay and the connections it carries (its children)
	pkill -KILL -P "$RL_PROXY_PID" 2>/dev/null
	kill -KILL "$RL_PROXY_PID" 2>/dev/null
	wait "$RL_PROXY_PID" 2>/dev/null
	pkill -KILL -P "$RL_PROXY_PID" 2>/dev/null
	return 0
}

rl_cleanup() {
	local p m rc=$?
	for p in "${RL_EXTRA_PIDS[@]}"; do
		[ "$(rl_pid_start "${p%%:*}")" = "${p#*:}" ] && kill -KILL "${p%%:*}" 2>/dev/null
	done
	# a memory alarm set by the test must not outlive it
	if [ -n "${RL_ALARM:-}" ]; then pb_ctl set_vm_memory_high_watermark 0.4 >/dev/null 2>&1; fi
	# the programs first (they may hold files on a mount), then the mounts
	for p in "${_pb_pids[@]}"; do pb_stop_pid "$p"; done
	# the audit logs replayed while their mounts are still there (s8's is
	# on a tmpfs)
	_pb_replay_check
	for m in "${RL_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
	for m in "${RL_LOOPS[@]}"; do losetup -d "$m" 2>/dev/null; done
	for m in "${RL_USERS[@]}"; do pb_ctl delete_user "$m" >/dev/null 2>&1; done
	if [ -n "${T:-}" ]; then _pb_cleanup; fi
	for m in "${RL_BROKERS[@]}"; do
		"$PB_BROKER" stop "$m/b" >/dev/null 2>&1
		if [ $_pb_failed -eq 0 ] && [ -z "${PB_KEEP:-}" ]; then rm -rf "$m"; else echo "# broker logs kept in $m/b"; fi
	done
	for m in "${RL_TMPDIRS[@]}"; do
		if [ $_pb_failed -eq 0 ] && [ -z "${PB_KEEP:-}" ]; then rm -rf "$m"; else echo "# kept $m"; fi
	done
	return $rc
}

rl_setup() { # rl_setup NAME
	RL_NAME=$1
	pb_setup "$1"
	trap rl_cleanup EXIT
	# a provision command that records each run and succeeds
	cat >"$T/provision.sh" <<'EOT'
#!/bin/sh
# records one line per run: time reason run-id pid
echo "$(date +%s%3N) ${PROVBUS_REASON:-?} ${PROVBUS_RUN_ID:-?} $$" >>"${RL_RUNLOG:-/dev/null}"
exit 0
EOT
	chmod +x "$T/provision.sh"
}

# The PID is remembered with its start time, so a PID the kernel has since
# given to another process is never killed; 0, 1 and junk are ignored
# (kill -KILL 0 would hit our own process group).
rl_pid_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
rl_track_pid() {
	case $1 in '' | 0 | 1 | *[!0-9]*) return 0 ;; esac
	RL_EXTRA_PIDS+=("$1:$(rl_pid_start "$1")")
}
# rl_forget_user NAME: a broker user this test made, deleted at exit
rl_forget_user() { RL_USERS+=("$1"); }
# rl_tmpdir: a new temp dir (path on stdout... use RL_TMPDIR), removed at
# exit when the test passed; usable before rl_setup
rl_tmpdir() {
	RL_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/pbrl.XXXXXX")
	RL_TMPDIRS+=("$RL_TMPDIR")
	trap rl_cleanup EXIT
}

rl_topology() { pb_topology "$@"; }
rl_apply() { pb_apply >"$T/apply.log" 2>&1 || { echo "not ok - provbus-schema apply failed:"; sed 's/^/#   /' "$T/apply.log"; exit 1; }; }

# The broker.urls JSON array default: this test's vhost on the broker.
rl_urls_json() { printf '["%s"]' "$URL"; }

rl_consumer() { # rl_consumer NAME REGION KEYS [EXTRA-CONSUMER-MEMBERS] [URLS-JSON]
	local name=$1 region=$2 keys=$3 extra=${4:-} urls=${5:-}
	local fed=${RL_FED:-fed} dir="$T/$name" k req=""
	[ -n "$urls" ] || urls=$(rl_urls_json)
	mkdir -p "$dir/services.d" "$dir/state"
	for k in $keys; do req="$req${req:+, }\"E_$k\": \"{$k}\""; done
	cat >"$dir/services.d/app.json" <<EOT
{"id": "app-$name", "requires": {$req}}
EOT
	cat >"$T/$name.json" <<EOT
{
  "node": "$name", "federation": "$fed", "region": "$region", "host": "127.0.0.1",
  "broker": {"urls": $urls, "heartbeat_s": ${RL_HEARTBEAT:-5}},
  "services_dir": "$dir/services.d",
  "state_dir": "$dir/state",
  "consumer": {
    "env_file": "$dir/app.env",
    "provision": ["$T/provision.sh"],
    "quiet_ms": ${RL_QUIET_MS:-300},
    "verify_sender": ${RL_VERIFY_SENDER:-false},
    "max_wait_ms": ${RL_MAX_WAIT_MS:-3000},
    "throttle": {"runs": 1000, "per_s": 60},
    "retry": {"max": 3, "base_ms": 200},
    "lock_file": "$dir/provision.lock",
    "queue_type": "${RL_QUEUE_TYPE:-quorum}"${extra:+,
    $extra}
  }
}
EOT
}

rl_publisher() { # rl_publisher NAME REGION KEYS [URLS-JSON]
	local name=$1 region=$2 keys=$3 urls=${4:-}
	local fed=${RL_FED:-fed} dir="$T/$name"
	[ -n "$urls" ] || urls=$(rl_urls_json)
	mkdir -p "$dir/services.d" "$dir/state"
	echo "$keys" >"$dir/keys"
	cat >"$T/$name.json" <<EOT
{
  "node": "$name", "federation": "$fed", "region": "$region", "host": "127.0.0.1",
  "broker": {"urls": $urls, "heartbeat_s": ${RL_HEARTBEAT:-5}},
  "services_dir": "$dir/services.d",
  "state_dir": "$dir/state"
}
EOT
	rl_set_gen "$name" 0
}

rl_set_gen() { # rl_set_gen NAME GEN: the values of NAME's keys become http://NODE/KEY/GEN
	local name=$1 gen=$2 dir="$T/$1" k prov=""
	for k in $(cat "$dir/keys"); do prov="$prov${prov:+, }\"$k\": \"http://{NODE}/$k/{GEN}\""; done
	cat >"$dir/services.d/svc.json.tmp" <<EOT
{"id": "svc", "environment": {"GEN": "$gen"}, "provides": {$prov}}
EOT
	mv "$dir/services.d/svc.json.tmp" "$dir/services.d/svc.json"
}

rl_status() { # rl_status CONFIG [TIMEOUT-S]
	timeout -k 1 "$(( ${2:-5} * PB_SLOW ))" provbus-consumer -c "$1" status 2>/dev/null
}
rl_json_get() { jq -r "$2" <<<"$1" 2>/dev/null; }
rl_connected() { [ "$(rl_json_get "$(rl_status "$1" 2)" '.connected')" = true ]; }

rl_sql() { # rl_sql DB SQL
	sqlite3 -batch -noheader -cmd '.timeout 10000' "$1" "$2"
}

rl_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

rl_event() { # rl_event ID KIND FED REGION NODE SERVICE KEY VALUE SEQ (VALUE "null" for none)
	local v=$8
	[ "$v" = null ] || v="\"$v\""
	printf '{"v":1,"id":"%s","kind":"%s","federation":"%s","region":"%s","node":"%s","service":"%s","key":"%s","value":%s,"public":false,"seq":%s,"ttl_s":0,"ts":"2026-01-01T00:00:00.000Z"}' \
		"$1" "$2" "$3" "$4" "$5" "$6" "$7" "$v" "$9"
}

rl_result() { # rl_result KEY=VALUE...
	local line="scenario=$RL_NAME $*"
	echo "# RESULT $line"
	[ -z "${RL_RESULTS:-}" ] || echo "$line" >>"$RL_RESULTS"
}

rl_mount_tmpfs() { # rl_mount_tmpfs DIR SIZE(e.g. 2m)
	local dir=$1 size=$2 img loop
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] || return 1
	if mount -t tmpfs -o "size=$size,mode=0755" rl-tmpfs "$dir" 2>/dev/null; then
		RL_MOUNTS+=("$dir"); return 0
	fi
	# no tmpfs allowed: a small ext4 in a file, on a loop device
	img="$T/fs.img"
	dd if=/dev/zero of="$img" bs=1M count="${size%m}" status=none || return 1
	mkfs.ext4 -q -F "$img" >/dev/null 2>&1 || return 1
	loop=$(losetup -f --show "$img" 2>/dev/null) || return 1
	RL_LOOPS+=("$loop")
	mount "$loop" "$dir" 2>/dev/null || return 1
	RL_MOUNTS+=("$dir")
}

# rl_wait_rows DB N SECS [WHERE]: waits (SECS x PB_SLOW) until the audit
# log holds N rows (WHERE: an SQL condition, default every row)
rl_count_rows() { rl_sql "$1" "SELECT count(*) FROM events WHERE ${2:-1}" 2>/dev/null; }
rl_wait_rows() {
	local db=$1 n=$2 secs=$3 where=${4:-1} i=0 got
	while :; do
		got=$(rl_count_rows "$db" "$where")
		[ "${got:-0}" -lt "$n" ] || return 0
		i=$((i + 1)); [ $i -lt $((secs * 5 * PB_SLOW)) ] || return 1
		sleep 0.2
	done
}

# rl_queue_ready QUEUE: the messages ready in QUEUE (a passive declare: exact
# and immediate; `rabbitmqctl list_queues messages` lags by the broker's
# statistics interval, 60 s on the test broker). Unacknowledged deliveries
# are not counted: they come back as ready when their channel closes.
rl_queue_ready() { pbtest-amqp "$URL" count "$1" 2>/dev/null; }

# rl_consumer_start NAME: starts provbus-consumer -c $T/NAME.json run in the
# background (under valgrind memcheck when RL_VALGRIND=1: log
# $T/NAME.vg), logs to $T/NAME.log; PID in RL_CPID[NAME] and BG_PID.
# Does not wait for it to connect (rl_wait_connected).
declare -A RL_CPID
rl_consumer_start() {
	local name=$1
	if [ -n "${RL_VALGRIND:-}" ]; then
		pb_bg "$name" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
			--show-leak-kinds=definite,indirect --error-exitcode=99 --log-file="$T/$name.vg" \
			"$PB_BIN/provbus-consumer" -c "$T/$name.json" -f run
	else
		pb_bg "$name" provbus-consumer -c "$T/$name.json" -f run
	fi
	RL_CPID[$name]=$BG_PID
}
rl_wait_connected() { # rl_wait_connected NAME SECS
	wait_for "$2" rl_connected "$T/$1.json"
}
# rl_consumer_stop NAME: SIGTERM, wait; returns its exit status (99:
# valgrind found errors: see $T/NAME.vg)
rl_consumer_stop() {
	local name=$1 pid=${RL_CPID[$1]:-}
	[ -n "$pid" ] || return 0
	pb_stop_pid "$pid"
	local rc=$?
	RL_CPID[$name]=""
	return $rc
}
# rl_valgrind_report NAME: "ok" lines for the valgrind log when RL_VALGRIND
rl_valgrind_check() { # rl_valgrind_check NAME EXIT-STATUS
	[ -n "${RL_VALGRIND:-}" ] || return 0
	is "$2" 0 "$1 under valgrind memcheck: exit 0 (99 = errors found)"
	local n; n=$(grep -c '==[0-9]*== ' "$T/$1.vg" 2>/dev/null)
	is "${n:-0}" 0 "$1: valgrind log empty (no invalid access, no definite leak)"
	[ "${n:-0}" -eq 0 ] || sed -n '1,60p' "$T/$1.vg" | sed 's/^/#   /'
}
# rl_state NAME: the daemon's state (idle, pending, running, catching-up, connecting ...)
rl_state() { rl_json_get "$(rl_status "$T/$1.json" 2)" .state; }
rl_is_idle() { [ "$(rl_state "$1")" = idle ]; }
# rl_wait_idle NAME SECS: connected, caught up, no run pending or running
rl_wait_idle() { wait_for "$2" rl_is_idle "$1"; }

# rl_send KEY VALUE [REGION] [NODE]: publishes one valid provides event
# (node default "pv", service "svc", seq from a counter, a random id) with
# confirms; RL_LAST_ID is its id
RL_SEQ=0
rl_send() {
	local key=$1 value=$2 region=${3:-r1} node=${4:-pv} fed=${RL_FED:-fed}
	RL_SEQ=$((RL_SEQ + 1))
	RL_LAST_ID=$(cat /proc/sys/kernel/random/uuid)
	pbtest-amqp "$URL" publish "provbus.$fed" "$region.provides.$key" --persistent --confirm \
		--content-type application/json --message-id "$RL_LAST_ID" --type provides \
		--body "$(rl_event "$RL_LAST_ID" provides "$fed" "$region" "$node" svc "$key" "$value" "$RL_SEQ")" >/dev/null
}
