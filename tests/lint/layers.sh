#!/bin/sh
# The layering check: calls in src/ go down only. Each module (src/X.c with include/X.h) has a
# level; a file may include the headers of its own level and below, never above, and the
# includes within a level must not form a cycle. A module missing from the table fails too, so
# a new file is placed on purpose. Run by `make lint` and `make check`.
cd "$(dirname "$0")/../.." || exit 2
levels='
0 util log
1 config regex_cost maps procfs files plan select statefile statusread memcg psi mountinfo
2 pass watch fileopen lock debug mounts
3 scan lockpass state status
4 daemon
5 main
'
level() { echo "$levels" | awk -v m="$1" '{ for (i = 2; i <= NF; i++) if ($i == m) print $1 }'; }
bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in src/*.c include/*.h; do
	m=$(basename "$f"); m=${m%.*}
	lf=$(level "$m")
	if [ -z "$lf" ]; then
		echo "layers: $f: module '$m' has no level in tests/lint/layers.sh" >&2
		bad=1
		continue
	fi
	for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$f"); do
		lh=$(level "$h")
		if [ -z "$lh" ]; then
			echo "layers: $f includes $h.h, which has no level" >&2
			bad=1
		elif [ "$lh" -gt "$lf" ]; then
			echo "layers: $f (level $lf, $m) includes $h.h (level $lh): calls must go down" >&2
			bad=1
		elif [ "$lh" -eq "$lf" ] && [ "$h" != "$m" ]; then
			echo "$m $h" >>"$edges"
		fi
	done
done
if ! tsort "$edges" >/dev/null 2>&1; then
	echo "layers: modules of one level include each other in a circle:" >&2
	tsort "$edges" 2>&1 >/dev/null | sed 's/^/  /' >&2
	bad=1
fi
[ "$bad" -eq 0 ] && echo "layers: src/ and include/ include downwards only"
exit "$bad"
