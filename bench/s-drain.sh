#!/usr/bin/env bash
# Figure 12 — ingest from process start: N events wait in a node's queue
# (the daemon was stopped: an upgrade, a reboot), all for one key it
# requires; the time from the exec of provbus-consumer to the daemon
# having judged all N (its audit rows, counted with sqlite3 every POLL s:
# the figure is up to POLL late; each poll is a process; not `status`,
# which was over the 1 MiB a control client takes at 40,000 providers
# before it was bounded, and would make the daemon list them), against pbtest-ingest (rabbitmq-c, one basic.ack each)
# from its exec to its exit after draining a baseline queue (same type and
# arguments, same bindings, so it holds the same N events). Each round:
#   drain.k40000   the N events come from P distinct providers of the key
#                  (P = N: every event from another node, 40,000 full)
#   drain.k1       the N events come from one provider (another node, for
#                  another key: its state never holds the 40,000)
# The ratios provbus / baseline per round; drain.k.ratio = k40000 / k1:
# the cost per event does not depend on the number of providers when it
# is about 1.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=$(sz 2000 40000)
REPS=$(sz 1 3)
POLL=0.1

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
A() { "$TOOLS/pbtest-amqp" "$URL" "$@"; }

# two daemons: d requires DR_KEY (P = N providers), e requires DR_ONE (one
# provider); each first start declares the queue and catches up, the rounds
# restart them; each has a baseline queue with its bindings
for d in d:DR_KEY e:DR_ONE; do
	node=${d%%:*} key=${d#*:}
	node_config "$W/$node.json" "$node" "$key" '"provision": ["/bin/true"]'
	start_daemon "${node}0" "$W/$node.json" || exit 1
	wait_runs_idle "$W/$node.json" 30 || bench_log "$node: the startup run did not end"
	stop_pid "$DAEMON_PID"
done
qtype=$(sed -n 's/.*"queue_type": *"\([a-z]*\)".*/\1/p' "$W/d.json"); qtype=${qtype:-quorum}
for key in DR_KEY DR_ONE; do
	A queue "bench.drain.$key" --durable --type "$qtype" --dlx provbus.dlx \
		--bind "provbus.$FED:r1.provides.$key" --bind "provbus.$FED:r1.retire.$key" >/dev/null ||
		{ bench_log "cannot declare the baseline queue of $key"; exit 1; }
done

# drain_once NODE KEY P: fills N events of KEY from P providers, then times
# the daemon NODE and the baseline; sets PB_MS, BL_MS
drain_once() {
	local node=$1 key=$2 p=$3 pid t n=0 i=0 r0 db=$W/$1/state/audit.db
	r0=$(sqlite3 -cmd '.timeout 5000' "$db" 'SELECT coalesce(max(rowid), 0) FROM events')
	"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$N" --keys "$key" \
		--nodes "$p" --node-prefix "k$p" >>"$W/fill.log" 2>&1 || { bench_log "filling failed: $(tail -n 2 "$W/fill.log")"; return 1; }
	t=$(now_us)
	"$BIN/provbus-consumer" -c "$W/$node.json" run >>"$W/$node.log" 2>&1 &
	pid=$!
	_bench_pids+=("$pid")
	while [ "$n" -lt "$N" ]; do
		i=$((i + 1))
		if [ $i -ge 12000 ] || ! kill -0 "$pid" 2>/dev/null; then
			bench_log "$node judged $n of $N (see $W/$node.log)"; stop_pid "$pid"; return 1
		fi
		nap "$POLL"
		n=$(sqlite3 -cmd '.timeout 5000' "$db" "SELECT count(*) FROM events WHERE rowid > $r0" 2>/dev/null || echo 0)
	done
	PB_MS=$(( ($(now_us) - t) / 1000 ))
	stop_pid "$pid"
	t=$(now_us)
	"$TOOLS/pbtest-ingest" "$URL" "bench.drain.$key" --count "$N" >>"$W/baseline.log" 2>&1 || { bench_log "pbtest-ingest failed"; return 1; }
	BL_MS=$(( ($(now_us) - t) / 1000 ))
}

declare -a pm40 bm40 r40 pm1 bm1 r1 rk
figures() {
	put_stats drain.k40000.provbus ms "exec of provbus-consumer to $N queued events from $N distinct providers of one key judged" "${pm40[@]}"
	put_stats drain.k40000.baseline ms "pbtest-ingest, exec to exit, the same $N events" "${bm40[@]}"
	put_stats drain.k40000.ratio ratio "throughput provbus / baseline, $N providers, per round (target >= 0.8)" "${r40[@]}"
	put_stats drain.k1.provbus ms "exec of provbus-consumer to $N queued events from one provider judged" "${pm1[@]}"
	put_stats drain.k1.baseline ms "pbtest-ingest, exec to exit, the same $N events" "${bm1[@]}"
	put_stats drain.k1.ratio ratio "throughput provbus / baseline, one provider, per round" "${r1[@]}"
	put_stats drain.k.ratio ratio "provbus's time, $N providers / one provider, per round (about 1: cost independent of the providers)" "${rk[@]}"
}
rc=0
round_s=0
for r in $(seq "$REPS"); do
	if [ "$r" -gt 1 ] && [ "$(section_left)" -lt "$round_s" ]; then
		bench_log "round $r not started: $(section_left) s left, a round takes ~$round_s s"; break
	fi
	t0=$(date +%s)
	drain_once d DR_KEY "$N" || { rc=1; break; }
	pm40+=("$PB_MS"); bm40+=("$BL_MS"); r40+=("$(ratio "$BL_MS" "$PB_MS")")
	drain_once e DR_ONE 1 || { rc=1; break; }
	pm1+=("$PB_MS"); bm1+=("$BL_MS"); r1+=("$(ratio "$BL_MS" "$PB_MS")")
	rk+=("$(ratio "${pm40[-1]}" "$PB_MS")")
	bench_log "round $r: $N providers: provbus ${pm40[-1]} ms, baseline ${bm40[-1]} ms; one provider: provbus $PB_MS ms, baseline $BL_MS ms"
	round_s=$(( $(date +%s) - t0 ))
	PUT_QUIET=1 figures
done
for key in DR_KEY DR_ONE; do A delete-queue "bench.drain.$key" >/dev/null 2>&1; done
figures
exit $rc
