#!/usr/bin/env bash
# bench/run.sh — slimbuild against BuildKit, buildah and (where a dockerd runs)
# docker's built-in BuildKit, on the same machine in the same run (issues 4, 10, 13).
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
# Workloads (Dockerfiles in bench/workloads/<dir>; generated content is made
# here, deterministically):
#   1 hello-changed    examples/hello-c after appending a comment line to hello.c
#   2 hello-unchanged  the same again with nothing changed
#   3 tree-cold        COPY of 20,000 generated files / 180 MiB (bench/cmd/gentree), no cache
#   4 tree-unchanged   the same again with nothing changed
#   5 random-cold      one RUN writing 300 x 1 MiB from /dev/urandom, no cache
#   6 sleep-cold       three independent stages that each sleep 2 s, no cache
#   7 builder-heavy    a builder stage whose RUN writes 600 x 1 MiB from /dev/urandom,
#                      a FROM scratch final stage copying one of the files, no cache;
#                      floor: the same shell loop run on the host (busybox sh)
#   8 newrunner        first build on a new runner: the 340 MB builder base is not
#                      there yet (slimbuild: empty store, `import` of its rootfs
#                      tarball + build; BuildKit: cache pruned, pulls it from the
#                      loopback registry), then `RUN true` on it; floor: `tar -x` of
#                      the same tarball into an empty directory
#   9 hello-docker     examples/hello-c/Dockerfile.naive (one stage on the builder
#                      base), nothing changed since the warm-up, written as a
#                      docker-archive (--output type=docker,dest=…) and `docker load`ed
#                      into a private dockerd that this script starts
#  10 runnerb-hello    "runner B" (issue 10): examples/hello-c on a fresh store that
#                      has only the bases, with the cache that an untimed "runner A"
#                      build exported to the loopback registry (mode=max)
#  11 runnerb-tree     the same for the 20,000-file COPY
# "No cache" keeps the bases: slimbuild --no-cache on a store with the bases
# imported and unpacked, buildctl --no-cache after an untimed warm-up build has
# pulled the bases, buildah --no-cache with the bases in its storage. All builds
# run with the network off for RUN steps and with each builder's default
# progress output (no terminal: plain), into a log file, as CI runs them.
#
# Method: the workloads run one after the other (in the order above, 8 after 9);
# each gets its untimed warm-up, then BENCH_RUNS iterations that each run the
# builders (and the floor, where there is one) in a rotated order, so none
# always goes first. Before every timed run the page cache's dirty data is
# written back (sync, untimed). Every timed slimbuild run starts from a fresh
# store, a `cp -a` (the unpacked bases hold device nodes and owners) of a store
# prepared untimed: the bases imported and unpacked (cold workloads), plus the
# workload's own warm-up build (warm ones); where a timed build needs its
# previous build (2, 4), that build runs untimed in the fresh copy first.
# slimbuild runs under GNU time, whose peak RSS (max RSS of the process, %M) is
# reported; BuildKit's work happens in its daemon, whose RSS is not comparable,
# and buildctl runs under GNU time too, so that both pay the same exec. Time is
# read with bash's $EPOCHREALTIME (no process of its own in the timed span).
# Workloads 1 and 6 also time a runc floor: the RUN work in bare runc with the
# spec slimbuild gives a RUN (bench/cmd/runcspec).
#
# Runner B (10, 11), 8 and 9 are slimbuild and BuildKit only. Once, untimed,
# runner A exports the cache: slimbuild from a copy of the bases-only store with
# --cache-to type=registry,ref=127.0.0.1:5000/bench/cache-W,mode=max, BuildKit with
# --export-cache type=registry,ref=127.0.0.1:5000/bench/bkcache-W,mode=max. Before
# each timed run, untimed: slimbuild gets a fresh root (cp -a of the bases-only
# store), BuildKit loses its whole local cache (buildctl prune --all). The timed
# build then reads the registry cache: --cache-from type=registry,ref=... /
# --import-cache type=registry,ref=.... The bytes each one fetched are summed from
# the registry's access log (GET responses, by user agent and repository).
#
# Every daemon this script starts (registry, buildkitd, containerd and dockerd for
# workload 9) is stopped by PID at exit, also on failure; a registry/buildkitd that
# already ran is left alone.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
WORK=${BENCH_WORK:-/var/tmp/slimbuild-bench}
RESULTS=${BENCH_RESULTS:-$REPO/bench/RESULTS.md}
export SLIMBUILD_CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
ALL_WORKLOADS=(hello-changed hello-unchanged tree-cold tree-unchanged random-cold sleep-cold
	builder-heavy newrunner hello-docker runnerb-hello runnerb-tree)
BUILDER_TARBALL=$SLIMBUILD_CACHE/builder.tar.gz
BUILDER_NAME=slimbuild/builder:bookworm
# Workload 7's RUN loop; its Dockerfile must hold exactly this line's loop, and
# the floor runs it on the host with /out/ made relative.
HEAVY_LOOP='for i in $(seq 600); do head -c 1048576 /dev/urandom >/out/f$i; done'
# GNU time, for slimbuild's peak RSS.
GNUTIME=/usr/bin/time
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
CONTAINERD=/usr/bin/containerd

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

grep -qF -- "$HEAVY_LOOP" "$REPO/bench/workloads/builder-heavy/Dockerfile" ||
	die "bench/workloads/builder-heavy/Dockerfile no longer runs HEAVY_LOOP; keep the floor in step"
# Workload 1's floor is hello-c's RUN, run with the builder base's own toolchain.
HELLO_RUN='cd /src && musl-gcc -static -O2 -o hello hello.c && strip hello'
grep -qF -- "RUN ${HELLO_RUN#cd /src && }" "$REPO/examples/hello-c/Dockerfile" ||
	die "examples/hello-c/Dockerfile no longer runs HELLO_RUN; keep the floor in step"

