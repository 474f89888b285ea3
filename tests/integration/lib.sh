# shellcheck shell=bash
# tests/integration/lib.sh — sourced by every t-*.sh.
#
# THE PLAN (tests/run.sh fails a script without one, or whose count differs):
#   end every script with `pb_done` (it prints the TAP plan "1..N", N the
#   checks made: a script that stops early prints none and fails), or
#   declare the count up front with `pb_plan N` (then pb_done checks that
#   exactly N checks ran). Skip a check with `pb_skip N REASON` (N checks,
#   counted apart as skipped, never as passes), a whole script with
#   `pb_skip_all REASON` (prints "1..0 # SKIP REASON", exits 0). With
#   PB_REQUIRE_NO_SKIP=1 (CI: .ci/run) every skip is a failure. Print no
#   line of your own that starts with "ok " or "not ok " (show a log with
#   sed 's/^/# /'): every such line counts as a check.
#
# Gives each test its own vhost on the shared private broker, its own temp
# dir, assertions printing "ok N - ..." / "not ok N - ...", and cleanup of
# whatever it started (by PID) when it exits.
#
#   pb_setup NAME        T (temp dir), VHOST (/pbt-NAME-PID), URL (amqp URL
#                        with that vhost), BROKER_URL (no vhost), PORT
#   pb_ctl ARGS...       rabbitmqctl against the test broker
#   pb_topology F REGION...  writes $T/topology.json for federation F
#   pb_apply             provbus-schema apply of $T/topology.json
#   pb_node_config FILE NODE FED REGION [EXTRA-JSON-MEMBERS]
#   pb_bg NAME CMD...    starts CMD in the background, logs to $T/NAME.log,
#                        remembers its PID for cleanup; PID in $BG_PID
#   ok COND-EXIT DESC / is GOT WANT DESC / like GOT REGEX DESC
#   wait_for SECONDS CMD...  polls CMD every 0.1 s until it succeeds, for
#                        at most SECONDS x PB_SLOW
#   pb_slow N            N x PB_SLOW (an integer), for a bound on elapsed
#                        time: [ "$ms" -lt "$(pb_slow 8000)" ]
#   pb_sleep SECONDS     sleep SECONDS x PB_SLOW (SECONDS may be 1.5)
#
# PB_SLOW (tests/run.sh sets it: 1, or 3 when the programs are sanitizer
# builds) stretches every time window a test waits for or bounds; with
# PB_SLOW=1 every assertion is exactly as written.
set -u
: "${PB_ROOT:?run me through tests/run.sh}"
PB_BROKER=$PB_ROOT/tests/broker/pb-broker
# shellcheck disable=SC1091
. "$PB_BROKER_DIR/broker.env"
PORT=${PB_BROKER_PORTS%% *}
BROKER_URL="amqp://guest:guest@127.0.0.1:$PORT"
PATH=$PB_BIN:$PB_TOOLS:$PATH
export PATH
PB_SLOW=${PB_SLOW:-1}
export PB_SLOW

_pb_n=0
_pb_failed=0
_pb_pids=()

