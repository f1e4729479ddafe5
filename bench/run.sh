#!/usr/bin/env bash
# bench/run.sh — slimbuild against BuildKit, buildah and (where a dockerd runs)
# docker's built-in BuildKit, on the same machine in the same run (issue 4).
#
# Usage: bench/run.sh            (run by `make bench` after building bin/slimbuild)
#
# Environment:
#   BENCH_RUNS      timed runs per workload and builder (default 5)
#   BENCH_WORK      scratch directory: contexts, stores, logs (default /var/tmp/slimbuild-bench;
#                   wiped at the start of each run)
#   BENCH_BUILDERS  space-separated subset of: slimbuild buildkit buildah docker
#                   (default: all that are available)
#   BENCH_RESULTS   where to write the Markdown results (default bench/RESULTS.md)
#   BENCH_WORKLOADS space-separated subset of the workloads below, by name
#                   (default: all)
#   SLIMBUILD_CACHE where hack/bases.sh and hack/buildkit.sh keep their files
#
# Workloads (Dockerfiles in bench/workloads/<name>; generated content is made
# here, deterministically):
#   1 hello-changed    examples/hello-c after appending a comment line to hello.c
#   2 hello-unchanged  the same again with nothing changed
#   3 tree-cold        COPY of 20,000 generated files / 180 MiB (bench/cmd/gentree), no cache
#   4 tree-unchanged   the same again with nothing changed
#   5 random-cold      one RUN writing 300 x 1 MiB from /dev/urandom, no cache
#   6 sleep-cold       three independent stages that each sleep 2 s, no cache
#   7 runnerb-hello    "runner B" (issue 10): examples/hello-c on a fresh store that
#                      has only the bases, with the cache that an untimed "runner A"
#                      build exported to the loopback registry (mode=max)
#   8 runnerb-tree     the same for the 20,000-file COPY
# "No cache" keeps the bases: slimbuild --no-cache on a store with the bases
# imported, buildctl --no-cache after an untimed warm-up build has pulled the
# bases, buildah --no-cache with the bases in its storage. All builds run with
# the network off for RUN steps. Each iteration runs the builders in a rotated
# order, so no builder always goes first.
#
# Runner B (7, 8) is slimbuild and BuildKit only. Once, untimed, runner A exports
# the cache: slimbuild from a copy of the bases-only store with
# --cache-to type=registry,ref=127.0.0.1:5000/bench/cache-W,mode=max, BuildKit with
# --export-cache type=registry,ref=127.0.0.1:5000/bench/bkcache-W,mode=max. Before
# each timed run, untimed: slimbuild gets a fresh root (cp -a of the bases-only
# store), BuildKit loses its whole local cache (buildctl prune --all). The timed
# build then reads the registry cache: --cache-from type=registry,ref=... /
# --import-cache type=registry,ref=.... The bytes each one fetched are summed from
# the registry's access log (GET responses, by user agent and repository).
#
# Every daemon this script starts (registry, buildkitd) is stopped by PID at
# exit, also on failure; a registry/buildkitd that already ran is left alone.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
WORK=${BENCH_WORK:-/var/tmp/slimbuild-bench}
RESULTS=${BENCH_RESULTS:-$REPO/bench/RESULTS.md}
export SLIMBUILD_CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
ALL_WORKLOADS=(hello-changed hello-unchanged tree-cold tree-unchanged random-cold sleep-cold runnerb-hello runnerb-tree)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (runc, overlayfs, buildkitd)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got $RUNS"
[ -x "$REPO/bin/slimbuild" ] || die "bin/slimbuild missing; run make build (or make bench)"

WORKLOADS=()
for w in "${ALL_WORKLOADS[@]}"; do
	if [ -z "${BENCH_WORKLOADS:-}" ] || [[ " $BENCH_WORKLOADS " == *" $w "* ]]; then WORKLOADS+=("$w"); fi
