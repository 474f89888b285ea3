#!/usr/bin/env bash
# Figure — provbus-fleet over a history stream holding EVENTS events (docs/protocol.md,
# section on reports: `nodes` and `converged` answer in seconds over 1,000,000 events).
#   fleet.nodes      provbus-fleet nodes: both streams read to their end
#   fleet.converged  provbus-fleet converged KEY: the same read, then every
#                    live consumer's values computed by its own rules
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

fleet() { "$BIN/provbus-fleet" -c "$W/c1.json" "$@"; }
ran() { fleet converged FL_KEY_1 >/dev/null 2>&1; }
dl=$(part_deadline 0.5)
until ran; do past "$dl" && { bench_log "the consumer never converged"; exit 1; }; sleep 1; done

for verb in nodes converged; do
	ms=()
	dl=$(part_deadline "$([ $verb = nodes ] && echo 0.7 || echo 1)")
	for i in $(seq "$REPS"); do
		[ "$i" -le 1 ] || ! past "$dl" || { bench_log "$verb: $((i - 1)) runs (time budget)"; break; }
		t0=$(now_us)
		if [ $verb = nodes ]; then fleet nodes >"$W/$verb-$i.out" 2>"$W/$verb-$i.err"
		else fleet converged FL_KEY_1 >"$W/$verb-$i.out" 2>"$W/$verb-$i.err"; fi
		rc=$?
		ms+=("$(since_ms "$t0")")
		[ $rc -eq 0 ] || { bench_log "$verb exited $rc: $(cat "$W/$verb-$i.err")"; exit 1; }
	done
	put_stats "fleet.$verb" ms "provbus-fleet $verb over a history of $EVENTS events, ${#ms[@]} runs" "${ms[@]}"
done
