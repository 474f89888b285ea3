# bench/svg.awk — docs/bench.svg from a bench run's results.tsv (plain SVG,
# no script, no network): latency p50/p99 per system, and provision runs
# per burst per system, both on log scales (the values span 1 to 1,000).
#   awk -F'\t' -v sizes="200 1000" -f bench/svg.awk results.tsv > bench.svg
# A figure that is NA is drawn as "n/a"; an extrapolated one (0 samples)
# is drawn hatched and labelled "≈".
{ med[$1] = $2; n[$1] = $6 }

function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); return s }
function lg(v) { return log(v) / log(10) }
# x of value v on a log axis [lo, hi] drawn over [x0, x0 + w]
function xpos(v, lo, hi) { if (v < lo) v = lo; return X0 + W * (lg(v) - lg(lo)) / (lg(hi) - lg(lo)) }
function axis(y, h, lo, hi, unit,    v, x) {
	for (v = lo; v <= hi; v *= 10) {
		x = xpos(v, lo, hi)
		printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, y, x, y + h
		printf "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s %s</text>\n", x, y + h + 14, (v >= 1000 ? v / 1000 "k" : v), unit
	}
}
function bar(y, h, id, lo, hi, color, label,    v, x, w, extra) {
	v = med[id]
	if (v == "" || v == "NA") {
		printf "<text x=\"%d\" y=\"%.1f\" class=\"val\">n/a</text>\n", X0 + 4, y + h - 2
		return
	}
	x = xpos(v, lo, hi); w = x - X0; if (w < 4) { w = 4; x = X0 + 4 }
	extra = ((id in n) && n[id] == 0) ? " fill=\"url(#hatch)\" stroke=\"" color "\"" : " fill=\"" color "\""
	printf "<rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\"%s/>\n", X0, y, w, h, extra
	if (v == 1 && label == " runs") label = " run"
	printf "<text x=\"%.1f\" y=\"%.1f\" class=\"val\">%s%s%s</text>\n", x + 4, y + h - 2,
		((id in n) && n[id] == 0) ? "≈" : "", v, label
}

END {
	X0 = 250; W = 460
	nl = split("provbus-q0 provbus-q200 amqp etcd serf serf-coalesce", L, " ")
	split("provbus, quiet 0|provbus, quiet 200 ms|amqp-publish → amqp-consume|etcdctl put → watch|serf event, no coalescing|serf event, coalescing", LN, "|")
	nb = split("provbus serf-coalesce serf etcd amqp", B, " ")
	split("provbus, quiet 500 ms|Serf, coalescing|Serf, no coalescing|etcdctl watch|amqp-consume", BN, "|")
	ns = split(sizes, S, " ")
	top1 = 60; rowh = 30; h1 = nl * rowh
	top2 = top1 + h1 + 90; rowh2 = 12 * (ns > 0 ? ns : 1) + 10; h2 = nb * rowh2
	height = top2 + h2 + 60
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"780\" height=\"%d\" viewBox=\"0 0 780 %d\" font-family=\"sans-serif\">\n", height, height
	print "<style>.t{font-size:15px;font-weight:bold}.lab{font-size:12px}.val{font-size:11px;fill:#333}.tick{font-size:10px;fill:#666}.leg{font-size:11px}</style>"
	print "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fff\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#999\" stroke-width=\"3\"/></pattern></defs>"
	print "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"

	# ---- latency
	printf "<text x=\"20\" y=\"28\" class=\"t\">Latency: sending command start → provision process running (log scale)</text>\n"
	printf "<rect x=\"%d\" y=\"38\" width=\"10\" height=\"10\" fill=\"#2b6cb0\"/><text x=\"%d\" y=\"47\" class=\"leg\">p50</text>\n", X0, X0 + 14
	printf "<rect x=\"%d\" y=\"38\" width=\"10\" height=\"10\" fill=\"#90cdf4\"/><text x=\"%d\" y=\"47\" class=\"leg\">p99</text>\n", X0 + 50, X0 + 64
	printf "<rect x=\"%d\" y=\"38\" width=\"10\" height=\"10\" fill=\"#c05621\"/><rect x=\"%d\" y=\"38\" width=\"10\" height=\"10\" fill=\"#fbd38d\"/><text x=\"%d\" y=\"47\" class=\"leg\">provbus p50, p99</text>\n", X0 + 100, X0 + 112, X0 + 126
	axis(top1, h1, 1, 10000, "ms")
	for (i = 1; i <= nl; i++) {
		y = top1 + (i - 1) * rowh
		printf "<text x=\"%d\" y=\"%d\" class=\"lab\" text-anchor=\"end\">%s</text>\n", X0 - 8, y + 17, esc(LN[i])
		bar(y + 3, 11, "latency." L[i] ".p50", 1, 10000, L[i] ~ /^provbus/ ? "#c05621" : "#2b6cb0", " ms")
		bar(y + 15, 11, "latency." L[i] ".p99", 1, 10000, L[i] ~ /^provbus/ ? "#fbd38d" : "#90cdf4", " ms")
	}

	# ---- burst
	printf "<text x=\"20\" y=\"%d\" class=\"t\">Provision runs per burst of N events for one key (log scale)</text>\n", top2 - 32
	for (j = 1; j <= ns; j++)
		printf "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" class=\"leg\">%s events</text>\n", X0 + (j - 1) * 100, top2 - 22, j == 1 ? "#2f855a" : "#9ae6b4", X0 + (j - 1) * 100 + 14, top2 - 13, S[j]
	printf "<text x=\"%d\" y=\"%d\" class=\"leg\">hatched: extrapolated</text>\n", X0 + ns * 100, top2 - 13
	axis(top2, h2, 1, 1000, "")
	for (i = 1; i <= nb; i++) {
		y = top2 + (i - 1) * rowh2
		printf "<text x=\"%d\" y=\"%d\" class=\"lab\" text-anchor=\"end\">%s</text>\n", X0 - 8, y + rowh2 / 2 + 4, esc(BN[i])
		for (j = 1; j <= ns; j++)
			bar(y + 4 + (j - 1) * 12, 10, "burst." S[j] "." B[i] ".runs", 1, 1000, j == 1 ? "#2f855a" : "#9ae6b4", " runs")
	}
	printf "<text x=\"20\" y=\"%d\" class=\"tick\">drawn by bench/svg.awk from the numbers of the run that wrote docs/BENCHMARKS.md</text>\n", height - 12
	print "</svg>"
}
