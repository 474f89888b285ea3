# shellcheck shell=bash
# deploy/demo/lb-nginx.sh — real HTTP parts for the load-balancer story,
# sourced by deploy/demo/run-demo.sh and tests/integration/t-lb-nginx.sh.
#
# Every server is Debian's nginx, on 127.0.0.1 and a free port, with its
# configuration, pid file, logs and temp paths in a directory of its own,
# in the foreground (daemon off) so that its PID is the one $! gives:
#
#   lbn_backend DIR NAME      a backend answering "NAME\n" to every request
#                             (one process: master_process off)
#   lbn_lb DIR UPSTREAM_CONF  the load balancer: the site of
#                             deploy/examples/lb-nginx/api-site.conf with
#                             the upstream file UPSTREAM_CONF (seeded empty
#                             here by provbus-lb-nginx, as an operator does
#                             before nginx's first start)
#   both set LBN_PID (to stop by PID) and LBN_PORT, and retry on another
#   port when the one they picked was taken meanwhile
#   lbn_stop PID              SIGTERM (nginx's fast shutdown), wait for it
#   lbn_answers PORT N        N requests through one connection: the
#                             distinct answers, sorted, on one line
#   lbn_code PORT             the HTTP status of one request
: "${ROOT:=${PB_ROOT:?}}"
LBN_EXAMPLE=$ROOT/deploy/examples/lb-nginx
LBN_NGINX=${LBN_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

# shellcheck source=tests/broker/ports.sh
. "$ROOT/tests/broker/ports.sh"
lbn_free_port() { pb_pick_port "$@"; }

# the main context of every instance: everything nginx writes stays in DIR;
# as root, the workers of the load balancer run as nobody (nginx's default
# group "nobody" does not exist on Debian)
lbn_main_conf() { # DIR
	local d=$1
	mkdir -p "$d/tmp"
	echo "pid $d/nginx.pid;"
	echo "error_log $d/error.log;"
	echo "daemon off;"
	[ "$(id -u)" != 0 ] || echo "user nobody nogroup;"
	echo "events { worker_connections 64; }"
}
lbn_http_paths() { # DIR
	local d=$1 t
	echo "    access_log off;"
	for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $d/tmp/$t;"; done
}

_lbn_up() { # PORT: something answers HTTP there
	curl -s -o /dev/null --noproxy '*' -m 2 "http://127.0.0.1:$1/"
}

# _lbn_run DIR: start nginx on DIR/nginx.conf, wait until it answers on
# LBN_PORT; 1 if it exited (the port was taken) or never answered
_lbn_run() {
	local d=$1
	"$LBN_NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" </dev/null >>"$d/nginx.out" 2>&1 &
	LBN_PID=$!
	for _ in $(seq 1 $((100 * ${PB_SLOW:-1}))); do
		kill -0 "$LBN_PID" 2>/dev/null || { wait "$LBN_PID" 2>/dev/null; return 1; }
		_lbn_up "$LBN_PORT" && return 0
		sleep 0.1
	done
	lbn_stop "$LBN_PID"
	return 1
}

lbn_backend() { # DIR NAME
	local d=$1 name=$2 try
	mkdir -p "$d"
	for try in 1 2 3 4 5; do
		[ "$try" = 1 ] || echo "lb-nginx: port $LBN_PORT was taken, trying another" >>"$d/nginx.out"
		LBN_PORT=$(lbn_free_port)
		{ echo "master_process off;"
		  lbn_main_conf "$d" | grep -v '^user '
		  echo "http {"
		  lbn_http_paths "$d"
		  echo "    server {"
		  echo "        listen 127.0.0.1:$LBN_PORT;"
		  echo "        default_type text/plain;"
		  printf '        return 200 "%s\\n";\n' "$name"
		  echo "    }"
		  echo "}"; } >"$d/nginx.conf"
		_lbn_run "$d" && return 0
	done
	echo "lb-nginx: backend $name did not start; see $d/error.log" >&2
	return 1
}

lbn_lb() { # DIR UPSTREAM_CONF
	local d=$1 up=$2 try
	mkdir -p "$d" "$(dirname "$up")"
	for try in 1 2 3 4 5; do
		[ "$try" = 1 ] || echo "lb-nginx: port $LBN_PORT was taken, trying another" >>"$d/nginx.out"
		LBN_PORT=$(lbn_free_port)
		{ lbn_main_conf "$d"
		  echo "http {"
		  lbn_http_paths "$d"
		  echo "    include $d/site.conf;"
		  echo "}"; } >"$d/nginx.conf"
		# the shipped site, on loopback and with this upstream file
		sed -e "s|^include .*api_url.conf;|include $up;|" \
		    -e "s|listen 80;|listen 127.0.0.1:$LBN_PORT;|" \
		    "$LBN_EXAMPLE/api-site.conf" >"$d/site.conf"
		[ -f "$up" ] || env -u API_URL "$LBN_EXAMPLE/provbus-lb-nginx" -u "$up" -x "$LBN_NGINX" \
			-p "$d/nginx.pid" -c "$d/nginx.conf" -- -p "$d" -e "$d/error.log" >>"$d/nginx.out" 2>&1
		_lbn_run "$d" && return 0
	done
	echo "lb-nginx: the load balancer did not start; see $d/error.log" >&2
	return 1
}

lbn_stop() { # PID
	local _
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

lbn_answers() { # PORT N
	local urls=() _
	for _ in $(seq 1 "$2"); do urls+=("http://127.0.0.1:$1/"); done
	curl -s --noproxy '*' -m 10 "${urls[@]}" | sort -u | paste -sd' ' -
}

lbn_code() { # PORT
	curl -s -o /dev/null -w '%{http_code}' --noproxy '*' -m 5 "http://127.0.0.1:$1/"
}