# apt_install PACKAGE: installs a Debian package (an update first when that fails).
apt_install() {
	log "installing $1"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$1" >&2 ||
		{ apt-get -o DPkg::Lock::Timeout=600 update >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$1" >&2; } ||
		die "could not install $1"
}
[ -x "$GNUTIME" ] || apt_install time
"$GNUTIME" --version 2>&1 | grep -q GNU || die "$GNUTIME is not GNU time (apt-get install time)"

# ---------------------------------------------------------------- cleanup
STARTED_BUILDKIT=0
CTRD_PID='' DOCKERD_PID=''
# Directories containerd and dockerd create at fixed paths whatever their roots;
# the ones this run creates are removed again when empty.
FIXED_DIRS=()
umount_under() { # dir: unmount what is mounted below dir, deepest first
	local m
	for m in $(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
	done
}
# stop_pid NAME PID: SIGTERM, up to 30 s, then SIGKILL. PID is this script's child.
stop_pid() {
	local i
	kill -0 "$2" 2>/dev/null || { wait "$2" 2>/dev/null || true; return 0; }
	kill -TERM "$2" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$2" 2>/dev/null; then
		log "warning: $1 (pid $2) ignored SIGTERM for 30 s; sending SIGKILL"
		kill -KILL "$2" 2>/dev/null || true
	fi
	wait "$2" 2>/dev/null || true
}
stop_docker() {
	[ -n "$DOCKERD_PID" ] && stop_pid dockerd "$DOCKERD_PID"
	DOCKERD_PID=
	[ -n "$CTRD_PID" ] && stop_pid containerd "$CTRD_PID"
	CTRD_PID=
	local d
	for d in ${FIXED_DIRS[@]+"${FIXED_DIRS[@]}"}; do rmdir "$d" 2>/dev/null || true; done
	FIXED_DIRS=()
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_docker
	if [ "$STARTED_BUILDKIT" = 1 ]; then
		"$REPO/hack/buildkit.sh" stop || log "warning: hack/buildkit.sh stop failed"
	fi
	[ -d "$WORK" ] && umount_under "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup
log "work directory $WORK"
if [ -d "$WORK" ]; then
	umount_under "$WORK"
	rm -rf "$WORK"
fi
mkdir -p "$WORK/ctx" "$WORK/logs" "$WORK/out" "$WORK/prep"
RAW=$WORK/times.tsv
BYTES=$WORK/bytes.tsv
RSS=$WORK/rss.tsv
: >"$RAW"
: >"$BYTES"
: >"$RSS"

log "making base tarballs (cached in $SLIMBUILD_CACHE)"
"$REPO/hack/bases.sh"
# builder.tar.gz is gzip (hack/bases.sh: tar -czf); crane append pushes a
# compressed tarball as it is, so BuildKit pulls the same gzip stream.
gzip -t "$BUILDER_TARBALL" 2>/dev/null || die "$BUILDER_TARBALL is not gzip (hack/bases.sh changed?); fix the notes on workload 8"

# A private copy of the binary: the tree may be rebuilt while we measure.
SB=$WORK/slimbuild
cp "$REPO/bin/slimbuild" "$SB"
# SBROOT: the bases imported, nothing else (never built in). Runner A and every
# runner B start from a copy of it; the prepared stores below start from it too.
SBROOT=$WORK/slimbuild-root
log "importing the bases into a fresh slimbuild store (not timed)"
"$REPO/hack/bases.sh" --import "$SB" "$SBROOT"
SBBASES=$SBROOT
# Every timed slimbuild run uses this root, a fresh copy each time (fresh_store).
RUNROOT=$WORK/slimbuild-run

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
	command -v buildah >/dev/null || apt_install buildah
	if [[ $("$REPO/hack/buildkit.sh" status) != *"registry running"* ]]; then
		die "buildah's bases come from the registry that hack/buildkit.sh starts; include buildkit in BENCH_BUILDERS"
	fi
	log "loading the bases into buildah's storage (not timed)"
	cs="containers-storage:[overlay@$WORK/buildah/root+$WORK/buildah/run]"
	skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/library/busybox:latest "${cs}docker.io/library/busybox:latest"
	skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/slimbuild/builder:bookworm "${cs}docker.io/slimbuild/builder:bookworm"
	BUILDERS+=(buildah)
fi

# docker's built-in BuildKit only where a dockerd already runs (not the private
# one started below for workload 9, which only loads archives).
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
has() { [[ " ${BUILDERS[*]} " == *" $1 "* ]]; } # builder: does this run use it?
# two_builder: slimbuild or BuildKit, the only builders of workloads 8-11.
two_builder() { [ "$1" = slimbuild ] || [ "$1" = buildkit ]; }

# ---------------------------------------------------------------- dockerd (9)
# A private containerd and dockerd, as test/dockerload/run.sh starts them: sockets,
# state and data below $WORK/docker, no bridge, no iptables, overlay2. It only
# loads archives; no container runs in it.
DK=$WORK/docker
dk() { DOCKER_CONFIG=$DK/client "$DOCKER" --host "unix://$DK/docker.sock" "$@"; }
# wait_ready NAME PID LOG CMD...: until CMD succeeds (60 s), or fail when PID exits.
wait_ready() {
	local name=$1 pid=$2 logf=$3 i
	shift 3
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || { tail -n 25 "$logf" >&2; die "$name exited during start (log $logf)"; }
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	tail -n 25 "$logf" >&2
	die "$name did not answer within 60 s (log $logf)"
}
start_docker() {
	if [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER" ] || [ ! -x "$CONTAINERD" ]; then apt_install docker.io; fi
	[ -e /run/containerd ] || FIXED_DIRS+=(/run/containerd/s /run/containerd)
	[ -e /run/docker ] || FIXED_DIRS+=(/run/docker/plugins /run/docker)
	mkdir -p "$DK/containerd" "$DK/data" "$DK/exec" "$DK/client"
	cat >"$DK/containerd/config.toml" <<CFG
version = 2
root = "$DK/containerd/root"
state = "$DK/containerd/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$DK/containerd/containerd.sock"
[ttrpc]
  address = "$DK/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DK/containerd/opt"
CFG
	# dockerd 20.10 writes its libtrust key to /etc/docker/key.json unless told otherwise.
	printf '{"deprecated-key-path": "%s"}\n' "$DK/key.json" >"$DK/daemon.json"
	"$CONTAINERD" --config "$DK/containerd/config.toml" --log-level warn >"$DK/containerd.log" 2>&1 &
	CTRD_PID=$!
	wait_ready containerd "$CTRD_PID" "$DK/containerd.log" test -S "$DK/containerd/containerd.sock"
	"$DOCKERD" --config-file "$DK/daemon.json" --host "unix://$DK/docker.sock" \
		--containerd "$DK/containerd/containerd.sock" --data-root "$DK/data" --exec-root "$DK/exec" \
		--pidfile "$DK/dockerd.pid" --storage-driver overlay2 \
		--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
		--userland-proxy=false >"$DK/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	wait_ready dockerd "$DOCKERD_PID" "$DK/dockerd.log" dk version
	log "private dockerd $(dk version -f '{{.Server.Version}}') (overlay2, pid $DOCKERD_PID; containerd pid $CTRD_PID)"
}
# dk_clean: docker holds no image, so the next load writes every layer again.
dk_clean() {
	local ids
	ids=$(dk image ls -aq | sort -u)
	[ -z "$ids" ] || dk image rm -f $ids >/dev/null
	[ -z "$(dk image ls -aq)" ] || die "docker still holds images after rm -f"
}

# ---------------------------------------------------------------- contexts
# One context per workload; the Dockerfile is copied in (dereferenced) so every
# builder reads the same file from the same directory.
# Runner B's hello context is its own: workload 1 changes hello.c in "hello".
make_ctx() { # name workload-dir
	mkdir -p "$WORK/ctx/$1"
	cp -L "$REPO/bench/workloads/$2/Dockerfile" "$WORK/ctx/$1/Dockerfile"
}
if wl hello-changed hello-unchanged; then
	make_ctx hello hello-c
	cp "$REPO/examples/hello-c/hello.c" "$WORK/ctx/hello/hello.c"
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
fi
wl sleep-cold && make_ctx sleep parallel-sleep
wl random-cold && make_ctx random random-run
wl builder-heavy && make_ctx heavy builder-heavy
wl newrunner && make_ctx newrunner newrunner
if wl hello-docker; then
	make_ctx hdocker hello-naive
	cp "$REPO/examples/hello-c/hello.c" "$WORK/ctx/hdocker/hello.c"
fi
# The prepared slimbuild store's unpack builds: one RUN on each base.
mkdir -p "$WORK/ctx/unpack-busybox" "$WORK/ctx/unpack-builder"
printf 'FROM busybox:latest\nRUN true\n' >"$WORK/ctx/unpack-busybox/Dockerfile"
printf 'FROM %s\nRUN true\n' "$BUILDER_NAME" >"$WORK/ctx/unpack-builder/Dockerfile"

# ---------------------------------------------------------------- builders
# rbkey CTX: the name of a runner A/B context's registry caches (bench/cache-KEY
# for slimbuild, bench/bkcache-KEY for BuildKit).
rbkey() { echo "${1#rb-}"; }

# RSSF: where GNU time appends slimbuild's peak RSS (KiB), one line per process.
RSSF=/dev/null
sb() { "$GNUTIME" -f %M -a -o "$RSSF" "$SB" "$@"; }

# build BUILDER CTX MODE [ROOT]: one build, output to stdout/stderr; ROOT is
# slimbuild's store (default $RUNROOT). MODE is cold (no cache), warm, runnera
# (export the registry cache), runnerb (import it into a fresh runner), docker
# (warm, written as a docker-archive to $WORK/out/image.tar).
build() {
	local b=$1 ctx=$WORK/ctx/$2 mode=$3 root=${4:-$RUNROOT} nc=() key
	key=$(rbkey "$2")
	case $b in
	slimbuild)
		case $mode in
		cold) nc=(--no-cache) ;;
		runnera) nc=(--cache-to "type=registry,ref=$REGISTRY/bench/cache-$key,mode=max") ;;
		runnerb) nc=(--cache-from "type=registry,ref=$REGISTRY/bench/cache-$key") ;;
		docker) nc=(--output "type=docker,dest=$WORK/out/image.tar") ;;
		esac
		sb --root "$root" build --network none ${nc[@]+"${nc[@]}"} \
			-t "bench/$2" -f "$ctx/Dockerfile" "$ctx"
		;;
	buildkit)
		local out="type=image,name=docker.io/bench/$2:latest"
		case $mode in
		cold) nc=(--no-cache) ;;
		runnera) nc=(--export-cache "type=registry,ref=$REGISTRY/bench/bkcache-$key,mode=max") ;;
		runnerb) nc=(--import-cache "type=registry,ref=$REGISTRY/bench/bkcache-$key") ;;
		docker) out="type=docker,name=docker.io/bench/$2:latest,dest=$WORK/out/image.tar" ;;
		esac
		# Under GNU time as slimbuild is (its output unused), so that both pay one exec more.
		"$GNUTIME" -o /dev/null "$BUILDCTL" build --progress plain --frontend dockerfile.v0 \
			--local context="$ctx" --local dockerfile="$ctx" \
			--opt force-network-mode=none ${nc[@]+"${nc[@]}"} --output "$out"
		;;
	buildah)
		[ "$mode" = cold ] && nc=(--no-cache)
		"${BAH[@]}" bud --isolation oci --layers --network none --pull=never ${nc[@]+"${nc[@]}"} \
			-t "bench/$2" -f "$ctx/Dockerfile" "$ctx"
		;;
	docker)
		[ "$mode" = cold ] && nc=(--no-cache)
		DOCKER_BUILDKIT=1 docker build --network none ${nc[@]+"${nc[@]}"} \
			-t "bench/$2" -f "$ctx/Dockerfile" "$ctx"
		;;
	esac
}

