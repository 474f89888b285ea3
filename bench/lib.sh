# bench/lib.sh — sourced by bench/run.sh and every bench/s-*.sh section.
#
# Environment (set by run.sh): BENCH_ROOT (the checkout), BENCH_OUT (this
# run's result folder), BENCH_QUICK (1: small sizes), PB_BROKER_DIR (the
# broker), BENCH_VHOST (the run's vhost), BENCH_DEADLINE (epoch s by which
# the whole run must end).
#
# What a section gets:
#   bench_log MSG...            a line on stderr and in $BENCH_OUT/bench.log
#   put ID MEDIAN MIN MAX UNIT N NOTE   one figure into $BENCH_OUT/results.tsv
#   put_stats ID UNIT NOTE V... median/min/max of the values V
#   put_pct ID UNIT NOTE V...   p50 and p99 (ID.p50, ID.p99) of the values V
#   put_na ID UNIT NOTE         a figure that could not be measured
#   now_us, since_ms US         wall clock (µs, $EPOCHREALTIME), elapsed ms
#   sz QUICK FULL               the size for this mode
#   bench_vhost                 sets VHOST (the run's), URL (with it), and FED
#                               (this section's federation, bench-SECTION)
#   bench_topology              provbus-schema apply of $FED (region r1)
#   node_config FILE NODE KEY CONSUMER-MEMBERS [HEARTBEAT_S]
#   start_daemon NAME CFG       provbus-consumer run, waits for READY=1;
#                               sets DAEMON_PID, DAEMON_READY_MS
#   daemon_count CFG            events the daemon has judged (all verdicts)
#   wait_runs_idle CFG SECS     until the daemon is idle (no run, none pending)
#   bg NAME CMD...              a background process logged to $W/NAME.log,
#                               stopped by PID at exit; sets BG_PID
#   stop_pid PID                TERM, wait (70 s), KILL
#   free_port                   a free loopback TCP port
#   cpu_ticks PID, rss_kb PID   /proc figures (clock ticks; VmRSS kB)
#   left_s, section_left        seconds left before BENCH_DEADLINE / SECTION_DEADLINE
#   part_deadline F, past T     a share F of the section's time left; is T past
# W is the section's work folder ($BENCH_OUT/work/SECTION).
set -uo pipefail
: "${BENCH_ROOT:?run me through bench/run.sh}" "${BENCH_OUT:?}" "${PB_BROKER_DIR:?}"
BENCH_QUICK=${BENCH_QUICK:-}
# the copies run.sh took at the start (see there), else the tree's
BIN=${BENCH_BIN:-$BENCH_ROOT/bin}
TOOLS=${BENCH_TOOLS:-$BENCH_ROOT/${BUILD:-build}/tools}
PB_BROKER=$BENCH_ROOT/tests/broker/pb-broker
# shellcheck disable=SC1091
. "$PB_BROKER_DIR/broker.env"
BROKER_URL=$PB_BROKER_URL
BROKER_PID=$(cat "$PB_BROKER_DIR/n1/pid" 2>/dev/null || echo 0)
SECTION=${SECTION:-$(basename "$0" .sh)}
W=$BENCH_OUT/work/$SECTION
mkdir -p "$W"
CLK_TCK=$(getconf CLK_TCK)
export LC_ALL=C

_bench_pids=()

bench_log() { printf '%s [%s] %s\n' "$(date +%T)" "$SECTION" "$*" | tee -a "$BENCH_OUT/bench.log" >&2; }

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
since_ms() { local t=$EPOCHREALTIME; echo $(( (${t/./} - $1) / 1000 )); }
# us_to_ms US: microseconds as milliseconds with one decimal
us_to_ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
left_s() { echo $(( ${BENCH_DEADLINE:-$(( $(date +%s) + 100000 ))} - $(date +%s) )); }
# this section's own deadline (run.sh shares the budget out: SECTION_DEADLINE)
section_left() { echo $(( ${SECTION_DEADLINE:-${BENCH_DEADLINE:-$(( $(date +%s) + 100000 ))}} - $(date +%s) )); }
# part_deadline FRACTION: epoch s when FRACTION of what is left of the
# section is used up (a loop of samples stops there)
part_deadline() { awk -v f="$1" -v l="$(section_left)" -v now="$(date +%s)" 'BEGIN { printf "%d\n", now + (l > 0 ? l * f : 0) }'; }
past() { [ "$(date +%s)" -ge "$1" ]; }
sz() { if [ -n "$BENCH_QUICK" ]; then echo "$1"; else echo "$2"; fi; }

