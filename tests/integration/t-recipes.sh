#!/usr/bin/env bash
# docs/recipes.md, run: every file the page shows is the file in the tree
# (so what a user copies is what is tested here and in t-lb-nginx), and
# the recipes work against a real provbus-consumer:
# - Chef: the consumer's provision runs deploy/examples/chef-app's recipe
#   through a stand-in for chef-solo (a few lines of Ruby giving the
#   recipe DSL: directory, template with ERB, service), with
#   deploy/chef/provbus_env.rb loaded as a cookbook library; the rendered
#   file holds the values byte for byte, as a shell sourcing the env file
#   sees them. Skipped without ruby. Chef itself is not run.
# - systemd: deploy/examples/systemd-app's node config (env_format
#   "systemd") runs a consumer; its env file is read back by the same
#   Ruby reader, which follows systemd.exec(5)'s rules, and the unit passes
#   systemd-analyze verify. No systemd manager runs here, so the unit is
#   not started. Skipped while the consumer does not know env_format.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup recipes
EX=$PB_ROOT/deploy/examples
DOC=$PB_ROOT/docs/recipes.md

# --- the page shows the files as they are in the tree
# a block is announced by a line "<!-- file: PATH -->" just before its fence
blocks=$(grep -c '^<!-- file: ' "$DOC")
[ "$blocks" -ge 8 ]; ok $? "docs/recipes.md shows the recipe files ($blocks)"
while read -r path; do
	awk -v p="$path" '
		$0 == "<!-- file: " p " -->" { want = 1; next }
		want == 1 && /^```/ { want = 2; next }
		want == 2 && /^```$/ { exit }
		want == 2 { print }' "$DOC" >"$T/block"
	if cmp -s "$T/block" "$PB_ROOT/$path"; then ok 0 "docs/recipes.md shows $path as it is"
	else ok 1 "docs/recipes.md shows $path as it is"; diff "$T/block" "$PB_ROOT/$path" | head -5 | sed 's/^/#   /'; fi
done < <(sed -n 's/^<!-- file: \(.*\) -->$/\1/p' "$DOC")

F=rcp R=us-east-1
pb_topology "$F" "$R"
pb_apply >/dev/null; ok $? "topology applied"
for i in 1 2; do
	pb_node_config "$T/api-$i.json" "api-$i" "$F" "$R"
	cat >"$T/api-$i/services.d/api.json" <<EOT
{"id": "api", "environment": {"PORT": 110$i}, "provides": {"API_URL": "http://{HOST}:{PORT}/"}}
EOT
done
# a static value that needs every kind of quoting
# shellcheck disable=SC2016 # nothing in it is to be expanded
DBURL='mysql://app:it'"'"'s "q" $HOME `x` \\ \n; ünï@db-1:3306/app?a=1 b=2  '
APIS='http://127.0.0.1:1101/,http://127.0.0.1:1102/'

# consumer CONFIG LOG: run it, wait for a finished startup run; 2 when it
# refuses its configuration (exit 78), 1 on any other failure
consumer() {
	pb_bg "$2" provbus-consumer -c "$1" -f run
	CPID=$BG_PID
	local db
	db=$(jq -r .state_dir "$1")/audit.db
	for _ in $(seq 1 $((300 * PB_SLOW))); do
		if ! kill -0 "$CPID" 2>/dev/null; then wait "$CPID"; [ $? -eq 78 ] && return 2; return 1; fi
		[ -f "$db" ] && [ "$(sqlite3 -cmd '.timeout 5000' "$db" "SELECT COUNT(*) FROM runs WHERE status = 'ok'" 2>/dev/null)" -ge 1 ] && return 0
		sleep 0.1
	done
	return 1
}
# ran_with DB API_URLS: the last run is over, ok, and had API_URL = API_URLS
# (two announcements more than quiet_ms apart make two runs: a count of
# runs is not enough on a slow machine)
ran_with() {
	[ "$(sqlite3 -cmd '.timeout 5000' "$1" "SELECT status = 'ok' AND finished_at IS NOT NULL AND
		json_extract(values_after, '\$.API_URL') = '$2' FROM runs ORDER BY id DESC LIMIT 1")" = 1 ]
}
announce() { local i; for i in 1 2; do provbus-publish -c "$T/api-$i.json" provides >/dev/null || return 1; done; }

# --- Chef
if ! command -v ruby >/dev/null 2>&1; then
	echo "ok $((_pb_n + 1)) - # SKIP the Chef recipe: no ruby here"; _pb_n=$((_pb_n + 1))
