#!/usr/bin/env bash
# Figure 3 — burst collapse: N events for one key in about a second (the
# 10,000 of issue 5 in 2 s); the
# provision command sleeps 200 ms (pbtest-stamp --sleep-ms 200). For each
# system: how many provision runs it starts, and when the last one ends,
# counted from the last event sent.
#   provbus        pbtest-pubflood (N events from 50 providers of one key,
#                  spread over 1 s) -> provbus-consumer, quiet_ms 500
#   serf-coalesce  N user events with Coalesce, spread over 1 s, sent by
#                  pbtest-peersend over the agent's RPC (what `serf event
#                  -coalesce=true` sends, without a process per event)
#   serf, etcd, amqp  (one run per event, serially: 200 ms each, so ~40 s
#                  per 200 events) user events without Coalesce; etcd puts
#                  through its JSON gateway (8 connections, like concurrent
#                  `etcdctl put`) -> `etcdctl watch KEY -- CMD`; pbtest-pubflood
#                  -> `amqp-consume CMD`: measured once at PEER_N events, the
#                  three at the same time (they sleep, they do not compete
#                  for the CPU), and extrapolated to the larger size from
#                  their measured time per run, said so in the note.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

SIZES=$(sz 10 "200 1000 10000")
# events per second of a burst: sizes up to 1000 over about a second, the
# 10,000 of issue 5's target over 2 s
rate_of() { [ "$1" -gt 1000 ] && echo $(( $1 / 2 )) || echo "$1"; }
REPS=$(sz 1 3)
PEER_N=$(sz 3 200)
STAMP=$TOOLS/pbtest-stamp
RUN_MS=200

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
rc=0

# window FILE FROM_LINE: over the lines after FROM_LINE, sets RUNS (starts),
# FIRST_START, LAST_START and LAST_END (µs; 0 if none)
window() {
	local l n=0 t
	RUNS=0 LAST_END=0 FIRST_START=0 LAST_START=0
	while IFS= read -r l; do
		n=$((n + 1)); [ $n -gt "$2" ] || continue
		t=${l%% *}
		case $l in
		*" start "*) RUNS=$((RUNS + 1)); LAST_START=$t; [ "$FIRST_START" != 0 ] || FIRST_START=$t ;;
		*" end "*) [ "$t" -le "$LAST_END" ] || LAST_END=$t ;;
		esac
	done <"$1"
}
lines() { count_lines "$1" " "; echo "$NLINES"; }
# after_ms US: ms from the last event to US
after_ms() { us_to_ms $(( $1 - LAST_EVENT )); }

# ---- provbus
f=$W/stamps-provbus
cons='"provision": ["'$STAMP'", "'$f'", "--sleep-ms", "'$RUN_MS'"], "quiet_ms": 500, "throttle": {"runs": 1000000, "per_s": 1}'
node_config "$W/burst.json" burst BURST_KEY "$cons"
if start_daemon burst "$W/burst.json" && wait_runs_idle "$W/burst.json" 30; then
	for n in $SIZES; do
		runs=() ends=() starts=()
		for r in $(seq "$REPS"); do
			from=$(lines "$f")
			out=$("$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$n" --rate "$(rate_of "$n")" \
				--nodes 50 --keys BURST_KEY --value-tag "r$r") || { bench_log "provbus burst: publish failed: $out"; rc=1; break; }
			LAST_EVENT=$(echo "$out" | sed -n 's/.* last_us \([0-9]*\).*/\1/p')
			wait_quiet "$f" 1.5 60
			wait_runs_idle "$W/burst.json" 30
			window "$f" "$from"
			runs+=("$RUNS"); ends+=("$(after_ms "$LAST_END")"); starts+=("$(after_ms "$LAST_START")")
			bench_log "provbus $n events, rep $r: $RUNS runs, the last started $(after_ms "$LAST_START") ms and ended $(after_ms "$LAST_END") ms after the last event"
		done
		read -r smed _ < <(stats "${starts[@]}")
		put_stats "burst.$n.provbus.runs" runs "provision runs for $n events in $(( n / $(rate_of "$n") )) s (quiet_ms 500, run 200 ms)" "${runs[@]}"
		put_stats "burst.$n.provbus.last_end" ms "last run's end after the last event (it started $smed ms after it)" "${ends[@]}"
	done
	stop_pid "$DAEMON_PID"
else
	bench_log "provbus burst: the daemon did not start"; rc=1
fi

# ---- Serf agent: both handlers (Serf runs its handlers one at a time)
serf_ok=0
if have serf && start_serf serf "user:burstc=$STAMP $W/stamps-serfc --stdin --sleep-ms $RUN_MS" \
	"user:burst=$STAMP $W/stamps-serf --stdin --sleep-ms $RUN_MS"; then
	serf_ok=1
	for n in $SIZES; do
		runs=() ends=() sends=()
		for r in $(seq "$REPS"); do
			from=$(lines "$W/stamps-serfc")
			out=$("$TOOLS/pbtest-peersend" serf "$SERF_RPC" burstc --count "$n" --rate "$(rate_of "$n")" --coalesce 2>&1) ||
				{ bench_log "serf-coalesce: sending failed: $out"; break; }
			LAST_EVENT=$(echo "$out" | sed -n 's/.* last_us \([0-9]*\).*/\1/p')
			sends+=("$(echo "$out" | awk '{ print $4 }')")
			wait_lines "$W/stamps-serfc" $((from + 2)) 30 " " # at least one run, start and end
			wait_quiet "$W/stamps-serfc" 2 60
			window "$W/stamps-serfc" "$from"
			runs+=("$RUNS"); ends+=("$(after_ms "$LAST_END")")
			bench_log "serf-coalesce $n events (sent in ${sends[-1]} ms), rep $r: $RUNS runs, last ended $(after_ms "$LAST_END") ms after"
		done
		read -r smed _ < <(stats "${sends[@]}")
		put_stats "burst.$n.serf-coalesce.runs" runs "user events with Coalesce x$n (sent in $smed ms)" "${runs[@]}"
		put_stats "burst.$n.serf-coalesce.last_end" ms "last handler run's end after the last event sent" "${ends[@]}"
	done
