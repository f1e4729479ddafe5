#!/usr/bin/env bash
# test/dockerload/run.sh — proves that slimbuild's docker-archives are accepted by a
# real `docker load` and run there (issue 2).
#
# Usage: test/dockerload/run.sh [--keep]
#
#   1. Installs Debian's docker.io when /usr/sbin/dockerd is missing. The docker CLI
#      used is always Debian's /usr/bin/docker (a /usr/local/bin/docker may be a
#      client of another version).
#   2. Starts a private containerd and dockerd whose sockets, state, data and
#      configuration all live in one temporary directory: no bridge, no iptables, no
#      network beyond loopback, storage driver overlay2 (vfs when overlay2 does not
#      start). Nothing is shared with a system docker or containerd, should one exist.
#   3. Builds examples/hello-c (Dockerfile and Dockerfile.scratch) with slimbuild
#      (${SLIMBUILD:-bin/slimbuild}, bases from hack/bases.sh --import into a
#      temporary --root) with --output type=docker, and writes `slimbuild save`
#      archives; each must be accepted by `docker load` under its name, keep its
#      config (ENTRYPOINT/CMD, USER, image ID = config digest) and run with
#      `docker run --rm --network none`. One platform (arm64) of a multi-platform
#      build is saved with save --platform, loaded and run under qemu.
#   4. Prints each check and a last line "N passed, M failed"; exits 1 when any failed.
#   5. On every exit path: stops dockerd and containerd by PID (SIGTERM, then SIGKILL
#      after a bounded wait), kills any leftover process whose command line names the
#      temporary directory (shims), unmounts what is mounted below it, removes the
#      cgroups it created and the directory (kept with --keep, daemons still stopped).
#
# Environment: SLIMBUILD (binary), SLIMBUILD_CACHE (base tarballs, default
# /var/cache/slimbuild-bases), DOCKERLOAD_START_TIMEOUT (seconds per daemon start,
# default 60), DOCKERLOAD_DRIVERS (storage drivers tried in order, default "overlay2 vfs").
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export SLIMBUILD_CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
SLIMBUILD=${SLIMBUILD:-bin/slimbuild}
case $SLIMBUILD in /*) ;; *) SLIMBUILD=$REPO/$SLIMBUILD ;; esac
START_TIMEOUT=${DOCKERLOAD_START_TIMEOUT:-60}
DRIVERS=${DOCKERLOAD_DRIVERS:-overlay2 vfs}
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
CONTAINERD=/usr/bin/containerd

KEEP=0
case ${1:-} in
'') ;;
--keep) KEEP=1 ;;
*) echo "usage: $0 [--keep]" >&2; exit 2 ;;
esac

log() { printf 'dockerload: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "must run as root (dockerd, runc and slimbuild's RUN steps need it)"
[ -x "$SLIMBUILD" ] || die "slimbuild binary $SLIMBUILD is not executable (run make build or set SLIMBUILD)"

T0=$EPOCHREALTIME
# The script's own stdout and stderr, for cleanup: a signal's trap runs with the
# redirections of the interrupted command still in place.
exec 8>&1 9>&2
WORK=$(mktemp -d /tmp/slimbuild-dockerload.XXXXXX)
CGPARENT=$(basename "$WORK")
CTRD_PID= DOCKERD_PID= REGISTRY_PID=
PASSED=0 FAILED=0
# Directories the daemons create at fixed paths whatever their roots; the ones this
# run creates are removed again when empty.
FIXED_DIRS=()
[ -e /run/containerd ] || FIXED_DIRS+=(/run/containerd/s /run/containerd)
[ -e /run/docker ] || FIXED_DIRS+=(/run/docker/plugins /run/docker)

# stop_pid NAME PID: SIGTERM, wait up to 30s, then SIGKILL. PID is our child.
stop_pid() {
	local name=$1 pid=$2 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "warning: $name (pid $pid) ignored SIGTERM for 30s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# leftover_pids: PIDs (other than this script's) whose command line names $WORK.
# The pattern brackets the dot so that grep's own command line does not match.
leftover_pids() {
	local pat=${WORK//./[.]}
	grep -al -e "$pat" /proc/[0-9]*/cmdline 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p' | grep -vx -e "$$" -e "$BASHPID" || true
}

