#!/usr/bin/env bash
# provbus-audit timeline --html: one self-contained page, drawn by a real
# browser (headless Chromium, installed by deploy/install-deps.sh; never
# fetched at test time): the DOM has one bar per run, its script ran
# without errors, nothing refers to the network; a 100,000-event log
# stays small and renders. The screenshot is kept in $T/timeline.png
# (and copied to $PB_TIMELINE_PNG when that is set, for the README).
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
pb_setup audittl

A=provbus-audit
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)

chrome() { # chrome ARGS... URL: headless, no network, its own profile
	timeout -k 5 60 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--disable-default-apps --no-default-browser-check --user-data-dir="$T/chrome" \
		--enable-logging=stderr --v=0 "$@"
}

DB=$T/small.db
pbtest-auditgen -o "$DB" -n 400 --hours 1 --seed 21 --fail-every 4 --manual 1 --no-finish >/dev/null
ok $? "a small log"
n_runs=$(sqlite3 "$DB" "select count(*) from runs")
n_events=$(sqlite3 "$DB" "select count(*) from events")
$A -d "$DB" timeline --html "$T/small.html"
is "$?" 0 "timeline --html exits 0"
has() { grep -c -- "$1" "$T/small.html"; }
like "$(head -c 15 "$T/small.html")" '^<!DOCTYPE html>' "an HTML page"
is "$(grep -c 'class="run ' "$T/small.html")" "$n_runs" "one run bar per run in the file"
is "$(grep -o '<circle class="ev ' "$T/small.html" | wc -l)" "$n_events" "one dot per event (a small log is not aggregated)"
is "$(has 'class="run st-running"')" 1 "the run still going is drawn (blue)"
like "$(has 'class="run st-failed"')" '^[1-9]' "failed runs are drawn (red)"
is "$(has 'class="legend"')" 1 "a legend"
like "$(has 'time (UTC)')" '^[1-9]' "axis labels"
like "$(has '<title>run 1 · startup · ok (exit 0)')" '^1' "hover details of a run (an SVG title)"
# self-contained: nothing to fetch, not even a URL in the text
bad=$(grep -Eo '(src|href)=|url\(|@import|https?://|//[a-z0-9.-]+\.[a-z]{2,}/' "$T/small.html" | sort -u | tr '\n' ' ')
is "$bad" "" "no external reference (src, href, url(), http://)"

if [ -z "$CHROME" ]; then
	ok 1 "chromium is installed (deploy/install-deps.sh installs it; not fetched at test time)"
	pb_done
	exit
fi
chrome --dump-dom "file://$T/small.html" >"$T/dom.html" 2>"$T/chrome.log"
ok $? "chromium loads the page"
dom=$(cat "$T/dom.html")
like "$dom" '<body data-rendered="1"' "the page's script ran to its end"
like "$dom" "data-runs=\"$n_runs\"" "the browser counts one run bar per run ($n_runs)"
is "$(grep -o 'class="run st-' "$T/dom.html" | wc -l)" "$n_runs" "the DOM holds one .run element per run"
is "$(grep -ciE 'Uncaught|console.*error|SyntaxError' "$T/chrome.log")" 0 "no script error in the browser's console"
chrome --screenshot="$T/timeline.png" --window-size=1400,800 --hide-scrollbars "file://$T/small.html" \
	>/dev/null 2>>"$T/chrome.log"
ok $(( $(stat -c %s "$T/timeline.png" 2>/dev/null || echo 0) > 20000 ? 0 : 1 )) "a screenshot ($T/timeline.png)"
[ -z "${PB_TIMELINE_PNG:-}" ] || cp "$T/timeline.png" "$PB_TIMELINE_PNG"

# --- 100,000 events: aggregated, small, fast ----------------------------------------
BIG=$T/big.db
pbtest-auditgen -o "$BIG" -n 100000 --hours 6 --keys 12 --nodes 40 --seed 5 >/dev/null
start=$(date +%s%N)
$A -d "$BIG" timeline --html "$T/big.html"
ok $? "timeline of 100,000 events"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
size=$(stat -c %s "$T/big.html")
diag "100,000 events: ${ms} ms, $size bytes"
ok $(( size < 4000000 ? 0 : 1 )) "the page stays small ($size bytes < 4 MB)"
like "$(cat "$T/big.html")" 'class="agg ' "dense lanes are aggregated into columns"
big_runs=$(sqlite3 "$BIG" "select count(*) from runs")
start=$(date +%s%N)
chrome --dump-dom "file://$T/big.html" >"$T/bigdom.html" 2>>"$T/chrome.log"
ok $? "chromium loads the big page"
diag "chromium: $(( ($(date +%s%N) - start) / 1000000 )) ms"
like "$(head -c 200000 "$T/bigdom.html")" "<body data-rendered=\"1\" data-runs=\"$big_runs\"|<body data-runs=\"$big_runs\".*data-rendered=\"1\"|data-rendered=\"1\"" \
	"the big page rendered"
is "$(grep -o 'class="run st-' "$T/bigdom.html" | wc -l)" "$big_runs" "every run of the big log is a bar"

# --since/--until narrow the range: single events again
$A -d "$BIG" timeline --html "$T/hour.html" --since "$(sqlite3 "$BIG" "select strftime('%Y-%m-%dT%H:%M:%SZ', max(received_at)/1000 - 120, 'unixepoch') from events")"
ok $? "timeline --since"
ok $(( $(grep -o '<circle class="ev ' "$T/hour.html" | wc -l) > 100 ? 0 : 1 )) "two minutes of the big log: single events"

pb_done
