#!/usr/bin/env bash
# The load-balancer story with real parts: Debian's nginx as the public
# load balancer, provisioned by provbus-consumer through
# deploy/examples/lb-nginx (its node config, manifest, site and
# provbus-lb-nginx), in front of three nginx backends that answer with
# their node name and announce API_URL with leases, and one private
# backend (public false). After each change the requests through the load
# balancer reach exactly the live public backends: adds, a retire, a lease
# that runs out while its server still answers (so the drop is provbus's,
# not nginx's failure detection), the private one never. A provision whose
# upstream nginx -t refuses keeps the last good file and nginx serving it,
# and the failed run's output in the audit log says why. First, the
# command's own rules on its input, without a broker.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
. "$PB_ROOT/deploy/demo/lb-nginx.sh"
pb_setup lbnginx
EX=$PB_ROOT/deploy/examples/lb-nginx
LBN=$EX/provbus-lb-nginx
NGINX=$LBN_NGINX
_lbn_pids=()
lbn_cleanup() { local p; for p in "${_lbn_pids[@]}"; do lbn_stop "$p"; done; _pb_cleanup; }
trap lbn_cleanup EXIT

# --- provbus-lb-nginx alone: a scratch nginx configuration, no nginx running
S=$T/scratch; mkdir -p "$S"
{ lbn_main_conf "$S"; echo "http {"; lbn_http_paths "$S"; echo "    include $S/up.conf;"
  # shellcheck disable=SC2016 # nginx variables
  echo '    server { listen 127.0.0.1:1; location / { if ($api_url_servers = 0) { return 503; } proxy_pass http://api_url; } }'
  echo "}"; } >"$S/nginx.conf"
sx() { "$LBN" "$@" -u "$S/up.conf" -x "$NGINX" -p "$S/nginx.pid" -c "$S/nginx.conf" -- -p "$S" -e "$S/error.log"; }
servers() { sed -n 's/^    server \(.*\);$/\1/p' "$1" | paste -sd' ' -; }

"$LBN" -x "$NGINX" >/dev/null 2>"$T/err"; is $? 64 "no -u: exit 64"
like "$(head -n1 "$T/err")" "^provbus-lb-nginx: -u FILE is required" "no -u: says what is missing"
"$LBN" -u "$S/up.conf" -k 'API URL' >/dev/null 2>&1; is $? 64 "-k with a space: exit 64"
"$LBN" -u "$S/up.conf" -o 'max_fails=1; include /etc/passwd' >/dev/null 2>&1; is $? 64 "-o with ';': exit 64"
"$LBN" -u "$S/up.conf" -x "$S/no-nginx" >/dev/null 2>&1; is $? 69 "no nginx binary: exit 69"
[ ! -e "$S/up.conf" ]; ok $? "no upstream file written by a refused command line"

API_URL="" sx >"$T/out" 2>&1; is $? 0 "no backends: exit 0"
grep -q 'default 0;' "$S/up.conf" && grep -q 'server 127.0.0.1:9 down;' "$S/up.conf"
ok $? "no backends: \$api_url_servers is 0 and the upstream holds only a placeholder that is down"
like "$(cat "$T/out")" "nginx is not running" "no pid: written and checked, says nginx is not running"

bad='http://127.0.0.1:80;include /etc/passwd,ftp://127.0.0.1:21,http://h:99999,http://h:0,http://-h:1,http://user@h:1,http://h,http://h:1?x=1,http://h:1/a b'
API_URL="http://127.0.0.1:8001/a,$bad,,http://[::1]:8002,http://127.0.0.1:8001/b,http://localhost:8003/v1" sx >"$T/out" 2>"$T/err"
is $? 0 "mixed entries: exit 0"
is "$(servers "$S/up.conf")" "127.0.0.1:8001 [::1]:8002 localhost:8003" \
	"mixed entries: only http://HOST:PORT[/path] ones, once per host:port, in order"