# export_load BUILDER CTX: workload 9's timed part, the docker-archive build and
# its `docker load`.
export_load() {
	build "$1" "$2" docker && dk load -i "$WORK/out/image.tar"
}

# newrunner BUILDER: workload 8's timed part. slimbuild imports the builder
# base's rootfs tarball into the (empty) $RUNROOT and builds; BuildKit (pruned)
# builds, pulling the base from the loopback registry.
newrunner() {
	if [ "$1" = slimbuild ]; then
		sb --root "$RUNROOT" import "$BUILDER_TARBALL" "$BUILDER_NAME" || return
	fi
	build "$1" newrunner warm
}

# The floors: what the work itself costs on the host, no builder around it.
FLOORDIR=$WORK/floor
floor_heavy() { # workload 7's RUN loop, with busybox's sh, head and seq as in the image
	mkdir "$FLOORDIR/out" && (cd "$FLOORDIR" && /bin/busybox sh -c "${HEAVY_LOOP//\/out\//out/}")
}
floor_untar() { # workload 8: the builder base's rootfs tarball unpacked
	tar --numeric-owner -xzf "$BUILDER_TARBALL" -C "$FLOORDIR"
}
fresh_floor() { rm -rf "$FLOORDIR" && mkdir "$FLOORDIR"; }
# The runc floors: the same work in bare runc, with the spec slimbuild gives a RUN
# (bench/cmd/runcspec: seccomp profile, capabilities, namespaces, masked paths),
# no builder around it; what no builder that runs RUN in runc can go under.
RUNCSTATE=$WORK/runc-state
runc_bundle() { # DIR ROOTFS CWD COMMAND...: DIR/config.json for COMMAND in ROOTFS
	local dir=$1 rootfs=$2 cwd=$3
	shift 3
	mkdir -p "$dir" && "$WORK/runcspec" -rootfs "$rootfs" -cwd "$cwd" \
		-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -- "$@" >"$dir/config.json"
}
runc_floor_hello() { # workload 1: hello-c's RUN in bare runc on the builder base's rootfs
	cp "$WORK/ctx/hello/hello.c" "$HELLO_ROOT/src/hello.c" &&
		runc --root "$RUNCSTATE" run --bundle "$WORK/runc-hello" "floor-hello-$RANDOM"
}
runc_floor_sleep() { # workload 6: its three RUNs in bare runc at once, one busybox rootfs each
	local s pids=() rc=0
	for s in a b c; do
		runc --root "$RUNCSTATE" run --bundle "$WORK/runc-sleep-$s" "floor-sleep-$s-$RANDOM" &
		pids+=($!)
	done
	for s in "${pids[@]}"; do wait "$s" || rc=1; done
	return $rc
}
prep_runc_floors() { # hello|sleep: the bundles of workload 1's or 6's runc floor
	[ -x "$WORK/runcspec" ] || (cd "$REPO" && go build -o "$WORK/runcspec" ./bench/cmd/runcspec) || die "building bench/cmd/runcspec"
	case $1 in
	hello)
		runc_bundle "$WORK/runc-hello" "$HELLO_ROOT" /src /bin/sh -c "${HELLO_RUN#cd /src && }" || die "writing workload 1's runc bundle"
		;;
	sleep)
		local s
		for s in a b c; do
			mkdir -p "$WORK/runc-sleep-$s/rootfs" && tar -xf "$SLIMBUILD_CACHE/busybox.tar" -C "$WORK/runc-sleep-$s/rootfs" &&
				runc_bundle "$WORK/runc-sleep-$s" "$WORK/runc-sleep-$s/rootfs" / /bin/sh -c "sleep 2 && echo $s >/$s" ||
				die "writing workload 6's runc bundles"
		done
		;;
	esac
}

