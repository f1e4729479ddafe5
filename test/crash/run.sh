#!/usr/bin/env bash
# test/crash/run.sh — the kill test of issue 8: builds killed with SIGKILL at random
# moments never corrupt the store, and leave nothing the next command cannot reclaim.
#
# Usage: test/crash/run.sh
#
# Two roots under one temporary directory, bases imported as hack/bases.sh makes them:
#   - busybox only, building test/crash/ctx/Dockerfile (three stages, RUN and COPY
#     steps, one RUN sleeping 1.5 s beside the others so that kills leave running
#     containers; a new CRASH_SALT each time so that every RUN does its work again);
#   - builder + busybox, building examples/hello-c/Dockerfile (the killed build
#     with --no-cache, so that it compiles again).
# One full build is timed first; then, for each kill, a build is started and
# SIGKILLed after a random delay within that time, and:
#   1. `slimbuild fsck` (which reclaims nothing itself) may report only leftovers of
#      the killed process (tmp, mount, container, process lines); an index, name,
#      blob, layer or cache line is corruption and fails the kill. The kill counts as
#      "fsck clean" when there is no corruption and, after one ordinary command
#      (`slimbuild images`, whose Open reclaims leftovers), nothing is left (as in 2)
#      and no process remains in the cgroup of a container that fsck reported.
#   2. The same build run again must succeed ("rebuild ok"), after which nothing is
#      left: no mount under the root (/proc/self/mountinfo), no runc container in any
#      state dir under the root, no process whose root, cwd or command line is under
#      the root, tmp/ empty and no lease of a dead process. Then `slimbuild prune
#      --all` keeps the store small for the next kill (each fsck reads all of it).
# The content is checked again by the next kill's fsck, and at the end a last
# `slimbuild fsck` of each root must report nothing at all, and no `slimbuild-<id>`
# cgroup (in any hierarchy) may remain that did not exist before the kill test and
# is not live (empty in every hierarchy, and still there a moment later: a live
# runc's cgroup gets its process or goes), so only the killed runs' count.
# Prints how many leftovers of each kind fsck saw (so that it shows kills landed in
# containers and mounts) and "kill test: N kills, F fsck clean, R rebuilds ok"; exits
# 1 unless all three are equal. Environment: SLIMBUILD (binary, default bin/slimbuild),
# SLIMBUILD_CACHE (bases), CRASH_KILLS (busybox kills, default 45), CRASH_HELLO_KILLS
# (hello-c kills, default 5), CRASH_SEED (random seed, printed).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export SLIMBUILD_CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
SLIMBUILD=${SLIMBUILD:-bin/slimbuild}
case $SLIMBUILD in /*) ;; *) SLIMBUILD=$REPO/$SLIMBUILD ;; esac
KILLS=${CRASH_KILLS:-45}
HELLO_KILLS=${CRASH_HELLO_KILLS:-5}
SEED=${CRASH_SEED:-$$}
RANDOM=$SEED

log() { printf 'crash: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$SLIMBUILD" ] || die "slimbuild binary $SLIMBUILD is not executable (run make build or set SLIMBUILD)"

T0=$EPOCHREALTIME
WORK=$(mktemp -d /var/tmp/slimbuild-crash.XXXXXX)
N=0 CLEAN=0 REBUILT=0 FAILURES=0
declare -A SEEN=() # leftover kind -> how many fsck reported over all kills

# pids_under DIR: processes (not this shell) whose root, cwd or command line is under DIR.
pids_under() {
	{
		find /proc/[0-9]*/root /proc/[0-9]*/cwd -maxdepth 0 -printf '%h %l\n' 2>/dev/null |
			awk -v d="$1" '$2 == d || index($2, d "/") == 1 { sub("^/proc/", "", $1); print $1 }'
		# The pattern comes from a file, so grep's own command line does not match.
		grep -slaF -f <(printf '%s\n' "$1/") /proc/[0-9]*/cmdline | sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
	} | sort -u | grep -vx -e "$$" -e "$BASHPID" || true
}

mounts_under() { awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo; }