is "$(grep -c 'left out: not http://HOST:PORT' "$T/err")" 9 "mixed entries: each refused one is named"
grep -q "entry 'http://127.0.0.1:80;include /etc/passwd' left out" "$T/err"; ok $? "the injection attempt is named and left out"
grep -q 'default 3;' "$S/up.conf"; ok $? "mixed entries: \$api_url_servers is 3"
[ "$(find "$S" -maxdepth 1 -name '.up.conf*' | wc -l)" -eq 0 ]; ok $? "no temp file left next to the upstream"

printf "# written by provbus-consumer; do not edit\nexport API_URL='http://127.0.0.1:8101,http://127.0.0.1:8102'\n" >"$S/app.env"
env -u API_URL PROVBUS_ENV_FILE="$S/app.env" "$LBN" -u "$S/up.conf" -x "$NGINX" -p "$S/nginx.pid" -c "$S/nginx.conf" \
	-- -p "$S" -e "$S/error.log" >/dev/null 2>&1
is "$(servers "$S/up.conf")" "127.0.0.1:8101 127.0.0.1:8102" "no API_URL in the environment: read from PROVBUS_ENV_FILE (shell format)"
printf 'API_URL="http://127.0.0.1:8201"\n' >"$S/app.env"
env -u API_URL PROVBUS_ENV_FILE="$S/app.env" "$LBN" -u "$S/up.conf" -x "$NGINX" -p "$S/nginx.pid" -c "$S/nginx.conf" \
	-- -p "$S" -e "$S/error.log" >/dev/null 2>&1
is "$(servers "$S/up.conf")" "127.0.0.1:8201" "... and in the systemd format"
printf "export API_URL='http://127.0.0.1:1'\\''\$(touch %s/pwned)'\n" "$S" >"$S/app.env"
env -u API_URL PROVBUS_ENV_FILE="$S/app.env" "$LBN" -u "$S/up.conf" -x "$NGINX" -p "$S/nginx.pid" -c "$S/nginx.conf" \
	-- -p "$S" -e "$S/error.log" >/dev/null 2>&1
[ ! -e "$S/pwned" ] && grep -q 'default 0;' "$S/up.conf"; ok $? "a quoted value in the env file is text, never run: left out"

cp "$S/up.conf" "$S/up.good"
API_URL=http://127.0.0.1:8301 sx -o 'no_such_param=1' >"$T/out" 2>"$T/err"; rc=$?
is $rc 1 "nginx -t refuses the new upstream: exit 1"
cmp -s "$S/up.conf" "$S/up.good"; ok $? "... and the last good upstream file is back, byte for byte"
like "$(cat "$T/err")" 'nginx -t refused the new upstream.*last good.*is back' "... it says so"
like "$(cat "$T/err")" 'invalid parameter "no_such_param=1"' "... with nginx's reason"

# --- the fleet: a broker, four backends, the load balancer, its consumer
F=lbt R=us-east-1
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"

declare -A BPORT
backend() { # NAME PUBLIC
	local n=$1
	lbn_backend "$T/www/$n" "$n" || return 1
	_lbn_pids+=("$LBN_PID"); BPID[$n]=$LBN_PID; BPORT[$n]=$LBN_PORT
	pb_node_config "$T/$n.json" "$n" "$F" "$R"
	cat >"$T/$n/services.d/api.json" <<EOT
{"id": "api", "run_list": ["api::default"], "environment": {"PORT": $LBN_PORT},
 "provides": {"API_URL": "http://{HOST}:{PORT}/"}, "public": $2}
EOT
}
declare -A BPID
for n in api-1 api-2 api-3; do backend "$n" true; ok $? "backend $n answers on 127.0.0.1:${BPORT[$n]}"; done
backend api-int false; ok $? "private backend api-int answers on 127.0.0.1:${BPORT[api-int]}"

L=$T/lb
UP=$L/conf/api_url.conf
lbn_lb "$L" "$UP"; ok $? "the load balancer (nginx) runs on 127.0.0.1:$LBN_PORT"
_lbn_pids+=("$LBN_PID"); LB_PID=$LBN_PID LP=$LBN_PORT
is "$(lbn_code "$LP")" 503 "before any run: 503 (no backend)"

