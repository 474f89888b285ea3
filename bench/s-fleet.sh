#!/usr/bin/env bash
# Figure — provbus-fleet over a history stream holding EVENTS events (docs/protocol.md,
# section on reports: `nodes` and `converged` answer in seconds over 1,000,000 events).
#   fleet.nodes      provbus-fleet nodes, cold: the fleet stream read from
#                    the window start to its end, the history not at all
#                    (the first run with an empty cache, which it does not
#                    fill: no history part; then --no-cache)
#   fleet.converged  provbus-fleet converged KEY, cold: the same read, then
#                    every live consumer's values computed by its own rules
#   fleet.nodes_warm, fleet.converged_warm
#                    the same from the cache a cold run left, 1,000 new
#                    events published before each run (untimed): the
#                    history stream read from the cached offset (nodes:
#                    there is no cache, it writes none: cold again)
#   fleet.nodes_amqp provbus-fleet nodes, cold, over AMQP 0-9-1 (--stream-port
#                    0): the others read over the stream protocol when the
#                    broker has the rabbitmq_stream plugin (run.sh's has)
#   fleet.baseline   pbtest-ingest --stream-first, the minimal rabbitmq-c
#                    reader of the same history stream (prefetch 10000, an
#                    ack per 1000, as provbus-fleet), to its end
# The events come from one node (a broker user of its own, so user_id is
# the node and every event counts) over KEYS keys; one consumer daemon
# reports presence and runs to the fleet stream.
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

EVENTS=$(sz 20000 1000000)
REPS=$(sz 1 3)
KEYS=$(seq -f 'FL_KEY_%g' 1 16 | paste -sd,)

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
# a broker user per node: user_id must be the node for an event or a
# report to count
for u in fl-n0 c1; do
	"$PB_BROKER" ctl "$PB_BROKER_DIR" add_user "$u" "pw-$u" >/dev/null 2>&1
	"$PB_BROKER" ctl "$PB_BROKER_DIR" set_permissions -p "$VHOST" "$u" '.*' '.*' '.*' >/dev/null 2>&1
done
user_url() { echo "amqp://$1:pw-$1@${BROKER_URL#*@}/$(urlenc "$VHOST")"; }
# one consumer of FL_KEY_1 that reports (its own presence and runs),
# started before the fill: a node there all along, no catch-up of it all
node_config "$W/c1.json" c1 FL_KEY_1 '"quiet_ms": 1000, "throttle": {"runs": 1000000, "per_s": 1}, "queue_type": "classic", "provision": ["/bin/true"]'
sed -i "s|\"$URL\"|\"$(user_url c1)\"|" "$W/c1.json"
start_daemon c1 "$W/c1.json" || exit 1
NODE_URL=$(user_url fl-n0)
t0=$(now_us)
"$TOOLS/pbtest-pubflood" publish "$NODE_URL" --federation "$FED" --count "$EVENTS" --nodes 1 \
	--node-prefix fl-n --user-id fl-n0 --keys "$KEYS" >"$W/fill.log" 2>&1 ||
	{ bench_log "filling the history failed: $(cat "$W/fill.log")"; exit 1; }
bench_log "history: $EVENTS events in $(since_ms "$t0") ms"

export XDG_CACHE_HOME=$W/cache	# provbus-fleet's cache
# the stream protocol when the broker has it (PB_BROKER_STREAM_PORT), else AMQP 0-9-1
SPORT=${PB_BROKER_STREAM_PORT:-0}
bench_log "provbus-fleet --stream-port $SPORT"
fleet() { "$BIN/provbus-fleet" -c "$W/c1.json" --stream-port "$SPORT" "$@"; }
ran() { fleet --no-cache converged FL_KEY_1 >/dev/null 2>&1; }
dl=$(part_deadline 0.3)
until ran; do past "$dl" && { bench_log "the consumer never converged"; exit 1; }; sleep 1; done

