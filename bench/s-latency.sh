#!/usr/bin/env bash
# Figure 4 — latency on an idle system: one event, from the start of the
# sending command to the provision process running (its first act is to
# write the wall clock: pbtest-stamp), up to N samples each, p50 and p99:
#   provbus-q0 / provbus-q200  provbus-publish provides (one key, confirmed)
#                    -> provbus-consumer with quiet_ms 0 / 200
#   provbus-*-bus    the bus's own share: from the end of provbus-publish
#                    (all confirmed) to the provision process running
#   amqp             amqp-publish -> amqp-consume running the command,
#                    sampled in turn with provbus-q0 (one of each, then
#                    again: both meet the same load on a shared machine)
#   q0-amqp.ratio    provbus-q0 / amqp, per pair: the figure to compare
#   etcd             etcdctl put -> etcdctl watch KEY -- command
#   serf             serf event -coalesce=false -> agent event handler
#   serf-coalesce    serf event -coalesce=true (the agent's user-event
#                    quiescent period is 1 s: at most N_SLOW samples)
# Each sample waits for the previous run to end, so every one starts idle.
# Each system gets a share of the section's time; a busy machine gets
# fewer samples (the figure says how many) rather than an overrun.
# Figure 6, the peers: their VmRSS after one probe event (idle) and after
# the samples went through them (each event ran the command).
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

N=$(sz 3 200)
N_SLOW=$(sz 1 30)	# serf with coalescing: a second a sample
MIN_N=3			# even past its deadline, a system gets this many
STAMP=$TOOLS/pbtest-stamp

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
rc=0

# The stamps are followed through an open descriptor (new lines only, no
# re-reading, no process per poll: the poller must not load the machine
# whose latency it measures).
# next_line FD PATTERN SECS: sets LINE to the next line holding PATTERN
next_line() {
	local fd=$1 pat=$2 i=0 lim=$(( $3 * 200 )) l
	while :; do
		if IFS= read -r -u "$fd" l; then
			l=$PARTIAL$l PARTIAL=""
			[[ $l == *"$pat"* ]] && { LINE=$l; return 0; }
			continue
		fi
		PARTIAL=$PARTIAL$l	# a line still being written
		i=$((i + 1)); [ $i -lt $lim ] || return 1
		nap 0.005
	done
}
# ms_of US: sets MS to microseconds as ms with one decimal (negative too)
ms_of() {
	local u=$1 s=""
	[ "$u" -ge 0 ] || { s=-; u=$(( -u )); }
	printf -v MS '%s%d.%d' "$s" $(( u / 1000 )) $(( u % 1000 / 100 ))
}

# sample SYSTEM STAMPFILE SEND-FUNCTION N DEADLINE: up to N samples (at
# least MIN_N, none started after DEADLINE) into LAT (ms, from the send's
# start) and BUS (ms, from the send's end)
sample() {
	local sys=$1 f=$2 send=$3 n=$4 dl=$5 i t0 t1 fd l us
	LAT=() BUS=() PARTIAL=""
	touch "$f"
	exec {fd}<"$f"
	while IFS= read -r -u "$fd" l; do :; done	# what came before
	PARTIAL=$l
	for i in $(seq "$n"); do
		if [ "$i" -gt "$MIN_N" ] && past "$dl"; then
			bench_log "$sys: $((i - 1)) samples: its share of the time budget is used up"
			break
		fi
		t0=${EPOCHREALTIME/./}
		"$send" "$i" >>"$W/$sys-send.log" 2>&1 || { bench_log "$sys: send $i failed (see $W/$sys-send.log)"; exec {fd}<&-; return 1; }
		t1=${EPOCHREALTIME/./}
		next_line "$fd" " start " 10 || { bench_log "$sys: sample $i: no run within 10 s"; exec {fd}<&-; return 1; }
		us=${LINE%% *}
		ms_of $((us - t0)); LAT+=("$MS")
		ms_of $((us - t1)); BUS+=("$MS")
		# idle again: the run has ended and its owner has seen it end
		next_line "$fd" " end " 10 || { exec {fd}<&-; return 1; }
		nap 0.03
	done
	exec {fd}<&-
}