HELLO_ROOT=$WORK/hello-root
floor_hello() { # workload 1: hello-c's compile in the builder base's rootfs (chroot), no container
	cp "$WORK/ctx/hello/hello.c" "$HELLO_ROOT/src/hello.c" && chroot "$HELLO_ROOT" /bin/sh -c "$HELLO_RUN"
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
# timed WORKLOAD ITER BUILDER CMD...: one timed run of CMD (output to a log): its
# milliseconds to $RAW, slimbuild's peak RSS to $RSS and, for runner B, the bytes
# fetched to $BYTES. Untimed before it: sync, so no run pays for the write-back of
# the one before.
timed() {
	local w=$1 i=$2 b=$3 out=$WORK/logs/$1.$3.$2.log t0 t1 ms from bytes rss msg
	shift 3
	if [ "$b" = slimbuild ]; then RSSF=$WORK/logs/$w.$b.$i.rss && : >"$RSSF"; fi
	sync
	from=$(reglines)
	# $EPOCHREALTIME is read by bash itself: no date process (about 7 ms of fork and
	# exec here) inside the timed span.
	t0=${EPOCHREALTIME/./}
	if "$@" >"$out" 2>&1; then
		t1=${EPOCHREALTIME/./}
		ms=$(((t1 - t0) / 1000))
		printf '%s\t%s\t%s\t%s\n' "$w" "$b" "$i" "$ms" >>"$RAW"
		msg="  $w $b run $i: ${ms} ms"
		rss=$(grep -sE '^[0-9]+$' "$RSSF" | sort -n | tail -n 1 || true)
		if [ -n "$rss" ]; then
			printf '%s\t%s\t%s\t%s\n' "$w" "$b" "$i" "$rss" >>"$RSS"
			msg+=", peak RSS $((rss * 1024 / 1000000)) MB"
		fi
		if [[ $w == runnerb-* ]]; then
			bytes=$(fetched "$b" "$from")
			printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$b" "$i" ${bytes} >>"$BYTES"
			msg+=", fetched ${bytes% *} bytes of cache, ${bytes#* } bytes of bases"
		fi
		log "$msg"
	else
		FAILED=1
		printf '%s\t%s\t%s\tFAIL\n' "$w" "$b" "$i" >>"$RAW"
		log "  $w $b run $i: FAILED (log $out):"
		tail -n 15 "$out" >&2
	fi
	RSSF=/dev/null
}

UNTIMED=0
untimed() { # LABEL CMD...: a run whose time does not count
	local out=$WORK/logs/untimed.$((++UNTIMED)).$1.log
	shift
	"$@" >"$out" 2>&1 || { FAILED=1; log "untimed $* failed (log $out):"; tail -n 15 "$out" >&2; }
}

# fresh_store SRC: $RUNROOT becomes a copy of the slimbuild store SRC (cp -a:
# the unpacked bases hold device nodes and owners); the empty store when SRC is "".
fresh_store() {
	umount_under "$RUNROOT"
	rm -rf "$RUNROOT"
	if [ -n "$1" ]; then cp -a "$1" "$RUNROOT"; fi
}

# prep_store NAME [CTX MODE]: $WORK/prep/NAME, a copy of the bases store with the
# bases unpacked (NAME "bases": made from $SBROOT by one RUN on each base) and, with
# CTX, CTX's MODE build done in it. Made once, untimed.
prep_store() {
	local dir=$WORK/prep/$1 c
	[ -d "$dir" ] && return 0
	if [ "$1" = bases ]; then
		log "preparing the slimbuild store with the bases unpacked (not timed)"
		cp -a "$SBROOT" "$dir.tmp"
		for c in unpack-busybox unpack-builder; do untimed "prep-$c" build slimbuild "$c" warm "$dir.tmp"; done
	else
		prep_store bases
		log "preparing the slimbuild store for $2 (not timed)"
		cp -a "$WORK/prep/bases" "$dir.tmp"
		untimed "prep-$1" build slimbuild "$2" "$3" "$dir.tmp"
	fi
	mv "$dir.tmp" "$dir"
}
drop_prep() { # NAME: the prepared store is no longer needed
	umount_under "$WORK/prep/$1"
	rm -rf "$WORK/prep/$1"
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

rotated() { # ITER NAME...: the names, rotated by ITER
	local by=$1 k
	shift
	local a=("$@")
	for ((k = 0; k < ${#a[@]}; k++)); do printf '%s\n' "${a[$(((k + by) % ${#a[@]}))]}"; done
}

# ---------------------------------------------------------------- runs
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_ID=${EPOCHREALTIME/./} # this bench run's own, for workload 1's source changes
log "load average $LOAD_START"

# Workloads 1 and 2: a real source change for each builder, then nothing changed.
group_hello() {
	local b i who=("${BUILDERS[@]}")
	log "hello-c (1, 2): warm-up (not timed)"
	for b in "${BUILDERS[@]}"; do
		if [ "$b" = slimbuild ]; then prep_store hello hello warm; else untimed "warm-$b" build "$b" hello warm; fi
	done
	if wl hello-changed; then
		rm -rf "$HELLO_ROOT" && mkdir -p "$HELLO_ROOT" &&
			tar --numeric-owner -xzf "$BUILDER_TARBALL" -C "$HELLO_ROOT" && mkdir -p "$HELLO_ROOT/src" || die "unpacking the builder base for workload 1's floor"
		untimed warm-floor floor_hello
		prep_runc_floors hello
		untimed warm-runc runc_floor_hello
		who+=(floor runc)
	fi
	for ((i = 1; i <= RUNS; i++)); do
		log "hello-c: iteration $i/$RUNS"
		for b in $(rotated "$i" "${who[@]}"); do
			if [ "$b" = floor ]; then
				timed hello-changed "$i" floor floor_hello
				continue
			fi
			if [ "$b" = runc ]; then
				timed hello-changed "$i" runc runc_floor_hello
				continue
			fi
			if wl hello-changed; then
				# The line names this bench run too: buildkitd keeps its cache from one
				# bench to the next, and the same lines in the same order would be
				# served from there (COPY and RUN CACHED) instead of built.
				printf '// run %d %s %s\n' "$i" "$b" "$BENCH_ID" >>"$WORK/ctx/hello/hello.c"
				[ "$b" = slimbuild ] && fresh_store "$WORK/prep/hello"
				timed hello-changed "$i" "$b" build "$b" hello warm
			fi
			if wl hello-unchanged; then
				if [ "$b" = slimbuild ]; then
					fresh_store "$WORK/prep/hello"
					untimed hello-previous build slimbuild hello warm
				fi
				timed hello-unchanged "$i" "$b" build "$b" hello warm
			fi
		done
	done
	drop_prep hello
	rm -rf "$HELLO_ROOT"
}

# Workloads 3 and 4: the tree cold, then (after an untimed normal build, so the
# previous build had the same inputs whatever --no-cache does to the cache)
# nothing changed.
group_tree() {
	local b i
	log "tree (3, 4): warm-up (not timed)"
	for b in "${BUILDERS[@]}"; do
		if [ "$b" = slimbuild ]; then
			prep_store bases
			wl tree-unchanged && prep_store tree tree warm
			fresh_store "$WORK/prep/bases"
		fi
		untimed "warm-$b" build "$b" tree warm
	done
	for ((i = 1; i <= RUNS; i++)); do
		log "tree: iteration $i/$RUNS"
		for b in $(rotated "$i" "${BUILDERS[@]}"); do
			if wl tree-cold; then
				[ "$b" = slimbuild ] && fresh_store "$WORK/prep/bases"
				timed tree-cold "$i" "$b" build "$b" tree cold
			fi
			if wl tree-unchanged; then
				[ "$b" = slimbuild ] && fresh_store "$WORK/prep/tree"
				untimed tree-previous build "$b" tree warm
				timed tree-unchanged "$i" "$b" build "$b" tree warm
			fi
		done
	done
	drop_prep tree
}

# group_cold WORKLOAD CTX [FLOOR [RUNCFLOOR]]: a cold build (no cache, bases
# unpacked); with FLOOR (may be ""), a function timed beside the builders in each
# iteration, and with RUNCFLOOR, the runc floor's.
group_cold() {
	local w=$1 c=$2 floor=${3:-} runcfloor=${4:-} b i who=("${BUILDERS[@]}")
	log "$w: warm-up (not timed)"
	for b in "${BUILDERS[@]}"; do
		if [ "$b" = slimbuild ]; then prep_store bases && fresh_store "$WORK/prep/bases"; fi
		untimed "warm-$b" build "$b" "$c" warm
	done
	if [ -n "$floor" ]; then
		fresh_floor && untimed "warm-floor" "$floor"
		who+=(floor)
	fi
	if [ -n "$runcfloor" ]; then
		prep_runc_floors "$c"
		untimed "warm-runc" "$runcfloor"
		who+=(runc)
	fi
	for ((i = 1; i <= RUNS; i++)); do
		log "$w: iteration $i/$RUNS"
		for b in $(rotated "$i" "${who[@]}"); do
			case $b in
			floor) fresh_floor && timed "$w" "$i" floor "$floor" ;;
			runc) timed "$w" "$i" runc "$runcfloor" ;;
			slimbuild) fresh_store "$WORK/prep/bases" && timed "$w" "$i" "$b" build "$b" "$c" cold ;;
			*) timed "$w" "$i" "$b" build "$b" "$c" cold ;;
			esac
		done
	done
	rm -rf "$FLOORDIR"
}

# Workload 9: the naive hello-c image, nothing changed since the warm-up (which
# wrote the same docker-archive), exported and loaded into an empty dockerd.
group_docker() {
	local b i who=()
	for b in "${BUILDERS[@]}"; do two_builder "$b" && who+=("$b"); done
	[ ${#who[@]} -gt 0 ] || return 0
	start_docker
	log "hello-docker (9): warm-up (not timed)"
	for b in "${who[@]}"; do
		if [ "$b" = slimbuild ]; then prep_store hdocker hdocker docker && fresh_store "$WORK/prep/hdocker"; fi
		untimed "warm-$b" export_load "$b" hdocker
		dk_clean
	done
	for ((i = 1; i <= RUNS; i++)); do
		log "hello-docker: iteration $i/$RUNS"
		for b in $(rotated "$i" "${who[@]}"); do
			[ "$b" = slimbuild ] && fresh_store "$WORK/prep/hdocker"
			timed hello-docker "$i" "$b" export_load "$b" hdocker
			dk_clean
			rm -f "$WORK/out/image.tar"
		done
	done
	drop_prep hdocker
	stop_docker
	rm -rf "$DK"
}

# Workload 8: a runner that has never seen the builder base.
group_newrunner() {
	local b i who=()
	for b in "${BUILDERS[@]}"; do two_builder "$b" && who+=("$b"); done
	[ ${#who[@]} -gt 0 ] || return 0
	who+=(floor)
	log "newrunner (8): warm-up (not timed)"
	for b in "${who[@]}"; do
		case $b in
		floor) fresh_floor && untimed warm-floor floor_untar ;;
		slimbuild) fresh_store "" && untimed "warm-$b" newrunner "$b" ;;
		buildkit) "$BUILDCTL" prune --all >/dev/null && untimed "warm-$b" newrunner "$b" ;;
		esac
	done
	for ((i = 1; i <= RUNS; i++)); do
		log "newrunner: iteration $i/$RUNS"
		for b in $(rotated "$i" "${who[@]}"); do
			case $b in
			floor) fresh_floor && timed newrunner "$i" floor floor_untar ;;
			slimbuild) fresh_store "" && timed newrunner "$i" "$b" newrunner "$b" ;;
			buildkit) "$BUILDCTL" prune --all >/dev/null && timed newrunner "$i" "$b" newrunner "$b" ;;
			esac
		done
	done
	rm -rf "$FLOORDIR"
}

