#!/usr/bin/env bash
# make demo: the full deploy cycle of a small fleet, all roles on this box.
#
# A private RabbitMQ on a free loopback port (never the machine's own),
# the demo topology, three consumer daemons (www-01, lb-01 in us-east-1,
# lb-eu in eu-west-1) and publishers for api-01/api-02; then the cycle:
# announce -> one debounced run -> www-01 announces itself -> lb-01
# renders its upstream; a burst of 200 announcements -> one run; a retire
# -> one run. Then the incident-review tools. Act two (deploy/demo/lb-story.sh):
# a real nginx load balancer, edge-01, provisioned by provbus-lb-nginx,
# follows three real HTTP backends through announcements, a retire and an
# expired lease, and never exposes a private one. Everything started here
# is stopped by PID; the demo directory is left for inspection.
#
# DEMO_DIR=dir   where to put it (default demo-out/DATE)
# DEMO_CHECK=1   non-interactive: assert the outcome, exit 1 if it is wrong
# PB_BIN=dir     the provbus-* programs (default bin; make passes PROGDIR)
# BUILD=dir      the build whose test tools are used (default build)
# PB_SLOW=N      stretch the debounce periods and the waits N times
#                (default 1, or 3 when the programs are sanitizer builds)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
PB_BIN=${PB_BIN:-$ROOT/bin}
[[ $PB_BIN == /* ]] || PB_BIN=$ROOT/$PB_BIN
if [ -z "${PB_SLOW:-}" ]; then
	PB_SLOW=1
	if ldd "$PB_BIN/provbus-consumer" 2>/dev/null | grep -q 'libasan\|libubsan\|libtsan'; then PB_SLOW=3; fi
fi
[[ $PB_SLOW =~ ^[1-9][0-9]*$ ]] || { echo "demo: PB_SLOW=$PB_SLOW: want a whole number, 1 or more" >&2; exit 64; }
S=$PB_SLOW
export PATH="$PB_BIN:$ROOT/$BUILD/tools:$PATH"
export LC_ALL=C.UTF-8
D=${DEMO_DIR:-$ROOT/demo-out/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$D"; D=$(cd "$D" && pwd)
CHECK=${DEMO_CHECK:-}
BROKER="$ROOT/tests/broker/pb-broker"
PIDS=()
FAILED=0

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B="" G="" R="" N=""; fi
T0=$(date +%s)
say() { printf '%s==>%s [%3ds] %s\n' "$B" "$N" $(( $(date +%s) - T0 )) "$*"; }
note() { printf '    %s\n' "$*"; }
expect() { # expect DESC CMD...
	local d=$1; shift
	if "$@"; then printf '    %scheck%s %s\n' "$G" "$N" "$d"
	else printf '    %sFAILED%s %s\n' "$R" "$N" "$d"; FAILED=1; fi
}
wait_for() { local n=$(( $1 * 10 * S )); shift; while ! "$@" >/dev/null 2>&1; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.1; done; }
# act two: the lb_* functions
# shellcheck source=deploy/demo/lb-story.sh
. "$ROOT/deploy/demo/lb-story.sh"

cleanup() {
	local p
	lb_cleanup
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
	done
	"$BROKER" stop "$D/broker" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "demo directory: $D"
say "starting a private RabbitMQ on loopback (about 10 s) ..."
"$BROKER" start "$D/broker" >"$D/broker.url" || { echo "demo: the broker did not start (see $D/broker)"; exit 1; }
. "$D/broker/broker.env"
PORT=${PB_BROKER_PORTS%% *}
"$BROKER" ctl "$D/broker" add_vhost /demo >/dev/null
"$BROKER" ctl "$D/broker" set_permissions -p /demo guest '.*' '.*' '.*' >/dev/null
note "broker: amqp://127.0.0.1:$PORT/%2Fdemo"

cat >"$D/topology.json" <<EOT
{"vhost": "/demo", "history_max_age": "1D",
 "federations": {"demo": {"regions": ["us-east-1", "eu-west-1"]}},
 "nodes": [{"name": "www-01", "federation": "demo", "region": "us-east-1"},
           {"name": "lb-01", "federation": "demo", "region": "us-east-1"},
           {"name": "lb-eu", "federation": "demo", "region": "eu-west-1"},
           {"name": "api-01", "federation": "demo", "region": "us-east-1"},
           {"name": "api-02", "federation": "demo", "region": "us-east-1"}$(lb_topology_nodes)]}
EOT
say "provbus-schema export --credentials: a broker user and a password file per node"
provbus-schema export --credentials "$D/credentials" "$D/topology.json" >"$D/definitions.json" ||
	{ echo "demo: provbus-schema export failed"; exit 1; }
"$BROKER" ctl "$D/broker" import_definitions "$D/definitions.json" >/dev/null ||
	{ echo "demo: rabbitmqctl import_definitions failed"; exit 1; }
users_in() { "$BROKER" ctl "$D/broker" list_topic_permissions -p /demo 2>/dev/null | grep -q '^api-02'; }
wait_for 30 users_in || { echo "demo: the imported users did not appear"; exit 1; }
note "imported; each node logs in as itself with $D/credentials/NODE (mode 0600)"
say "provbus-schema apply topology.json (as the broker's admin)"
provbus-schema --url "amqp://guest:guest@127.0.0.1:$PORT/%2Fdemo" apply "$D/topology.json" 2>"$D/apply.err" | sed 's/^/    /'

# node NAME REGION HOST CONSUMER-JSON-MEMBERS
node() {
	local name=$1 region=$2 host=$3 consumer=""
	[ -z "${4:-}" ] || consumer=$',\n  "consumer": '"$4"
	mkdir -p "$D/$name/services.d" "$D/$name/state" "$D/$name/etc"
	cat >"$D/$name/provbus.json" <<EOT
{
  "node": "$name", "federation": "demo", "region": "$region", "host": "$host",
  "broker": {"urls": ["amqp://$name@127.0.0.1:$PORT/%2Fdemo"], "password_file": "$D/credentials/$name", "heartbeat_s": 10},
  "services_dir": "$D/$name/services.d",
  "state_dir": "$D/$name/state"$consumer
}
EOT
}

# --- the api nodes: they only publish
for i in 1 2; do
	node "api-0$i" us-east-1 "10.0.3.$((6 + i))"
	cat >"$D/api-0$i/services.d/api.json" <<EOT
{"id": "api", "run_list": ["api::default"], "environment": {"PORT": 1100},
 "provides": {"API_URL": "http://{HOST}:{PORT}"}}
EOT
done

# --- www-01: requires API_URL (live) and PRIMARY_DATABASE_URL (static);
# its provision writes its config, then announces WWW_URL itself.
cat >"$D/www-provision.sh" <<'EOT'
#!/bin/sh
# the demo's "chef-solo" for www-01: render the app config, announce
set -e
here=$(dirname "$0")/www-01
{ echo "# app config, run $PROVBUS_RUN_ID ($PROVBUS_REASON)"
  echo "api_url=$API_URL"
  echo "database_url=$PRIMARY_DATABASE_URL"; } >"$here/etc/app.conf"
echo "$(date +%s.%N) run=$PROVBUS_RUN_ID reason=$PROVBUS_REASON api=$API_URL" >>"$here/runs.log"
sleep 0.3
# a web node without an API to talk to is not ready to serve: announce
# only once there is one
[ -n "${API_URL:-}" ] || exit 0
provbus-publish -c "$here/provbus.json" provides www
EOT
node www-01 us-east-1 127.0.1.1 "{\"env_file\": \"$D/www-01/etc/app.env\", \"provision\": [\"$D/www-provision.sh\"],
    \"quiet_ms\": $((2000 * S)), \"max_wait_ms\": $((120000 * S)), \"throttle\": {\"runs\": 20, \"per_s\": 60}, \"queue_type\": \"quorum\",
    \"lock_file\": \"$D/www-01/state/provision.lock\",
    \"static\": {\"PRIMARY_DATABASE_URL\": \"mysql://db-1:3306/app\"}}"
cat >"$D/www-01/services.d/www.json" <<EOT
{"id": "www", "run_list": ["nginx::default", "php::fpm"], "environment": {"PORT": 8080},
 "requires": {"API_URL": "{API_URL}", "PRIMARY_DATABASE_URL": "{PRIMARY_DATABASE_URL}"},
 "provides": {"WWW_URL": "http://{HOST}:{PORT}/"}, "public": true}
EOT

# --- the load balancers: require WWW_URL, render an nginx upstream
cat >"$D/lb-provision.sh" <<'EOT'
#!/bin/sh
# the demo's "chef-solo" for a load balancer: an nginx upstream from WWW_URL
set -e
here=$(dirname "$0")/$1
{ echo "upstream www {"
  echo "${WWW_URL:-}" | tr ',' '\n' | sed -n 's|^http://\([^/]*\).*|    server \1;|p'
  echo "}"; } >"$here/etc/upstream.conf.new"
mv "$here/etc/upstream.conf.new" "$here/etc/upstream.conf"
echo "$(date +%s.%N) run=$PROVBUS_RUN_ID reason=$PROVBUS_REASON www=${WWW_URL:-}" >>"$here/runs.log"
EOT
chmod +x "$D/www-provision.sh" "$D/lb-provision.sh"
for lb in lb-01:us-east-1 lb-eu:eu-west-1; do
	name=${lb%%:*} region=${lb#*:}
	node "$name" "$region" 127.0.2.1 "{\"env_file\": \"$D/$name/etc/app.env\", \"provision\": [\"$D/lb-provision.sh\", \"$name\"],
    \"quiet_ms\": $((500 * S)), \"public_only\": true, \"queue_type\": \"quorum\", \"lock_file\": \"$D/$name/state/provision.lock\"}"
	cat >"$D/$name/services.d/lb.json" <<EOT
{"id": "lb", "run_list": ["nginx::lb"], "requires": {"WWW_URL": "{WWW_URL}"}}
EOT
done

# --- act two's nodes: edge-01 (nginx), its backends
lb_setup

runs_of() { if [ -f "$D/$1/runs.log" ]; then wc -l <"$D/$1/runs.log"; else echo 0; fi; }
runs_gt() { [ "$(runs_of "$1")" -gt "$2" ]; }	# for wait_for: re-evaluated each poll
status_of() { provbus-consumer -c "$D/$1/provbus.json" status 2>/dev/null; }
idle() { local s; s=$(status_of "$1") && [[ $s == *'"running":null'* ]] && [[ $s == *'"pending":false'* ]]; }

say "starting the consumer daemons: www-01, lb-01 (us-east-1), lb-eu (eu-west-1)"
for n in www-01 lb-01 lb-eu; do
	provbus-consumer -c "$D/$n/provbus.json" -f run >"$D/$n/consumer.log" 2>&1 &
	PIDS+=($!)
	note "$n: pid $!, log $D/$n/consumer.log"
done
for n in www-01 lb-01 lb-eu; do
	wait_for 30 runs_gt "$n" 0 || { echo "demo: $n made no startup run; see $D/$n/consumer.log"; exit 1; }
	wait_for 20 idle "$n"
done
note "each daemon made its startup run: www-01 $(runs_of www-01), lb-01 $(runs_of lb-01), lb-eu $(runs_of lb-eu)"
lb_start

say "api-01 and api-02 finish chef-solo and announce API_URL"
www0=$(runs_of www-01); lb0=$(runs_of lb-01)
provbus-publish -c "$D/api-01/provbus.json" provides 2>&1 | sed 's/^/    /'
provbus-publish -c "$D/api-02/provbus.json" provides 2>&1 | sed 's/^/    /'
note "www-01 debounces both into one run (quiet $((2 * S)) s), whose script announces WWW_URL ..."
wait_for 30 runs_gt www-01 "$www0"; wait_for 30 idle www-01
wait_for 30 runs_gt lb-01 "$lb0"; wait_for 30 idle lb-01
sleep "$S"
note "www-01 app.env:"; sed 's/^/      /' "$D/www-01/etc/app.env"
note "lb-01 upstream.conf:"; sed 's/^/      /' "$D/lb-01/etc/upstream.conf"
note "lb-eu upstream.conf (eu-west-1 sees no us-east-1 provider):"; sed 's/^/      /' "$D/lb-eu/etc/upstream.conf"
expect "www-01 made exactly one run for both announcements" test $(( $(runs_of www-01) - www0 )) -eq 1
expect "www-01's env file holds both API URLs" grep -q "API_URL='http://10.0.3.7:1100,http://10.0.3.8:1100'" "$D/www-01/etc/app.env"
expect "www-01's env file holds the static database URL" grep -q "PRIMARY_DATABASE_URL='mysql://db-1:3306/app'" "$D/www-01/etc/app.env"
expect "lb-01's upstream lists www-01" grep -q "server 127.0.1.1:8080;" "$D/lb-01/etc/upstream.conf"
expect "lb-eu's upstream stays empty" test "$(grep -c server "$D/lb-eu/etc/upstream.conf")" -eq 0

say "a burst: api-01's port flaps through 200 announcements"
www1=$(runs_of www-01)
t0=$(date +%s%N)
for i in $(seq 1 200); do
	sed -i "s/\"PORT\": [0-9]*/\"PORT\": $((2000 + i))/" "$D/api-01/services.d/api.json"
	provbus-publish -c "$D/api-01/provbus.json" provides >/dev/null 2>>"$D/burst.err" || echo "publish $i failed" >>"$D/burst.err"
done
note "200 announcements sent in $(( ($(date +%s%N) - t0) / 1000000 )) ms; waiting for the dust to settle ..."
wait_for 30 runs_gt www-01 "$www1"; sleep $((2 * S)); wait_for 30 idle www-01
expect "the burst of 200 gave one www-01 run" test $(( $(runs_of www-01) - www1 )) -eq 1
expect "www-01 sees api-01's last port" grep -q "http://10.0.3.7:2200" "$D/www-01/etc/app.env"

say "api-02 retires"
www2=$(runs_of www-01)
provbus-publish -c "$D/api-02/provbus.json" retire api 2>&1 | sed 's/^/    /'
wait_for 30 runs_gt www-01 "$www2"; sleep "$(awk -v s="$S" 'BEGIN {print 1.5 * s}')"; wait_for 30 idle www-01
expect "the retire gave one www-01 run" test $(( $(runs_of www-01) - www2 )) -eq 1
expect "www-01 now has one API_URL" grep -q "^export API_URL='http://10.0.3.7:2200'$" "$D/www-01/etc/app.env"

# the fleet view logs in as provbus-observer (read on the history and
# fleet streams, nothing else), with the password file of the export
say "the fleet at a glance: provbus-fleet nodes, then converged API_URL (as provbus-observer)"
fleet() {
	XDG_CACHE_HOME="$D/cache" provbus-fleet --url "amqp://provbus-observer@127.0.0.1:$PORT/%2Fdemo" --federation demo \
		--password-file "$D/credentials/provbus-observer" "$@"
}
fleet nodes | sed 's/^/    /'
expect "provbus-fleet converged API_URL: every consumer ran with today's value" \
	fleet converged API_URL --wait 30

lb_act

say "stopping the daemons (SIGTERM)"
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()

DB="$D/www-01/state/audit.db"
say "incident review on www-01: provbus-audit runs"
provbus-audit -d "$DB" runs | sed 's/^/    /'
last_run=$(provbus-audit -d "$DB" runs --json | tail -n 2 | head -n 1 | sed 's/^{"id":\([0-9]*\).*/\1/')
say "provbus-audit explain $last_run"
provbus-audit -d "$DB" explain "$last_run" | sed 's/^/    /'
say "provbus-audit replay (recorded parameters), then a what-if with quiet 100 ms"
provbus-audit -d "$DB" replay | tail -n 3 | sed 's/^/    /'
provbus-audit -d "$DB" replay --quiet-ms 100 | tail -n 3 | sed 's/^/    /'
provbus-audit -d "$DB" timeline --html "$D/timeline.html" && note "timeline: $D/timeline.html (open it in a browser)"
lb_review

cleanup; trap - EXIT
leftover=$(ps -eo pid,args | grep -F "$D" | grep -v grep || true)
expect "no process left behind" test -z "$leftover"
say "done. Everything is in $D"
if [ -n "$CHECK" ] && [ $FAILED -ne 0 ]; then exit 1; fi
exit 0
