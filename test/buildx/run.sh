#!/usr/bin/env bash
# test/buildx/run.sh — runs test/buildx/command, a `docker buildx build` command
# line, with only the program name changed (`docker buildx build` -> `slimbuild
# build`; the store is chosen with SLIMBUILD_ROOT, not a flag), and compares the
# image with test/buildx/expected.json: config labels, env, cmd, workdir, user,
# exposed ports, manifest annotations, and --iidfile against --metadata-file.
# When `docker buildx` works on this machine, the same command line runs there
# too (with --load) and its config is compared the same way.
#
# Usage: test/buildx/run.sh   (root; bases from hack/bases.sh in $SLIMBUILD_CACHE)
# Environment: SLIMBUILD (binary, default: built from ./cmd/slimbuild),
# SLIMBUILD_CACHE (default /var/cache/slimbuild-bases).
# internal/cli TestBuildxCommandLine runs the same check in `make test`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
work=$(mktemp -d /tmp/slimbuild-buildx.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [[ -z ${SLIMBUILD:-} ]]; then
	(cd "$repo" && go build -o "$work/slimbuild" ./cmd/slimbuild)
	SLIMBUILD=$work/slimbuild
fi
export SLIMBUILD_ROOT=$work/root
"$SLIMBUILD" import "$cache/busybox.tar" busybox:latest >/dev/null

passed=0 failed=0
check() { # name, expected JSON, got JSON
	if [[ "$(jq -S . <<<"$2")" == "$(jq -S . <<<"$3")" ]]; then
		echo "ok   $1"; passed=$((passed + 1))
	else
		echo "FAIL $1: expected $(jq -c . <<<"$2"), got $(jq -c . <<<"$3")"; failed=$((failed + 1))
	fi
}

# compare TOOL CONFIG_JSON MANIFEST_ANNOTATIONS_JSON
compare() {
	local exp=$here/expected.json
	check "$1: config" "$(jq '.config' "$exp")" \
		"$(jq '{Labels, Env, Cmd, WorkingDir, User, ExposedPorts}' <<<"$2")"
	if [[ $3 != skip ]]; then
		check "$1: manifest annotations" "$(jq '.manifest_annotations' "$exp")" "$3"
	fi
}

read -r -a words <"$here/command"
[[ "${words[*]:0:3}" == "docker buildx build" ]] || { echo "test/buildx/command must start with docker buildx build" >&2; exit 1; }
args=("${words[@]:3}")

cp -a "$here/." "$work/slimbuild-run"
mkdir -p "$work/slimbuild-run/out"
(cd "$work/slimbuild-run" && "$SLIMBUILD" build "${args[@]}" >/dev/null 2>"$work/build.log") || { cat "$work/build.log" >&2; exit 1; }
got=$("$SLIMBUILD" inspect buildx-test:1)
compare slimbuild "$(jq '.config.config' <<<"$got")" "$(jq '.manifest.annotations' <<<"$got")"
iid=$(cat "$work/slimbuild-run/out/iid")
check "slimbuild: --iidfile is the image" "\"$(jq -r .digest <<<"$got")\"" "\"$iid\""
check "slimbuild: --metadata-file containerimage.digest" "\"$iid\"" "$(jq '."containerimage.digest"' "$work/slimbuild-run/out/metadata.json")"

if docker buildx version >/dev/null 2>&1; then
	cp -a "$here/." "$work/buildx-run"
	mkdir -p "$work/buildx-run/out"
	(cd "$work/buildx-run" && docker buildx build "${args[@]}" --load >/dev/null)
	# docker image inspect shows the config, not the manifest: annotations are not compared.
	compare buildx "$(docker image inspect buildx-test:1 | jq '.[0].Config | .Labels |= . // {}')" skip
	docker image rm buildx-test:1 >/dev/null || true
else
	echo "skip docker buildx: not on this machine (expected.json holds buildx's documented results)"
fi

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