# the minimal reader: every message of the history stream (the fill and
# bench_topology's seed event)
ms=()
dl=$(part_deadline 0.25)
for i in $(seq "$REPS"); do
	[ "$i" -le 1 ] || ! past "$dl" || { bench_log "baseline: $((i - 1)) runs (time budget)"; break; }
	t0=$(now_us)
	"$TOOLS/pbtest-ingest" "$URL" "provbus.$FED.history" --stream-first --count "$((EVENTS + 1))" \
		--prefetch 10000 --ack-every 1000 --timeout-ms 300000 >>"$W/baseline.log" 2>&1 ||
		{ bench_log "pbtest-ingest --stream-first failed: $(tail -n 2 "$W/baseline.log")"; exit 1; }
	ms+=("$(since_ms "$t0")")
	bench_log "baseline: ${ms[-1]} ms"
done
put_stats fleet.baseline ms "pbtest-ingest --stream-first (prefetch 10000, an ack per 1000) reads the $((EVENTS + 1)) messages of the same history stream, ${#ms[@]} runs" "${ms[@]}"

# run VERB: one timed call (ms appended to ms[]); args after VERB go to provbus-fleet
run() {
	local verb=$1 out=$W/$1-$2; shift 2
	local t0; t0=$(now_us)
	if [ "$verb" = nodes ]; then fleet "$@" nodes >"$out.out" 2>"$out.err"
	else fleet "$@" converged FL_KEY_1 >"$out.out" 2>"$out.err"; fi
	local rc=$?
	ms+=("$(since_ms "$t0")")
	[ $rc -eq 0 ] || { bench_log "$verb exited $rc: $(cat "$out.err")"; return 1; }
	bench_log "$verb $(basename "$out"): ${ms[-1]} ms$(grep -o 'history: .*' "$out.err" | sed 's/^/, /')"
}
for verb in nodes converged; do
	ms=()
	if [ "$verb" = converged ]; then
		# the 3,000 events the warm runs of nodes published: c1 runs with
		# them first (calls from the cache, a fraction of a second each).
		# A read ends at the streams' end as of its start (a run report
		# that comes later may or may not be in it): a cold read that
		# starts while c1 is still running says "still pending"
		dl=$(part_deadline 0.2)
		until fleet converged FL_KEY_1 >/dev/null 2>&1; do
			past "$dl" && { bench_log "the consumer never converged after the warm runs"; exit 1; }
			sleep 1
		done
	fi
	rm -rf "$W/cache"
	dl=$(part_deadline "$([ $verb = nodes ] && echo 0.6 || echo 0.9)")
	for i in $(seq "$REPS"); do
		[ "$i" -le 1 ] || ! past "$dl" || { bench_log "$verb: $((i - 1)) cold runs (time budget)"; break; }
		# the first fills the cache
		if [ "$i" = 1 ]; then run "$verb" "cold-$i" -v || exit 1
		else run "$verb" "cold-$i" -v --no-cache || exit 1; fi
	done
	put_stats "fleet.$verb" ms "provbus-fleet $verb, cold (the window read$([ "$SPORT" = 0 ] && echo ", AMQP 0-9-1" || echo ", stream protocol")), over a history of $EVENTS events, ${#ms[@]} runs" "${ms[@]}"
	if [ "$verb" = nodes ]; then
		# the same over AMQP 0-9-1, the read before the stream protocol
		ms=()
		dl=$(part_deadline 0.75)
		for i in $(seq "$REPS"); do
			[ "$i" -le 1 ] || ! past "$dl" || { bench_log "nodes over AMQP 0-9-1: $((i - 1)) cold runs (time budget)"; break; }
			run nodes "amqp-$i" -v --no-cache --stream-port 0 || exit 1
		done
		put_stats fleet.nodes_amqp ms "provbus-fleet nodes, cold, over AMQP 0-9-1 (--stream-port 0), over a history of $EVENTS events, ${#ms[@]} runs" "${ms[@]}"
	fi
	ms=()
	for i in $(seq 3); do
		"$TOOLS/pbtest-pubflood" publish "$NODE_URL" --federation "$FED" --count 1000 --nodes 1 \
			--node-prefix fl-n --user-id fl-n0 --keys "$KEYS" >>"$W/fill.log" 2>&1 ||
			{ bench_log "publishing 1000 more failed: $(tail -n 2 "$W/fill.log")"; exit 1; }
		run "$verb" "warm-$i" -v || exit 1
	done
	put_stats "fleet.${verb}_warm" ms "provbus-fleet $verb from its cache (1,000 new events read), over a history of $EVENTS events and more, ${#ms[@]} runs" "${ms[@]}"
done