# Runner B (10, 11) builds only with slimbuild and BuildKit.
group_runnerb() {
	local b c i rb_ctx=()
	wl runnerb-hello && rb_ctx+=(rb-hello)
	wl runnerb-tree && rb_ctx+=(tree)
	for b in "${BUILDERS[@]}"; do
		two_builder "$b" || NOTES+=("$b: no workloads 8-11 (slimbuild and BuildKit only)")
	done
	log "runner A: exporting the registry caches (not timed)"
	for b in "${BUILDERS[@]}"; do
		two_builder "$b" || continue
		for c in "${rb_ctx[@]}"; do
			fresh_runner "$b" "$WORK/runner-a"
			untimed "runnera-$b" build "$b" "$c" runnera "$WORK/runner-a"
		done
	done
	for ((i = 1; i <= RUNS; i++)); do
		log "runner B: iteration $i/$RUNS"
		for c in "${rb_ctx[@]}"; do
			for b in $(rotated "$i" "${BUILDERS[@]}"); do
				two_builder "$b" || continue
				fresh_runner "$b" "$WORK/runner-b"
				timed "runnerb-$(rbkey "$c")" "$i" "$b" build "$b" "$c" runnerb "$WORK/runner-b"
			done
		done
	done
}

wl hello-changed hello-unchanged && group_hello
wl tree-cold tree-unchanged && group_tree
wl random-cold && group_cold random-cold random
wl sleep-cold && group_cold sleep-cold sleep "" runc_floor_sleep
wl builder-heavy && group_cold builder-heavy heavy floor_heavy
wl hello-docker && group_docker
wl newrunner && group_newrunner
[ "$RUNNERB" = 1 ] && group_runnerb
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
median() { # WORKLOAD BUILDER: median ms of the successful runs, or "-"
	awk -F'\t' -v w="$1" -v b="$2" '$1 == w && $2 == b && $4 != "FAIL" { print $4 }' "$RAW" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
median_bytes() { # WORKLOAD BUILDER FIELD: median of a $BYTES field (4 cache, 5 bases), or "-"
	awk -F'\t' -v w="$1" -v b="$2" -v f="$3" '$1 == w && $2 == b && $f != "-" { print $f }' "$BYTES" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
peak_rss() { # WORKLOAD: slimbuild's highest peak RSS over the timed runs, in KiB, or "-"
	awk -F'\t' -v w="$1" '$1 == w && $2 == "slimbuild" { if ($4 > m) m = $4; n++ } END { print n ? m : "-" }' "$RSS"
}
human() { # bytes -> "B", "KiB" or "MiB" with 1 decimal
	[ "$1" = - ] && { echo -; return; }
	awk -v b="$1" 'BEGIN { if (b < 1024) printf "%d B", b; else if (b < 1048576) printf "%.1f KiB", b / 1024; else printf "%.1f MiB", b / 1048576 }'
}
secs() { # ms -> seconds with 3 decimals
	[ "$1" = - ] && { echo -; return; }
	awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'
}
mb() { # KiB -> MB (10^6 bytes), whole
	[ "$1" = - ] && { echo -; return; }
	awk -v k="$1" 'BEGIN { printf "%d", k * 1024 / 1000000 }'
}
ratio() { # a b
	{ [ "$1" = - ] || [ "$2" = - ] || [ "$2" = 0 ]; } && { echo -; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
# at_most LABEL VALUE LIMIT [UNIT]: "LABEL ≤ LIMIT UNIT: met/not met" (n/a without a value).
at_most() {
	local t="$1 ≤ $3${4:+ $4}"
	[ "$2" = - ] && { echo "$t: n/a"; return; }
	if awk -v v="$2" -v l="$3" 'BEGIN { exit !(v <= l) }'; then echo "$t: **met**"; else echo "$t: **not met**"; fi
}
# Workloads 2 and 4 in bench/RESULTS.md before issue 13 (commit 38e33ce, measured
# with --progress quiet): issue 13 wants them no slower.
BEFORE_HELLO_UNCHANGED=45 BEFORE_TREE_UNCHANGED=242
target() { # WORKLOAD SLIMBUILD-MS RATIO FLOOR-RATIO -> the issues' targets, met or not
	local w=$1 s=$2 r=$3 fr=$4 t=()
	case $w in
	hello-changed | tree-cold | random-cold) t+=("$(at_most ratio "$r" 0.5)") ;;
	hello-unchanged) t+=("$(at_most time "$(secs "$s")" 0.040 s)" "$(at_most "time" "$(secs "$s")" "$(secs "$BEFORE_HELLO_UNCHANGED")" "s (before issue 13)")") ;;
	tree-unchanged) t+=("$(at_most time "$(secs "$s")" 0.200 s)" "$(at_most "time" "$(secs "$s")" "$(secs "$BEFORE_TREE_UNCHANGED")" "s (before issue 13)")") ;;
	sleep-cold) t+=("$(at_most time "$(secs "$s")" 2.300 s)") ;;
	builder-heavy) t+=("$(at_most ratio "$r" 0.6)" "$(at_most "slimbuild/floor" "$fr" 1.25)") ;;
	newrunner) t+=("$(at_most ratio "$r" 0.8)" "$(at_most "slimbuild/floor" "$fr" 1.2)") ;;
	hello-docker) t+=("$(at_most ratio "$r" 0.9)") ;;
	runnerb-hello)
		# Issue 10: runner B downloads at most 3 MB for hello-c, never the builder stage.
		local f
		f=$(median_bytes runnerb-hello slimbuild 4)
		if [ "$f" = - ]; then
			t+=("fetched ≤ 3 MB: n/a")
		elif [ "$f" -le $((3 << 20)) ]; then
			t+=("fetched ≤ 3 MB: **met** ($(human "$f"))")
		else
			t+=("fetched ≤ 3 MB: **not met** ($(human "$f"))")
		fi
		;;
	esac
	t+=("$(at_most "peak RSS" "$(mb "$(peak_rss "$w")")" 200 MB)")
	local IFS=';'
	echo "${t[*]}" | sed 's/;/; /g'
}