# rss3 PID...: median of 3 samples, 0.2 s apart, of the summed VmRSS
rss3() {
	local s v=() p i
	for i in 1 2 3; do
		s=0
		for p in "$@"; do s=$(( s + $(rss_kb "$p") )); done
		v+=("$s"); nap 0.05
	done
	read -r s _ < <(stats "${v[@]}")
	echo "$s"
}
# put_mem NAME IDLE AFTER EVENTS WHAT PID: the figures, the parts of the
# last in the note
put_mem() {
	put "memory.$1.idle" "$2" "$2" "$2" kB 3 "VmRSS of $5, idle (after one probe event)"
	put "memory.$1.after" "$3" "$3" "$3" kB 3 "VmRSS of $5 after $4 events (a command run each; $(rss_parts "$6"))"
}

# ---- provbus quiet 0 and amqp-publish -> amqp-consume, interleaved: one
# sample of each in turn, so both meet the same load on a shared machine
# (the ratio is taken per pair); then provbus quiet 200 alone
node_config "$W/pub.json" pub "" ""
write_manifest() { printf '{"id": "lat", "environment": {"PORT": %d}, "provides": {"LAT_KEY": "http://{HOST}:{PORT}/"}}\n' \
	$((10000 + $1)) >"$W/pub/services.d/lat.json"; }
# a new value each send (sample's index restarts at 1 with each pair)
sent=0
send_provbus() { sent=$((sent + 1)); write_manifest "$sent"; "$BIN/provbus-publish" -c "$W/pub.json" provides lat; }
# start_q Q: the daemon of quiet_ms Q, idle after its startup run
start_q() {
	local q=$1 cons
	cons='"provision": ["'$STAMP'", "'$W/stamps-q$q'"], "quiet_ms": '$q', "throttle": {"runs": 1000000, "per_s": 1}'
	node_config "$W/q$q.json" "lat-q$q" LAT_KEY "$cons"
	start_daemon "q$q" "$W/q$q.json" || return 1
	wait_runs_idle "$W/q$q.json" 30 || bench_log "q$q: the startup run did not end"
}
put_q() { # put_q Q LAT-ARRAY-NAME BUS-ARRAY-NAME
	local -n lat=$2 bus=$3
	put_pct "latency.provbus-q$1" ms "provbus-publish -> provision running, quiet_ms $1" "${lat[@]}"
	put_pct "latency.provbus-q$1-bus" ms "end of provbus-publish (confirmed) -> provision running, quiet_ms $1" "${bus[@]}"
}

have_amqp=0
have amqp-consume && have amqp-publish && have_amqp=1
if start_q 0; then
	Q0_PID=$DAEMON_PID
	if [ $have_amqp = 1 ]; then
		fa=$W/stamps-amqp
		start_amqp_consume amqpc r1.provides.AMQ_KEY "$STAMP" "$fa" --stdin
		send_amqp() { amqp-publish --url "$URL" --exchange "provbus.$FED" --routing-key r1.provides.AMQ_KEY \
			--persistent --content-type application/json --body "{\"key\":\"AMQ_KEY\",\"value\":\"v$1\"}"; }
		# ready when a probe went through (its queue is bound)
		for i in $(seq 50); do send_amqp 0 2>/dev/null; wait_lines "$fa" 1 0.2 && break; done
		wait_lines "$fa" 1 5 " end " && nap 0.5
		idle=$(rss3 "$AMQC_PID")
		x=$(anon_kb "$AMQC_PID"); put memory.amqp-consume.idle.anon "$x" "$x" "$x" kB 1 "RssAnon of amqp-consume, idle"
		x=$(file_kb "$AMQC_PID"); put memory.amqp-consume.idle.file "$x" "$x" "$x" kB 1 "RssFile of amqp-consume, idle"
	fi
	dl=$(part_deadline 0.45)
	pl=() pb=() al=() pr=()
	for i in $(seq "$N"); do
		if [ "$i" -gt "$MIN_N" ] && past "$dl"; then
			bench_log "provbus-q0 and amqp: $((i - 1)) pairs: their share of the time budget is used up"
			break
		fi
		sample provbus-q0 "$W/stamps-q0" send_provbus 1 0 || { rc=1; break; }
		pl+=("${LAT[0]}") pb+=("${BUS[0]}")
		[ $have_amqp = 1 ] || continue
		sample amqp "$fa" send_amqp 1 0 || { rc=1; break; }
		al+=("${LAT[0]}") pr+=("$(ratio "${pl[-1]}" "${LAT[0]}")")
	done
	put_q 0 pl pb
	if [ $have_amqp = 1 ]; then
		put_pct latency.amqp ms "amqp-publish -> amqp-consume running the command (interleaved with provbus quiet_ms 0)" "${al[@]}"
		put_stats latency.q0-amqp.ratio ratio "provbus quiet_ms 0 / amqp-publish -> amqp-consume, per interleaved pair (target <= 1)" "${pr[@]}"
		count_lines "$fa" " end "
		put_mem amqp-consume "$idle" "$(rss3 "$AMQC_PID")" "$NLINES" amqp-consume "$AMQC_PID"
		stop_pid "$AMQC_PID"
	fi
	stop_pid "$Q0_PID"