done
for w in ${BENCH_WORKLOADS:-}; do
	[[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "BENCH_WORKLOADS: unknown workload $w (known: ${ALL_WORKLOADS[*]})"
done
[ ${#WORKLOADS[@]} -gt 0 ] || die "BENCH_WORKLOADS selects no workload"
wl() { # workload...: is any of them selected?
	local w
	for w in "$@"; do [[ " ${WORKLOADS[*]} " == *" $w "* ]] && return 0; done
	return 1
}
RUNNERB=0
wl runnerb-hello runnerb-tree && RUNNERB=1

# ---------------------------------------------------------------- cleanup
STARTED_BUILDKIT=0
umount_under() { # dir: unmount what is mounted below dir, deepest first
	local m
	for m in $(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
	done
}
cleanup() {
	local rc=$?
	if [ "$STARTED_BUILDKIT" = 1 ]; then
		"$REPO/hack/buildkit.sh" stop || log "warning: hack/buildkit.sh stop failed"
	fi
	[ -d "$WORK" ] && umount_under "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup
log "work directory $WORK"
if [ -d "$WORK" ]; then
	umount_under "$WORK"
	rm -rf "$WORK"
fi
mkdir -p "$WORK/ctx" "$WORK/logs"
RAW=$WORK/times.tsv
BYTES=$WORK/bytes.tsv
: >"$RAW"
: >"$BYTES"

log "making base tarballs (cached in $SLIMBUILD_CACHE)"
"$REPO/hack/bases.sh"

# A private copy of the binary: the tree may be rebuilt while we measure.
SB=$WORK/slimbuild
cp "$REPO/bin/slimbuild" "$SB"
SBROOT=$WORK/slimbuild-root
log "importing the bases into a fresh slimbuild store (not timed)"
"$REPO/hack/bases.sh" --import "$SB" "$SBROOT"
# Runner A and every runner B start from a copy of this bases-only store
# (cp -a: the unpacked bases hold device nodes and owners).
SBBASES=$WORK/slimbuild-bases
[ "$RUNNERB" = 1 ] && cp -a "$SBROOT" "$SBBASES"

want() { # builder: is it selected by BENCH_BUILDERS (all when unset)?
	[ -z "${BENCH_BUILDERS:-}" ] && return 0
	[[ " $BENCH_BUILDERS " == *" $1 "* ]]
}

BUILDERS=()
NOTES=()
want slimbuild && BUILDERS+=(slimbuild)

# BuildKit: buildkitd (oci worker, overlayfs) + the registry mirroring docker.io.
# Runner B needs that registry for slimbuild too.
eval "$("$REPO/hack/buildkit.sh" env)"
export BUILDKIT_HOST
if want buildkit || { [ "$RUNNERB" = 1 ] && want slimbuild; }; then
	"$REPO/hack/buildkit.sh" build
	bk_status=$("$REPO/hack/buildkit.sh" status)
	if [[ $bk_status == *"buildkitd running"* && $bk_status == *"registry running"* ]]; then
		log "buildkitd and registry already running; using them and leaving them running"
	elif [[ $bk_status == *"buildkitd running"* || $bk_status == *"registry running"* ]]; then
		die "only one of buildkitd and the registry runs (someone else's?); stop it with hack/buildkit.sh stop"
	else
		STARTED_BUILDKIT=1
		"$REPO/hack/buildkit.sh" start
	fi
	"$REPO/hack/buildkit.sh" push-bases
	want buildkit && BUILDERS+=(buildkit)
fi
REGISTRY=127.0.0.1:5000
REGLOG=$SLIMBUILD_CACHE/buildkit/run/registry.log

# buildah from Debian, with its own storage below $WORK.
BAH=(buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay)
if want buildah; then
	if ! command -v buildah >/dev/null; then
		log "installing buildah"
		DEBIAN_FRONTEND=noninteractive apt-get install -y buildah >&2 ||
			{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y buildah >&2; } ||
			die "could not install buildah"
	fi
	if [[ $("$REPO/hack/buildkit.sh" status) != *"registry running"* ]]; then
		die "buildah's bases come from the registry that hack/buildkit.sh starts; include buildkit in BENCH_BUILDERS"
	fi
	log "loading the bases into buildah's storage (not timed)"
	cs="containers-storage:[overlay@$WORK/buildah/root+$WORK/buildah/run]"
	skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/library/busybox:latest "${cs}docker.io/library/busybox:latest"
	skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/slimbuild/builder:bookworm "${cs}docker.io/slimbuild/builder:bookworm"
	BUILDERS+=(buildah)
fi

# docker's built-in BuildKit only where a dockerd already runs.
if want docker; then
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
		log "loading the bases into docker (not timed)"
		for ref in library/busybox:latest slimbuild/builder:bookworm; do
			docker pull -q "127.0.0.1:5000/$ref" >/dev/null
			docker tag "127.0.0.1:5000/$ref" "${ref#library/}"
		done
		BUILDERS+=(docker)
	else
		NOTES+=("docker: skipped, no running dockerd on this machine ($(command -v docker >/dev/null && echo 'docker CLI installed, daemon not running' || echo 'docker not installed'))")
	fi
fi
[ ${#BUILDERS[@]} -gt 0 ] || die "no builder selected"
log "builders: ${BUILDERS[*]}"

# ---------------------------------------------------------------- contexts
# One context per workload; the Dockerfile is copied in (dereferenced) so every
# builder reads the same file from the same directory.
# Runner B's hello context is its own: workload 1 changes hello.c in "hello".
make_ctx() { # name workload-dir
	mkdir -p "$WORK/ctx/$1"
	cp -L "$REPO/bench/workloads/$2/Dockerfile" "$WORK/ctx/$1/Dockerfile"
}
CONTEXTS=()
if wl hello-changed hello-unchanged; then
	make_ctx hello hello-c
	cp "$REPO/examples/hello-c/hello.c" "$WORK/ctx/hello/hello.c"
	CONTEXTS+=(hello)
fi
if wl runnerb-hello; then
	make_ctx rb-hello hello-c
	cp "$REPO/examples/hello-c/hello.c" "$WORK/ctx/rb-hello/hello.c"
fi
if wl tree-cold tree-unchanged runnerb-tree; then
	make_ctx tree copy-tree
	log "generating the 20,000-file tree"
	(cd "$REPO" && go build -o "$WORK/gentree" ./bench/cmd/gentree)
	"$WORK/gentree" -files 20000 -bytes $((180 << 20)) -seed 4 "$WORK/ctx/tree/tree"
	wl tree-cold tree-unchanged && CONTEXTS+=(tree)
fi
if wl sleep-cold; then
	make_ctx sleep parallel-sleep
	CONTEXTS+=(sleep)
fi
if wl random-cold; then
	make_ctx random random-run
	CONTEXTS+=(random)
fi

# ---------------------------------------------------------------- builders
# rbkey CTX: the name of a runner A/B context's registry caches (bench/cache-KEY
# for slimbuild, bench/bkcache-KEY for BuildKit).
rbkey() { echo "${1#rb-}"; }

# build BUILDER CTX MODE LOG: one build; MODE is cold (no cache), warm, runnera
# (export the registry cache from $WORK/runner-a) or runnerb (import it into
# $WORK/runner-b or a pruned buildkitd).
build() {
	local b=$1 ctx=$WORK/ctx/$2 mode=$3 out=$4 nc=() root=$SBROOT key
	key=$(rbkey "$2")
	case $b in
	slimbuild)
		case $mode in
		cold) nc=(--no-cache) ;;
		runnera) root=$WORK/runner-a nc=(--cache-to "type=registry,ref=$REGISTRY/bench/cache-$key,mode=max") ;;
		runnerb) root=$WORK/runner-b nc=(--cache-from "type=registry,ref=$REGISTRY/bench/cache-$key") ;;
		esac
		"$SB" --root "$root" build --progress quiet --network none "${nc[@]}" \
			-t "bench/$2" -f "$ctx/Dockerfile" "$ctx" >"$out" 2>&1
		;;
	buildkit)
		case $mode in
		cold) nc=(--no-cache) ;;
		runnera) nc=(--export-cache "type=registry,ref=$REGISTRY/bench/bkcache-$key,mode=max") ;;
		runnerb) nc=(--import-cache "type=registry,ref=$REGISTRY/bench/bkcache-$key") ;;
		esac
		"$BUILDCTL" build --progress plain --frontend dockerfile.v0 \
			--local context="$ctx" --local dockerfile="$ctx" \
			--opt force-network-mode=none "${nc[@]}" \
			--output "type=image,name=docker.io/bench/$2:latest" >"$out" 2>&1
		;;
	buildah)
		[ "$mode" = cold ] && nc=(--no-cache)
		"${BAH[@]}" bud --isolation oci --layers --network none --pull=never "${nc[@]}" \
			-t "bench/$2" -f "$ctx/Dockerfile" "$ctx" >"$out" 2>&1
		;;
	docker)
		[ "$mode" = cold ] && nc=(--no-cache)
		DOCKER_BUILDKIT=1 docker build --network none "${nc[@]}" \
			-t "bench/$2" -f "$ctx/Dockerfile" "$ctx" >"$out" 2>&1
		;;
	esac
}

