#!/usr/bin/env bash
# Figures 1, 2b and provbus's half of 6, on one daemon and one broker:
#
# Each round, with the daemon stopped (SIGSTOP: its connection stays, the
# broker just cannot deliver past the prefetch):
#   2b  `provbus-publish flush` of an outbox of N/2 events (rows written
#       with sqlite by pbtest-pubflood outbox-fill, in the outbox's own
#       schema) against pbtest-pubflood publish of N/2 events (the minimal
#       rabbitmq-c publisher, confirm window 1000 like provbus-publish):
#       events/s of each, from exec to exit, and the ratio. Both go to
#       provbus.F, whose bindings route every event to the daemon's queue,
#       to the baseline's queue (same type and arguments) and to the
#       history stream: the same broker work for both.
#   1   the daemon's queue now holds N events: SIGCONT, and the time until
#       the daemon has judged all N (status counts; every row is committed
#       to audit.db before its ack) against pbtest-ingest, which only acks,
#       draining the baseline queue's N: events/s and the ratio.
#   6   the daemon's VmRSS idle, after every round, then after more events
#       (published while it runs) up to MEM_TARGET in all or the largest
#       count this section's share of the time budget allows, with the
#       checkpoints.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=$(sz 2000 200000)
HALF=$((N / 2))
REPS=$(sz 1 3)
MEM_TARGET=$(sz 4000 1000000)
MEM_CHUNK=$(sz 1000 100000)
POLL=0.25		# status polls during a drain (each one costs a process)
STAMP=$TOOLS/pbtest-stamp
BQ=bench.baseline

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
A() { "$TOOLS/pbtest-amqp" "$URL" "$@"; }

# the daemon: default debounce (quiet 2 s, max wait 30 s: one run per 30 s
# of a constant stream), heartbeats off (SIGSTOP)
cons='"provision": ["'$STAMP'", "'$W/stamps'"]'
node_config "$W/ing.json" ing ING_KEY "$cons"
start_daemon ing "$W/ing.json" || exit 1
D=$DAEMON_PID
wait_runs_idle "$W/ing.json" 30 || bench_log "the startup run did not end"
rss3() { local v=() i; for i in 1 2 3; do v+=("$(rss_kb "$D")"); nap 0.05; done; read -r s _ < <(stats "${v[@]}"); echo "$s"; }
rss_idle=$(rss3)
bench_log "daemon pid $D ready in $DAEMON_READY_MS ms; idle VmRSS $rss_idle kB"
put memory.provbus.idle "$rss_idle" "$rss_idle" "$rss_idle" kB 3 "VmRSS of provbus-consumer, idle after its startup run ($(rss_parts "$D"))"
x=$(anon_kb "$D"); put memory.provbus.idle.anon "$x" "$x" "$x" kB 1 "RssAnon of provbus-consumer, idle"
x=$(file_kb "$D"); put memory.provbus.idle.file "$x" "$x" "$x" kB 1 "RssFile of provbus-consumer, idle"

qtype=$(sed -n 's/.*"queue_type": *"\([a-z]*\)".*/\1/p' "$W/ing.json"); qtype=${qtype:-quorum}
A queue "$BQ" --durable --type "$qtype" --dlx provbus.dlx \
	--bind "provbus.$FED:r1.provides.ING_KEY" --bind "provbus.$FED:r1.retire.ING_KEY" >/dev/null ||
	{ bench_log "cannot declare the baseline queue"; exit 1; }

# the publisher whose outbox is filled: a first provides creates outbox.db
node_config "$W/pub.json" pub "" ""
echo '{"id": "app", "provides": {"PUB_ONE": "http://{HOST}:1/"}}' >"$W/pub/services.d/app.json"
"$BIN/provbus-publish" -c "$W/pub.json" provides app >>"$W/pub.log" 2>&1 ||
	{ bench_log "provbus-publish failed: $(tail -n 3 "$W/pub.log")"; exit 1; }
OUTBOX=$W/pub/state/outbox.db

# wait_count TARGET SECS: until the daemon has judged TARGET events
wait_count() {
	local lim i=0
	hundredths "$POLL"; lim=$(( $2 * 100 / HUNDREDTHS ))
	while [ "$(daemon_count "$W/ing.json")" -lt "$1" ]; do
		i=$((i + 1)); [ $i -lt $lim ] || return 1
		nap "$POLL"
	done
}