umount_under() { # dir: unmount dir and everything mounted below it, deepest first
	local m
	for m in $(awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" || log "warning: could not unmount $m"
	done
}

stop_daemons() {
	local pid
	[ -n "$DOCKERD_PID" ] && stop_pid dockerd "$DOCKERD_PID"
	DOCKERD_PID=
	[ -n "$CTRD_PID" ] && stop_pid containerd "$CTRD_PID"
	CTRD_PID=
	[ -n "$REGISTRY_PID" ] && stop_pid docker-registry "$REGISTRY_PID"
	REGISTRY_PID=
	# containerd-shims outlive containerd by design; none should remain after
	# `docker run --rm`, but a failed run may leave one.
	for pid in $(leftover_pids); do
		log "warning: killing leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? d
	trap - EXIT INT TERM
	exec 1>&8 2>&9
	case $rc in 130 | 143) log "interrupted; stopping the daemons and cleaning up" ;; esac
	stop_daemons
	umount_under "$WORK"
	for d in /sys/fs/cgroup/*/"$CGPARENT" /sys/fs/cgroup/"$CGPARENT"; do
		[ -d "$d" ] && { rmdir "$d" 2>/dev/null || log "warning: could not remove cgroup $d"; }
	done
	# containerd-shim-runc-v2 keeps its sockets in /run/containerd/s and dockerd
	# looks for plugins in /run/docker/plugins, whatever their roots.
	for d in ${FIXED_DIRS[@]+"${FIXED_DIRS[@]}"}; do
		rmdir "$d" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	if [ -n "$(leftover_pids)" ]; then
		log "error: processes naming $WORK remain: $(leftover_pids | tr '\n' ' ')"
		[ "$rc" = 0 ] && rc=1
	fi
	log "total $(elapsed "$T0")s"
	# A failure before or between the checks (setup, interrupt) counts as one.
	[ "$rc" != 0 ] && [ "$FAILED" = 0 ] && FAILED=1
	echo "$PASSED passed, $FAILED failed"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. docker.io ---------------------------------------------------------------
if [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER" ] || [ ! -x "$CONTAINERD" ]; then
	log "installing Debian's docker.io"
	apt_install() {
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
			install -y --no-install-recommends docker.io >"$WORK/apt.log" 2>&1
	}
	apt_install || { apt-get -o DPkg::Lock::Timeout=600 update >>"$WORK/apt.log" 2>&1 && apt_install; } ||
		{ tail -n 20 "$WORK/apt.log" >&2; die "could not install docker.io"; }
fi
for b in "$DOCKERD" "$DOCKER" "$CONTAINERD"; do [ -x "$b" ] || die "$b missing after installing docker.io"; done
command -v runc >/dev/null || die "runc missing (docker.io depends on it)"

# --- 2. private containerd and dockerd -----------------------------------------
mkdir -p "$WORK/containerd" "$WORK/docker-data" "$WORK/docker-exec" "$WORK/client" "$WORK/root" "$WORK/out"
SOCK=$WORK/docker.sock
CTRD_SOCK=$WORK/containerd/containerd.sock
dk() { DOCKER_CONFIG=$WORK/client "$DOCKER" --host "unix://$SOCK" "$@"; }

cat >"$WORK/containerd/config.toml" <<EOF
version = 2
root = "$WORK/containerd/root"
state = "$WORK/containerd/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/containerd/opt"
EOF
# dockerd 20.10 writes its libtrust key to /etc/docker/key.json unless told otherwise.
printf '{"deprecated-key-path": "%s"}\n' "$WORK/key.json" >"$WORK/daemon.json"

# wait_ready NAME PID LOG CMD...: waits until CMD succeeds; fails, showing the tail
# of LOG, when the daemon PID exits first or START_TIMEOUT seconds pass.
wait_ready() {
	local name=$1 pid=$2 logf=$3 i
	shift 3
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited during start; last lines of $logf:"
			tail -n 25 "$logf" >&2
			return 1
		fi
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "$name did not answer within ${START_TIMEOUT}s; last lines of $logf:"
	tail -n 25 "$logf" >&2
	return 1
}

start=$EPOCHREALTIME
"$CONTAINERD" --config "$WORK/containerd/config.toml" --log-level warn >"$WORK/containerd.log" 2>&1 8>&- 9>&- &
CTRD_PID=$!
wait_ready containerd "$CTRD_PID" "$WORK/containerd.log" test -S "$CTRD_SOCK" ||
	die "containerd did not start"

# start_dockerd DRIVER: starts dockerd with that storage driver and waits for it.
start_dockerd() {
	local driver=$1
	"$DOCKERD" \
		--config-file "$WORK/daemon.json" \
		--host "unix://$SOCK" \
		--containerd "$CTRD_SOCK" \
		--data-root "$WORK/docker-data" \
		--exec-root "$WORK/docker-exec" \
		--pidfile "$WORK/dockerd.pid" \
		--storage-driver "$driver" \
		--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
		--userland-proxy=false \
		--cgroup-parent "/$CGPARENT" \
		>"$WORK/dockerd-$driver.log" 2>&1 8>&- 9>&- &
	DOCKERD_PID=$!
	if wait_ready dockerd "$DOCKERD_PID" "$WORK/dockerd-$driver.log" dk version; then
		return 0
	fi
	stop_pid dockerd "$DOCKERD_PID"
	DOCKERD_PID=
	umount_under "$WORK/docker-data"
	umount_under "$WORK/docker-exec"
	rm -rf "$WORK/docker-data" "$WORK/docker-exec"
	mkdir -p "$WORK/docker-data" "$WORK/docker-exec"
	return 1
}
DRIVER=
for d in $DRIVERS; do
	if start_dockerd "$d"; then DRIVER=$d; break; fi
	log "dockerd did not start with storage driver $d"
done
[ -n "$DRIVER" ] || die "dockerd did not start with any of: $DRIVERS"
[ "$(cat "$WORK/dockerd.pid")" = "$DOCKERD_PID" ] || die "dockerd pidfile says $(cat "$WORK/dockerd.pid"), started $DOCKERD_PID"
log "dockerd $(dk version -f '{{.Server.Version}}') ($DRIVER, pid $DOCKERD_PID; containerd pid $CTRD_PID) ready in $(elapsed "$start")s"

# --- 3. checks --------------------------------------------------------------------
pass() { PASSED=$((PASSED + 1)); log "ok   $1 ($(elapsed "$2")s)"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL $1: $2"; [ -s "$WORK/out/last" ] && sed 's/^/    | /' "$WORK/out/last" | tail -n 25 >&2; return 0; }

# check NAME WANT CMD...: CMD must exit 0 and its output (stdout and stderr) must
# contain the line fragment WANT (nothing is required when WANT is empty).
check() {
	local name=$1 want=$2 start=$EPOCHREALTIME rc=0
	shift 2
	"$@" >"$WORK/out/last" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		fail "$name" "exit status $rc from: $*"
	elif [ -n "$want" ] && ! grep -qF -- "$want" "$WORK/out/last"; then
		fail "$name" "output lacks \"$want\""
	else
		pass "$name" "$start"
	fi
}

# archive_dump FILE: what docker was given (listing, manifest.json, configs), for a
# failed load. Never fails.
archive_dump() {
	local f=$1 d cfg
	[ -s "$f" ] || { log "    $f is missing or empty"; return 0; }
	log "    archive $f:"
	{ tar -tvf "$f" 2>&1 | head -n 20 | sed 's/^/    | /' >&2; } || true
	d=$(mktemp -d "$WORK/dump.XXXXXX")
	tar -C "$d" -xf "$f" 2>/dev/null || log "    (tar could not extract it all)"
	if [ -f "$d/manifest.json" ]; then
		log "    manifest.json:"
		{ head -c 2000 "$d/manifest.json" | sed 's/^/    | /' >&2; echo >&2; } || true
		for cfg in $(tr ',' '\n' <"$d/manifest.json" | sed -n 's/.*"Config" *: *"\([^"]*\)".*/\1/p'); do
			if [ -f "$d/$cfg" ]; then
				log "    config $cfg:"
				{ head -c 2000 "$d/$cfg" | sed 's/^/    | /' >&2; echo >&2; } || true
			else
				log "    config $cfg: not in the archive"
			fi
		done
	else
		log "    no manifest.json at the archive's top"
	fi
	rm -rf "$d"
}