# reglines: how many lines the registry's access log has.
reglines() { if [ -f "$REGLOG" ]; then wc -l <"$REGLOG"; else echo 0; fi; }

# fetched BUILDER FROM: "CACHE OTHER", the bytes of the GET responses that the
# registry logged after line FROM for BUILDER's user agent: from the bench/ cache
# repositories, and from everything else (bases). "- -" without an access log.
fetched() {
	[ -f "$REGLOG" ] || { echo "- -"; return; }
	local ua
	case $1 in slimbuild) ua='^slimbuild' ;; buildkit) ua='^buildkit/' ;; esac
	sleep 0.3 # the registry logs a request after answering it
	# Combined log format: host - - [time] "GET /v2/... HTTP/1.1" 200 SIZE "referer" "agent"
	awk -F'"' -v from="$2" -v ua="$ua" '
		NR > from && $2 ~ /^GET / && $6 ~ ua {
			split($3, f, " ")
			if (f[1] !~ /^2/) next
			split($2, r, " ")
			if (r[2] ~ /^\/v2\/bench\//) c += f[2]; else o += f[2]
		}
		END { printf "%d %d\n", c, o }' "$REGLOG"
}

FAILED=0
# timed WORKLOAD ITER BUILDER CTX MODE: one timed build, its milliseconds to $RAW
# and, for runner B, the bytes it fetched to $BYTES.
timed() {
	local w=$1 i=$2 b=$3 out=$WORK/logs/$1.$3.$2.log t0 t1 ms from bytes
	from=$(reglines)
	t0=$(date +%s%N)
	if build "$b" "$4" "$5" "$out"; then
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		printf '%s\t%s\t%s\t%s\n' "$w" "$b" "$i" "$ms" >>"$RAW"
		if [ "$5" = runnerb ]; then
			bytes=$(fetched "$b" "$from")
			printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$b" "$i" ${bytes} >>"$BYTES"
			log "  $w $b run $i: ${ms} ms, fetched ${bytes% *} bytes of cache, ${bytes#* } bytes of bases"
		else
			log "  $w $b run $i: ${ms} ms"
		fi
	else
		FAILED=1
		printf '%s\t%s\t%s\tFAIL\n' "$w" "$b" "$i" >>"$RAW"
		log "  $w $b run $i: FAILED (log $out):"
		tail -n 15 "$out" >&2
	fi
}

