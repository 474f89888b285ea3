#!/usr/bin/env bash
# t-layering: the files of each program call each other without a circle.
# From the object files of the build under test (nm: the symbols each
# one defines and the ones it needs), a graph "A calls into B" is built per
# folder (consumer/, audit/, fleet/, publisher/, broker-schema/, lib/); a
# file that can reach itself through that graph is a failure, printed
# with the circle. lib/ must not need a symbol that only a program
# defines. PB_LAYERING_OBJS=DIR checks the folders of another build. No
# broker.
# shellcheck disable=SC1091
. "$PB_ROOT/tests/integration/lib.sh"
cd "$PB_ROOT" || exit 1

OBJ=${PB_LAYERING_OBJS:-$(dirname "$PB_TOOLS")}
command -v nm >/dev/null || pb_skip_all "nm (binutils) is not installed"

# edges DIR: "A B" per line when DIR/A.o needs a symbol DIR/B.o defines
# (one nm for the folder: a process each is slow on a loaded machine)
edges() {
	nm -A "$1"/*.o | awk '
		{ f = $1; sub(/:.*/, "", f); sub(/.*\//, "", f); sub(/\.o$/, "", f) }
		NF == 3 && $2 ~ /^[TDBR]$/ { def[$3] = f; next }
		NF == 3 && $2 == "U" { use[++n] = f " " $3 }
		END { for (i = 1; i <= n; i++) { split(use[i], p, " ");
			if ((p[2] in def) && def[p[2]] != p[1]) print p[1], def[p[2]] } }' | sort -u
}

# circles: reads "A B" edges, prints every file that reaches itself, with
# the way round (transitive closure: a folder has at most a few dozen files)
circles() {
	awk '
		{ if (!($1 in id)) { id[$1] = ++n; name[n] = $1 }
		  if (!($2 in id)) { id[$2] = ++n; name[n] = $2 }
		  r[id[$1], id[$2]] = 1; nx[id[$1], id[$2]] = id[$2] }
		END {
			for (k = 1; k <= n; k++) for (i = 1; i <= n; i++) if (r[i, k])
				for (j = 1; j <= n; j++) if (r[k, j] && !r[i, j]) { r[i, j] = 1; nx[i, j] = nx[i, k] }
			for (i = 1; i <= n; i++) if (r[i, i]) {
				s = name[i]; v = nx[i, i]; g = 0
				while (v != i && g++ < n) { s = s " -> " name[v]; v = nx[v, i] }
				print s " -> " name[i]
			}
		}'
}

for dir in consumer audit fleet publisher broker-schema lib; do
	if ! compgen -G "$OBJ/$dir/*.o" >/dev/null; then
		ok 1 "the objects of $dir/ are in $OBJ/$dir (build first)"
		continue
	fi
	e=$(edges "$OBJ/$dir")
	n=$(printf '%s' "$e" | grep -c . || true)
	c=$(printf '%s\n' "$e" | grep . | circles)
	is "$c" "" "$dir/: no file calls back into a file that calls it ($n call edges between its files)"
done

# lib/ needs nothing from the programs
prog_defs=$(nm --defined-only "$OBJ"/{consumer,audit,fleet,publisher,broker-schema}/*.o 2>/dev/null |
	awk 'NF == 3 && $2 ~ /^[TDBR]$/ { print $3 }' | sort -u)
lib_needs=$(nm -u "$OBJ"/lib/*.o 2>/dev/null | awk 'NF >= 2 && $(NF - 1) == "U" { print $NF }' | sort -u)
is "$(comm -12 <(printf '%s\n' "$prog_defs") <(printf '%s\n' "$lib_needs"))" "" \
	"lib/ needs no symbol that only a program defines"

pb_done