# load NAME FILE TAG...: docker load must accept FILE and print "Loaded image: TAG"
# for each TAG.
load() {
	local name=$1 f=$2 start=$EPOCHREALTIME tag missing= rc=0
	shift 2
	dk load -i "$f" >"$WORK/out/last" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		fail "$name" "docker load exited $rc"
		archive_dump "$f"
		return 0
	fi
	for tag in "$@"; do
		grep -qxF "Loaded image: $tag" "$WORK/out/last" || missing+=" $tag"
	done
	if [ -n "$missing" ]; then
		fail "$name" "docker load did not print \"Loaded image:\" for$missing"
		archive_dump "$f"
	else
		pass "$name" "$start"
	fi
}

# config_digest REF: the image's config digest as slimbuild stores it (docker's image ID).
config_digest() {
	"$SLIMBUILD" --root "$WORK/root" inspect "$1" | tr -d ' \n' |
		sed -n 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p'
}

# same_id NAME REF: docker's image ID for REF equals slimbuild's config digest.
same_id() {
	local start=$EPOCHREALTIME want got
	want=$(config_digest "$2" 2>"$WORK/out/last" || true)
	got=$(dk image inspect -f '{{.Id}}' "$2" 2>>"$WORK/out/last" || true)
	if [ -n "$want" ] && [ "$want" = "$got" ]; then
		: >"$WORK/out/last"
		pass "$1" "$start"
	else
		fail "$1" "docker image ID \"$got\", slimbuild config digest \"$want\""
	fi
}

