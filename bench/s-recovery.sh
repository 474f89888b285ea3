#!/usr/bin/env bash
# Figure 11 — recovery after a broker restart (scenario 1 of
# docs/RELIABILITY.md, reduced to the reconnect): NCONS consumer daemons,
# each connected for more than 5 s (a healthy connection: the fast
# reconnect schedule applies), lose their broker to kill -9; it stays down
# DOWN_S seconds, then starts again.
#   recovery.reconnect       per daemon, from the broker accepting TCP
#                            connections again (a probe connect every 10 ms)
#                            to the daemon's log line "connected broker=..."
#                            (each log line is stamped as the bench reads
#                            it); min–max is the spread the jitter gives
#   recovery.reconnect.max   the last daemon of each round
#   recovery.login           per daemon, from the broker's log line "started
#                            TCP listener" to its line saying the daemon's new
#                            connection was authenticated (one log, one
#                            clock); the rest of reconnect is the
#                            daemon's set-up on a broker that has just started
#                            (queue declare, bind, consume: the quorum queue
#                            must be recovered first)
#   recovery.login.max       the last daemon of each round (target <= 2000)
#   recovery.backlog         from the broker accepting connections to every
#                            daemon having judged BACKLOG events published
#                            while they were away (spooled by provbus-publish,
#                            sent by its flush as soon as the broker is back)
# The section runs a broker of its own (it is killed): the run's broker,
# which the other sections use, is never touched.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

NCONS=$(sz 3 10)
DOWN_S=$(sz 2 10)
REPS=$(sz 1 2)
BACKLOG=$(sz 100 2000)

# the section's own broker
RB=$W/broker
"$PB_BROKER" start "$RB" >"$W/broker-start.log" 2>&1 || { bench_log "cannot start a broker: $(tail -n 3 "$W/broker-start.log")"; exit 1; }
rb_stop() { "$PB_BROKER" stop "$RB" >/dev/null 2>&1; }
trap '_bench_cleanup; rb_stop' EXIT
# shellcheck disable=SC1091
. "$RB/broker.env"
BROKER_URL=$PB_BROKER_URL
RPORT=${PB_BROKER_PORTS%% *}
BENCH_VHOST=/
bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }

# stamp_lines: each line of stdin with the wall clock (µs) in front
stamp_lines() { local l; while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done; }
declare -a pids
for i in $(seq "$NCONS"); do
	node_config "$W/c$i.json" "c$i" REC_KEY '"provision": ["/bin/true"], "quiet_ms": 0' 10
	"$BIN/provbus-consumer" -c "$W/c$i.json" -v run 2> >(stamp_lines >>"$W/c$i.log") >/dev/null &
	pids+=("$!"); _bench_pids+=("$!")
done
# every daemon connected, then every connection older than 5 s
dl=$(( $(date +%s) + 60 ))
for i in $(seq "$NCONS"); do
	until wait_lines "$W/c$i.log" 1 1 "connected broker="; do
		past "$dl" && { bench_log "c$i never connected (see $W/c$i.log)"; exit 1; }
	done
done
# a publisher whose outbox holds the backlog (its first run creates it)
node_config "$W/pub.json" pub "" ""
echo '{"id": "app", "provides": {"REC_PUB": "http://{HOST}:1/"}}' >"$W/pub/services.d/app.json"
"$BIN/provbus-publish" -c "$W/pub.json" provides >>"$W/pub.log" 2>&1 ||
	{ bench_log "provbus-publish failed: $(tail -n 3 "$W/pub.log")"; exit 1; }
nap 5.5