untimed() { # BUILDER CTX MODE: a build whose time does not count
	local out=$WORK/logs/untimed.$1.$2.$3.log
	build "$1" "$2" "$3" "$out" || { FAILED=1; log "untimed $2 build with $1 failed:"; tail -n 15 "$out" >&2; }
}

# fresh_runner BUILDER DIR: untimed, a runner with no build cache: for slimbuild a
# copy of the bases-only store at DIR, for BuildKit an empty local cache (the
# bases go too: BuildKit pulls them from the loopback registry again).
fresh_runner() {
	case $1 in
	slimbuild)
		umount_under "$2"
		rm -rf "$2"
		cp -a "$SBBASES" "$2"
		;;
	buildkit) "$BUILDCTL" prune --all >/dev/null ;;
	esac
}

rotated() { # ITER: the builders, rotated by ITER
	local n=${#BUILDERS[@]} k
	for ((k = 0; k < n; k++)); do printf '%s\n' "${BUILDERS[$(((k + $1) % n))]}"; done
}

# ---------------------------------------------------------------- warm-up
# Untimed: BuildKit resolves and unpacks the bases into its snapshotter, every
# builder gets a cache for the hello and tree workloads, and page caches fill.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up (not timed); load average $LOAD_START"
for b in "${BUILDERS[@]}"; do
	for c in "${CONTEXTS[@]}"; do untimed "$b" "$c" warm; done
done

# Runner B builds only with slimbuild and BuildKit.
RB_CTX=()
wl runnerb-hello && RB_CTX+=(rb-hello)
wl runnerb-tree && RB_CTX+=(tree)
rb_builder() { [ "$1" = slimbuild ] || [ "$1" = buildkit ]; }
if [ "$RUNNERB" = 1 ]; then
	for b in "${BUILDERS[@]}"; do
		rb_builder "$b" || NOTES+=("$b: no runner B workloads (slimbuild and BuildKit only)")
	done
	log "runner A: exporting the registry caches (not timed)"
	for b in "${BUILDERS[@]}"; do
		rb_builder "$b" || continue
		for c in "${RB_CTX[@]}"; do
			fresh_runner "$b" "$WORK/runner-a"
			untimed "$b" "$c" runnera
		done
	done
fi

# ---------------------------------------------------------------- runs
for ((i = 1; i <= RUNS; i++)); do
	log "iteration $i/$RUNS"
	mapfile -t order < <(rotated "$i")
	for b in "${order[@]}"; do
		wl hello-changed hello-unchanged || break
		# 1: a real source change for this builder, then 2: nothing changed.
		if wl hello-changed; then
			printf '// run %d %s\n' "$i" "$b" >>"$WORK/ctx/hello/hello.c"
			timed hello-changed "$i" "$b" hello warm
		fi
		wl hello-unchanged && timed hello-unchanged "$i" "$b" hello warm
	done
	for b in "${order[@]}"; do
		wl tree-cold tree-unchanged || break
		wl tree-cold && timed tree-cold "$i" "$b" tree cold
		if wl tree-unchanged; then
			# A --no-cache build need not fill the cache (it does in slimbuild); make
			# sure the previous build had the same inputs before timing 4.
			untimed "$b" tree warm
			timed tree-unchanged "$i" "$b" tree warm
		fi
	done
	if wl random-cold; then for b in "${order[@]}"; do timed random-cold "$i" "$b" random cold; done; fi
	if wl sleep-cold; then for b in "${order[@]}"; do timed sleep-cold "$i" "$b" sleep cold; done; fi
	for c in "${RB_CTX[@]}"; do
		for b in "${order[@]}"; do
			rb_builder "$b" || continue
			fresh_runner "$b" "$WORK/runner-b"
			timed "runnerb-$(rbkey "$c")" "$i" "$b" "$c" runnerb
		done
	done
done

# ---------------------------------------------------------------- report
median() { # WORKLOAD BUILDER: median ms of the successful runs, or "-"
	awk -F'\t' -v w="$1" -v b="$2" '$1 == w && $2 == b && $4 != "FAIL" { print $4 }' "$RAW" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
median_bytes() { # WORKLOAD BUILDER FIELD: median of a $BYTES field (4 cache, 5 bases), or "-"
	awk -F'\t' -v w="$1" -v b="$2" -v f="$3" '$1 == w && $2 == b && $f != "-" { print $f }' "$BYTES" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
human() { # bytes -> "B", "KiB" or "MiB" with 1 decimal
	[ "$1" = - ] && { echo -; return; }
	awk -v b="$1" 'BEGIN { if (b < 1024) printf "%d B", b; else if (b < 1048576) printf "%.1f KiB", b / 1024; else printf "%.1f MiB", b / 1048576 }'
}
secs() { # ms -> seconds with 3 decimals
	[ "$1" = - ] && { echo -; return; }
	awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'
}
ratio() { # a b
	{ [ "$1" = - ] || [ "$2" = - ] || [ "$2" = 0 ]; } && { echo -; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
target() { # workload slimbuild-ms ratio -> "target: met/not met"
	local w=$1 s=$2 r=$3
	case $w in
	hello-changed | tree-cold | random-cold)
		[ "$r" = - ] && { echo "ratio ≤ 0.5: n/a"; return; }
		awk -v r="$r" 'BEGIN { exit !(r <= 0.5) }' && echo "ratio ≤ 0.5: **met**" || echo "ratio ≤ 0.5: **not met**"
		;;
	hello-unchanged) lim=40 ;;
	tree-unchanged) lim=200 ;;
	sleep-cold) lim=2300 ;;
	runnerb-hello)
		# Issue 10: runner B downloads at most 3 MB for hello-c, never the builder stage.
		local f
		f=$(median_bytes runnerb-hello slimbuild 4)
		[ "$f" = - ] && { echo "fetched ≤ 3 MB: n/a"; return; }
		[ "$f" -le $((3 << 20)) ] && echo "fetched ≤ 3 MB: **met** ($(human "$f"))" || echo "fetched ≤ 3 MB: **not met** ($(human "$f"))"
		;;
	runnerb-tree) echo "(none)" ;;
	esac
	case $w in
	hello-unchanged | tree-unchanged | sleep-cold)
		[ "$s" = - ] && { echo "≤ $(secs "$lim") s: n/a"; return; }
		[ "$s" -le "$lim" ] && echo "≤ $(secs "$lim") s: **met**" || echo "≤ $(secs "$lim") s: **not met**"
		;;
	esac
}

