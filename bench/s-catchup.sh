#!/usr/bin/env bash
# Figure 10: a new node in a large federation. The history stream of the
# section's federation holds N events (BENCH_CATCHUP_N; 1,000,000 in the
# full run, 2,000 quick) spread over 60 keys from 1,000 nodes; a new node
# requires 3 of the keys (5 % of the events). BENCH_CATCHUP_REPS rounds
# (2 full, 1 quick), each:
#   provbus   a fresh provbus-consumer (new node, empty state) from exec to
#             its "catch-up done" log line, which says how many history
#             messages it read (checked: all of them); it ends the catch-up
#             at the stream's last offset as of its start;
#   baseline  pbtest-ingest --stream-first, the minimal rabbitmq-c reader
#             (prefetch 500 like the daemon, one basic.ack each, nothing
#             else), from exec to exit after the N+1 messages (it knows
#             the count: no wait).
# Ratio provbus / baseline: target <= 2.
# Figure 9, the fleet view, over the same stream (so a full run fills one
# million-event history, not two): a consumer "fc" of the federation,
# started before the fill (a node that was there all along: no catch-up of
# the million), requires CK000 and reports presence and runs to the fleet
# stream; then, once it has judged its share of the events,
#   fleet.nodes      provbus-fleet nodes: both streams read to their end
#   fleet.converged  provbus-fleet converged CK000: the same read, then
#                    every live consumer's values by its own rules
# (--no-verify-sender: every node of the fill publishes as guest here).
# bench/s-fleet.sh measures the same alone (BENCH_ONLY=fleet).
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=${BENCH_CATCHUP_N:-$(sz 2000 1000000)}
REPS=${BENCH_CATCHUP_REPS:-$(sz 1 2)}
STAMP=$TOOLS/pbtest-stamp

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
keys=$(for i in $(seq 0 59); do printf 'CK%03d,' "$i"; done); keys=${keys%,}
node_config "$W/fc.json" fc CK000 '"provision": ["/bin/true"], "quiet_ms": 1000, "throttle": {"runs": 1000000, "per_s": 1}, "queue_type": "classic"'
start_daemon fc "$W/fc.json" || exit 1
FC_PID=$DAEMON_PID
t=$(now_us)
"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$N" --keys "$keys" \
	--nodes 1000 --node-prefix h >>"$W/fill.log" 2>&1 ||
	{ bench_log "filling the history failed: $(tail -n 2 "$W/fill.log")"; exit 1; }
bench_log "history stream provbus.$FED.history filled with $N events in $(( ($(now_us) - t) / 1000 )) ms"
total=$((N + 1))	# and bench_topology's seed event

declare -a pb bl rt
figures() {
	put_stats catchup.provbus ms "a new node requiring 3 of 60 keys: exec of provbus-consumer to the end of its catch-up of $N history events" "${pb[@]}"
	put_stats catchup.baseline ms "pbtest-ingest --stream-first (rabbitmq-c, one basic.ack each) reads the same $total messages" "${bl[@]}"
	put_stats catchup.ratio ratio "provbus / baseline, per round (target <= 2)" "${rt[@]}"
}
rc=0
for r in $(seq "$REPS"); do
	# a round is as long as the last one, and the fleet view after the rounds
	# reads the stream twice: no round that would leave them past the budget
	if [ "$r" -gt 1 ] && [ $(( $(left_s) * 1000 )) -lt $(( (${pb[-1]} + ${bl[-1]}) * 12 / 10 + 2 * ${bl[-1]} )) ]; then
		bench_log "round $r not started: $(left_s) s left, a round takes ~$(( (${pb[-1]} + ${bl[-1]}) / 1000 )) s"; break
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

# ---- the fleet view over the same stream
if [ $rc = 0 ]; then
	# --no-cache: each run reads the window (bench/s-fleet.sh times the cache)
	fleet() { "$BIN/provbus-fleet" -c "$W/fc.json" --no-verify-sender --no-cache "$@"; }
	share=$(( (N + 59) / 60 ))	# CK000: events 0, 60, 120, ...
	dl=$(( $(date +%s) + 600 ))
	until [ "$(daemon_count "$W/fc.json")" -ge "$share" ] && [ "$(daemon_state "$W/fc.json")" = idle ]; do
		past "$dl" && { bench_log "fc judged $(daemon_count "$W/fc.json") of $share events of CK000"; rc=1; break; }
		nap 0.5
	done
fi
if [ $rc = 0 ]; then
	for verb in nodes converged; do
		ms=()
		dl=$(part_deadline "$([ $verb = nodes ] && echo 0.5 || echo 1)")
		for i in 1 2 3; do
			# a run is as long as the last one: none that would end past the budget
			if [ "$i" -gt 1 ] && { past "$dl" || [ $(( $(left_s) * 1000 )) -lt $(( ${ms[-1]} + 15000 )) ]; }; then
				bench_log "fleet $verb: $((i - 1)) runs (time budget)"; break
			fi
			t0=$(now_us)
			if [ $verb = nodes ]; then fleet nodes >"$W/fleet-$verb-$i.out" 2>"$W/fleet-$verb-$i.err"
			else fleet converged CK000 >"$W/fleet-$verb-$i.out" 2>"$W/fleet-$verb-$i.err"; fi
			x=$?
			ms+=("$(since_ms "$t0")")
			# converged may answer 1 (someone not converged): still an answer
			[ $x -le 1 ] || { bench_log "fleet $verb exited $x: $(head -c 600 "$W/fleet-$verb-$i.err")"; rc=1; break; }
			bench_log "fleet $verb: ${ms[-1]} ms, exit $x$([ $x = 0 ] || echo ": $(head -c 300 "$W/fleet-$verb-$i.out")")"
			PUT_QUIET=1 put_stats "fleet.$verb" ms "provbus-fleet $verb over a history of $N events (the catch-up's stream), ${#ms[@]} runs" "${ms[@]}"
		done
		put_stats "fleet.$verb" ms "provbus-fleet $verb over a history of $N events (the catch-up's stream), ${#ms[@]} runs" "${ms[@]}"
	done
fi
stop_pid "$FC_PID"
exit $rc