else
	bench_log "serf not usable"
fi

# ---- the peers that run once per event: PEER_N events each, at the same time
etcd_ok=0 amqp_ok=0
if have etcd && have etcdctl && start_etcd etcd; then
	etcd_ok=1
	ETCDCTL_API=3 bg etcdwatch etcdctl --endpoints "$ETCD_EP" watch /provbus/BURST_KEY -- \
		"$STAMP" "$W/stamps-etcd" --sleep-ms "$RUN_MS"
fi
if have amqp-consume; then
	start_amqp_consume amqpc r1.provides.BURST_AMQ "$STAMP" "$W/stamps-amqp" --stdin --sleep-ms "$RUN_MS"
	amqp_ok=1
fi
nap 1	# the watch and the queue are in place (a probe would cost a 200 ms run)
peer_send() { # peer_send SYS: sends PEER_N events, writes $W/SYS.t (first and last µs)
	local t0 t1
	t0=$(now_us)
	case $1 in
	serf) "$TOOLS/pbtest-peersend" serf "$SERF_RPC" burst --count "$PEER_N" --rate "$PEER_N" ;;
	etcd) "$TOOLS/pbtest-peersend" etcd "$ETCD_EP" /provbus/BURST_KEY --count "$PEER_N" --rate "$PEER_N" ;;
	amqp) "$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$PEER_N" --rate "$PEER_N" \
		--nodes 50 --keys BURST_AMQ ;;
	esac >"$W/$1-send.log" 2>&1
	t1=$(sed -n 's/.* last_us \([0-9]*\).*/\1/p' "$W/$1-send.log")
	echo "$t0 ${t1:-$(now_us)}" >"$W/$1.t"
}
peers=()
[ $serf_ok = 0 ] || peers+=(serf)
[ $etcd_ok = 0 ] || peers+=(etcd)
[ $amqp_ok = 0 ] || peers+=(amqp)
spids=()
for p in "${peers[@]}"; do peer_send "$p" & spids+=($!); done
for p in "${spids[@]}"; do wait "$p"; done
# each runs PEER_N x (200 ms + its own overhead), one after the other
for p in "${peers[@]}"; do
	wait_lines "$W/stamps-$p" "$PEER_N" $(( PEER_N / 2 + 60 )) " end " || bench_log "$p: fewer than $PEER_N runs ended"
done
nap 0.5	# a straggler would show here
for p in "${peers[@]}"; do
	read -r t0 LAST_EVENT <"$W/$p.t"
	window "$W/stamps-$p" 0
	end=$(after_ms "$LAST_END"); end=${end%.*}
	bench_log "$p: $PEER_N events sent in $(us_to_ms $((LAST_EVENT - t0))) ms: $RUNS runs, last ended $end ms after the last event"
	# one run after another: each takes (last end - first start) / runs
	per_run=$(awk -v e="$LAST_END" -v t="$FIRST_START" -v r="$RUNS" 'BEGIN { printf "%.1f", r ? (e - t) / r / 1000 : 0 }')
	for n in $SIZES; do
		if [ "$n" = "$PEER_N" ]; then
			put "burst.$n.$p.runs" "$RUNS" "$RUNS" "$RUNS" runs 1 "measured once, $PEER_N events (sent in $(us_to_ms $((LAST_EVENT - t0))) ms)"
			put "burst.$n.$p.last_end" "$end" "$end" "$end" ms 1 "measured once; $per_run ms per run"
		else
			x=$(awk -v a="$RUNS" -v n="$n" -v m="$PEER_N" 'BEGIN { printf "%d", a * n / m + 0.5 }')
			# the first run starts as the first event arrives; the last event
			# comes the burst's sending time later
			send_ms=$(( n * 1000 / $(rate_of "$n") ))
			e=$(awk -v x="$x" -v p="$per_run" -v s="$send_ms" 'BEGIN { printf "%d", x * p - s + 0.5 }')
			put "burst.$n.$p.runs" "$x" "$x" "$x" runs 0 "extrapolated: $RUNS runs per $PEER_N events x $n/$PEER_N"
			put "burst.$n.$p.last_end" "$e" "$e" "$e" ms 0 "extrapolated: $x runs x $per_run ms per run (measured at $PEER_N) - $send_ms ms of sending"
		fi
	done
done
for sys in serf etcd amqp; do
	[[ " ${peers[*]} " == *" $sys "* ]] && continue
	for n in $SIZES; do put_na "burst.$n.$sys.runs" runs "$sys not usable"; put_na "burst.$n.$sys.last_end" ms "$sys not usable"; done
done
[ $serf_ok = 1 ] || for n in $SIZES; do put_na "burst.$n.serf-coalesce.runs" runs "serf not usable"; put_na "burst.$n.serf-coalesce.last_end" ms "serf not usable"; done
exit $rc