# log_us PATTERN SINCE_US: the broker's log stamp (µs) of its first line
# matching PATTERN after SINCE_US, or nothing
log_us() {
	local l t
	while IFS= read -r l; do
		t=$(date -d "${l%% \[*}" +%s%6N 2>/dev/null) || continue
		[ "$t" -ge "$2" ] && { echo "$t"; return; }
	done < <(grep -h "$1" "$RB"/n1/log/*@localhost.log 2>/dev/null)
}
declare -a rec recmax backlog lg lgmax
for r in $(seq "$REPS"); do
	if [ "$r" -gt 1 ] && [ "$(section_left)" -lt $((DOWN_S + 30)) ]; then
		bench_log "round $r not started: $(section_left) s left"; break
	fi
	declare -A before=()
	for i in $(seq "$NCONS"); do count_lines "$W/c$i.log" "connected broker="; before[$i]=$NLINES; done
	n0=0; for i in $(seq "$NCONS"); do n0=$(( n0 + $(daemon_count "$W/c$i.json") )); done
	"$PB_BROKER" kill "$RB" 1 || { bench_log "kill of the broker failed"; exit 1; }
	t_kill=$(now_us)
	# the backlog: events spooled while the broker is away (what
	# provbus-publish runs that exit 75 leave), sent by a flush once it is back
	"$TOOLS/pbtest-pubflood" outbox-fill "$W/pub/state/outbox.db" --count "$BACKLOG" --federation "$FED" \
		--keys REC_KEY --nodes 50 --node-prefix "rb$r" >>"$W/fill.log" 2>&1 ||
		{ bench_log "outbox-fill failed: $(tail -n 2 "$W/fill.log")"; exit 1; }
	while [ $(( ($(now_us) - t_kill) / 1000000 )) -lt "$DOWN_S" ]; do nap 0.2; done
	# restart in the background; the probe stamps the first accepted connect
	"$PB_BROKER" restart "$RB" 1 >"$W/restart-$r.log" 2>&1 &
	restart_pid=$!
	t_up=""
	for _ in $(seq 12000); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null; then t_up=$(now_us); break; fi
		nap 0.01
	done
	[ -n "$t_up" ] || { bench_log "round $r: the broker never accepted a connection"; exit 1; }
	# the spool goes out as soon as the broker takes it
	( for _ in $(seq 60); do "$BIN/provbus-publish" -c "$W/pub.json" --timeout 5 flush >>"$W/pub.log" 2>&1 && exit 0; nap 0.2; done; exit 1 ) &
	flush_pid=$!
	ms=()
	for i in $(seq "$NCONS"); do
		want=$(( before[$i] + 1 ))
		if ! wait_lines "$W/c$i.log" "$want" 60 "connected broker="; then
			bench_log "round $r: c$i did not reconnect within 60 s"; exit 1
		fi
		# the stamp of its want-th "connected" line
		us=$(grep "connected broker=" "$W/c$i.log" | sed -n "${want}p" | cut -d' ' -f1)
		ms+=("$(( (us - t_up) / 1000 ))")
	done
	rec+=("${ms[@]}")
	# the login: from the broker's own "started TCP listener" (the probe
	# above, a fork every 10 ms, sees it up to tens of ms late under load)
	t_l=$(log_us "started TCP listener" "$t_kill"); t_l=${t_l:-$t_up}
	lms=()
	for i in $(seq "$NCONS"); do
		us=$(log_us "provbus-consumer c$i): user .* authenticated" "$t_kill")
		[ -n "$us" ] && lms+=("$(( (us - t_l) / 1000 ))")
	done
	if [ ${#lms[@]} -eq "$NCONS" ]; then
		lg+=("${lms[@]}")
		read -r mx _ < <(printf '%s\n' "${lms[@]}" | sort -gr)
		lgmax+=("$mx")
	else
		bench_log "round $r: the broker's log names ${#lms[@]} of $NCONS logins"
	fi
	read -r mx _ < <(printf '%s\n' "${ms[@]}" | sort -gr)
	recmax+=("$mx")
	wait "$flush_pid" || bench_log "round $r: the flush did not empty the outbox"
	wait "$restart_pid"
	# the backlog judged by every daemon
	want=$(( n0 + NCONS * BACKLOG ))
	for _ in $(seq 1200); do
		n=0; for i in $(seq "$NCONS"); do n=$(( n + $(daemon_count "$W/c$i.json") )); done
		[ "$n" -lt "$want" ] || break
		nap 0.1
	done
	bms=$(( ($(now_us) - t_up) / 1000 ))
	[ "$n" -ge "$want" ] || { bench_log "round $r: the daemons judged $((n - n0)) of $((NCONS * BACKLOG)) backlog events"; exit 1; }
	backlog+=("$bms")
	bench_log "round $r: broker down $(( (t_up - t_kill) / 1000000 )) s (kill -9 to accepting connections); reconnect after it accepted connections (ms): ${ms[*]}; login (ms): ${lms[*]}; backlog of $BACKLOG judged by all $NCONS in $bms ms"
	nap 5.5	# healthy again before the next kill
done
put_stats recovery.reconnect ms "each of $NCONS daemons, broker held down at least ${DOWN_S} s: broker accepting connections -> the daemon connected (${#recmax[@]} rounds)" "${rec[@]}"
put_stats recovery.reconnect.max ms "the last of the $NCONS daemons to be consuming again, per round" "${recmax[@]}"
put_stats recovery.login ms "each of $NCONS daemons: broker accepting connections -> the broker logs its new connection authenticated" "${lg[@]}"
put_stats recovery.login.max ms "the last of the $NCONS daemons to log in again, per round (target <= 2000)" "${lgmax[@]}"
put_stats recovery.backlog ms "broker accepting connections -> $BACKLOG events spooled while it was away judged by every daemon" "${backlog[@]}"