else
	# chef-solo's stand-in: the recipe DSL the recipe uses, nothing more
	cat >"$T/fake-chef-solo.rb" <<'EOT'
require 'erb'
require 'json'
cookbook, lib, out = ARGV
$resources = []
class Res
  attr_reader :attrs
  def initialize; @attrs = {}; end
  def method_missing(m, *args) ; @attrs[m] = args.length == 1 ? args[0] : args; end
  def respond_to_missing?(*); true; end
end
class FakeChef
  attr_reader :node
  def initialize(node); @node = node; end
  %w[directory template service].each do |kind|
    define_method(kind) do |name, &blk|
      r = Res.new
      r.instance_eval(&blk) if blk
      $resources << [kind, name, r.attrs]
    end
  end
end
load lib # libraries/ load before the recipes
default = Hash.new { |h, k| h[k] = {} }
attrs = Object.new
attrs.define_singleton_method(:default) { default }
attrs.instance_eval(File.read("#{cookbook}/attributes/default.rb"))
node = default
node['app']['provbus_env_file'] = ENV.fetch('APP_ENV_FILE')
node['app']['config_file'] = out
chef = FakeChef.new(node)
chef.instance_eval(File.read("#{cookbook}/recipes/default.rb"), "#{cookbook}/recipes/default.rb")
kind, path, a = $resources.find { |r| r[0] == 'template' }
ctx = Object.new
a[:variables].each { |k, v| ctx.instance_variable_set("@#{k}", v) }
text = ERB.new(File.read("#{cookbook}/templates/#{a[:source]}"), trim_mode: '-').result(ctx.instance_eval { binding })
File.write(path, text)
puts $resources.map { |r| "#{r[0]}[#{r[1]}]" }.join(' ')
EOT
	cat >"$T/provision-chef" <<EOT
