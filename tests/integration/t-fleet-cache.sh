#!/usr/bin/env bash
# provbus-fleet's cache of the two streams (docs/man/provbus-fleet.1,
# CACHE), against a real broker: a call keeps what its read of the window
# computed and the offsets it reached; the next one reads only what is
# new. Its answers must be those of a read of the whole window
# (--no-cache), byte for byte: after more provides and retires, after the
# stream was deleted and declared again (the cached offset then beyond its
# end, or another message there), with a corrupt cache file, and once the
# window start has passed events the cache holds (they are pruned).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup fleetcache
F=pbc
export XDG_CACHE_HOME=$T/cache
CACHE=$T/cache/provbus

pb_topology "$F" us-east-1 eu-west-1
pb_apply >/dev/null; ok $? "topology applied"

unlike() { # unlike GOT ERE DESC
	if [[ $1 =~ $2 ]]; then ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want no match: '$2'"; else ok 0 "$3"; fi
}
fleet() { provbus-fleet --url "$URL" --federation "$F" --no-verify-sender --stream-port "${PB_BROKER_STREAM_PORT:-0}" "$@"; }
flood() { # flood COUNT PREFIX [OPTS...]: events of nodes PREFIX0.. (guest)
	local n=$1 p=$2; shift 2
	pbtest-pubflood publish "$URL" --federation "$F" --region us-east-1 --count "$n" \
		--keys API_URL,DB_URL,CACHE_URL --nodes 4 --node-prefix "$p" "$@" >>"$T/flood.log" 2>&1
}

# a consumer of API_URL that reports (few presence reports: the fleet
# stream stays still between two calls compared)
pb_node_config "$T/c1.json" c1 "$F" us-east-1 '"consumer": {"queue_type": "classic", "quiet_ms": 50, "presence_interval_s": 3600, "provision": ["/bin/true"], "verify_sender": false}'
echo '{"id": "app", "requires": {"API_URL": "{API_URL}"}}' >"$T/c1/services.d/app.json"
for p in p1 p2; do
	pb_node_config "$T/$p.json" "$p" "$F" us-east-1
	echo "{\"id\": \"api\", \"provides\": {\"API_URL\": \"http://$p:{PORT}\"}, \"local_port\": 80}" \
		>"$T/$p/services.d/api.json"
done

flood 300 h; ok $? "300 events of 4 nodes"
flood 40 l --ttl 3600; ok $? "40 events with a lease"
provbus-publish -c "$T/p1.json" provides >/dev/null; ok $? "p1 provides API_URL"
pb_bg c1 provbus-consumer -c "$T/c1.json" run
conv() { fleet --no-cache converged API_URL 2>/dev/null | grep -q '^converged: 1 of 1 '; }	# c1 seen, and ran
wait_for 60 conv; ok $? "c1 converged"

# three verbs, cold (--no-cache) and from the cache: the same bytes
verbs=("providers --json" "nodes --json" "converged --json" "providers API_URL --node c1 --json")
same_as_cold() { # same_as_cold LABEL: each verb warm, then cold
	local v warm cold bad=0
	for v in "${verbs[@]}"; do
		# shellcheck disable=SC2086
		warm=$(fleet -v $v 2>>"$T/warm.err"); echo "$warm" >"$T/warm.out"
		# shellcheck disable=SC2086
		cold=$(fleet --no-cache $v 2>/dev/null)
		if [ "$warm" != "$cold" ] || [ -z "$cold" ]; then
			bad=1
			diag "$1: $v differs"
			diff <(echo "$cold") <(echo "$warm") | head -5 | sed 's/^/# /'
		fi
	done
	ok $bad "$1: providers, nodes, converged, providers --node from the cache = a read of the whole window"
}

: >"$T/warm.err"
out=$(fleet -v providers --json 2>&1 >/dev/null)
like "$out" "no cache .* yet" "first call: no cache yet (-v says so)"
like "$out" "history: 34[0-9] messages read from the window start" "it read the whole window"
f=$(find "$CACHE" -name 'fleet-*.json' 2>/dev/null | head -n 1)
[ -n "$f" ]; ok $? "a cache file under \$XDG_CACHE_HOME/provbus/"
is "$(stat -c %a "$f")" 600 "mode 0600"
like "$(basename "$f")" "^fleet-127\.0\.0\.1%3A[0-9]+%2F.*pbc\.json$" "named for host, port, vhost and federation"
is "$(find "$CACHE" -name '*.json.*' | wc -l)" 0 "no temporary file left"
same_as_cold "right after"