else
	rc=1
fi
if [ $have_amqp = 0 ]; then
	for x in latency.amqp.p50 latency.amqp.p99 latency.q0-amqp.ratio; do put_na "$x" ms "amqp-tools not installed"; done
	for x in idle after; do put_na "memory.amqp-consume.$x" kB "amqp-tools not installed"; done
fi

if start_q 200; then
	dl=$(part_deadline 0.3)
	if sample provbus-q200 "$W/stamps-q200" send_provbus "$N" "$dl"; then
		put_q 200 LAT BUS
	else
		rc=1
	fi
	stop_pid "$DAEMON_PID"
else
	rc=1
fi

# ---- etcdctl put -> etcdctl watch -- command
if have etcd && have etcdctl && start_etcd etcd; then
	f=$W/stamps-etcd
	dl=$(part_deadline 0.33)
	ETCDCTL_API=3 bg etcdwatch etcdctl --endpoints "$ETCD_EP" watch /provbus/LAT_KEY -- "$STAMP" "$f"
	WATCH_PID=$BG_PID
	send_etcd() { etcdctl_ put /provbus/LAT_KEY "v$1"; }
	for i in $(seq 50); do send_etcd 0 >/dev/null; wait_lines "$f" 1 0.2 && break; done
	wait_lines "$f" 1 5 " end " && nap 0.3
	idle=$(rss3 "$ETCD_PID" "$WATCH_PID")
	if sample etcd "$f" send_etcd "$N" "$dl"; then
		put_pct latency.etcd ms "etcdctl put -> etcdctl watch running the command" "${LAT[@]}"
	else rc=1; fi
	count_lines "$f" " end "
	put_mem etcd "$idle" "$(rss3 "$ETCD_PID" "$WATCH_PID")" "$NLINES" "etcd + etcdctl watch" "$ETCD_PID"
	stop_pid "$WATCH_PID"
	stop_etcd
else
	for x in latency.etcd.p50 latency.etcd.p99; do put_na "$x" ms "etcd not usable"; done
	for x in idle after; do put_na "memory.etcd.$x" kB "etcd not usable"; done
fi

# ---- serf event -> agent handler, without and with coalescing
if have serf && start_serf serf "user:lat=$STAMP $W/stamps-serf --stdin" "user:latc=$STAMP $W/stamps-serfc --stdin"; then
	send_serf() { serf event -rpc-addr "$SERF_RPC" -coalesce=false lat "v$1"; }
	send_serfc() { serf event -rpc-addr "$SERF_RPC" -coalesce=true latc "v$1"; }
	dl=$(part_deadline 0.5)
	send_serf 0 >/dev/null && wait_lines "$W/stamps-serf" 1 5 " end " && nap 0.3
	idle=$(rss3 "$SERF_PID")
	if sample serf "$W/stamps-serf" send_serf "$N" "$dl"; then
		put_pct latency.serf ms "serf event -coalesce=false -> agent handler running" "${LAT[@]}"
	else rc=1; fi
	if sample serf-coalesce "$W/stamps-serfc" send_serfc "$N_SLOW" "$(part_deadline 1)"; then
		put_pct latency.serf-coalesce ms "serf event -coalesce=true -> agent handler running (a second a sample)" "${LAT[@]}"
	else rc=1; fi
	count_lines "$W/stamps-serf" " end "; n=$NLINES
	count_lines "$W/stamps-serfc" " end "
	put_mem serf "$idle" "$(rss3 "$SERF_PID")" $((n + NLINES)) "the Serf agent" "$SERF_PID"
	stop_pid "$SERF_PID"
else
	for s in serf serf-coalesce; do put_na "latency.$s.p50" ms "serf not usable"; put_na "latency.$s.p99" ms "serf not usable"; done
	for x in idle after; do put_na "memory.serf.$x" kB "serf not usable"; done
fi
exit $rc