# gone NAME REF...: removes the images from docker, which must then not know them,
# so that the next load is not vacuous.
gone() {
	local name=$1 start=$EPOCHREALTIME ref left=
	shift
	dk rmi -f "$@" >"$WORK/out/last" 2>&1 || true
	for ref; do
		dk image inspect "$ref" >/dev/null 2>&1 && left+=" $ref"
	done
	if [ -n "$left" ]; then fail "$name" "docker still has$left"; else pass "$name" "$start"; fi
}

# same_config NAME REF WANT: docker's view of REF's Entrypoint, Cmd and User is WANT.
same_config() {
	local start=$EPOCHREALTIME got
	got=$(dk image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}' "$2" 2>"$WORK/out/last" || true)
	if [ "$got" = "$3" ]; then
		pass "$1" "$start"
	else
		fail "$1" "docker sees \"$got\", want \"$3\""
	fi
}

HELLO="Hello from a lean image"
CTX=$REPO/examples/hello-c

start=$EPOCHREALTIME
"$REPO/hack/bases.sh" --import "$SLIMBUILD" "$WORK/root" 2>"$WORK/bases.log" ||
	{ tail -n 20 "$WORK/bases.log" >&2; die "importing the bases failed"; }
log "bases imported in $(elapsed "$start")s"

sb() { "$SLIMBUILD" --root "$WORK/root" "$@"; }

# Multi-stage build onto busybox, CMD.
check "build hello:slim --output type=docker" "" \
	sb build --progress plain -t hello:slim --output "type=docker,dest=$WORK/hello.tar" "$CTX"
load "docker load hello.tar" "$WORK/hello.tar" hello:slim
same_id "hello:slim image ID is its config digest" hello:slim
same_config "hello:slim config in docker" hello:slim 'null ["/usr/local/bin/hello"] 65534'
check "docker run hello:slim" "$HELLO" dk run --rm --pull never --network none hello:slim

# FROM scratch, ENTRYPOINT.
check "build hello:scratch --output type=docker" "" \
	sb build --progress plain -t hello:scratch -f "$CTX/Dockerfile.scratch" \
	--output "type=docker,dest=$WORK/scratch.tar" "$CTX"
