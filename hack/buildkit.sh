#!/usr/bin/env bash
# hack/buildkit.sh — a BuildKit reference builder for slimbuild's parity tests.
#
# Usage: hack/buildkit.sh {build|start|stop|status|push-bases|env}
#
#   build       builds buildkitd + buildctl (BuildKit $BUILDKIT_VERSION) and crane
#               ($CRANE_VERSION) from the Go module proxy in a scratch module outside
#               the repository: ${SLIMBUILD_CACHE}/buildkit. Cached: a second run only
#               checks the binaries exist.
#   start       starts Debian's docker-registry on 127.0.0.1:5000 (storage in the
#               cache) and buildkitd (oci worker, overlayfs snapshotter, unix socket)
#               with docker.io mirrored to that registry. PIDs go to files in the
#               cache's run directory; waits until both answer.
#   stop        stops the two daemons by the PIDs recorded by `start`, nothing else.
#   status      prints whether each daemon runs.
#   push-bases  pushes the rootfs tarballs made by hack/bases.sh to the registry as
#               127.0.0.1:5000/library/busybox:latest and
#               127.0.0.1:5000/slimbuild/builder:bookworm (linux/amd64), so that
#               `FROM busybox` and `FROM slimbuild/builder:bookworm` resolve in
#               BuildKit through the docker.io mirror.
#   env         prints BUILDKIT_HOST, BUILDCTL (path) and BUILDKIT_VERSION, for eval.
#               (`buildctl --version` says v0.0.0+unknown: `go build` from the module
#               proxy does not stamp the version.)
#
# Environment: SLIMBUILD_CACHE (default /var/cache/slimbuild-bases).
set -euo pipefail

BUILDKIT_VERSION=v0.34.2
CRANE_VERSION=v0.22.1
REGISTRY_ADDR=127.0.0.1:5000

CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
BK=$CACHE/buildkit
BIN=$BK/bin
RUN_DIR=$BK/run
SOCK=$RUN_DIR/buildkitd.sock
export BUILDKIT_HOST=unix://$SOCK

