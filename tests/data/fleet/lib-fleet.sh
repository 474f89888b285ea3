# tests/data/fleet/lib-fleet.sh — helpers of the t-fleet*.sh scripts,
# sourced after tests/integration/lib.sh and pb_setup.
#
#   pbf_hash PASSWORD     RabbitMQ's rabbit_password_hashing_sha256 hash
#                         (base64 of a 4-byte salt and SHA-256(salt + password))
#   pbf_users DEFS NODE:REGION[:TOPIC-WRITE-ERE]...
#                         RabbitMQ definitions giving each NODE a user (password
#                         "pw-NODE") with full permissions on $VHOST and topic
#                         write permission on provbus.$F of its own region's
#                         announcements and its own reports (or TOPIC-WRITE-ERE),
#                         plus provbus-observer (read on the two streams only);
#                         imported into the test broker
#   pbf_url NODE          the amqp URL of NODE (password in it: a local test)
#   pbf_node NODE REGION [CONSUMER-MEMBERS] [REQUIRES-JSON]
#                         config $T/NODE.json (state $T/NODE/state), a manifest
#                         requiring API_URL (or REQUIRES-JSON), a provision
#                         command that fails while $T/NODE.fail exists;
#                         PBF_PRESENCE_S (2) and PBF_HEARTBEAT_S (10) set those
#   pbf_prov [PUBLIC]     the providing node "prov" (host 10.9.9.9, us-east-1):
#                         config $T/prov.json, a manifest providing API_URL on
#                         port 1100 ("public": PUBLIC when given)
#   pbf_fleet ARGS...     provbus-fleet as provbus-observer
#   pbf_wait SECONDS CMD...  like wait_for, but bounded in time, not in tries
#                         (CMD is a provbus-fleet run: a second or so each)
export XDG_CACHE_HOME="$T/cache"	# provbus-fleet's cache: never the real home
PBF_SALT='\x5a\x0e\x91\x3c'

pbf_hash() {
	local sum
	sum=$({ printf "$PBF_SALT"; printf '%s' "$1"; } | sha256sum | cut -c1-64)
	{ printf "$PBF_SALT"; printf "$(sed 's/../\\x&/g' <<<"$sum")"; } | base64 -w0
}

pbf_users() {
	local defs=$1 spec node region topic users="" perms="" tperms="" sep=""
	shift
	local obs_hash; obs_hash=$(pbf_hash pw-observer)
	for spec in "$@"; do
		IFS=: read -r node region topic <<<"$spec"
		[ -n "$topic" ] || topic="^$region\\\\.(provides|retire)\\\\.[A-Z_][A-Z0-9_]*\$|^$region\\\\.(presence|run)\\\\.$node\$"
		users+="$sep{\"name\": \"$node\", \"password_hash\": \"$(pbf_hash "pw-$node")\", \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": \"\"}"
		perms+="$sep{\"user\": \"$node\", \"vhost\": \"$VHOST\", \"configure\": \".*\", \"write\": \".*\", \"read\": \".*\"}"
		tperms+="$sep{\"user\": \"$node\", \"vhost\": \"$VHOST\", \"exchange\": \"provbus.$F\", \"write\": \"$topic\", \"read\": \".*\"}"
		sep=", "
	done
	cat >"$defs" <<EOT
{"users": [$users, {"name": "provbus-observer", "password_hash": "$obs_hash", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""}],
 "permissions": [$perms, {"user": "provbus-observer", "vhost": "$VHOST", "configure": "^\$", "write": "^\$", "read": "^provbus\\\\.$F\\\\.(history|fleet)\$"}],
 "topic_permissions": [$tperms]}
EOT
	pb_ctl import_definitions "$defs" >/dev/null
}

pbf_prov() {
	mkdir -p "$T/prov/services.d" "$T/prov/state"
	cat >"$T/prov.json" <<EOT
{"node": "prov", "federation": "$F", "region": "us-east-1", "host": "10.9.9.9",
 "broker": {"urls": ["$(pbf_url prov)"]},
 "services_dir": "$T/prov/services.d", "state_dir": "$T/prov/state"}
EOT
	echo "{\"id\": \"api\", \"provides\": {\"API_URL\": \"http://{HOST}:{PORT}\"}, \"local_port\": 1100${1:+, \"public\": $1}}" \
		>"$T/prov/services.d/api.json"
}

pbf_url() { echo "amqp://$1:pw-$1@127.0.0.1:$PORT/$(urlenc "$VHOST")"; }
PBF_OBS_URL() { echo "amqp://provbus-observer:pw-observer@127.0.0.1:$PORT/$(urlenc "$VHOST")"; }

pbf_node() { # NODE REGION [CONSUMER-MEMBERS] [REQUIRES-JSON]
	local node=$1 region=$2 cons=${3:-} req=${4:-'{"API_URL": "{API_URL}"}'}
	local dir=$T/$node
	mkdir -p "$dir/services.d" "$dir/state"
	cat >"$T/$node.json" <<EOT
{
  "node": "$node", "federation": "$F", "region": "$region", "host": "127.0.0.1",
  "broker": {"urls": ["$(pbf_url "$node")"], "heartbeat_s": ${PBF_HEARTBEAT_S:-10}},
  "services_dir": "$dir/services.d",
  "state_dir": "$dir/state",
  "consumer": {"env_file": "$dir/app.env", "quiet_ms": 50, "max_wait_ms": 2000,
    "queue_type": "classic", "retry": {"max": 1, "base_ms": 100},
    "throttle": {"runs": 100, "per_s": 60}, "presence_interval_s": ${PBF_PRESENCE_S:-2},
    "provision": ["/bin/sh", "-c", "[ ! -e '$T/$node.fail' ]"]${cons:+, $cons}}
}
EOT
	printf '{"id": "app", "requires": %s}\n' "$req" >"$dir/services.d/app.json"
}

pbf_fleet() { provbus-fleet --url "$(PBF_OBS_URL)" --federation "$F" --stream-port "${PB_BROKER_STREAM_PORT:-0}" "$@"; }

pbf_wait() {
	local end=$(( $(date +%s) + $1 * PB_SLOW )); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}