load "docker load scratch.tar" "$WORK/scratch.tar" hello:scratch
same_id "hello:scratch image ID is its config digest" hello:scratch
same_config "hello:scratch config in docker" hello:scratch '["/hello"] null 65534'
check "docker run hello:scratch" "$HELLO" dk run --rm --pull never --network none hello:scratch

# slimbuild save, into a daemon that no longer has the images.
gone "docker rmi hello:slim hello:scratch" hello:slim hello:scratch
check "slimbuild save hello:slim" "" sb save -o "$WORK/save.tar" hello:slim
load "docker load save.tar" "$WORK/save.tar" hello:slim
check "docker run saved hello:slim" "$HELLO" dk run --rm --pull never --network none hello:slim
gone "docker rmi hello:slim hello:scratch again" hello:slim hello:scratch
check "slimbuild save hello:slim hello:scratch" "" sb save -o "$WORK/save2.tar" hello:slim hello:scratch
load "docker load save2.tar" "$WORK/save2.tar" hello:slim hello:scratch
check "docker run saved hello:slim (two-image archive)" "$HELLO" dk run --rm --pull never --network none hello:slim
check "docker run saved hello:scratch" "$HELLO" dk run --rm --pull never --network none hello:scratch

# One platform of a multi-platform build (issue 12): busybox:latest is an index of
# amd64 and arm64 (hack/bases.sh); slimbuild save --platform writes the arm64 image,
# which docker loads as arm64 and runs through the host's qemu (binfmt_misc, F flag).
mkdir -p "$WORK/multi"
printf 'FROM busybox:latest\nARG TARGETARCH\nRUN echo "$TARGETARCH $(uname -m)" > /arch\nCMD ["cat", "/arch"]\n' >"$WORK/multi/Dockerfile"
check "build --platform linux/amd64,linux/arm64 multi:1" "" \
	sb build --progress plain --platform linux/amd64,linux/arm64 -t multi:1 "$WORK/multi"
check "slimbuild save --platform linux/arm64 multi:1" "" sb save --platform linux/arm64 -o "$WORK/multi-arm64.tar" multi:1
load "docker load multi-arm64.tar" "$WORK/multi-arm64.tar" multi:1
check "docker sees multi:1 as arm64" "linux/arm64" dk image inspect -f '{{.Os}}/{{.Architecture}}' multi:1
check "docker run multi:1 (arm64 under qemu)" "arm64 aarch64" dk run --rm --pull never --network none multi:1

# Pushed to a loopback registry, pulled and run by docker (issue 10). dockerd
# reaches 127.0.0.0/8 over plain http by default.
if command -v docker-registry >/dev/null; then
	# A port nothing listens on (bash's /dev/tcp connects; a refusal means free).
	while :; do
		REG_PORT=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$REG_PORT") 2>/dev/null || break
	done
	REG=127.0.0.1:$REG_PORT
	printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
		"$WORK/registry" "$REG" >"$WORK/registry.yml"
	docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 8>&- 9>&- &
	REGISTRY_PID=$!
	wait_ready docker-registry "$REGISTRY_PID" "$WORK/registry.log" curl -fsS "http://$REG/v2/" ||
		die "docker-registry did not start"
	check "build --push $REG/hello:slim" "" sb build --progress plain -t "$REG/hello:slim" --push "$CTX"
	# The digest build --push prints is the pushed manifest's (layers stored plain are
	# pushed gzip-compressed, so it need not be the stored image's).
	PUSHED=$(sb build --progress quiet -t "$REG/hello:slim" --push "$CTX" | tail -n 1)
	check "docker pull $REG/hello:slim" "" dk pull "$REG/hello:slim"
	check "docker sees the pushed digest" "$REG/hello@$PUSHED" dk image inspect -f '{{join .RepoDigests " "}}' "$REG/hello:slim"
	check "docker run $REG/hello:slim" "$HELLO" dk run --rm --pull never --network none "$REG/hello:slim"
else
	fail "push, docker pull, docker run" "docker-registry is not installed (hack/deps.sh installs it)"
fi

# --- 4. result ----------------------------------------------------------------------
stop_daemons
[ "$FAILED" = 0 ] # cleanup prints the summary line last
