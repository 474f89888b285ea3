#!/usr/bin/env bash
# Figure 5 — fan-out: N consumer daemons on one broker require the same
# key (quiet_ms 0); one `provbus-publish provides` changes it. Per round:
# the time from the start of provbus-publish until all N provision runs
# have started; over ROUNDS rounds its p50 and max. CPU (utime+stime from
# /proc/PID/stat, not counting the provision children) of the broker and
# of the N daemons together, over the rounds, per round.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=$(sz 3 100)
ROUNDS=$(sz 1 5)
STAMP=$TOOLS/pbtest-stamp

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
f=$W/stamps
pids=()

# TERM to all at once, then wait for all (up to 70 s), then KILL the rest
stop_all() {
	local p i alive
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 700); do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
		[ $alive = 1 ] || break
		nap 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	pids=()
}

t=$(now_us)
for i in $(seq -w "$N"); do
	cons='"provision": ["'$STAMP'", "'$f'", "--tag", "fan-'$i'"], "quiet_ms": 0, "throttle": {"runs": 1000000, "per_s": 1}'
	node_config "$W/fan-$i.json" "fan-$i" FAN_KEY "$cons" 30
	bg "fan-$i" "$BIN/provbus-consumer" -c "$W/fan-$i.json" run
	pids+=("$BG_PID")
done
# every daemon up: its startup run has ended
if ! wait_lines "$f" "$N" 180 " end "; then
	count_lines "$f" " end "
	bench_log "only $NLINES of $N daemons made their startup run in 180 s (see $W/fan-*.log)"
	stop_all; exit 1
fi
bench_log "$N daemons up (startup runs done) in $(( $(since_ms "$t") )) ms"
nap 1

node_config "$W/pub.json" pub "" ""
manifest() { printf '{"id": "fan", "environment": {"PORT": %d}, "provides": {"FAN_KEY": "http://{HOST}:{PORT}/"}}\n' \
	$((20000 + $1)) >"$W/pub/services.d/fan.json"; }

cpu_sum() { local p s=0; for p in "$@"; do s=$(( s + $(cpu_ticks "$p") )); done; echo "$s"; }
b0=$(cpu_ticks "$BROKER_PID"); d0=$(cpu_sum "${pids[@]}")
all=() rc=0
for r in $(seq "$ROUNDS"); do
	count_lines "$f" " start "; before=$NLINES
	manifest "$r"
	t0=$(now_us)
	"$BIN/provbus-publish" -c "$W/pub.json" provides fan >>"$W/pub.log" 2>&1 || { bench_log "round $r: provbus-publish failed"; rc=1; break; }
	if ! wait_lines "$f" $((before + N)) 60 " start "; then
		count_lines "$f" " start "
		bench_log "round $r: only $((NLINES - before)) of $N runs started within 60 s"; rc=1; break
	fi
	last=$(awk -v from="$before" '/ start / { n++; if (n > from && $1 > m) m = $1 } END { print m }' "$f")
	all+=("$(us_to_ms $((last - t0)))")
	bench_log "round $r: all $N runs started $(us_to_ms $((last - t0))) ms after provbus-publish started"
	wait_lines "$f" $((before + N)) 60 " end " # the runs ended (daemons idle again)
	nap 0.5
done
b1=$(cpu_ticks "$BROKER_PID"); d1=$(cpu_sum "${pids[@]}")
stop_all
if [ ${#all[@]} -eq 0 ]; then
	for id in all_started.p50 all_started.max; do put_na "fanout.$id" ms "no round completed"; done
	for id in cpu.broker cpu.daemons; do put_na "fanout.$id" ms/round "no round completed"; done
else
	read -r _ mn mx < <(stats "${all[@]}")
	put fanout.all_started.p50 "$(pct 50 "${all[@]}")" "$mn" "$mx" ms ${#all[@]} "provbus-publish start -> all $N provision runs started"
	put fanout.all_started.max "$mx" "$mn" "$mx" ms ${#all[@]} "the slowest of the rounds"
	nr=${#all[@]}
	bc=$(( $(ticks_ms $((b1 - b0))) / nr )) dc=$(( $(ticks_ms $((d1 - d0))) / nr ))
	put fanout.cpu.broker "$bc" "$bc" "$bc" "ms/round" "$nr" "broker CPU per round (includes its idle work for $N connections)"
	put fanout.cpu.daemons "$dc" "$dc" "$dc" "ms/round" "$nr" "the $N daemons' CPU together per round (without the provision children)"
fi
exit $rc
