#!/usr/bin/env bash
# make bench-quick inside make check: bench/run.sh with BENCH_QUICK=1 (the
# code of make bench, small sizes) against the test broker, in this test's
# vhost. Asserts only that every figure was produced, as a number, and
# that the chart and the tables were written — never a speed: the suite
# runs on shared machines. docs/ must be left alone (only a full run
# rewrites docs/BENCHMARKS.md).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup benchq

out=$T/bench
build=$(basename "$(dirname "$PB_TOOLS")")
docs_before=$(cat "$PB_ROOT/docs/BENCHMARKS.md" "$PB_ROOT/docs/bench.svg" 2>/dev/null | cksum)

start=$(date +%s)
BENCH_QUICK=1 BENCH_OUT=$out BENCH_VHOST=$VHOST BENCH_DOCS=0 BUILD=$build \
	"$PB_ROOT/bench/run.sh" >"$T/run.log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
is $rc 0 "bench/run.sh (quick) ran every section"
[ $rc = 0 ] || grep -E 'FAILED|failed|error' "$T/run.log" | head -n 20 | sed 's/^/# /'
diag "the quick bench took $took s"

# every figure of the quick run, by id; each must be a number
ids="startup.restart startup.new
publish.provides.provbus publish.provides.amqp-publish publish.provides.etcdctl
replay.replay replay.runs"
for s in provbus-q0 provbus-q200 provbus-q0-bus provbus-q200-bus amqp etcd serf serf-coalesce; do
	ids="$ids latency.$s.p50 latency.$s.p99"
done
for s in provbus serf-coalesce serf etcd amqp; do ids="$ids burst.10.$s.runs burst.10.$s.last_end"; done
ids="$ids fanout.all_started.p50 fanout.all_started.max fanout.cpu.broker fanout.cpu.daemons"
for s in amqp-consume serf etcd; do ids="$ids memory.$s.idle memory.$s.after"; done
ids="$ids memory.provbus.idle memory.provbus.after
ingest.provbus ingest.baseline ingest.ratio ingest.provbus.cpu flush.provbus flush.baseline flush.ratio
catchup.provbus catchup.baseline catchup.ratio fleet.nodes fleet.converged
latency.q0-amqp.ratio memory.provbus.idle.anon memory.provbus.idle.file memory.amqp-consume.idle.anon
drain.k40000.provbus drain.k40000.baseline drain.k40000.ratio drain.k1.provbus drain.k1.baseline drain.k1.ratio drain.k.ratio"

res=$out/results.tsv
ok "$([ -s "$res" ]; echo $?)" "results.tsv written"
missing="" notnum=""
for id in $ids; do
	v=$(awk -F'\t' -v id="$id" '$1 == id { print $2 }' "$res" 2>/dev/null | tail -n 1)
	if [ -z "$v" ]; then missing="$missing $id"
	elif ! [[ $v =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then notnum="$notnum $id=$v"; fi
done
is "${missing# }" "" "every figure is in results.tsv"
is "${notnum# }" "" "every figure is a number"
is "$(awk -F'\t' 'NF != 7' "$res" | wc -l)" 0 "every results.tsv line has 7 fields"

svg=$out/bench.svg
like "$(head -c 200 "$svg" 2>/dev/null)" '^<svg xmlns="http://www.w3.org/2000/svg"' "bench.svg starts as an SVG document"
is "$(tail -n 1 "$svg" 2>/dev/null)" "</svg>" "bench.svg is complete"
is "$(grep -o 'class="bar"' "$svg" 2>/dev/null | wc -l)" "$(( 12 + 5 ))" "bench.svg has a bar for every latency percentile and every burst figure"
like "$(cat "$out/table.md" 2>/dev/null)" "### 8\. Start-up" "table.md has the first eight figures"
like "$(cat "$out/table.md" 2>/dev/null)" "### 9\. The fleet view" "and the ninth (the fleet view)"
like "$(cat "$out/table.md" 2>/dev/null)" "### 10\. Catch-up" "and the tenth (a new node's catch-up)"
like "$(cat "$out/table.md" 2>/dev/null)" "### 12\. Ingest from process start: 2000 queued" "and the twelfth (ingest from process start)"
like "$(cat "$out/BENCHMARKS.md" 2>/dev/null)" "model name|CPUs, " "BENCHMARKS.md (in the output folder) names the machine"
# a full run rewrites docs/BENCHMARKS.md: what was measured outside one
# lives in a file it never writes, which the rewritten one points to
like "$(cat "$out/BENCHMARKS.md" 2>/dev/null)" "\(BENCHMARKS-rounds\.md\)" "BENCHMARKS.md points to BENCHMARKS-rounds.md"
[ -s "$PB_ROOT/docs/BENCHMARKS-rounds.md" ]; ok $? "docs/BENCHMARKS-rounds.md is there"
is "$(cat "$PB_ROOT/docs/BENCHMARKS.md" "$PB_ROOT/docs/bench.svg" 2>/dev/null | cksum)" "$docs_before" "docs/ untouched by a quick run"

# every process the bench started is gone (they were all stopped by PID)
left=$(pgrep -f "$out/work" 2>/dev/null | wc -l)
is "$left" 0 "no process of the bench is left running"
pb_done