# more events: new provides of the same keys, retires, a second provider
flood 200 h; ok $? "200 more events of the same nodes (higher seqs)"
provbus-publish -c "$T/p2.json" provides >/dev/null; ok $? "p2 provides API_URL"
provbus-publish -c "$T/p1.json" retire api >/dev/null; ok $? "p1 retires it"
two() { [ "$(fleet --no-cache providers API_URL --json 2>/dev/null | jq -r .node | sort -u | paste -sd,)" = "h0,h1,h2,h3,l0,l1,l2,l3,p2" ]; }
wait_for 30 two; ok $? "the retire is in the stream"
wait_for 60 conv; ok $? "c1 converged again"
# nodes first: it reads the fleet stream only, and writes the cache back
# with its history part as loaded; the next verb resumes the history there
f=$(find "$CACHE" -name 'fleet-*.json' | head -n 1)
h0=$(jq -c '[.history, .providers, .seqs, .stale]' "$f"); f0=$(jq -c .fleet "$f")
out=$(fleet -v nodes --json 2>&1 >"$T/nodes.out")
like "$out" "history: not read" "nodes: the history is not read (-v says so)"
unlike "$out" "history: [0-9]+ (new )?messages read" "nodes: no history message read"
like "$out" "fleet: [0-9]+ new messages read after the cached offset" "nodes: the fleet stream from the cached offset"
is "$(jq -c '[.history, .providers, .seqs, .stale]' "$f")" "$h0" "nodes: the cache's history part unchanged"
[ "$(jq -c .fleet "$f")" != "$f0" ]; ok $? "nodes: the cache's fleet part moved on"
is "$(cat "$T/nodes.out")" "$(fleet --no-cache nodes --json 2>/dev/null)" "nodes from the cache = nodes --no-cache"
: >"$T/warm.err"
out=$(fleet -v providers --json 2>&1 >/dev/null)
like "$out" "cache .*: [0-9]+ providers up to offset [0-9]+" "the next call loads the cache"
like "$out" "history: 20[0-9] new messages read after the cached offset" "and reads only what is new (from where the call before nodes stopped)"
like "$out" "fleet: [0-9]+ new messages read after the cached offset" "of the fleet stream too"
same_as_cold "after more provides and retires (and a nodes)"
out=$(fleet -v converged --json 2>&1 >/dev/null)
like "$out" "history: 0 new messages read after the cached offset" "nothing new: nothing read"

# the stream deleted and declared again, shorter: the offset is beyond its end
pb_ctl delete_queue -p "$VHOST" "provbus.$F.history" >/dev/null; ok $? "history stream deleted"
pb_apply >/dev/null; ok $? "and declared again by provbus-schema"
flood 30 h; ok $? "30 events into the new stream"
out=$(fleet -v providers --json 2>&1 >/dev/null)
like "$out" "beyond its end.*the whole window is read" "a cached offset beyond the stream's end: noted, the window read"
like "$out" "history: 3[0-9] messages read from the window start" "the new stream read from its start"
same_as_cold "stream declared again (shorter)"

# again, longer than the cache's offset: another message at that offset
pb_ctl delete_queue -p "$VHOST" "provbus.$F.history" >/dev/null
pb_apply >/dev/null; ok $? "history stream deleted and declared again"
flood 80 x; ok $? "80 events of other nodes"
out=$(fleet -v providers --json 2>&1 >/dev/null)
like "$out" "not the one read then.*the whole window is read" "another message at the cached offset: noted, the window read"
same_as_cold "stream declared again (longer)"

# a corrupt cache file
f=$(find "$CACHE" -name 'fleet-*.json' | head -n 1)
printf '{"provbus_fleet_cache": 1, "providers": [{"federation": ' >"$f"
out=$(fleet -v providers --json 2>&1 >/dev/null); rc=$?
is "$rc" 0 "a corrupt cache: the call still answers"
like "$out" "unreadable.*not used" "and says the cache is not used"
same_as_cold "after a corrupt cache"
printf '{"provbus_fleet_cache": 1, "version": "0.0.0"}\n' >"$f"
like "$(fleet -v nodes 2>&1 >/dev/null)" "another version: not used" "a cache of another version: not used"
out=$(fleet --no-cache -v nodes 2>&1 >/dev/null)
is "$(grep -cE 'cache /|no cache|cached offset' <<<"$out")" 0 "--no-cache: no cache read or named"