cleanup() {
	local rc=$? m pid
	trap - EXIT INT TERM
	for pid in $(pids_under "$WORK"); do kill -KILL "$pid" 2>/dev/null || true; done
	for m in $(mounts_under "$WORK" | sort -r); do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$WORK"
	log "total $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s, seed $SEED"
	log "leftovers reported after the kills (then reclaimed): tmp ${SEEN[tmp]:-0}, mount ${SEEN[mount]:-0}, container ${SEEN[container]:-0}, process ${SEEN[process]:-0}"
	echo "kill test: $N kills, $CLEAN fsck clean, $REBUILT rebuilds ok"
	[ "$rc" = 0 ] && { [ "$N" = "$CLEAN" ] && [ "$N" = "$REBUILT" ] && [ "$FAILURES" = 0 ] || rc=1; }
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { log "kill $N: $*"; FAILURES=$((FAILURES + 1)); }

# leftovers ROOT: prints what a finished command left under ROOT.
leftovers() {
	local root=$1 d ids i
	mounts_under "$root" | sed 's/^/mount /'
	for i in 1 2 3 4 5 6 7 8 9 10; do # an orphaned `runc run` exits once its container is gone
		[ -z "$(pids_under "$root")" ] && break
		sleep 0.2
	done
	pids_under "$root" | while read -r pid; do echo "process $pid $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-100)"; done
	for d in "$root"/tmp/*/runc; do
		[ -d "$d" ] || continue
		ids=$(runc --root "$d" list -q 2>/dev/null || true)
		[ -n "$ids" ] && echo "containers in $d: $ids"
	done
	[ -z "$(ls -A "$root/tmp")" ] || echo "tmp not empty: $(ls -A "$root/tmp" | tr '\n' ' ')"
	[ -z "$(ls -A "$root/leases" 2>/dev/null)" ] || echo "leases left: $(ls -A "$root/leases" | tr '\n' ' ')"
}

# cgroup_ids: the names of the slimbuild-<id> cgroups in every hierarchy, sorted.
cgroup_ids() {
	find /sys/fs/cgroup -mindepth 1 -type d -name 'slimbuild-*' -prune -printf '%f\n' 2>/dev/null | sort -u
}

# dead_cgroups BEFORE: the slimbuild-<id> cgroups not in the file BEFORE (from
# cgroup_ids) whose every directory is empty, and stays so for a moment.
dead_cgroups() {
	local id d pass cands
	cands=$(comm -13 "$1" <(cgroup_ids))
	for pass in 1 2; do
		[ -n "$cands" ] || break
		[ "$pass" = 1 ] || sleep 1
		cands=$(for id in $cands; do
			for d in $(find /sys/fs/cgroup -mindepth 1 -type d -name "$id" -prune 2>/dev/null); do
				[ -z "$(cat "$d/cgroup.procs" 2>/dev/null)" ] || continue 2
			done
			[ -n "$(find /sys/fs/cgroup -mindepth 1 -type d -name "$id" -prune -print -quit 2>/dev/null)" ] && echo "$id"
		done)
	done
	[ -z "$cands" ] || printf '%s\n' $cands
}

# containers_alive FSCK-OUTPUT: the processes still in the cgroup of a container
# that fsck reported (runc names the cgroup after the container), checked at once.
# A zombie is dead already: it waits only for its new parent (init, once runc was
# killed with slimbuild) to collect its exit status, and runs nothing.
containers_alive() {
	local id f pid
	for id in $(sed -n 's|^container .*/\([^/:]*\): .*|\1|p' "$1"); do
		for f in $(grep -slF -f <(printf '%s\n' "$id") /proc/[0-9]*/cgroup); do
			pid=${f#/proc/}
			pid=${pid%/cgroup}
			grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && continue
			echo "container $id still running: $f"
		done
	done
}

# one_kill ROOT DURATION KILL-FLAGS BUILD-ARGS...: starts the build (with the extra
# KILL-FLAGS, space-separated), kills it, checks, rebuilds (without KILL-FLAGS).
one_kill() {
	local root=$1 dur=$2 out=$WORK/out pid delay corrupt left kind
	local -a extra
	read -r -a extra <<<"$3"
	shift 3
	N=$((N + 1))
	# A random delay within the build's duration, in milliseconds.
	delay=$(((RANDOM * 32768 + RANDOM) % dur))
	"$SLIMBUILD" --root "$root" build --progress quiet ${extra[@]+"${extra[@]}"} "$@" >"$out.build" 2>&1 &
	pid=$!
	sleep "$(awk -v ms="$delay" 'BEGIN { printf "%.3f", ms / 1000 }')"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true

	"$SLIMBUILD" --root "$root" fsck >"$out.fsck" 2>"$out.fsck.err" || true
	for kind in tmp mount container process; do
		SEEN[$kind]=$((${SEEN[$kind]:-0} + $(grep -c "^$kind " "$out.fsck" || true)))
	done
	corrupt=$(grep -Ev '^(tmp|mount|container|process) ' "$out.fsck" || true)
	if [ -n "$corrupt" ]; then
		fail "corruption after a kill at ${delay} ms: $corrupt"
	elif ! "$SLIMBUILD" --root "$root" images >/dev/null 2>"$out.images"; then
		fail "images after the kill failed: $(cat "$out.images")"
	elif left=$(containers_alive "$out.fsck"; leftovers "$root") && [ -n "$left" ]; then
		fail "the next command did not reclaim: $left"
	else
		CLEAN=$((CLEAN + 1))
	fi
	if ! "$SLIMBUILD" --root "$root" build --progress quiet "$@" >"$out.rebuild" 2>&1; then
		fail "rebuild after a kill at ${delay} ms failed: $(tail -n 5 "$out.rebuild")"
		return
	fi
	left=$(leftovers "$root")
	if [ -n "$left" ]; then
		fail "left after the rebuild: $left"
		return
	fi
	REBUILT=$((REBUILT + 1))
	log "kill $N at ${delay}/${dur} ms: $(wc -l <"$out.fsck") leftovers reported, then clean; rebuild ok"
	# Keep the store small (each fsck reads all of it), and prune right after kills.
	"$SLIMBUILD" --root "$root" prune --all >/dev/null 2>"$out.prune" || fail "prune failed: $(cat "$out.prune")"
}

# timed ROOT BUILD-ARGS...: runs a build to completion and prints its duration in ms.
timed() {
	local root=$1 t
	shift
	t=$EPOCHREALTIME
	"$SLIMBUILD" --root "$root" build --progress quiet "$@" >"$WORK/out.timed" 2>&1 ||
		{ cat "$WORK/out.timed" >&2; die "build $* failed"; }
	awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'
}

BB=$WORK/busybox HELLO=$WORK/hello HELLO_DONE=
cgroup_ids >"$WORK/cgroups.before"
mkdir -p "$BB" "$HELLO"
"$SLIMBUILD" --root "$BB" import "$SLIMBUILD_CACHE/busybox.tar" busybox:latest >/dev/null
dur=$(timed "$BB" -t crash:latest --build-arg CRASH_SALT=warm "$REPO/test/crash/ctx")
log "busybox build takes ${dur} ms; $KILLS kills (seed $SEED)"
for ((k = 1; k <= KILLS; k++)); do
	one_kill "$BB" "$dur" "" -t crash:latest --build-arg "CRASH_SALT=$k" "$REPO/test/crash/ctx"
done

if [ "$HELLO_KILLS" -gt 0 ]; then
	"$REPO/hack/bases.sh" --import "$SLIMBUILD" "$HELLO" 2>"$WORK/bases.log" ||
		{ tail -n 20 "$WORK/bases.log" >&2; die "importing the bases failed"; }
	timed "$HELLO" -t hello:crash "$REPO/examples/hello-c" >/dev/null # unpacks the builder base
	dur=$(timed "$HELLO" -t hello:crash --no-cache "$REPO/examples/hello-c")
	log "hello-c build takes ${dur} ms; $HELLO_KILLS kills"
	for ((k = 1; k <= HELLO_KILLS; k++)); do
		one_kill "$HELLO" "$dur" --no-cache -t hello:crash "$REPO/examples/hello-c"
	done
	HELLO_DONE=1
fi

leaked=$(dead_cgroups "$WORK/cgroups.before")
if [ -n "$leaked" ]; then
	FAILURES=$((FAILURES + 1))
	log "$(wc -w <<<"$leaked") cgroups of killed runs left in some hierarchy: $(head -c 300 <<<"$leaked" | tr '\n' ' ')"
else
	log "no cgroup of a killed run left"
fi

for r in "$BB" ${HELLO_DONE:+"$HELLO"}; do
	if ! "$SLIMBUILD" --root "$r" fsck >"$WORK/final.fsck" 2>&1; then
		FAILURES=$((FAILURES + 1))
		log "final fsck of $r: $(cat "$WORK/final.fsck")"
	fi
done
