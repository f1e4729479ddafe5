#!/usr/bin/env bash
# test/crash/concurrent.sh — the concurrency test of issue 8: builds on one root at
# the same time all succeed, and images, report, df and prune run beside them
# without breaking them.
#
# Usage: test/crash/concurrent.sh
#
# One root with busybox imported (hack/bases.sh's tarball). Each round starts
# CONC_BUILDS builds of test/crash/ctx/Dockerfile.shared at once: same ROUND, so
# they share the base and the first stage's cache entries (and race to fill them),
# and a VARIANT of their own in the last step. While they run, `images`, `report
# busybox`, `df`, `fsck`, `prune`, `prune --all` and `prune --keep-storage 1` run in
# a loop; each must succeed (fsck: exit 0, nothing reported). Then every build must have succeeded, its image must print
# its own variant with `slimbuild run`, and `slimbuild fsck` must report nothing.
# Prints "concurrency test: B of N builds ok in R rounds, C of M side commands ok,
# fsck clean F of R" and exits 1 unless all are.
# Environment: SLIMBUILD, SLIMBUILD_CACHE, CONC_ROUNDS (default 3), CONC_BUILDS (default 3).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export SLIMBUILD_CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
SLIMBUILD=${SLIMBUILD:-bin/slimbuild}
case $SLIMBUILD in /*) ;; *) SLIMBUILD=$REPO/$SLIMBUILD ;; esac
ROUNDS=${CONC_ROUNDS:-3}
BUILDS=${CONC_BUILDS:-3}

log() { printf 'concurrent: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$SLIMBUILD" ] || die "slimbuild binary $SLIMBUILD is not executable (run make build or set SLIMBUILD)"

T0=$EPOCHREALTIME
WORK=$(mktemp -d /var/tmp/slimbuild-conc.XXXXXX)
ROOT=$WORK/root
OK=0 TOTAL=0 SIDE_OK=0 SIDE=0 CLEAN=0 R=0 BAD=0
PIDS=()

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	awk -v d="$WORK" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$WORK"
	log "total $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
	echo "concurrency test: $OK of $TOTAL builds ok in $R rounds, $SIDE_OK of $SIDE side commands ok, fsck clean $CLEAN of $R"
	[ "$rc" = 0 ] && { [ "$OK" = "$TOTAL" ] && [ "$SIDE_OK" = "$SIDE" ] && [ "$CLEAN" = "$R" ] && [ "$BAD" = 0 ] || rc=1; }
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sb() { "$SLIMBUILD" --root "$ROOT" "$@"; }

mkdir -p "$ROOT"
sb import "$SLIMBUILD_CACHE/busybox.tar" busybox:latest >/dev/null

for ((R = 1; R <= ROUNDS; R++)); do
	PIDS=()
	round=$R-$RANDOM
	for ((b = 1; b <= BUILDS; b++)); do
		sb build --progress quiet -f "$REPO/test/crash/ctx/Dockerfile.shared" \
			--build-arg "ROUND=$round" --build-arg "VARIANT=v$b" -t "conc:v$b" \
			"$REPO/test/crash/ctx" >"$WORK/build.$b.out" 2>&1 &
		PIDS+=($!)
	done
	# Side commands while any build runs (at least one pass).
	pass=0
	while :; do
		running=0
		for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
		[ "$running" = 0 ] && [ "$pass" -gt 0 ] && break
		pass=$((pass + 1))
		for cmd in "images" "report busybox" "df" "fsck" "prune" "prune --all" "prune --keep-storage 1"; do
			SIDE=$((SIDE + 1))
			# shellcheck disable=SC2086
			if sb $cmd >"$WORK/side.out" 2>"$WORK/side.err" && { [ "$cmd" != fsck ] || [ ! -s "$WORK/side.out" ]; }; then
				SIDE_OK=$((SIDE_OK + 1))
			else
				log "round $R: '$cmd' during the builds failed: $(tail -n 3 "$WORK/side.out" "$WORK/side.err")"
			fi
		done
	done
	for ((b = 1; b <= BUILDS; b++)); do
		TOTAL=$((TOTAL + 1))
		if ! wait "${PIDS[b - 1]}"; then
			log "round $R: build v$b failed: $(tail -n 5 "$WORK/build.$b.out")"
			continue
		fi
		got=$(sb run --rm "conc:v$b" 2>&1) || true
		if [ "$got" = "v$b 304" ]; then
			OK=$((OK + 1))
		else
			log "round $R: conc:v$b printed '$got', want 'v$b 304'"
		fi
	done
	PIDS=()
	if sb fsck >"$WORK/fsck.out" 2>"$WORK/fsck.err" && [ ! -s "$WORK/fsck.out" ]; then
		CLEAN=$((CLEAN + 1))
	else
		log "round $R: fsck: $(cat "$WORK/fsck.out" "$WORK/fsck.err")"
	fi
	log "round $R: $pass passes of side commands; $(tail -n 1 "$WORK/fsck.err")"
done
R=$ROUNDS