declare -A TITLE=(
	[hello-changed]="1 hello-c, source changed"
	[hello-unchanged]="2 hello-c, nothing changed"
	[tree-cold]="3 COPY 20k files/180 MiB, cold"
	[tree-unchanged]="4 COPY 20k files, nothing changed"
	[random-cold]="5 RUN 300 x 1 MiB random, cold"
	[sleep-cold]="6 3 stages x sleep 2 s, cold"
	[runnerb-hello]="7 runner B: hello-c, fresh root, registry cache"
	[runnerb-tree]="8 runner B: COPY 20k files, fresh root, registry cache"
)

table() {
	local hdr="| workload |" sep="|---|" b w line s k r
	for b in "${BUILDERS[@]}"; do hdr+=" $b (s) |"; sep+="---:|"; done
	if want buildkit && [[ " ${BUILDERS[*]} " == *" buildkit "* ]] && [[ " ${BUILDERS[*]} " == *" slimbuild "* ]]; then
		hdr+=" slimbuild/BuildKit | target |"; sep+="---:|---|"
	fi
	echo "$hdr"
	echo "$sep"
	for w in "${WORKLOADS[@]}"; do
		line="| ${TITLE[$w]} |"
		for b in "${BUILDERS[@]}"; do line+=" $(secs "$(median "$w" "$b")") |"; done
		if [[ "$hdr" == *"slimbuild/BuildKit"* ]]; then
			s=$(median "$w" slimbuild) k=$(median "$w" buildkit)
			r=$(ratio "$s" "$k")
			line+=" $r | $(target "$w" "$s" "$r") |"
		fi
		echo "$line"
	done
}