# num(x) in awk: integers as such, >= 100 rounded, else 3 significant digits
AWK_NUM='function num(x) { if (x == int(x) || x >= 100 || x <= -100) return sprintf("%d", x + (x < 0 ? -0.5 : 0.5)); return sprintf("%.3g", x) }'
# stats V...: "median min max" (the median of an even count is the mean of
# the two middle values)
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "NA NA NA"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		print fmt(m), fmt(v[1]), fmt(v[NR]) }
		function fmt(x) { return num(x) }'" $AWK_NUM"
}
# pct P V...: the P-th percentile (nearest rank)
pct() {
	local p=$1; shift
	printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ v[NR] = $1 } END {
		if (NR == 0) { print "NA"; exit }
		r = int(p / 100 * NR + 0.999999); if (r < 1) r = 1; if (r > NR) r = NR
		print num(v[r]) }'" $AWK_NUM"
}

put() { # put ID MEDIAN MIN MAX UNIT N NOTE (replaces an earlier ID)
	local f=$BENCH_OUT/results.tsv
	if grep -q "^$1	" "$f" 2>/dev/null; then
		awk -F'\t' -v id="$1" '$1 != id' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" >>"$f"
	[ -n "${PUT_QUIET:-}" ] || bench_log "figure $1 = $2 $5 (min $3, max $4, n=$6) ${7:-}"
}
put_stats() { # put_stats ID UNIT NOTE V...
	local id=$1 unit=$2 note=$3; shift 3
	[ $# -gt 0 ] || { put_na "$id" "$unit" "$note: no sample"; return; }
	# shellcheck disable=SC2046
	put "$id" $(stats "$@") "$unit" $# "$note"
}
put_pct() { # put_pct ID UNIT NOTE V...: ID.p50 and ID.p99, min and max beside
	local id=$1 unit=$2 note=$3 mn mx; shift 3
	[ $# -gt 0 ] || { put_na "$id.p50" "$unit" "$note: no sample"; put_na "$id.p99" "$unit" "$note: no sample"; return; }
	read -r _ mn mx < <(stats "$@")
	put "$id.p50" "$(pct 50 "$@")" "$mn" "$mx" "$unit" $# "$note"
	put "$id.p99" "$(pct 99 "$@")" "$mn" "$mx" "$unit" $# "$note"
}
put_na() { put "$1" NA NA NA "$2" 0 "${3:-}"; }

# ratio A B: A/B with 3 significant digits
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "NA" || b == "NA") print "NA"; else printf "%.3g\n", a / b }'; }
# rate COUNT MS: events per second
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms + 0 <= 0) print "NA"; else printf "%d\n", n * 1000 / ms }'; }

