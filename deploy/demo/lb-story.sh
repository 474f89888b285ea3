# shellcheck shell=bash
# deploy/demo/lb-story.sh — the demo's second act, sourced by run-demo.sh:
# a real public load balancer follows the fleet.
#
# edge-01 runs Debian's nginx (on a free loopback port, everything in
# $D/edge-01/nginx) and provbus-consumer with the example of
# deploy/examples/lb-nginx: public_only, requires API_URL, provision =
# provbus-lb-nginx. api-11, api-12 and api-13 run real HTTP servers (nginx
# again, answering with their node name) and announce API_URL as public
# with a lease; api-int announces its internal API (public false). The act
# shows requests through the load balancer reaching each backend, api-12
# retiring, api-13 dying without a word (its server stops, its lease runs
# out), api-int never exposed, and the load balancer's own audit log.
#
# Uses run-demo.sh's D, S, say, note, expect, node, wait_for and PIDS.
#   lb_topology_nodes   the act's nodes, for the topology file
#   lb_setup            node configs, the backends and the load balancer
#   lb_start            edge-01's consumer (its PID joins PIDS) and its startup run
#   lb_act              the story
#   lb_review           edge-01's audit log, and provbus-fleet when it exists
#   lb_cleanup          stops the nginx processes (by PID)
# shellcheck source=deploy/demo/lb-nginx.sh
. "$ROOT/deploy/demo/lb-nginx.sh"
LB_BACKENDS="api-11 api-12 api-13"
LB_PRIVATE=api-int
LB_NGINX_PIDS=()
declare -A LB_PORT LB_PID

lb_topology_nodes() {
	local n
	for n in edge-01 $LB_BACKENDS $LB_PRIVATE; do
		printf ',\n           {"name": "%s", "federation": "demo", "region": "us-east-1"}' "$n"
	done
}

