#!/usr/bin/env bash
# Scenario 4: a 3-node RabbitMQ cluster, quorum queues, every program given
# the URLs of all three nodes (each in its own order, so the nodes share the
# connections). While publishers keep announcing:
#   A. kill -9 the node consumer c1 is connected to (which also leads c1's
#      queue when c1 declared it there); c1 fails over to another node by
#      itself; restart the node;
#   B. kill -9 the node leading the queue of a consumer that is connected
#      elsewhere (if there is none, the leader of c2's queue); restart it.
# Then: every event the publishers made is confirmed (outboxes empty) and
# in the audit log of every consumer: 0 lost; the consumers never exited.
# Only one node is down at a time (a quorum of 2 of 3 stays up).
#   RL_KEYS (default 10): keys per announcement; RL_PAUSE (default 0.3 s)
#   between a publisher's runs
# shellcheck disable=SC1091
. "$PB_ROOT/tests/reliability/lib.sh"
t_boot=$(date +%s)
rl_own_broker --nodes 3
rl_setup s4-cluster-failover
nkeys=${RL_KEYS:-10}
pause=${RL_PAUSE:-0.3}
ncons=3 npub=3
read -r -a ports <<<"$PB_BROKER_PORTS"
read -r -a nodes <<<"$PB_BROKER_NODES"
V=$(urlenc "$VHOST")
urls_from() { # urls_from I: the 3 node URLs, starting at node I (1-based)
	local i=$1 j out=""
	for j in 0 1 2; do out="$out${out:+, }\"amqp://guest:guest@127.0.0.1:${ports[$(( (i - 1 + j) % 3 ))]}/$V\""; done
	echo "[$out]"
}
ctl_up() { # ctl_up ARGS...: rabbitmqctl on the first node that answers
	local i
	for i in 1 2 3; do "$PB_BROKER" ctl "$PB_BROKER_DIR" -n $i "$@" 2>/dev/null && return 0; done
	return 1
}
node_index() { local i; for i in 0 1 2; do [ "${nodes[$i]}" = "$1" ] && echo $((i + 1)); done; }
port_index() { local i; for i in 0 1 2; do [ "${ports[$i]}" = "$1" ] && echo $((i + 1)); done; }
conn_node() { # conn_node CONSUMER: index of the node it is connected to
	local b; b=$(rl_json_get "$(rl_status "$T/$1.json")" .broker)
	b=${b#*@127.0.0.1:}; port_index "${b%%/*}"
}
leader_of() { # leader_of QUEUE: index of the node leading it
	local l; l=$(ctl_up list_queues -p "$VHOST" name leader | awk -v q="$1" '$1 == q {print $2}')
	node_index "$l"
}
cluster_running() { # cluster_running N: N nodes running, seen from a live node
	[ "$(ctl_up eval 'length(rabbit_nodes:all_running()).' | tr -d '\r')" = "$1" ]
}
wait_for 60 cluster_running 3
ok $? "a 3-node cluster up in $(( $(date +%s) - t_boot )) s: $PB_BROKER_NODES"

rl_topology fed r1
rl_apply
keys=$(for k in $(seq 1 "$nkeys"); do printf 'K%03d ' "$k"; done)
declare -A cpid
for i in $(seq 1 $ncons); do
	rl_consumer "c$i" r1 "$keys" "" "$(urls_from "$i")"
	rl_consumer_start "c$i"; cpid[$i]=$BG_PID
done
up=0; for i in $(seq 1 $ncons); do rl_wait_idle "c$i" 90 && up=$((up + 1)); done
is "$up" $ncons "$ncons consumers up (quorum queues), each first on its own node"
for i in $(seq 1 $ncons); do
	diag "c$i: connected to node $(conn_node "c$i"), queue leader node $(leader_of "provbus.fed.node.c$i"), type $(ctl_up list_queues -p "$VHOST" name type | awk -v q="provbus.fed.node.c$i" '$1 == q {print $2}')"
done
is "$(ctl_up list_queues -p "$VHOST" name type | awk '$1 ~ /^provbus\.fed\.node\./ {print $2}' | sort -u)" quorum "the node queues are quorum queues"

for p in $(seq 1 $npub); do rl_publisher "p$p" r1 "$keys" "$(urls_from "$p")"; done
publisher_loop() { # runs until $T/stop exists
	local p=$1 g=0 rc
	while [ ! -e "$T/stop" ]; do
		g=$((g + 1))
		rl_set_gen "p$p" "$g"
		provbus-publish -c "$T/p$p.json" --timeout 5 provides >>"$T/p$p.publish.log" 2>&1
		rc=$?
		echo "$(rl_now) $g $rc" >>"$T/p$p.rc"
		sleep "$pause"
	done
	echo "$g" >"$T/p$p.runs"
}
for p in $(seq 1 $npub); do publisher_loop "$p" & rl_track_pid $!; done
sleep 5

# --- A: the node c1 is connected to
a=$(conn_node c1)
la=$(leader_of provbus.fed.node.c1)
diag "phase A: c1 on node $a, its queue led by node $la: kill -9 node $a"
t_a=$(rl_now)
"$PB_BROKER" kill "$PB_BROKER_DIR" "$a"
ok $? "kill -9 of node $a (c1's node$([ "$la" = "$a" ] && echo ", and its queue's leader"))"
wait_for 60 bash -c "b=\$(provbus-consumer -c '$T/c1.json' status | jq -r .broker); [ \"\$b\" != null ] && [[ \$b != *:${ports[$((a - 1))]}/* ]]"
ok $? "c1 failed over to another node by itself ($(rl_json_get "$(rl_status "$T/c1.json")" .broker))"
failover_a=$(( $(rl_now) - t_a ))
nl=$(leader_of provbus.fed.node.c1)
[ -n "$nl" ] && [ "$nl" != "$a" ]; ok $? "c1's queue has a leader on a live node ($nl)"
sleep 5
"$PB_BROKER" restart "$PB_BROKER_DIR" "$a" >"$T/restart-a.log" 2>&1
ok $? "node $a restarted"
wait_for 120 cluster_running 3
ok $? "the cluster has its 3 nodes again"

# --- B: the leader of a queue whose consumer is connected elsewhere
# (node $a came back leading nothing: rebalancing moves a leader to it)
ctl_up eval 'rabbit_amqqueue:rebalance(quorum, <<".*">>, <<"^provbus\\.fed\\.node\\.">>).' >"$T/rebalance.log" 2>&1
diag "rebalanced quorum leaders: $(tr '\n' ' ' <"$T/rebalance.log" | cut -c1-200)"
sleep 2
b="" victim=""
for i in $(seq 1 $ncons); do
	cn=$(conn_node "c$i"); ln=$(leader_of "provbus.fed.node.c$i")
	if [ -n "$ln" ] && [ "$cn" != "$ln" ]; then b=$ln victim=c$i; break; fi
done
case_b="leader elsewhere than the consumer's connection"
if [ -z "$b" ]; then b=$(leader_of provbus.fed.node.c2) victim=c2 case_b="leader on the consumer's own node"; fi
vconn=$(conn_node "$victim")
diag "phase B: $victim connected to node $vconn, its queue led by node $b ($case_b): kill -9 node $b"
t_b=$(rl_now)
"$PB_BROKER" kill "$PB_BROKER_DIR" "$b"
ok $? "kill -9 of node $b, the leader of $victim's queue"
wait_for 60 bash -c "l=\$('$PB_BROKER' ctl '$PB_BROKER_DIR' -n $(( b % 3 + 1 )) list_queues -p '$VHOST' name leader 2>/dev/null | awk '\$1 == \"provbus.fed.node.$victim\" {print \$2}'); [ -n \"\$l\" ] && [ \"\$l\" != '${nodes[$((b - 1))]}' ]"
ok $? "a new leader for $victim's queue was elected"
failover_b=$(( $(rl_now) - t_b ))
sleep 5
"$PB_BROKER" restart "$PB_BROKER_DIR" "$b" >"$T/restart-b.log" 2>&1
ok $? "node $b restarted"
wait_for 120 cluster_running 3
ok $? "the cluster has its 3 nodes again"
sleep 3

# --- stop the flow and check
touch "$T/stop"
wait_for 60 bash -c "ls '$T'/p*.runs 2>/dev/null | wc -l | grep -qx $npub"
for p in $(seq 1 $npub); do
	for _ in 1 2 3 4 5; do provbus-publish -c "$T/p$p.json" --timeout 10 flush >>"$T/p$p.publish.log" 2>&1 && break; sleep 2; done
done
left=0 runs_total=0
for p in $(seq 1 $npub); do
	left=$((left + $(provbus-publish -c "$T/p$p.json" --dry-run flush 2>/dev/null | grep -c '"id"')))
	runs_total=$((runs_total + $(cat "$T/p$p.runs")))
done
rcs=$(cat "$T"/p*.rc | awk '{print $3}' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
diag "publisher runs by exit status: $rcs"
like "$rcs" "^0:[0-9]+ (75:[0-9]+ )?$" "publisher runs exit 0 (or 75: spooled)"
is "$left" 0 "every outbox is empty: all events confirmed"
sent=$((runs_total * nkeys))

lost_all=0 dup_all=0 audited_all=0
for i in $(seq 1 $ncons); do
	db=$T/c$i/state/audit.db
	wait_for 120 bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$db' \"SELECT count(*) FROM (SELECT DISTINCT node, key, seq FROM events WHERE node LIKE 'p%' AND verdict != 'invalid')\")\" -ge $sent ]"
	got=$(rl_sql "$db" "SELECT count(*) FROM (SELECT DISTINCT node, key, seq FROM events WHERE node LIKE 'p%' AND verdict != 'invalid')")
	dups=$(rl_sql "$db" "SELECT count(*) FROM events WHERE verdict='duplicate'")
	audited_all=$((audited_all + got)); dup_all=$((dup_all + dups)); lost_all=$((lost_all + sent - got))
	is "$got" "$sent" "c$i: all $sent confirmed events audited ($dups duplicates detected)"
done
same=0
for i in $(seq 1 $ncons); do kill -0 "${cpid[$i]}" 2>/dev/null && same=$((same + 1)); done
is "$same" $ncons "no consumer exited"
conn=0
for i in $(seq 1 $ncons); do rl_connected "$T/c$i.json" && conn=$((conn + 1)); done
is "$conn" $ncons "every consumer is connected at the end"
for i in $(seq 1 $ncons); do rl_wait_idle "c$i" 60; done
vals=0
for i in $(seq 1 $ncons); do
	v=$(rl_json_get "$(rl_status "$T/c$i.json")" '.values.E_K001')
	want=$(for p in $(seq 1 $npub); do printf 'http://p%s/K001/%s,' "$p" "$(cat "$T/p$p.runs")"; done)
	[ "$v" = "${want%,}" ] && vals=$((vals + 1))
done
is "$vals" $ncons "every consumer ends with the last value of every publisher"
stopped=0
for i in $(seq 1 $ncons); do rl_consumer_stop "c$i" && stopped=$((stopped + 1)); done
is "$stopped" $ncons "every consumer exits 0 on SIGTERM"
rl_result sent=$sent consumers=$ncons audited=$audited_all lost=$lost_all duplicated_detected=$dup_all \
	failover_a_s="$(rl_secs "$failover_a")" failover_b_s="$(rl_secs "$failover_b")" \
	phase_b="$(echo "$case_b" | tr ' ' '_')" publisher_exits="$(echo $rcs | tr ' ' ',')"
pb_done