log() { printf 'buildkit.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (buildkitd runs containers with runc on overlayfs)"; }

cmd_build() {
	command -v go >/dev/null || die "go is not installed"
	mkdir -p "$BIN"
	if [ -x "$BIN/buildkitd" ] && [ -x "$BIN/buildctl" ] && [ -x "$BIN/crane" ] &&
		[ "$(cat "$BK/version" 2>/dev/null)" = "$BUILDKIT_VERSION $CRANE_VERSION" ]; then
		log "buildkitd, buildctl and crane already built in $BIN"
		return
	fi
	local src=$BK/src
	mkdir -p "$src"
	(
		cd "$src"
		export GOWORK=off GOFLAGS=-buildvcs=false
		[ -f go.mod ] || go mod init x >/dev/null 2>&1
		log "fetching github.com/moby/buildkit@$BUILDKIT_VERSION"
		# Getting the command packages (not only the module) records the go.sum
		# entries of everything they import.
		go get "github.com/moby/buildkit@$BUILDKIT_VERSION" \
			"github.com/moby/buildkit/cmd/buildkitd@$BUILDKIT_VERSION" \
			"github.com/moby/buildkit/cmd/buildctl@$BUILDKIT_VERSION"
		log "building buildkitd and buildctl (a few minutes on 2 cores)"
		go build -o "$BIN/" github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
		log "installing crane@$CRANE_VERSION"
		GOBIN=$BIN go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
	)
	echo "$BUILDKIT_VERSION $CRANE_VERSION" >"$BK/version"
	log "built: $("$BIN/buildctl" --version)"
}

pid_alive() { # pidfile
	[ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_configs() {
	mkdir -p "$RUN_DIR" "$BK/registry" "$BK/root"
	cat >"$RUN_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $BK/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
	local runc
	runc=$(command -v runc) || die "runc is not installed (apt-get install runc)"
	cat >"$RUN_DIR/buildkitd.toml" <<EOF
root = "$BK/root"

[grpc]
  address = ["unix://$SOCK"]

[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  binary = "$runc"
  gc = false

[worker.containerd]
  enabled = false

[registry."docker.io"]
  mirrors = ["$REGISTRY_ADDR"]

[registry."$REGISTRY_ADDR"]
  http = true
EOF
}

cmd_start() {
	need_root start
	[ -x "$BIN/buildkitd" ] || die "buildkitd not built; run: $0 build"
	command -v docker-registry >/dev/null || {
		log "installing docker-registry"
		DEBIAN_FRONTEND=noninteractive apt-get install -y docker-registry >&2
	}
	write_configs
	if pid_alive "$RUN_DIR/registry.pid"; then
		log "registry already running (pid $(cat "$RUN_DIR/registry.pid"))"
	else
		log "starting docker-registry on $REGISTRY_ADDR"
		docker-registry serve "$RUN_DIR/registry.yml" >"$RUN_DIR/registry.log" 2>&1 &
		echo $! >"$RUN_DIR/registry.pid"
	fi
	if pid_alive "$RUN_DIR/buildkitd.pid"; then
		log "buildkitd already running (pid $(cat "$RUN_DIR/buildkitd.pid"))"
	else
		log "starting buildkitd ($SOCK)"
		rm -f "$SOCK"
		PATH=$BIN:$PATH "$BIN/buildkitd" --config "$RUN_DIR/buildkitd.toml" >"$RUN_DIR/buildkitd.log" 2>&1 &
		echo $! >"$RUN_DIR/buildkitd.pid"
	fi
	local i
	for i in $(seq 1 100); do
		if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 &&
			"$BIN/buildctl" debug workers >/dev/null 2>&1; then
			log "ready: registry pid $(cat "$RUN_DIR/registry.pid"), buildkitd pid $(cat "$RUN_DIR/buildkitd.pid")"
			return
		fi
		pid_alive "$RUN_DIR/registry.pid" || { tail -n 20 "$RUN_DIR/registry.log" >&2; die "registry exited"; }
		pid_alive "$RUN_DIR/buildkitd.pid" || { tail -n 20 "$RUN_DIR/buildkitd.log" >&2; die "buildkitd exited"; }
		sleep 0.2
	done
	die "daemons did not become ready in 20s (logs in $RUN_DIR)"
}

stop_one() { # name pidfile
	local name=$1 f=$2 pid i
	if ! [ -f "$f" ]; then
		log "$name: no pid file"
		return
	fi
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		log "$name (pid $pid) stopped"
	else
		log "$name (pid $pid) was not running"
	fi
	rm -f "$f"
}

cmd_stop() {
	stop_one buildkitd "$RUN_DIR/buildkitd.pid"
	stop_one registry "$RUN_DIR/registry.pid"
}

cmd_status() {
	local n
	for n in registry buildkitd; do
		if pid_alive "$RUN_DIR/$n.pid"; then echo "$n running (pid $(cat "$RUN_DIR/$n.pid"))"; else echo "$n stopped"; fi
	done
}

push_one() { # tarball ref
	local tar=$1 ref=$2
	[ -f "$tar" ] || die "$tar missing; run hack/bases.sh first"
	log "pushing $tar as $ref"
	"$BIN/crane" append --insecure -f "$tar" -t "$ref" >/dev/null
	"$BIN/crane" mutate --insecure --set-platform linux/amd64 "$ref" >/dev/null
	log "  $ref@$("$BIN/crane" digest --insecure "$ref")"
}

cmd_push_bases() {
	[ -x "$BIN/crane" ] || die "crane not built; run: $0 build"
	pid_alive "$RUN_DIR/registry.pid" || die "registry not running; run: $0 start"
	push_one "$CACHE/busybox.tar" "$REGISTRY_ADDR/library/busybox:latest"
	push_one "$CACHE/builder.tar.gz" "$REGISTRY_ADDR/slimbuild/builder:bookworm"
}

case ${1:-} in
build) cmd_build ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
push-bases) cmd_push_bases ;;
env) printf 'BUILDKIT_HOST=%s\nBUILDCTL=%s\nBUILDKIT_VERSION=%s\n' "$BUILDKIT_HOST" "$BIN/buildctl" "$BUILDKIT_VERSION" ;;
*)
	echo "usage: $0 {build|start|stop|status|push-bases|env}" >&2
	exit 2
	;;
esac
