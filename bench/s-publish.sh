#!/usr/bin/env bash
# Figure 2a — publishing one 10-key manifest: one `provbus-publish
# provides` (publisher confirms, waits for every one) against ten
# `amqp-publish` calls (persistent, no confirms: amqp-publish has none) and
# ten `etcdctl put` (each one acknowledged after the raft commit), wall
# time of the whole, from the first exec to the last exit. The flush half
# of figure 2 is measured in s-ingest.sh (its events fill the ingest queues).
# shellcheck disable=SC1091
. "$BENCH_ROOT/bench/lib.sh"

REPS=$(sz 1 5)
KEYS=10

bench_vhost
bench_topology || { bench_log "provbus-schema apply failed: $(cat "$W/schema.log")"; exit 1; }
node_config "$W/pub.json" pub "" ""
{
	printf '{"id": "app", "environment": {"PORT": 8080}, "provides": {'
	for k in $(seq 0 $((KEYS - 1))); do
		[ "$k" = 0 ] || printf ', '
		printf '"PUB_KEY_%d": "http://{HOST}:{PORT}/k%d"' "$k" "$k"
	done
	printf '}}\n'
} >"$W/pub/services.d/app.json"

have_etcd=1
if have etcd && have etcdctl; then start_etcd etcd || have_etcd=0; else have_etcd=0; fi
have_amqp=1
have amqp-publish || have_amqp=0
[ $have_amqp = 1 ] || bench_log "amqp-publish not installed (apt-get install amqp-tools): its figure is NA"
[ $have_etcd = 1 ] || bench_log "etcd not usable (apt-get install etcd-server etcd-client): its figure is NA"

provbus_once() { "$BIN/provbus-publish" -c "$W/pub.json" provides app >>"$W/pub.log" 2>&1; }
amqp_ten() {
	local k
	for k in $(seq 0 $((KEYS - 1))); do
		amqp-publish --url "$URL" --exchange "provbus.$FED" --routing-key "r1.provides.PUB_KEY_$k" \
			--persistent --content-type application/json \
			--body "{\"key\":\"PUB_KEY_$k\",\"value\":\"http://127.0.0.1:8080/k$k\"}" || return 1
	done
}
etcd_ten() {
	local k
	for k in $(seq 0 $((KEYS - 1))); do
		etcdctl_ put "/provbus/PUB_KEY_$k" "http://127.0.0.1:8080/k$k" >/dev/null || return 1
	done
}

# one warm-up each (page cache, the broker's first connection in the vhost)
provbus_once || { bench_log "provbus-publish failed: $(tail -n 5 "$W/pub.log")"; exit 1; }
[ $have_amqp = 0 ] || amqp_ten || { bench_log "amqp-publish failed"; have_amqp=0; }
[ $have_etcd = 0 ] || etcd_ten || { bench_log "etcdctl put failed"; have_etcd=0; }

pb=() aq=() et=()
for i in $(seq "$REPS"); do
	t=$(now_us); provbus_once || { bench_log "provbus-publish failed: $(tail -n 5 "$W/pub.log")"; exit 1; }
	pb+=("$(us_to_ms $(( $(now_us) - t )))")
	if [ $have_amqp = 1 ]; then t=$(now_us); amqp_ten; aq+=("$(us_to_ms $(( $(now_us) - t )))"); fi
	if [ $have_etcd = 1 ]; then t=$(now_us); etcd_ten; et+=("$(us_to_ms $(( $(now_us) - t )))"); fi
done
put_stats publish.provides.provbus ms "one provbus-publish provides, 10 keys, confirmed" "${pb[@]}"
if [ $have_amqp = 1 ]; then put_stats publish.provides.amqp-publish ms "ten amqp-publish, unconfirmed" "${aq[@]}"
else put_na publish.provides.amqp-publish ms "amqp-publish not installed"; fi
if [ $have_etcd = 1 ]; then put_stats publish.provides.etcdctl ms "ten etcdctl put" "${et[@]}"
else put_na publish.provides.etcdctl ms "etcd not installed"; fi