ok() { # ok EXIT-STATUS DESC   (use: ok $? "desc" or cond && ok 0 .. )
	_pb_n=$((_pb_n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $_pb_n - $2"; else echo "not ok $_pb_n - $2"; _pb_failed=1; fi
}
check() { # check DESC CMD...  runs CMD, ok if it exits 0
	local d=$1; shift
	"$@"; ok $? "$d"
}
is() { # is GOT WANT DESC
	if [ "$1" == "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi
}
like() { # like GOT ERE DESC
	if [[ $1 =~ $2 ]]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want match: '$2'"; fi
}
diag() { echo "# $*"; }

wait_for() { # wait_for SECONDS CMD...  (SECONDS x PB_SLOW)
	local limit=$(( $1 * 10 * PB_SLOW )) i=0; shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt $limit ] || return 1
		sleep 0.1
	done
}

pb_ctl() { "$PB_BROKER" ctl "$PB_BROKER_DIR" "$@"; }

pb_bg() { # pb_bg NAME CMD...
	local name=$1; shift
	"$@" >"$T/$name.log" 2>&1 &
	BG_PID=$!
	_pb_pids+=("$BG_PID")
}

pb_stop_pid() { # pb_stop_pid PID [SIGNAL]: TERM (or SIG), wait up to 70 s, then KILL
	local pid=$1 sig=${2:-TERM} i=0
	kill -"$sig" "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 700 ] || { kill -KILL "$pid" 2>/dev/null; break; }
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
}

_pb_cleanup() {
	local p
	for p in "${_pb_pids[@]}"; do pb_stop_pid "$p"; done
	_pb_replay_check
	if [ -n "${VHOST:-}" ]; then pb_ctl delete_vhost "$VHOST" >/dev/null 2>&1; fi
	[ $_pb_failed -ne 0 ] || [ -n "${PB_KEEP:-}" ] || rm -rf "$T"
}

# shellcheck source=tests/broker/ports.sh
. "$PB_ROOT/tests/broker/ports.sh"
pb_free_port() { pb_pick_port "$@"; } # tests/broker/ports.sh says which ports

# Every audit log a daemon of the script wrote (one with recorded inputs:
# lib/audit.h) must replay exactly: `provbus-audit replay` feeds the same
# inputs to the same decision core. A difference is a "not ok" (after the
# plan: the script fails). PB_NO_REPLAY_CHECK=1 skips it.
_pb_replay_check() {
	local db out back
	[ -n "${T:-}" ] && [ -d "$T" ] && [ -z "${PB_NO_REPLAY_CHECK:-}" ] && [ -z "${_pb_replayed:-}" ] || return 0
	_pb_replayed=1	# once: a cleanup may call it before its own unmounts
	while IFS= read -r db; do
		[ "$(sqlite3 "$db" "SELECT 1 FROM inputs WHERE kind IN ('start', 'snapshot') LIMIT 1" 2>/dev/null)" = 1 ] ||
			continue
		# the core's clock never goes back: every input at or after the one
		# before it (a daemon that hands the core a stale "now" fails here)
		back=$(sqlite3 "$db" "SELECT id || ' ' || kind || ' at ' || at || ', ' || (m - at) || ' ms before input ' || mid FROM
			(SELECT id, kind, at, max(at) OVER w AS m, last_value(id) OVER w AS mid FROM inputs
			 WINDOW w AS (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) WHERE at < m LIMIT 3" 2>&1)
		if [ -n "$back" ]; then
			_pb_n=$((_pb_n + 1)); _pb_failed=1
			echo "not ok $_pb_n - the inputs of ${db#"$T"/} never go back in time"
			printf '%s\n' "$back" | sed 's/^/#   input /'
		fi
		out=$(provbus-audit -d "$db" replay 2>&1)
		if [[ $out == *"matches recorded runs"* ]]; then
			echo "# replay of ${db#"$T"/}: matches recorded runs"
		else
			_pb_n=$((_pb_n + 1)); _pb_failed=1
			echo "not ok $_pb_n - replay of ${db#"$T"/} matches recorded runs"
			printf '%s\n' "$out" | tail -n 8 | sed 's/^/#   /'
		fi
	done < <(find "$T" -name audit.db 2>/dev/null)
}

# pb_observer_creds DIR: DIR/provbus-observer (mode 0600, DIR 0700) holds
# PB_OBSERVER_PW before a `provbus-schema export --credentials DIR`, which
# never overwrites it. The provbus-observer user is broker-wide and the
# scripts running side by side each import it: all give it this one
# password (each export's own salted hash of it), and none deletes it,
# so none locks another out.
PB_OBSERVER_PW=pw-observer
pb_observer_creds() {
	mkdir -p "$1" && chmod 700 "$1" && printf '%s\n' "$PB_OBSERVER_PW" >"$1/provbus-observer" &&
		chmod 600 "$1/provbus-observer"
}
urlenc() { local s=$1; s=${s//%/%25}; s=${s//\//%2F}; echo "$s"; }

pb_setup() { # pb_setup NAME
	T=${PB_TEST_TMP:-$(mktemp -d)}/
	T=${T%/}
	mkdir -p "$T"
	VHOST="/pbt-$1-$$"
	URL="$BROKER_URL/$(urlenc "$VHOST")"
	pb_ctl add_vhost "$VHOST" >/dev/null || { echo "not ok - add_vhost $VHOST"; exit 1; }
	pb_ctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
	trap _pb_cleanup EXIT
}

pb_topology() { # pb_topology FED REGION... -> $T/topology.json
	local fed=$1; shift
	local regions; regions=$(printf '"%s",' "$@"); regions=${regions%,}
	cat >"$T/topology.json" <<EOT
{"vhost": "$VHOST", "history_max_age": "7D",
 "federations": {"$fed": {"regions": [$regions]}},
 "nodes": []}
EOT
}

pb_apply() { provbus-schema --url "$URL" apply "$T/topology.json"; }

pb_node_config() { # pb_node_config FILE NODE FED REGION [EXTRA-MEMBERS-JSON]
	local file=$1 node=$2 fed=$3 region=$4 extra=${5:-}
	local dir; dir=$(dirname "$file")/$node
	mkdir -p "$dir/services.d" "$dir/state"
	cat >"$file" <<EOT
{
  "node": "$node", "federation": "$fed", "region": "$region", "host": "127.0.0.1",
  "broker": {"urls": ["$URL"], "heartbeat_s": 10},
  "services_dir": "$dir/services.d",
  "state_dir": "$dir/state"${extra:+,
  $extra}
}
EOT
}

# pb_plan N: the script will make exactly N checks ("1..N" now)
pb_plan() { _pb_plan=$1; echo "1..$1"; }
# pb_skip N REASON: N checks not made here, each an "ok K # SKIP REASON"
pb_skip() {
	local i
	for ((i = 0; i < $1; i++)); do _pb_n=$((_pb_n + 1)); echo "ok $_pb_n # SKIP $2"; done
}
# pb_alarm_script: for a script that sets the broker's memory alarm
# (set_vm_memory_high_watermark; broker-wide, so tests/run.sh runs it
# alone): the watermark is put back at exit, whatever happens.
# alarm_on / alarm_off: whether the broker says its memory alarm is on.
pb_alarm_script() { trap _pb_alarm_cleanup EXIT; }
_pb_alarm_cleanup() {
	pb_ctl set_vm_memory_high_watermark 0.4 >/dev/null 2>&1
	_pb_cleanup
}
alarm_on() { pb_ctl status 2>/dev/null | grep -q 'Memory alarm on node'; }
alarm_off() { ! alarm_on; }
# pb_skip_all REASON: no check of this script can run here; exits 0
pb_skip_all() { echo "1..0 # SKIP $1"; exit 0; }
# pb_done: the last line of every script: the plan when none was declared
# (a script that never gets here has none: tests/run.sh fails it), and the
# script's status. A second call (an EXIT trap after the last line) only
# gives the status: the plan is printed once.
pb_done() {
	if [ -n "${_pb_done:-}" ]; then [ $_pb_failed -eq 0 ]; return; fi
	_pb_done=1
	if [ -z "${_pb_plan:-}" ]; then echo "1..$_pb_n"
	elif [ "$_pb_plan" -ne "$_pb_n" ]; then echo "# planned $_pb_plan checks, made $_pb_n"; _pb_failed=1; fi
	[ $_pb_failed -eq 0 ]
}

# cli_usage64 PROG MESSAGE-ERE DESC ARGS...: PROG ARGS... is a usage error
# (docs/protocol.md §6): exit 64, first line "PROG: MESSAGE", second "usage: PROG ..."
cli_usage64() {
	local prog=$1 re=$2 d=$3 rc; shift 3
	"$prog" "$@" >/dev/null 2>"$T/usage.err"; rc=$?
	is "$rc" 64 "$d: exit 64"
	like "$(head -n1 "$T/usage.err")" "^$prog: $re" "$d: says what is wrong"
	like "$(sed -n 2p "$T/usage.err")" "^usage: $prog " "$d: then the usage line"
}

pb_slow() { echo $(( $1 * PB_SLOW )); } # pb_slow N: N x PB_SLOW
pb_sleep() { sleep "$(awk -v s="$1" -v k="$PB_SLOW" 'BEGIN {print s * k}')"; }