#!/bin/sh
exec ruby "$T/fake-chef-solo.rb" "$EX/chef-app" "$PB_ROOT/deploy/chef/provbus_env.rb" "$T/chef/app.yml"
EOT
	chmod +x "$T/provision-chef"
	mkdir -p "$T/chef"
	# every node of this test logs in as guest (a lab): user_id is never
	# the node, so verify_sender is off (t-identity tests it with real users)
	pb_node_config "$T/chef.json" app-chef "$F" "$R" "$(jq -nc --arg t "$T" --arg db "$DBURL" '{consumer: {
		env_file: "\($t)/chef/app.env", provision: ["\($t)/provision-chef"], quiet_ms: 300,
		lock_file: "\($t)/chef/provision.lock", static: {PRIMARY_DATABASE_URL: $db},
		verify_sender: false}}' | sed 's/^{//; s/}$//')"
	echo '{"id": "app", "requires": {"API_URL": "{API_URL}", "PRIMARY_DATABASE_URL": "{PRIMARY_DATABASE_URL}"}}' \
		>"$T/app-chef/services.d/app.json"
	export APP_ENV_FILE=$T/chef/app.env
	consumer "$T/chef.json" chef-consumer; ok $? "chef: the consumer made its startup run (the recipe ran)"
	announce; ok $? "chef: api-1 and api-2 announce API_URL"
	wait_for 20 ran_with "$T/app-chef/state/audit.db" "$APIS"; ok $? "chef: a run for the announcements"
	# what a shell sees when it sources the env file
	got_sh=$(bash -c '. "$1"; printf "%s|%s" "$API_URL" "$PRIMARY_DATABASE_URL"' _ "$T/chef/app.env")
	is "$got_sh" "$APIS|$DBURL" "chef: the env file, sourced by a shell, holds the values"
	got_rb=$(ruby -r "$PB_ROOT/deploy/chef/provbus_env.rb" -e 'e = Provbus::EnvFile.read(ARGV[0]); print e["API_URL"], "|", e["PRIMARY_DATABASE_URL"]' "$T/chef/app.env")
	is "$got_rb" "$got_sh" "chef: Provbus::EnvFile reads the same values as the shell"
	want=$(ruby -rjson -e 'print "api_urls: #{ARGV[0].split(",").to_json}\ndatabase_url: #{ARGV[1].to_json}\n"' "$APIS" "$DBURL")
	is "$(grep -v '^#' "$T/chef/app.yml")" "$want" "chef: the recipe rendered the app config from the env file"
	ruby -ryaml -rjson -e 'y = YAML.safe_load(File.read(ARGV[0])); exit(y["api_urls"] == ARGV[1].split(",") && y["database_url"] == ARGV[2] ? 0 : 1)' \
		"$T/chef/app.yml" "$APIS" "$DBURL"
	ok $? "chef: the rendered YAML reads back as the values, byte for byte"
	like "$(provbus-audit -d "$T/app-chef/state/audit.db" explain 2)" "template\\[$T/chef/app.yml\\] service\\[app\\]" \
		"chef: the run's output lists the recipe's resources"
	# no file at all (a node before its first provision run): no values, no error
	rm -f "$T/chef/app.env"
	APP_ENV_FILE=$T/chef/app.env "$T/provision-chef" >/dev/null; ok $? "chef: the recipe runs without an env file"
	is "$(grep -v '^#' "$T/chef/app.yml")" $'api_urls: []\ndatabase_url: null' "chef: ... and renders no values"
	pb_stop_pid "$CPID"
fi

# --- systemd
mkdir -p "$T/sd/services.d" "$T/sd/state"
cat >"$T/provision-sd" <<EOT
#!/bin/sh
# systemctl try-restart app.service's stand-in: what the unit would read
cp "$T/sd/app.env" "$T/sd/seen.env"
EOT
chmod +x "$T/provision-sd"
jq --arg url "$URL" --arg t "$T/sd" --arg f "$F" --arg r "$R" --arg p "$T/provision-sd" '
	.node = "app-sd" | .federation = $f | .region = $r | .host = "127.0.0.1" | .broker = {urls: [$url]}
	| .services_dir = "\($t)/services.d" | .state_dir = "\($t)/state"
	| .consumer.env_file = "\($t)/app.env" | .consumer.lock_file = "\($t)/provision.lock"
	| .consumer.provision = [$p] | .consumer.quiet_ms = 300
	| .consumer.verify_sender = false' "$EX/systemd-app/provbus.json" >"$T/sd.json"
jq --arg db "$DBURL" '.consumer.static.PRIMARY_DATABASE_URL = $db' "$T/sd.json" >"$T/sd.json.new" && mv "$T/sd.json.new" "$T/sd.json"
echo '{"id": "app", "requires": {"API_URL": "{API_URL}", "PRIMARY_DATABASE_URL": "{PRIMARY_DATABASE_URL}"}}' >"$T/sd/services.d/app.json"
consumer "$T/sd.json" sd-consumer; rc=$?
if [ $rc -eq 2 ] && grep -q "unknown field 'env_format'" "$T/sd-consumer.log"; then
	diag "this provbus-consumer does not know consumer.env_format yet: $(head -n1 "$T/sd-consumer.log")"
	echo "ok $((_pb_n + 1)) - # SKIP the systemd recipe: consumer.env_format not supported by this build"; _pb_n=$((_pb_n + 1))
else
	ok $rc "systemd: the consumer with env_format systemd made its startup run"
	[ $rc -eq 0 ] || sed 's/^/#   /' "$T/sd-consumer.log" | head -5
	announce; ok $? "systemd: api-1 and api-2 announce API_URL"
	# a new node: its startup run may already have both URLs from the
	# history (the chef part announced them); either way a run's provision
	# sees them (it copies the env file to seen.env)
	wait_for 20 grep -qx 'API_URL="http://127.0.0.1:1101/,http://127.0.0.1:1102/"' "$T/sd/seen.env"
	ok $? "systemd: a run saw both announced URLs in the env file"
	bad=$(grep -v -e '^#' -e '^$' -e '^[A-Z_][A-Z0-9_]*="' "$T/sd/seen.env")
	is "$bad" "" "systemd: every line is NAME=\"value\" (systemd.exec(5)), no export"
	got=$(ruby -r "$PB_ROOT/deploy/chef/provbus_env.rb" -e 'e = Provbus::EnvFile.read(ARGV[0]); print e["API_URL"], "|", e["PRIMARY_DATABASE_URL"]' "$T/sd/seen.env")
	is "$got" "$APIS|$DBURL" "systemd: read by systemd.exec(5)'s quoting rules, the file holds the values byte for byte"
	if command -v systemd-analyze >/dev/null 2>&1; then
		printf '#!/bin/sh\nexit 0\n' >"$T/app"; chmod +x "$T/app"
		sed -e "s|/usr/local/bin/app|$T/app|" -e "s|/etc/provbus/app.env|$T/sd/seen.env|" \
			"$EX/systemd-app/app.service" >"$T/app.service"
		out=$(systemd-analyze verify --man=no "$T/app.service" 2>&1)
		bad=$(echo "$out" | grep -v -e '^$' -e 'not executable' -e 'No such file' || true)
		is "$bad" "" "systemd: systemd-analyze verify finds no error in the unit"
	else
		diag "no systemd-analyze: the unit is not verified"
	fi
	pb_stop_pid "$CPID"
fi
pb_done