declare -A TITLE=(
	[hello-changed]="1 hello-c, source changed"
	[hello-unchanged]="2 hello-c, nothing changed"
	[tree-cold]="3 COPY 20k files/180 MiB, cold"
	[tree-unchanged]="4 COPY 20k files, nothing changed"
	[random-cold]="5 RUN 300 x 1 MiB random, cold"
	[sleep-cold]="6 3 stages x sleep 2 s, cold"
	[builder-heavy]="7 builder stage RUN 600 x 1 MiB random, FROM scratch copies 1 file, cold"
	[newrunner]="8 new runner: 340 MB builder base not there (import / pull) + RUN true"
	[hello-docker]="9 hello-c naive, --output type=docker + docker load"
	[runnerb-hello]="10 runner B: hello-c, fresh root, registry cache"
	[runnerb-tree]="11 runner B: COPY 20k files, fresh root, registry cache"
)

table() {
	local hdr="| workload |" sep="|---|" b w line s k r f fr rf both=0
	has slimbuild && has buildkit && both=1
	for b in "${BUILDERS[@]}"; do hdr+=" $b (s) |"; sep+="---:|"; done
	[ "$both" = 1 ] && { hdr+=" slimbuild/BuildKit |"; sep+="---:|"; }
	hdr+=" floor (s) | runc floor (s) |"; sep+="---:|---:|"
	has buildkit && { hdr+=" runc floor/BuildKit |"; sep+="---:|"; }
	has slimbuild && { hdr+=" slimbuild/floor | slimbuild peak RSS (MB) |"; sep+="---:|---:|"; }
	has slimbuild && { hdr+=" target |"; sep+="---|"; }
	echo "$hdr"
	echo "$sep"
	for w in "${WORKLOADS[@]}"; do
		line="| ${TITLE[$w]} |"
		for b in "${BUILDERS[@]}"; do line+=" $(secs "$(median "$w" "$b")") |"; done
		s=$(median "$w" slimbuild) k=$(median "$w" buildkit) f=$(median "$w" floor) rf=$(median "$w" runc)
		r=$(ratio "$s" "$k") fr=$(ratio "$s" "$f")
		[ "$both" = 1 ] && line+=" $r |"
		line+=" $(secs "$f") | $(secs "$rf") |"
		has buildkit && line+=" $(ratio "$rf" "$k") |"
		has slimbuild && line+=" $fr | $(mb "$(peak_rss "$w")") | $(target "$w" "$s" "$r" "$fr") |"
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
			two_builder "$b" || continue
			echo "| ${TITLE[$w]} | $b | $(human "$(median_bytes "$w" "$b" 4)") | $(human "$(median_bytes "$w" "$b" 5)") |"
		done
	done
}

