#!/usr/bin/env bash
# The main job on the bundled example: build hello-c naive, multistage and on
# scratch, run each, and show what the multistage build saves.
set -euo pipefail
cd "$(dirname "$0")/.."
SB=${SLIMBUILD:-$PWD/bin/slimbuild}
ROOT=${SLIMBUILD_ROOT:-/var/lib/slimbuild}
export SLIMBUILD_ROOT=$ROOT
EX=examples/hello-c

echo "== base images (from Debian packages, cached)" >&2
hack/bases.sh --import "$SB" "$ROOT"

build() { # name dockerfile
	echo "== slimbuild build -f $EX/$2 -t $1 $EX" >&2
	"$SB" build --progress plain -f "$EX/$2" -t "$1" "$EX" >/dev/null
}
build hello:naive Dockerfile.naive
build hello:slim Dockerfile
build hello:scratch Dockerfile.scratch

# And without a Dockerfile change: the naive image cut down to its entrypoint's
# file closure, verified by running both.
echo "== slimbuild slim hello:naive -t hello:slimmed" >&2
"$SB" slim hello:naive -t hello:slimmed >/dev/null

for img in hello:naive hello:slim hello:scratch hello:slimmed; do
	echo "== slimbuild run $img" >&2
	"$SB" run "$img"
done

size() { "$SB" inspect "$1" | python3 -c 'import json,sys; m=json.load(sys.stdin)["manifest"]; print(m["config"]["size"]+sum(l["size"] for l in m["layers"]))'; }
naive=$(size hello:naive)
echo
printf '%-16s %14s %12s\n' IMAGE "SIZE (bytes)" REDUCTION
for img in hello:naive hello:slim hello:scratch hello:slimmed; do
	s=$(size "$img")
	printf '%-16s %14s %11s%%\n' "$img" "$s" "$(python3 -c "print(f'{100*(1-$s/$naive):.2f}')")"
done
echo
echo "== slimbuild report hello:naive --compare hello:slim" >&2
"$SB" report hello:naive --compare hello:slim
