#!/usr/bin/env bash
# Figure 9: a new node in a large federation. The history stream of the
# section's federation holds N events (BENCH_CATCHUP_N; 1,000,000 in the
# full run, 2,000 quick) spread over 60 keys from 1,000 nodes; a new node
# requires 3 of the keys (5 % of the events). Each round:
#   provbus   a fresh provbus-consumer (new node, empty state) from exec to
#             its "catch-up done" log line, which says how many history
#             messages it read (checked: all of them); it ends the catch-up
#             after CS_HISTORY_IDLE_MS (500 ms) without a message, since
#             the stream has no end marker: that wait is in the figure;
#   baseline  pbtest-ingest --stream-first, the minimal rabbitmq-c reader
#             (prefetch 500 like the daemon, one basic.ack each, nothing
#             else), from exec to exit after the N+1 messages (it knows
#             the count: no wait).
# Ratio provbus / baseline: target <= 2.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=${BENCH_CATCHUP_N:-$(sz 2000 1000000)}
REPS=$(sz 1 2)
STAMP=$TOOLS/pbtest-stamp

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
keys=$(for i in $(seq 0 59); do printf 'CK%03d,' "$i"; done); keys=${keys%,}
t=$(now_us)
"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$N" --keys "$keys" \
	--nodes 1000 --node-prefix h >>"$W/fill.log" 2>&1 ||
	{ bench_log "filling the history failed: $(tail -n 2 "$W/fill.log")"; exit 1; }
bench_log "history stream provbus.$FED.history filled with $N events in $(( ($(now_us) - t) / 1000 )) ms"
total=$((N + 1))	# and bench_topology's seed event

declare -a pb bl rt
figures() {
	put_stats catchup.provbus ms "a new node requiring 3 of 60 keys: exec of provbus-consumer to the end of its catch-up of $N history events (500 ms end-of-stream wait included)" "${pb[@]}"
	put_stats catchup.baseline ms "pbtest-ingest --stream-first (rabbitmq-c, one basic.ack each) reads the same $total messages" "${bl[@]}"
	put_stats catchup.ratio ratio "provbus / baseline, per round (target <= 2)" "${rt[@]}"
}
rc=0
for r in $(seq "$REPS"); do
	if [ "$r" -gt 1 ] && [ "$(section_left)" -lt 10 ]; then
		bench_log "round $r not started: $(section_left) s left"; break
	fi
	node=cu$r
	node_config "$W/$node.json" "$node" "" "\"provision\": [\"$STAMP\", \"$W/stamps\"]"
	printf '{"id": "app", "requires": {"CK000": "{CK000}", "CK001": "{CK001}", "CK002": "{CK002}"}}\n' \
		>"$W/$node/services.d/app.json"
	t=$(now_us)
	"$BIN/provbus-consumer" -c "$W/$node.json" run >>"$W/$node.log" 2>&1 &
	pid=$!
	_bench_pids+=("$pid")
	lim=$(( $(section_left) > 60 ? $(section_left) : 60 ))
	until grep -q 'catch-up done' "$W/$node.log" 2>/dev/null; do
		if [ $(( ($(now_us) - t) / 1000000 )) -ge "$lim" ] || ! kill -0 "$pid" 2>/dev/null; then
			bench_log "round $r: no catch-up end (see $W/$node.log)"; rc=1; break
		fi
		nap 0.02
	done
	ms=$(( ($(now_us) - t) / 1000 ))
	stop_pid "$pid"
	[ $rc = 0 ] || break
	read_n=$(sed -n 's/.*catch-up done .* read=\([0-9]*\) .*/\1/p' "$W/$node.log" | tail -n 1)
	applied=$(sed -n 's/.*catch-up done .* applied=\([0-9]*\) .*/\1/p' "$W/$node.log" | tail -n 1)
	if [ "${read_n:-0}" -lt "$total" ]; then
		bench_log "round $r: the catch-up read $read_n of $total messages"; rc=1; break
	fi
	t=$(now_us)
	"$TOOLS/pbtest-ingest" "$URL" "provbus.$FED.history" --stream-first --count "$total" \
		--timeout-ms 120000 >>"$W/baseline.log" 2>&1 || { bench_log "pbtest-ingest --stream-first failed"; rc=1; break; }
	bms=$(( ($(now_us) - t) / 1000 ))
	pb+=("$ms"); bl+=("$bms"); rt+=("$(ratio "$ms" "$bms")")
	bench_log "round $r: catch-up $ms ms (read $read_n, applied $applied), baseline $bms ms"
	PUT_QUIET=1 figures
done
figures
exit $rc