lb_setup() {
	local n public
	for n in $LB_BACKENDS $LB_PRIVATE; do
		lbn_backend "$D/$n/www" "$n" || { echo "demo: $n's HTTP server did not start; see $D/$n/www/error.log"; exit 1; }
		LB_NGINX_PIDS+=("$LBN_PID"); LB_PID[$n]=$LBN_PID; LB_PORT[$n]=$LBN_PORT
		node "$n" us-east-1 127.0.0.1
		public=true; [ "$n" != "$LB_PRIVATE" ] || public=false
		cat >"$D/$n/services.d/api.json" <<EOT
{"id": "api", "run_list": ["api::default"], "environment": {"PORT": $LBN_PORT},
 "provides": {"API_URL": "http://{HOST}:{PORT}/"}, "public": $public}
EOT
	done
	local L=$D/edge-01/nginx
	lbn_lb "$L" "$L/conf.d/api_url.conf" || { echo "demo: the load balancer did not start; see $L/error.log"; exit 1; }
	LB_NGINX_PIDS+=("$LBN_PID"); LB_PID[edge-01]=$LBN_PID; LB_PORT[edge-01]=$LBN_PORT
	# the example's consumer section, with this demo's paths and shorter periods
	local consumer
	consumer=$(jq -c --arg d "$D/edge-01" --arg l "$L" --arg lbn "$LBN_EXAMPLE/provbus-lb-nginx" --arg ng "$LBN_NGINX" \
		--argjson quiet $((500 * S)) '.consumer
		| .env_file = "\($d)/etc/lb.env" | .lock_file = "\($d)/state/provision.lock"
		| .quiet_ms = $quiet | .max_wait_ms = 10 * $quiet
		| .provision |= (.[0] = $lbn | .[index("-u") + 1] = "\($l)/conf.d/api_url.conf"
			| .[index("-p") + 1] = "\($l)/nginx.pid" | .[index("-c") + 1] = "\($l)/nginx.conf"
			| . + ["-x", $ng, "--", "-p", $l, "-e", "\($l)/error.log"])' \
		"$LBN_EXAMPLE/provbus.json") || { echo "demo: cannot read $LBN_EXAMPLE/provbus.json"; exit 1; }
	node edge-01 us-east-1 127.0.0.1 "$consumer"
	cp "$LBN_EXAMPLE/lb.json" "$D/edge-01/services.d/"
}

lb_runs() { sqlite3 -cmd ".timeout 5000" "$D/edge-01/state/audit.db" "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL" 2>/dev/null || echo 0; }
lb_runs_gt() { [ "$(lb_runs)" -gt "$1" ]; }
lb_answers_are() { [ "$(lbn_answers "${LB_PORT[edge-01]}" 12)" = "$1" ]; }
lb_show_requests() { # 12 requests through the load balancer, counted by answer
	local urls=() _
	for _ in $(seq 1 12); do urls+=("http://127.0.0.1:${LB_PORT[edge-01]}/"); done
	note "12 requests through nginx (127.0.0.1:${LB_PORT[edge-01]}):"
	curl -s --noproxy '*' -m 10 "${urls[@]}" | sort | uniq -c | sed 's/^ */      /; s/ \([^ ]*\)$/ x \1/'
}
lb_show_upstream() {
	note "edge-01's upstream (written by provbus-lb-nginx):"
	grep '^    server\|default' "$D/edge-01/nginx/conf.d/api_url.conf" | sed 's/^ */      /'
}
lb_private_absent() {
	! grep -q ":${LB_PORT[$LB_PRIVATE]}[; ]" "$D/edge-01/nginx/conf.d/api_url.conf" &&
		[[ " $(lbn_answers "${LB_PORT[edge-01]}" 12) " != *" $LB_PRIVATE "* ]]
}
# after a change: wait until the answers are WANT, then show and check
lb_expect() { # WANT
	wait_for 30 lb_answers_are "$1"
	lb_show_upstream
	lb_show_requests
	expect "requests through nginx reach exactly: $1" lb_answers_are "$1"
	expect "the private $LB_PRIVATE is never in the load balancer" lb_private_absent
}

lb_start() {
	provbus-consumer -c "$D/edge-01/provbus.json" -f run >"$D/edge-01/consumer.log" 2>&1 &
	PIDS+=($!)
	note "edge-01: pid $!, log $D/edge-01/consumer.log; nginx pid ${LB_PID[edge-01]} on 127.0.0.1:${LB_PORT[edge-01]}"
}

lb_act() {
	local r0 n
	LB_SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	say "act two: a real load balancer. edge-01 runs nginx and provbus-lb-nginx (public_only, requires API_URL)"
	wait_for 30 lb_runs_gt 0 || { echo "demo: edge-01 made no startup run; see $D/edge-01/consumer.log"; exit 1; }
	note "api-01 and api-02 announced API_URL without \"public\": true: edge-01 counts neither. No public API yet:"
	expect "with no public API node, nginx answers 503" test "$(lbn_code "${LB_PORT[edge-01]}")" = 503
	say "api-11, api-12, api-13 start HTTP servers and announce API_URL, public, with a lease (--ttl $((600 * S)));"
	note "api-int announces its internal API (public false) on 127.0.0.1:${LB_PORT[$LB_PRIVATE]}"
	r0=$(lb_runs)
	for n in $LB_BACKENDS $LB_PRIVATE; do
		provbus-publish -c "$D/$n/provbus.json" provides --ttl $((600 * S)) 2>&1 | sed 's/^/    /'
	done
	wait_for 30 lb_runs_gt "$r0"
	lb_expect "api-11 api-12 api-13"

	say "api-12 retires (provbus-publish retire api)"
	provbus-publish -c "$D/api-12/provbus.json" retire api 2>&1 | sed 's/^/    /'
	lb_expect "api-11 api-13"

	say "api-13 dies without a word: its last renewal had a short lease ($((5 * S)) s), then its server and its timer stop"
	r0=$(lb_runs)
	provbus-publish -c "$D/api-13/provbus.json" provides --ttl $((5 * S)) 2>&1 | sed 's/^/    /'
	lbn_stop "${LB_PID[api-13]}"
	note "meanwhile nginx skips the dead server (proxy_next_upstream); when the lease runs out provbus takes it out"
	wait_for 30 lb_runs_gt "$r0"
	lb_expect "api-11"
	expect "api-13 left through its lease (an expired event)" test "$(sqlite3 -cmd ".timeout 5000" "$D/edge-01/state/audit.db" \
		"SELECT COUNT(*) FROM events WHERE node = 'api-13' AND verdict = 'expired'")" -ge 1

	# provbus-fleet (issue 18) may not be built yet: show it only when it is
	if command -v provbus-fleet >/dev/null 2>&1; then
		say "provbus-fleet converged API_URL: did every consumer of API_URL run with today's value?"
		XDG_CACHE_HOME="$D/cache" provbus-fleet -c "$D/edge-01/provbus.json" converged API_URL --wait $((10 * S)) 2>&1 | sed 's/^/    /'
	fi
}

lb_review() {
	local DB=$D/edge-01/state/audit.db
	say "incident review on edge-01, the load balancer: its timeline of events and runs"
	note "provbus-audit events --since $LB_SINCE (the act's events; the 200 of act one's burst are before it)"
	provbus-audit -d "$DB" events --since "$LB_SINCE" | sed 's/^/    /'
	note "provbus-audit runs"
	provbus-audit -d "$DB" runs | sed 's/^/    /'
	provbus-audit -d "$DB" timeline --html "$D/timeline-lb.html" --since "$LB_SINCE" && note "timeline: $D/timeline-lb.html (open it in a browser)"
}

lb_cleanup() {
	local p
	for p in "${LB_NGINX_PIDS[@]}"; do lbn_stop "$p"; done
	LB_NGINX_PIDS=()
}