raw_table() {
	local b w runs rss
	echo "| workload | builder | runs (ms, in order) | peak RSS (MB, in order) |"
	echo "|---|---|---|---|"
	for w in "${WORKLOADS[@]}"; do
		for b in "${BUILDERS[@]}" floor runc; do
			runs=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $2 == b { printf "%s%s", sep, $4; sep = ", " }' "$RAW")
			[ -n "$runs" ] || continue
			rss=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $2 == b { printf "%s%d", sep, $4 * 1024 / 1000000; sep = ", " }' "$RSS")
			echo "| $w | $b | $runs | ${rss:--} |"
		done
	done
}

versions() {
	echo "- slimbuild: bin/slimbuild sha256 $(sha256sum "$SB" | cut -c1-12), $(go version | cut -d' ' -f3)"
	has buildkit && {
		# Built from the module proxy without VCS stamping, so --version says v0.0.0+unknown;
		# hack/buildkit.sh records the version it fetched.
		echo "- BuildKit: buildkitd + buildctl $(cut -d' ' -f1 "$SLIMBUILD_CACHE/buildkit/version") (github.com/moby/buildkit from the Go module proxy, built by hack/buildkit.sh)"
		echo "- registry: $(dpkg-query -W -f='docker-registry ${Version}' docker-registry 2>/dev/null || echo unknown)"
	}
	has buildah && echo "- buildah: $(buildah --version)"
	has docker && echo "- docker: $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
	wl hello-docker && echo "- dockerd for workload 9's docker load: $("$DOCKERD" --version) (Debian docker.io), overlay2"
	echo "- runc: $(runc --version | head -n 1)"
	echo "- GNU time: $("$GNUTIME" --version 2>&1 | head -n 1)"
	return 0
}

machine() {
	echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc)"
	echo "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- kernel: $(uname -sr)"
	echo "- OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "- file system of $WORK: $(df -T "$WORK" | awk 'NR == 2 { print $2 }')"
	echo "- load average (1, 5, 15 min) at the start: $LOAD_START; after the last run: $LOAD_END"
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
	echo "timed from start to exit with bash's \`\$EPOCHREALTIME\`). Load average at the start: $LOAD_START; at the end: $LOAD_END"
	echo "(1, 5, 15 min; $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))."
	echo
	echo "$TABLE"
	echo
	echo "- floor: the work itself on the host in the same run, no builder (1: the RUN's compile, chrooted"
	echo "  into the builder base's rootfs; 7: the RUN's shell loop with busybox sh; 8: \`tar -xzf\` of the"
	echo "  builder base's rootfs tarball into an empty directory)."
	echo "- runc floor: the same RUN work in bare runc (Debian's), with the spec slimbuild gives a RUN"
	echo "  (bench/cmd/runcspec: moby's seccomp profile, default capabilities, namespaces, masked paths), no"
	echo "  builder around it (1: the compile on the builder base's unpacked rootfs; 6: the three \`sleep 2\`"
	echo "  RUNs at once, each on a busybox rootfs). runc floor/BuildKit is the lowest ratio a builder that"
	echo "  runs RUN in runc could reach in this run."
	echo "- Each run is timed by bash's \`\$EPOCHREALTIME\` around the command; both builders run under GNU time"
	echo "  (slimbuild's peak RSS is read from it; BuildKit's output is dropped), so both pay the same exec."
	echo "- slimbuild peak RSS: the highest max RSS (GNU time %M) of slimbuild's process(es) over the timed"
	echo "  runs. BuildKit does its work in buildkitd, a long-lived daemon whose RSS is not comparable with a"
	echo "  CLI process's, so only slimbuild's is shown."
	for n in ${NOTES[@]+"${NOTES[@]}"}; do echo "- $n"; done
	[ "$FAILED" = 1 ] && echo "- **Some builds failed**; failed runs are left out of the medians (FAIL in the raw table)."
	if [ "$RUNNERB" = 1 ]; then
		echo
		echo "Runner B, bytes fetched (median; GET responses in the registry's access log, by user agent):"
		echo
		bytes_table
	fi
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
	cat <<'METHOD'