jq -e '.consumer.public_only == true and .consumer.provision[0] == "/usr/local/bin/provbus-lb-nginx"
	and (.consumer.provision | index("-o")) != null' "$EX/provbus.json" >/dev/null
ok $? "the example node config is a public load balancer running provbus-lb-nginx"
# the example, with this test's broker and paths
lb_config() { # EXTRA-SERVER-PARAMS
	local d=$T/lb-01
	mkdir -p "$d/services.d" "$d/state"
	jq --arg url "$URL" --arg d "$d" --arg f "$F" --arg r "$R" --arg lbn "$LBN" --arg up "$UP" --arg ng "$NGINX" \
		--arg l "$L" --arg o "$1" '
		.node = "lb-01" | .federation = $f | .region = $r | .host = "127.0.0.1"
		| .broker = {urls: [$url], heartbeat_s: 10}
		| .services_dir = "\($d)/services.d" | .state_dir = "\($d)/state"
		| .consumer.env_file = "\($d)/lb.env" | .consumer.lock_file = "\($d)/state/provision.lock"
		| .consumer.quiet_ms = 300 | .consumer.max_wait_ms = 3000 | .consumer.retry = {max: 1, base_ms: 200}
		# every node of this test logs in as guest: a lab, where user_id is
		# never the node (t-identity tests verify_sender with real users)
		| .consumer.verify_sender = false
		| .consumer.provision |= (.[0] = $lbn
			| .[index("-u") + 1] = $up | .[index("-p") + 1] = "\($l)/nginx.pid" | .[index("-c") + 1] = "\($l)/nginx.conf"
			| .[index("-o") + 1] += $o
			| . + ["-x", $ng, "--", "-p", $l, "-e", "\($l)/error.log"])' \
		"$EX/provbus.json" >"$T/lb-01.json.new" && mv "$T/lb-01.json.new" "$T/lb-01.json"
}
lb_config ""
cp "$EX/lb.json" "$T/lb-01/services.d/"
C=$T/lb-01.json DB=$T/lb-01/state/audit.db
pb_bg lb-consumer provbus-consumer -c "$C" -f run
CPID=$BG_PID

sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$1"; }
runs_done() { [ "$(sql "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL")" -ge "$1" ]; }
answers_are() { [ "$(lbn_answers "$LP" 12)" = "$1" ]; }
# wait_for counts polls, and one poll here is a dozen requests: bound the
# wait by the clock instead, so that a failure is reported in time
wait_secs() { # SECONDS CMD...
	local end=$((SECONDS + $1 * PB_SLOW)); shift
	until "$@" >/dev/null 2>&1; do [ $SECONDS -lt "$end" ] || return 1; sleep 0.1; done
}
in_upstream() { grep -q "server 127.0.0.1:${BPORT[$1]}[ ;]" "$UP"; }
never_private() { # DESC: the private backend is nowhere
	! in_upstream api-int && ! grep -q ":${BPORT[api-int]}/" "$T/lb-01/lb.env" 2>/dev/null &&
		[[ " $(lbn_answers "$LP" 12) " != *" api-int "* ]]
	ok $? "$1: the private api-int is not in the upstream, not in the env file, never answers"
}
# after a change: the requests reach exactly WANT, and keep doing so
expect_answers() { # WANT DESC
	wait_secs 20 answers_are "$1"
	is "$(lbn_answers "$LP" 12)" "$1" "$2: 12 requests through nginx reach exactly: $1"
}

wait_for 20 runs_done 1; ok $? "the startup run finished"
is "$(sql "SELECT status FROM runs ORDER BY id LIMIT 1")" ok "the startup run succeeded"
is "$(lbn_code "$LP")" 503 "startup with no backend: still 503"

reloads_ge() { [ "$(grep -c 'reloaded (inotify)' "$T/lb-consumer.log")" -ge "$1" ]; }
pub() { provbus-publish -c "$T/$1.json" "${@:2}" >>"$T/publish.log" 2>&1; }
for n in api-1 api-2 api-3 api-int; do pub "$n" provides --ttl "$(pb_slow 600)"; ok $? "$n announces API_URL (lease $(pb_slow 600) s)"; done
expect_answers "api-1 api-2 api-3" "three public backends announced"
never_private "after the announcements"
like "$(cat "$UP")" "server 127.0.0.1:${BPORT[api-1]} max_fails=2 fail_timeout=5s;" \
	"the example's server parameters are on each server line"
