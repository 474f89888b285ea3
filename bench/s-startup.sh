#!/usr/bin/env bash
# Figure 8 — start-up: from exec to READY=1 (connected, bound, caught up)
# with a warm broker, timed by pbtest-notifywait (the NOTIFY_SOCKET
# datagram socket systemd would give).
#   startup.restart  the daemon restarts and finds its queue in place (the
#                    common case: a reboot, an upgrade); no catch-up
#   startup.new      a new node: its queue is declared and the history
#                    stream (holding HIST events) is read before READY=1
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

REPS=$(sz 1 5)
NEW_REPS=$(sz 1 3)
HIST=$(sz 50 1000)

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
# the history a new node reads: HIST announcements of its key
"$TOOLS/pbtest-pubflood" publish "$URL" --federation "$FED" --count "$HIST" --nodes 20 --keys ST_KEY >"$W/fill.log" 2>&1 ||
	{ bench_log "filling the history failed: $(cat "$W/fill.log")"; exit 1; }

cons='"provision": ["'$TOOLS/pbtest-stamp'", "'$W/stamps'"], "quiet_ms": 0'
node_config "$W/st.json" st ST_KEY "$cons"
# the first start declares the queue; the restarts below find it
"$TOOLS/pbtest-notifywait" -- "$BIN/provbus-consumer" -c "$W/st.json" run >"$W/first.out" 2>>"$W/st.log" ||
	{ bench_log "the daemon did not become ready: $(tail -n 5 "$W/st.log")"; exit 1; }

restart=()
dl=$(part_deadline 0.5)
for i in $(seq "$REPS"); do
	[ "$i" -le 1 ] || ! past "$dl" || { bench_log "restarts: $((i - 1)) (time budget)"; break; }
	"$TOOLS/pbtest-notifywait" -- "$BIN/provbus-consumer" -c "$W/st.json" run >"$W/restart-$i.out" 2>>"$W/st.log" ||
		{ bench_log "restart $i: no READY=1: $(tail -n 5 "$W/st.log")"; exit 1; }
	restart+=("$(awk '/^ready_ms/ { print $2 }' "$W/restart-$i.out")")
done
put_stats startup.restart ms "exec to READY=1, queue in place, ${#restart[@]} restarts" "${restart[@]}"

new=()
dl=$(part_deadline 1)
for i in $(seq "$NEW_REPS"); do
	[ "$i" -le 1 ] || ! past "$dl" || { bench_log "new nodes: $((i - 1)) (time budget)"; break; }
	node_config "$W/new$i.json" "st-new$i" ST_KEY "$cons"
	"$TOOLS/pbtest-notifywait" -- "$BIN/provbus-consumer" -c "$W/new$i.json" run >"$W/new-$i.out" 2>>"$W/new$i.log" ||
		{ bench_log "new node $i: no READY=1: $(tail -n 5 "$W/new$i.log")"; exit 1; }
	new+=("$(awk '/^ready_ms/ { print $2 }' "$W/new-$i.out")")
	read_n=$(sed -n 's/.*catch-up done.* read=\([0-9]*\).*/\1/p' "$W/new$i.log" | tail -n 1)
	bench_log "new node $i: catch-up read ${read_n:-?} events"
done
put_stats startup.new ms "exec to READY=1, new queue, catch-up of $HIST history events, ${#new[@]} nodes" "${new[@]}"