declare -a ing_pb ing_bl ing_ratio fl_pb fl_bl fl_ratio cpu_ev
checkpoints=()
total=0 rc=0
# the figures of the rounds so far (written after each round: a run cut
# short by the time budget keeps the rounds it finished)
figures() {
	put_stats ingest.provbus "ev/s" "provbus-consumer drains $N events (audit committed before ack)" "${ing_pb[@]}"
	put_stats ingest.baseline "ev/s" "pbtest-ingest (rabbitmq-c, one basic.ack each) drains $N events" "${ing_bl[@]}"
	put_stats ingest.ratio ratio "provbus / baseline, per round (target >= 0.7)" "${ing_ratio[@]}"
	put_stats ingest.provbus.cpu "us/event" "the daemon's CPU per event while draining" "${cpu_ev[@]}"
	put_stats flush.provbus "ev/s" "provbus-publish flush of $HALF spooled events" "${fl_pb[@]}"
	put_stats flush.baseline "ev/s" "pbtest-pubflood: $HALF events, confirm window 1000" "${fl_bl[@]}"
	put_stats flush.ratio ratio "provbus / baseline, per round (target >= 0.8)" "${fl_ratio[@]}"
}
# the rounds go on past this section's share, as long as the sections
# after it keep BENCH_REST_S of the whole budget
round_s=0
for r in $(seq "$REPS"); do
	if [ "$r" -gt 1 ] && [ $(( $(left_s) - ${BENCH_REST_S:-0} )) -lt "$round_s" ]; then
		bench_log "round $r not started: $(left_s) s left in all, a round takes ~$round_s s"
		break
	fi
	round_t0=$(date +%s)
	n0=$(daemon_count "$W/ing.json")
	kill -STOP "$D"
	"$TOOLS/pbtest-pubflood" outbox-fill "$OUTBOX" --count "$HALF" --federation "$FED" --keys ING_KEY \
		--nodes 50 --node-prefix fl-n >>"$W/fill.log" 2>&1 || { bench_log "outbox-fill failed: $(tail -n 2 "$W/fill.log")"; rc=1; break; }
	t=$(now_us)
	"$BIN/provbus-publish" -c "$W/pub.json" flush >>"$W/flush.log" 2>&1 || { bench_log "flush failed: $(tail -n 3 "$W/flush.log")"; rc=1; }
	ms=$(( $(now_us) - t )); ms=$((ms / 1000))
	left=$(sqlite3 "$OUTBOX" 'SELECT count(*) FROM outbox' 2>/dev/null)
	[ "$left" = 0 ] || { bench_log "the outbox still holds $left events after flush"; rc=1; }
	fp=$(rate "$HALF" "$ms")
	t=$(now_us)
	"$TOOLS/pbtest-pubflood" publish "$URL" --count "$HALF" --federation "$FED" --keys ING_KEY \
		--nodes 50 --node-prefix pf-n >>"$W/pubflood.log" 2>&1 || { bench_log "pbtest-pubflood failed"; rc=1; }
	ms=$(( ($(now_us) - t) / 1000 ))
	fb=$(rate "$HALF" "$ms")
	fl_pb+=("$fp"); fl_bl+=("$fb"); fl_ratio+=("$(ratio "$fp" "$fb")")
	bench_log "round $r: flush $fp ev/s, baseline publisher $fb ev/s"

	c0=$(cpu_ticks "$D")
	t=$(now_us)
	kill -CONT "$D"
	if ! wait_count $((n0 + N)) 900; then
		bench_log "round $r: the daemon judged only $(( $(daemon_count "$W/ing.json") - n0 )) of $N events"; rc=1; break
	fi
	ms=$(( ($(now_us) - t) / 1000 ))
	c1=$(cpu_ticks "$D")
	ip=$(rate "$N" "$ms")
	cpu_ev+=("$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$N" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')")
	total=$((total + N))
	checkpoints+=("$total:$(rss_kb "$D")")

	out=$("$TOOLS/pbtest-ingest" "$URL" "$BQ" --count "$N" 2>&1) || { bench_log "pbtest-ingest failed: $out"; rc=1; break; }
	bl=$(echo "$out" | awk '{ print $6 }')
	ing_pb+=("$ip"); ing_bl+=("$bl"); ing_ratio+=("$(ratio "$ip" "$bl")")
	bench_log "round $r: ingest provbus $ip ev/s (cpu ${cpu_ev[-1]} us/event), baseline $bl ev/s; VmRSS ${checkpoints[-1]#*:} kB after $total events"
	round_s=$(( $(date +%s) - round_t0 ))
	[ "$r" = "$REPS" ] || PUT_QUIET=1 figures
	x=${checkpoints[-1]#*:}
	PUT_QUIET=1 put memory.provbus.after "$x" "$x" "$x" kB 1 "VmRSS after $total events (the rounds so far)"
done
A delete-queue "$BQ" >/dev/null 2>&1
figures

# ---- more events through the same daemon, while it runs, for its memory
if [ $rc = 0 ]; then
	chunk_s=0
	while [ "$total" -lt "$MEM_TARGET" ]; do
		c=$(( MEM_TARGET - total < MEM_CHUNK ? MEM_TARGET - total : MEM_CHUNK ))
		if [ "$(section_left)" -lt "$chunk_s" ] || [ $(( $(left_s) - ${BENCH_REST_S:-0} )) -lt "$chunk_s" ]; then
			bench_log "memory: stopping at $total events ($(section_left) s left of this section's share, a chunk takes ~$chunk_s s)"
			break
		fi
		n0=$(daemon_count "$W/ing.json")
		t=$(now_us)
		"$TOOLS/pbtest-pubflood" publish "$URL" --count "$c" --federation "$FED" --keys ING_KEY \
			--nodes 50 --node-prefix mem-n >>"$W/pubflood.log" 2>&1 || { bench_log "memory: publishing failed"; rc=1; break; }
		wait_count $((n0 + c)) 600 || { bench_log "memory: the daemon did not take $c events"; rc=1; break; }
		chunk_s=$(( ($(now_us) - t) / 1000000 + 1 ))
		total=$((total + c))
		checkpoints+=("$total:$(rss_kb "$D")")
		bench_log "memory: VmRSS ${checkpoints[-1]#*:} kB after $total events (chunk of $c in ${chunk_s} s)"
	done
fi
last=${checkpoints[-1]:-0:NA}
rss_after=$(rss3)
note="VmRSS after $total events ($(rss_parts "$D")); checkpoints (events:kB) ${checkpoints[*]}"
[ "$total" -ge "$MEM_TARGET" ] || note="$note; the time budget stopped it short of $MEM_TARGET"
put memory.provbus.after "$rss_after" "$rss_after" "$rss_after" kB 3 "$note"
printf '%s\n' "0:$rss_idle" "${checkpoints[@]}" | tr ':' '\t' >"$BENCH_OUT/memory-checkpoints.tsv"
bench_log "audit rows: $(sqlite3 "$W/ing/state/audit.db" 'SELECT count(*) FROM events' 2>/dev/null); last checkpoint $last"
stop_pid "$D"
exit $rc