is "$(sql "SELECT COUNT(*) FROM events WHERE node = 'api-int' AND verdict = 'applied'")" 1 \
	"the consumer received api-int's announcement (it is the public_only rule that keeps it out)"

n0=$(sql "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL")
pub api-2 retire api; ok $? "api-2 retires"
expect_answers "api-1 api-3" "after api-2's retire"
wait_for 10 runs_done $((n0 + 1))
is "$(sql "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" ok "the retire's run succeeded"
never_private "after the retire"

# api-3's timer stops renewing: its last announcement has a short lease;
# its server keeps answering, so only provbus can take it out
n0=$(sql "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL")
pub api-3 provides --ttl "$(pb_slow 2)"; ok $? "api-3 announces a last, short lease ($(pb_slow 2) s)"
expect_answers "api-1" "after api-3's lease ran out (its server still up)"
kill -0 "${BPID[api-3]}" && [ "$(curl -s --noproxy '*' "http://127.0.0.1:${BPORT[api-3]}/")" = api-3 ]
ok $? "api-3's server still answers by itself"
is "$(sql "SELECT COUNT(*) FROM events WHERE node = 'api-3' AND verdict = 'expired'")" 1 "the audit log has api-3's expiry"
wait_for 10 runs_done $((n0 + 1))
is "$(sql "SELECT reason || ':' || status FROM runs ORDER BY id DESC LIMIT 1")" expiry:ok "a run for the expiry, ok"
never_private "after the expiry"

# --- a configuration nginx refuses: the upstream stays the last good one
cp "$UP" "$T/up.good"
n0=$(sql "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL")
lb_config " bogus_param=1"
wait_for 20 reloads_ge 1; ok $? "the consumer reloaded its configuration"
pub api-2 provides --ttl "$(pb_slow 600)"; ok $? "api-2 comes back"
wait_for 20 runs_done $((n0 + 2)); ok $? "a run and its retry finished"
is "$(sql "SELECT group_concat(reason || ':' || status || ':' || exit_status, ' ') FROM (SELECT * FROM runs WHERE id > $n0 ORDER BY id)")" \
	"change:failed:1 retry:failed:1" "nginx -t refused it: the run failed, its retry too"
cmp -s "$UP" "$T/up.good"; ok $? "the upstream file is the last good one, byte for byte"
is "$(lbn_answers "$LP" 12)" "api-1" "nginx still serves the last good configuration"
kill -0 "$LB_PID"; ok $? "the load balancer is still up (pid $LB_PID)"
last=$(sql "SELECT MAX(id) FROM runs")
provbus-audit -d "$DB" explain "$last" >"$T/explain" 2>&1
like "$(cat "$T/explain")" "nginx -t refused the new upstream" "the audit log's output of the failed run says nginx -t refused it"
like "$(cat "$T/explain")" 'invalid parameter \\?"bogus_param=1\\?"' "... and nginx's reason"

n0=$(sql "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL")
lb_config ""
wait_for 20 reloads_ge 2; ok $? "the configuration is fixed"
provbus-consumer -c "$C" provision-now >/dev/null; ok $? "provision-now"
wait_for 20 runs_done $((n0 + 1))
is "$(sql "SELECT reason || ':' || status FROM runs ORDER BY id DESC LIMIT 1")" manual:ok "the manual run succeeded"
expect_answers "api-1 api-2" "after the fix"
never_private "at the end"

pb_stop_pid "$CPID"
for n in api-1 api-2 api-3 api-int; do lbn_stop "${BPID[$n]}"; done
lbn_stop "$LB_PID"
# shellcheck disable=SC2009 # pgrep -f would read "$T" as a pattern
left=$(ps -eo pid,args | grep -F "$T/" | grep -v grep)
is "$left" "" "nothing left running"
pb_done