bytes_table() { # runner B: what each builder fetched from the registry
	local w b
	echo "| workload | builder | from the registry cache | other (bases, API pings) |"
	echo "|---|---|---:|---:|"
	for w in "${WORKLOADS[@]}"; do
		[[ $w == runnerb-* ]] || continue
		for b in "${BUILDERS[@]}"; do
			rb_builder "$b" || continue
			echo "| ${TITLE[$w]} | $b | $(human "$(median_bytes "$w" "$b" 4)") | $(human "$(median_bytes "$w" "$b" 5)") |"
		done
	done
}

raw_table() {
	local b w
	echo "| workload | builder | runs (ms, in order) |"
	echo "|---|---|---|"
	for w in "${WORKLOADS[@]}"; do
		for b in "${BUILDERS[@]}"; do
			[[ $w == runnerb-* ]] && ! rb_builder "$b" && continue
			echo "| $w | $b | $(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $2 == b { printf "%s%s", sep, $4; sep = ", " }' "$RAW") |"
		done
	done
}

versions() {
	echo "- slimbuild: bin/slimbuild sha256 $(sha256sum "$SB" | cut -c1-12), $(go version | cut -d' ' -f3)"
	[[ " ${BUILDERS[*]} " == *" buildkit "* ]] && {
		# Built from the module proxy without VCS stamping, so --version says v0.0.0+unknown;
		# hack/buildkit.sh records the version it fetched.
		echo "- BuildKit: buildkitd + buildctl $(cut -d' ' -f1 "$SLIMBUILD_CACHE/buildkit/version") (github.com/moby/buildkit from the Go module proxy, built by hack/buildkit.sh)"
		echo "- registry: $(dpkg-query -W -f='docker-registry ${Version}' docker-registry 2>/dev/null || echo unknown)"
	}
	[[ " ${BUILDERS[*]} " == *" buildah "* ]] && echo "- buildah: $(buildah --version)"
	[[ " ${BUILDERS[*]} " == *" docker "* ]] && echo "- docker: $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
	echo "- runc: $(runc --version | head -n 1)"
	return 0
}