- Bases: `hack/bases.sh` makes `slimbuild/builder:bookworm` (`builder.tar.gz`, a gzip rootfs
  tarball, 340 MB unpacked) and `busybox:latest`. slimbuild imports the tarballs into a fresh
  store; `hack/buildkit.sh push-bases` pushes the same tarballs to the loopback registry
  (docker.io's mirror for buildkitd; `crane append` pushes the gzip tarball as it is: the
  builder's layer blob has the tarball's own sha256, so BuildKit pulls the very gzip stream that
  slimbuild imports); buildah gets them from that registry with
  `skopeo copy` into its own storage. Loading the bases is not timed (except in workload 8).
- Commands (all with the network off for RUN, each builder's default progress output, which is
  plain without a terminal, as in CI; output to a log file):
  - slimbuild: `slimbuild --root R build --network none [--no-cache] -t bench/W -f CTX/Dockerfile CTX`
  - BuildKit: `buildctl build --progress plain --frontend dockerfile.v0 --local context=CTX --local dockerfile=CTX
    --opt force-network-mode=none [--no-cache] --output type=image,name=docker.io/bench/W:latest`
    against buildkitd's oci worker (runc, overlayfs snapshotter, gc off).
  - buildah: `buildah bud --isolation oci --layers --network none --pull=never [--no-cache] -t bench/W -f CTX/Dockerfile CTX`
- Output, each to the builder's own store: the oci worker has no named-image store, so
  `type=image` (without push) is its cheapest exporter that still produces the image: it compresses
  every new layer (gzip) and writes layer, config and manifest blobs into buildkitd's content store;
  nothing is streamed back to the client (`type=oci,dest=…` would add a tar transfer slimbuild does
  not do). slimbuild writes the image into its OCI-layout store. buildah commits to
  containers-storage, which keeps layers uncompressed (no compression cost for buildah).
- Order: the workloads run one after the other (8 after 9, runner B last); each has its untimed
  warm-up, then the iterations, each of which runs the builders (and the floor, where there is one)
  in a rotated order, so none always goes first. Before every timed run, untimed, `sync` writes
  back the page cache's dirty data, so no run pays for the write-back of the one before it.
- Fresh stores: every timed slimbuild run starts from a fresh store, a `cp -a` (the unpacked bases
  hold device nodes) of a store prepared untimed: for the cold workloads (3, 5, 6, 7) the bases
  imported and unpacked (one `RUN true` on each); for the warm ones that store plus the workload's
  own warm-up build (1, 2: hello-c; 4: the tree; 9: the naive image written as a docker-archive).
  Where a timed build is "nothing changed" (2, 4) the same build first runs untimed in the fresh
  copy. BuildKit keeps its one daemon and cache, as a CI runner's buildkitd does.
- Cold = no build cache, bases present: `--no-cache` for every builder after an untimed warm-up
  build of each workload (BuildKit's warm-up resolves and unpacks the bases; BuildKit still asks the
  loopback registry for the base manifest on each build, as it does in real use).
- Workload 1 appends `// run N builder` to hello.c before each builder's build; workload 2 builds
  that source again. Workload 1's floor is its RUN (`musl-gcc -static -O2 -o hello hello.c && strip
  hello`) run by `chroot` into the builder base's rootfs (unpacked once, untimed), so with the same
  compiler and libraries, without a container or a builder. Workload 4 runs after an untimed normal build that follows the timed cold
  build 3, so the previous build had the same inputs whatever `--no-cache` does to the cache.
- Workload 7 (builder-heavy): `FROM busybox AS build` whose RUN writes 600 x 1 MiB from
  /dev/urandom into /out, then `FROM scratch` copying /out/f1; `--no-cache`. Its floor is the same
  loop (`for i in $(seq 600); do head -c 1048576 /dev/urandom >out/f$i; done`) run by the host's
  `/bin/busybox sh` (the busybox base's binary) in an empty directory on the same file system.
- Workload 8 (newrunner): slimbuild starts from an empty store (no bases) and the timed run is
  `slimbuild import builder.tar.gz slimbuild/builder:bookworm` + the build of `FROM
  slimbuild/builder:bookworm` / `RUN true` (peak RSS: the larger of the two processes). BuildKit
  loses its whole cache first (`buildctl prune --all`, untimed) and the timed build pulls the base
  (the same gzip tarball, pushed once, untimed) from the loopback registry and unpacks it. The
  floor is `tar --numeric-owner -xzf builder.tar.gz` into an empty directory (GNU tar with gzip).
- Workload 9 (hello-docker): examples/hello-c/Dockerfile.naive (one stage: the builder base, gcc
  and the program), nothing changed since the warm-up, which wrote the same archive. Timed:
  slimbuild `build --output type=docker,dest=F` or buildctl `--output type=docker,name=…,dest=F`,
  then `docker load -i F` into a private dockerd (Debian's docker.io 20.10, overlay2, started by
  this script with its own containerd, data root and unix socket, stopped by PID at the end). Before
  each run, untimed, docker's images are all removed, so each load writes every layer.
  Both archives go through a file (no pipe), so neither overlaps the export with the load.
- Runner B (10, 11; slimbuild and BuildKit only), issue 10's fleet of CI runners on one machine:
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
- Targets: from issue 13 (and issues 4, 10 before it): ratio slimbuild/BuildKit ≤ 0.5 on 1, 3
  and 5, ≤ 0.6 on 7, ≤ 0.8 on 8, ≤ 0.9 on 9; slimbuild/floor ≤ 1.25 on 7 and ≤ 1.2 on 8; 6 ≤ 2.3 s;
  2 and 4 no slower than before issue 13 (0.045 s and 0.242 s, measured with `--progress quiet`,
  which is no longer used) and the earlier 0.040 s and 0.200 s; slimbuild's peak RSS under 200 MB.
- The machine may have had other work running (a shared development VM); medians damp, but do not
  remove, that noise. The load averages above say how busy it was.
METHOD
	echo
	echo "## Raw times"
	echo
	raw_table
} >"$RESULTS"
log "wrote $RESULTS"
[ "$FAILED" = 0 ] || log "some builds failed; see $WORK/logs"