# shellcheck source=tests/broker/ports.sh
. "$BENCH_ROOT/tests/broker/ports.sh"
port_in_use() { pb_port_in_use "$@"; }
free_port() { pb_pick_port "$@"; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo NA; }
# rss_parts PID: "anon A kB, file F kB" (VmRSS = anonymous + file-backed, the
# shared libraries' pages among the latter)
rss_parts() { awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { printf "anon %s kB, file %s kB", a, f }' "/proc/$1/status" 2>/dev/null; }
# anon_kb PID, file_kb PID: the two parts of VmRSS (RssAnon, RssFile)
anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo NA; }
file_kb() { awk '/^RssFile:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo NA; }
ticks_ms() { echo $(( $1 * 1000 / CLK_TCK )); }

bg() { # bg NAME CMD...
	local name=$1; shift
	"$@" >>"$W/$name.log" 2>&1 &
	BG_PID=$!
	_bench_pids+=("$BG_PID")
}

stop_pid() { # stop_pid PID [SIGNAL]
	local pid=$1 i=0
	[ -n "$pid" ] && [ "$pid" -gt 0 ] || return 0
	kill -CONT "$pid" 2>/dev/null
	kill -"${2:-TERM}" "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 700 ]; then kill -KILL "$pid" 2>/dev/null; break; fi
		nap 0.1
	done
	wait "$pid" 2>/dev/null
	return 0
}

_bench_cleanup() {
	local i
	for ((i = ${#_bench_pids[@]} - 1; i >= 0; i--)); do stop_pid "${_bench_pids[$i]}"; done
}
trap _bench_cleanup EXIT
trap 'exit 130' INT TERM

urlenc() { local s=$1; s=${s//%/%25}; s=${s//\//%2F}; echo "$s"; }

# bench_vhost: the run's vhost (made by run.sh: rabbitmqctl costs a second a
# call) and this section's own federation in it; sets VHOST, URL, FED
bench_vhost() {
	VHOST=$BENCH_VHOST
	URL="$BROKER_URL/$(urlenc "$VHOST")"
	FED=bench-$SECTION
}

bench_topology() { # bench_topology: federation $FED, region r1
	cat >"$W/topology.json" <<EOT
{"vhost": "$VHOST", "history_max_age": "1h", "federations": {"$FED": {"regions": ["r1"]}}, "nodes": []}
EOT
	"$BIN/provbus-schema" --url "$URL" apply "$W/topology.json" >"$W/schema.log" 2>&1 || return 1
	# one event in the history stream: a new node's catch-up then ends 500 ms
	# after reading it instead of waiting 2 s for a first message
	"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count 1 --keys BENCH_SEED >>"$W/schema.log" 2>&1
}

# node_config FILE NODE REQUIRED-KEY CONSUMER-MEMBERS [HEARTBEAT_S]: a node of
# federation $FED, region "r1", requiring KEY (one manifest "app"; none
# when KEY is empty), state and services under $W/NODE. Heartbeats default
# to off: a SIGSTOPped daemon must not be dropped by the broker.
node_config() {
	local file=$1 node=$2 key=$3 cons=$4 hb=${5:-0}
	local dir=$W/$node consumer=""
	mkdir -p "$dir/services.d" "$dir/state"
	# every node publishes as guest here: a lab, no sender check
	[ -z "$cons" ] || consumer=",
  \"consumer\": {\"verify_sender\": false, $cons}"
	cat >"$file" <<EOT
{
  "node": "$node", "federation": "$FED", "region": "r1", "host": "127.0.0.1",
  "broker": {"urls": ["$URL"], "heartbeat_s": $hb},
  "services_dir": "$dir/services.d",
  "state_dir": "$dir/state"$consumer
}
EOT
	if [ -n "$key" ]; then
		printf '{"id": "app", "requires": {"%s": "{%s}"}}\n' "$key" "$key" >"$dir/services.d/app.json"
	fi
}

# start_daemon NAME CFG: runs the consumer under pbtest-notifywait (so
# READY=1 is timed), leaves it running; DAEMON_PID, DAEMON_READY_MS.
start_daemon() {
	local name=$1 cfg=$2
	# not $(...): the daemon inherits stdout and would hold the pipe open
	"$TOOLS/pbtest-notifywait" --timeout-ms 60000 --keep -- \
		"$BIN/provbus-consumer" -c "$cfg" run >"$W/$name.ready" 2>>"$W/$name.log"
	DAEMON_READY_MS=$(awk '/^ready_ms/ { print $2 }' "$W/$name.ready")
	DAEMON_PID=$(awk '/^pid/ { print $2 }' "$W/$name.ready")
	[ -n "$DAEMON_PID" ] || { bench_log "$name: the daemon did not become ready (see $W/$name.log)"; return 1; }
	_bench_pids+=("$DAEMON_PID")
}

status_json() { "$BIN/provbus-consumer" -c "$1" status 2>/dev/null; }
# daemon_count CFG: the events judged so far (every verdict)
daemon_count() {
	status_json "$1" | tr ',{}' '\n\n\n' | awk -F: '
		/"counts"/ { on = 1 } on && /"(applied|duplicate|stale|foreign|expired|invalid)"/ { s += $NF }
		/"history_skipped"/ { on = 0 } END { print s + 0 }'
}
daemon_state() { status_json "$1" | sed -n 's/.*"state":"\([a-z-]*\)".*/\1/p'; }
# wait_runs_idle CFG SECS: until state is idle (no run, nothing pending)
wait_runs_idle() {
	local i=0 lim=$(( $2 * 10 ))
	while [ "$(daemon_state "$1")" != idle ]; do
		i=$((i + 1)); [ $i -lt $lim ] || return 1
		nap 0.1
	done
}

# stamp_count FILE: provision runs started (lines "... start ...")
stamp_count() { [ -f "$1" ] && grep -c ' start ' "$1" || echo 0; }

# ---- the peers: every one on loopback, free ports, under $W, stopped by PID

have() { command -v "$1" >/dev/null 2>&1; }

# start_etcd NAME: one etcd member; ETCD_EP (host:port), ETCD_PID. The run's
# shared member (run.sh starts one: BENCH_ETCD_EP, BENCH_ETCD_PID) when
# there is one; stop_etcd stops only a member of this section.
start_etcd() {
	local name=$1 cp pp
	if [ -n "${BENCH_ETCD_EP:-}" ]; then
		ETCD_EP=$BENCH_ETCD_EP ETCD_PID=$BENCH_ETCD_PID ETCD_OWN=0
		return 0
	fi
	cp=$(free_port); pp=$(free_port)
	while [ "$pp" = "$cp" ]; do pp=$(free_port); done
	mkdir -p "$W/$name"
	bg "$name" etcd --name "$name" --data-dir "$W/$name/data" \
		--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
		--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "$name=http://127.0.0.1:$pp" --log-level error
	ETCD_PID=$BG_PID ETCD_OWN=1
	ETCD_EP=127.0.0.1:$cp
	local i=0
	until ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" --dial-timeout 1s --command-timeout 2s endpoint health >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] && kill -0 "$ETCD_PID" 2>/dev/null || { bench_log "etcd did not start (see $W/$name.log)"; return 1; }
		nap 0.1
	done
}
stop_etcd() { [ "${ETCD_OWN:-0}" = 0 ] || stop_pid "$ETCD_PID"; }
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" "$@"; }

# start_serf NAME HANDLER-SPEC...: one Serf agent; SERF_RPC, SERF_PID.
# A HANDLER-SPEC is Serf's -event-handler value ("user:NAME=COMMAND").
start_serf() {
	local name=$1 bp rp h args=(); shift
	bp=$(free_port); rp=$(free_port)
	while [ "$rp" = "$bp" ]; do rp=$(free_port); done
	for h in "$@"; do args+=(-event-handler "$h"); done
	bg "$name" serf agent -node "$name" -bind "127.0.0.1:$bp" -rpc-addr "127.0.0.1:$rp" \
		-log-level warn "${args[@]}"
	SERF_PID=$BG_PID
	SERF_RPC=127.0.0.1:$rp
	# up to 60 s: a Go agent on a loaded 2-core machine can take tens of seconds
	local until_s=$((SECONDS + 60))
	until serf members -rpc-addr "$SERF_RPC" >/dev/null 2>&1; do
		kill -0 "$SERF_PID" 2>/dev/null && [ $SECONDS -lt $until_s ] ||
			{ bench_log "serf did not start (see $W/$name.log)"; return 1; }
		nap 0.1
	done
}

# start_amqp_consume NAME ROUTING-KEY CMD...: amqp-consume on an exclusive
# queue bound to provbus.$FED with ROUTING-KEY, running CMD per message;
# AMQC_PID. Ready when a probe message has run CMD (the caller checks).
start_amqp_consume() {
	local name=$1 rk=$2; shift 2
	bg "$name" amqp-consume --url "$URL" --exchange "provbus.$FED" --routing-key "$rk" \
		--exclusive --prefetch-count 1 -- "$@"
	AMQC_PID=$BG_PID
}

# nap SECONDS: sleep without a fork (a read timing out on a pipe nobody
# writes), so polling loops do not load the 2 cores they measure
exec {_nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$_nap_fd" _ 2>/dev/null; return 0; }

# hundredths SECONDS ("2", "0.25"): sets HUNDREDTHS, without a fork
hundredths() {
	local int=${1%%.*} frac=00
	[[ $1 != *.* ]] || frac=${1#*.}00
	HUNDREDTHS=$(( ${int:-0} * 100 + 10#${frac:0:2} ))
}

# count_lines FILE [PATTERN]: sets NLINES to the lines holding PATTERN
# (default " start "), without a fork
count_lines() {
	local pat=${2:- start } l
	NLINES=0
	[ -f "$1" ] || return 0
	while IFS= read -r l; do [[ $l == *"$pat"* ]] && NLINES=$((NLINES + 1)); done <"$1"
	return 0
}

# wait_lines FILE N SECS [PATTERN]: until FILE has N lines holding PATTERN
wait_lines() {
	local f=$1 n=$2 pat=${4:- start } i=0 lim
	hundredths "$3"; lim=$HUNDREDTHS
	while count_lines "$f" "$pat"; [ "$NLINES" -lt "$n" ]; do
		i=$((i + 1)); [ $i -lt $lim ] || return 1
		nap 0.01
	done
}

# wait_quiet FILE SECS MAX: until FILE has not grown for SECS seconds ("1.5"
# works), at most MAX seconds in all
wait_quiet() {
	local f=$1 max=$3 last="" same=0 i=0 cur q
	hundredths "$2"; q=$HUNDREDTHS
	while :; do
		cur=$(stat -c %s "$f" 2>/dev/null || echo 0)
		if [ "$cur" = "$last" ]; then same=$((same + 10)); else same=0; last=$cur; fi
		[ $same -lt "$q" ] || return 0
		i=$((i + 1)); [ $i -lt $(( max * 10 )) ] || return 1
		nap 0.1
	done
}