machine() {
	echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc)"
	echo "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- kernel: $(uname -sr)"
	echo "- OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "- file system of $WORK: $(df -T "$WORK" | awk 'NR == 2 { print $2 }')"
	echo "- load average (1, 5, 15 min) before the warm-up: $LOAD_START; after the last run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "  (other work on the machine shares its $(nproc) cores with the builds; on an idle machine the load is about 0)"
}

TABLE=$(table)
echo
echo "$TABLE"
echo
{
	echo "# slimbuild benchmark results"
	echo
	echo "Written by \`bench/run.sh\` (\`make bench\`) on $(date -u '+%Y-%m-%d %H:%M UTC'); $RUNS timed runs per"
	echo "workload and builder, median wall time in seconds (each build is a separate CLI process,"
	echo "timed from start to exit with \`date +%s%N\`)."
	echo
	echo "$TABLE"
	echo
	for n in "${NOTES[@]}"; do echo "- $n"; done
	if [ "$RUNNERB" = 1 ]; then
		echo
		echo "Runner B, bytes fetched (median; GET responses in the registry's access log, by user agent):"
		echo
		bytes_table
	fi
	[ "$FAILED" = 1 ] && echo "- **Some builds failed**; failed runs are left out of the medians (FAIL in the raw table)."
	echo
	echo "## Machine"
	echo
	machine
	echo
	echo "## Versions"
	echo
	versions
	echo
	echo "## Method"
	echo
	cat <<'EOF'
- Bases: `hack/bases.sh` makes `slimbuild/builder:bookworm` and `busybox:latest`. slimbuild imports
  the tarballs into a fresh store; `hack/buildkit.sh push-bases` pushes the same tarballs to the
  loopback registry (docker.io's mirror for buildkitd); buildah gets them from that registry with
  `skopeo copy` into its own storage. Loading the bases is not timed.
- Commands (all with the network off for RUN):
  - slimbuild: `slimbuild --root R build --progress quiet --network none [--no-cache] -t bench/W -f CTX/Dockerfile CTX`
  - BuildKit: `buildctl build --frontend dockerfile.v0 --local context=CTX --local dockerfile=CTX
    --opt force-network-mode=none [--no-cache] --output type=image,name=docker.io/bench/W:latest`
    against buildkitd's oci worker (runc, overlayfs snapshotter, gc off).
  - buildah: `buildah bud --isolation oci --layers --network none --pull=never [--no-cache] -t bench/W -f CTX/Dockerfile CTX`
- Output, each to the builder's own store: the oci worker has no named-image store, so
  `type=image` (without push) is its cheapest exporter that still produces the image: it compresses
  every new layer (gzip) and writes layer, config and manifest blobs into buildkitd's content store;
  nothing is streamed back to the client (`type=oci,dest=…` would add a tar transfer slimbuild does
  not do). slimbuild writes gzip layers and the manifest into its OCI-layout store. buildah commits
  to containers-storage, which keeps layers uncompressed (no compression cost for buildah).
- Cold = no build cache, bases present: `--no-cache` for every builder after an untimed warm-up
  build of each workload (BuildKit's warm-up resolves and unpacks the bases; BuildKit still asks the
  loopback registry for the base manifest on each build, as it does in real use).
- Workload 1 appends `// run N builder` to hello.c before each builder's build; workload 2 builds
  again right after. Workload 4 runs after an untimed normal build that follows the timed cold
  build 3, so the previous build had the same inputs whatever `--no-cache` does to the cache.
- Runner B (7, 8; slimbuild and BuildKit only), issue 10's fleet of CI runners on one machine:
  once, untimed, "runner A" exports its cache to the loopback registry, slimbuild from a copy of
  the bases-only store with `--cache-to type=registry,ref=127.0.0.1:5000/bench/cache-W,mode=max`,
  BuildKit with `--export-cache type=registry,ref=127.0.0.1:5000/bench/bkcache-W,mode=max`. Before
  each timed run, untimed, slimbuild gets a fresh root (`cp -a` of the bases-only store) and
  BuildKit loses its whole local cache (`buildctl prune --all`, which also drops the bases; it pulls
  what it needs of them from the loopback registry again). The timed build is slimbuild's
  `--cache-from type=registry,ref=…` or buildctl's `--import-cache type=registry,ref=…` with the
  commands above, on the same Dockerfile and context as runner A (hello-c unchanged). The bytes
  fetched are the sizes of the 2xx GET responses in the registry's access log during the build,
  for the builder's user agent, split into the bench/ cache repositories and the rest (bases).
  They differ by design: slimbuild writes the final image's layers into runner B's store, so it
  downloads them (hello-c: the small runtime layer, never the builder stage; the tree: its whole
  COPY layer); BuildKit's `type=image` exporter without push leaves layers that came from the
  imported cache lazy (a reference to the registry, downloaded when something reads them), so it
  fetches only manifests and configs. Its time is mostly the transfer of the build context.
- Builders run in a rotated order each iteration. The machine may have had other work running
  (a shared development VM); medians damp, but do not remove, that noise.
EOF
	echo
	echo "## Raw times"
	echo
	raw_table
} >"$RESULTS"
log "wrote $RESULTS"
[ "$FAILED" = 0 ] || log "some builds failed; see $WORK/logs"