# a cold nodes (no cache) writes none: the next converged reads the whole
# window, and answers as --no-cache does
export XDG_CACHE_HOME=$T/cache2
out=$(fleet -v nodes --json 2>&1 >/dev/null)
like "$out" "no cache .* yet" "cold nodes: no cache yet"
unlike "$out" "history: [0-9]+ (new )?messages read" "cold nodes: no history message read"
is "$(find "$T/cache2" -name 'fleet-*.json' 2>/dev/null | wc -l)" 0 "cold nodes: no cache written (it has no history part)"
is "$(fleet converged --json 2>/dev/null)" "$(fleet --no-cache converged --json 2>/dev/null)" "converged after a cold nodes = converged --no-cache"
is "$(fleet providers --json 2>/dev/null)" "$(fleet --no-cache providers --json 2>/dev/null)" "providers from that cache = providers --no-cache"
export XDG_CACHE_HOME=$T/cache

# nodes does not even subscribe to the history: without the stream it
# still answers, the same; providers needs it
before=$(fleet --no-cache nodes --json 2>/dev/null)
pb_ctl delete_queue -p "$VHOST" "provbus.$F.history" >/dev/null; ok $? "history stream deleted"
out=$(fleet --no-cache nodes --json 2>"$T/nh.err"); rc=$?
is "$rc" 0 "nodes without the history stream: answers"
is "$out" "$before" "the same nodes"
fleet --no-cache providers --json >/dev/null 2>&1; is "$?" 78 "providers without it: EX_CONFIG"
pb_apply >/dev/null; ok $? "history stream declared again"

# the window: with history_window_s 6, events older than 6 s drop out of
# the answer; the cache prunes them as a read of the window would
cat >"$T/w.json" <<EOT
{"node": "obs", "federation": "$F", "region": "us-east-1", "host": "127.0.0.1",
 "broker": {"urls": ["$URL"]}, "services_dir": "$T", "state_dir": "$T",
 "consumer": {"history_window_s": 6}}
EOT
wfleet() { provbus-fleet -c "$T/w.json" --no-verify-sender --stream-port "${PB_BROKER_STREAM_PORT:-0}" "$@"; }
flood 20 old; ok $? "20 events of nodes old0..old3"
has_old() { wfleet --no-cache providers --json 2>/dev/null | grep -q '"node": *"old0"'; }
has_old; ok $? "a 6 s window holds them"
wfleet providers --json >/dev/null 2>&1; ok $? "a call with the 6 s window fills its cache"
gone() { ! has_old; }
wait_for 30 gone; ok $? "6 s later a read of the window no longer holds them"
flood 10 new; ok $? "10 events of nodes new0..new3"
warm=$(wfleet -v providers --json 2>"$T/w.err"); cold=$(wfleet --no-cache providers --json 2>/dev/null)
like "$(cat "$T/w.err")" "new messages read after the cached offset" "the 6 s window call used its cache"
is "$warm" "$cold" "and pruned what fell out of the window: the same answer as a read of it"
grep -q '"node": *"new0"' <<<"$warm"; ok $? "(the new events are in it)"

# Every event here was published as guest, so a call that verifies senders
# (without --no-verify-sender) ignores them all. It must not take the
# caches the calls above wrote, which counted every sender, nor they its.
vfleet() { provbus-fleet --url "$URL" --federation "$F" --stream-port "${PB_BROKER_STREAM_PORT:-0}" "$@"; }
fleet providers --json >/dev/null 2>&1; ok $? "a call counting every sender writes its cache (the default window)"
is "$(vfleet --no-cache providers --json 2>/dev/null)" "" "verifying, cold: no provider (every sender is guest)"
is "$(vfleet providers --json 2>/dev/null)" "" "verifying, after calls that counted every sender: no provider either"
vfleet providers --json >/dev/null 2>&1
is "$(fleet providers --json 2>/dev/null)" "$(fleet --no-cache providers --json 2>/dev/null)" \
	"and a call counting every sender after it: the same as a read of the window"
pb_done
