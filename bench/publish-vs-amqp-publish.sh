#!/usr/bin/env bash
# bench/publish-vs-amqp-publish.sh [RUNS]
#
# Wall time of announcing a 10-key manifest with `provbus-publish provides`
# (one connection, 10 pipelined persistent publishes, waits for every
# confirm, outbox write and delete) against ten `amqp-publish` calls (one
# connection each, no confirms: fire and forget). Median of RUNS (default
# 5) runs each, on the broker of $PB_BROKER_DIR, else on a private one
# started (and stopped) here. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-5}
export LC_ALL=C.UTF-8
PATH=$ROOT/bin:$PATH
command -v amqp-publish >/dev/null || { echo "amqp-publish not found (apt-get install amqp-tools)" >&2; exit 69; }
if [ ! -x bin/provbus-publish ] || [ ! -x bin/provbus-schema ]; then echo "build first: make" >&2; exit 69; fi

W=$(mktemp -d "${TMPDIR:-/tmp}/pb-bench-pub.XXXXXX")
own=""
VHOST=/bench-pub-$$
cleanup() {
	[ -z "${CTL:-}" ] || $CTL delete_vhost "$VHOST" >/dev/null 2>&1 || :
	[ -z "$own" ] || tests/broker/pb-broker stop "$own" >/dev/null 2>&1 || :
	rm -rf "$W"
}
trap cleanup EXIT
if [ -z "${PB_BROKER_DIR:-}" ] || [ ! -f "$PB_BROKER_DIR/broker.env" ]; then
	own=$W/broker
	echo "starting a private broker ..." >&2
	tests/broker/pb-broker start "$own" >/dev/null
	PB_BROKER_DIR=$own
fi
# shellcheck disable=SC1091
. "$PB_BROKER_DIR/broker.env"
CTL="tests/broker/pb-broker ctl $PB_BROKER_DIR"
$CTL add_vhost "$VHOST" >/dev/null
$CTL set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
URL="$PB_BROKER_URL/%2F${VHOST#/}"

cat >"$W/topology.json" <<EOT
{"vhost": "$VHOST", "federations": {"bench": {"regions": ["us-east-1"]}}, "nodes": []}
EOT
provbus-schema --url "$URL" apply "$W/topology.json" >/dev/null
mkdir -p "$W/services.d"
cat >"$W/node.json" <<EOT
{"node": "bench-01", "federation": "bench", "region": "us-east-1", "host": "127.0.0.1",
 "broker": {"urls": ["$URL"]}, "services_dir": "$W/services.d", "state_dir": "$W/state"}
EOT
{
	printf '{"id": "api", "environment": {"PORT": 1100}, "provides": {'
	for i in $(seq 0 9); do printf '%s"KEY_%d": "http://{HOST}:{PORT}/%d"' "$([ "$i" -eq 0 ] || echo ,)" "$i" "$i"; done
	printf '}}\n'
} >"$W/services.d/api.json"
# the body amqp-publish sends: a real event of the same size
provbus-publish -c "$W/node.json" --dry-run provides | head -n1 >"$W/body.json"
BODY=$(cat "$W/body.json")

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

provbus-publish -c "$W/node.json" provides 2>/dev/null	# warm up (creates the outbox)
for _ in $(seq "$RUNS"); do
	t=$(now_ms)
	provbus-publish -c "$W/node.json" provides 2>/dev/null
	echo $(( $(now_ms) - t ))
done >"$W/pub"
for _ in $(seq "$RUNS"); do
	t=$(now_ms)
	for i in $(seq 0 9); do
		amqp-publish --url "$URL" -e provbus.bench -r "us-east-1.provides.KEY_$i" -p \
			-C application/json -b "$BODY"
	done
	echo $(( $(now_ms) - t ))
done >"$W/amqp"

echo "10-key announcement, median of $RUNS runs (ms):"
printf '  %-52s %s  (runs: %s)\n' "provbus-publish provides (confirmed, spooled first)" \
	"$(median <"$W/pub")" "$(tr '\n' ' ' <"$W/pub" | sed 's/ $//')"
printf '  %-52s %s  (runs: %s)\n' "10 x amqp-publish -p (no confirms)" \
	"$(median <"$W/amqp")" "$(tr '\n' ' ' <"$W/amqp" | sed 's/ $//')"
