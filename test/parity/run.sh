#!/usr/bin/env bash
# test/parity/run.sh — slimbuild's parity harness against BuildKit (issue 5).
#
# Usage:
#   test/parity/run.sh [--run REGEXP] [--keep]
#       Builds every case in test/parity/cases with slimbuild (bases imported into a
#       temporary root), compares each image with the case's expected.json and
#       prints each difference and a last line "N passed, M failed". Exit 1 on failure.
#       SLIMBUILD=/path/to/slimbuild uses that binary; otherwise ./cmd/slimbuild is built.
#   test/parity/run.sh --record [--run REGEXP] [--keep]
#       Regenerates expected.json with BuildKit: hack/buildkit.sh build, start,
#       push-bases, one buildctl build per case (force-network-mode=none, OCI
#       output), record, stop (by PID, also on failure or Ctrl-C).
#
# A case is test/parity/cases/NN-name/: Dockerfile and its context, optional `args`
# (one flag per line: --target=STAGE, --build-arg=K=V, --platform=OS/ARCH[/VARIANT],
# --build-context=NAME=docker-image://REF or NAME=DIR, --ssh=ID=KEYFILE; DIR and KEYFILE
# are paths in the case's directory), expected.json (recorded),
# optional deliberate.md (why slimbuild differs on purpose). The context handed to
# the builders is a copy without args, expected.json and deliberate.md, with modes
# normalised (0755 for executables and directories, 0644 otherwise) so results do
# not depend on the checkout's umask.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CASES=$REPO/test/parity/cases
CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
export SLIMBUILD_CACHE=$CACHE

RECORD=0 RUN= KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--record) RECORD=1 ;;
	--run) RUN=$2; shift ;;
	--run=*) RUN=${1#--run=} ;;
	--keep) KEEP=1 ;;
	*) echo "usage: $0 [--record] [--run REGEXP] [--keep]" >&2; exit 2 ;;
	esac
	shift
done

log() { printf 'parity: %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/slimbuild-parity.XXXXXX)
BK_STARTED=0 GIT_STARTED=0
cleanup() {
	local rc=$?
	if [ "$GIT_STARTED" = 1 ]; then "$REPO/test/parity/gitserver.sh" stop "$WORK/git" || true; fi
	if [ "$BK_STARTED" = 1 ]; then "$REPO/hack/buildkit.sh" stop || true; fi
	if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "making base root filesystems"
"$REPO/hack/bases.sh"

log "building paritycheck"
(cd "$REPO" && go build -o "$WORK/paritycheck" ./test/parity/cmd/paritycheck)

# stage NAME: copies the case's context to $WORK/ctx/NAME with normalised modes.
stage() {
	local src=$CASES/$1 dst=$WORK/ctx/$1
	mkdir -p "$dst"
	(cd "$src" && tar --exclude=./args --exclude=./expected.json --exclude=./deliberate.md -cf - .) | tar -C "$dst" -xf -
	find "$dst" -type d -exec chmod 0755 {} +
	find "$dst" -type f -perm /111 -exec chmod 0755 {} +
	find "$dst" -type f ! -perm /111 -exec chmod 0644 {} +
}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# case_args NAME: prints the case's flags, one per line.
case_args() {
	[ -f "$CASES/$1/args" ] || return 0
	grep -v '^[[:space:]]*\(#\|$\)' "$CASES/$1/args"
}

names=()
for d in "$CASES"/*/; do
	n=$(basename "$d")
	if [ -n "$RUN" ] && ! [[ $n =~ $RUN ]]; then continue; fi
	names+=("$n")
done
[ ${#names[@]} -gt 0 ] || { log "no case matches '$RUN'"; exit 2; }
mkdir -p "$WORK/images" "$WORK/logs"

# Cases that ADD git://127.0.0.1:9419/… get the loopback git server of
# test/parity/gitserver.sh for the run (both builders fetch from the host).
for n in "${names[@]}"; do
	if grep -q '127\.0\.0\.1:9419' "$CASES/$n/Dockerfile" 2>/dev/null; then
		log "starting the loopback git server for the git cases"
		GIT_STARTED=1
		"$REPO/test/parity/gitserver.sh" start "$WORK/git"
		break
	fi
done

if [ "$RECORD" = 1 ]; then
	"$REPO/hack/buildkit.sh" build
	# Daemons that someone else started (their PID files exist and they run) are
	# used and left running; the ones this run starts are stopped on exit.
	status=$("$REPO/hack/buildkit.sh" status)
	if [[ $status == *" running "* ]]; then
		log "BuildKit daemons already running; using them and leaving them running"
	else
		BK_STARTED=1
	fi
	"$REPO/hack/buildkit.sh" start
	"$REPO/hack/buildkit.sh" push-bases
	eval "$("$REPO/hack/buildkit.sh" env)"
	export BUILDKIT_HOST
	for n in "${names[@]}"; do
		stage "$n"
		opts=()
		while IFS= read -r a; do
			case $a in
			--target=*) opts+=(--opt "target=${a#--target=}") ;;
			--build-arg=*) opts+=(--opt "build-arg:${a#--build-arg=}") ;;
			--platform=*) opts+=(--opt "platform=${a#--platform=}") ;;
			--build-context=*=docker-image://*)
				v=${a#--build-context=}
				opts+=(--opt "context:${v%%=*}=${v#*=}") ;;
			--build-context=*)
				v=${a#--build-context=}
				opts+=(--local "${v%%=*}=$WORK/ctx/$n/${v#*=}" --opt "context:${v%%=*}=local:${v%%=*}") ;;
			--ssh=*)
				v=${a#--ssh=}
				opts+=(--ssh "${v%%=*}=$WORK/ctx/$n/${v#*=}") ;;
			*) log "$n: unknown flag in args: $a"; exit 2 ;;
			esac
		done < <(case_args "$n")
		start=$EPOCHREALTIME
		if "$BUILDCTL" build --progress plain --frontend dockerfile.v0 \
			--local context="$WORK/ctx/$n" --local dockerfile="$WORK/ctx/$n" \
			--opt force-network-mode=none "${opts[@]}" \
			--output "type=oci,dest=$WORK/images/$n.tar" >"$WORK/logs/$n.log" 2>&1; then
			log "$n: built with BuildKit in $(elapsed "$start")s"
		else
			log "$n: BuildKit build FAILED; last lines of $WORK/logs/$n.log:"
			tail -n 15 "$WORK/logs/$n.log" >&2
			rm -rf "$WORK/images/$n.tar" # buildctl leaves an empty file behind
		fi
	done
	"$WORK/paritycheck" -record -recorded-with "buildkit $BUILDKIT_VERSION" -cases "$CASES" -images "$WORK/images" \
		-base busybox="$CACHE/busybox.tar" -base builder="$CACHE/builder.tar.gz" ${RUN:+-run "$RUN"}
	exit 0
fi

SLIMBUILD=${SLIMBUILD:-}
if [ -z "$SLIMBUILD" ]; then
	log "building slimbuild"
	(cd "$REPO" && go build -o "$WORK/slimbuild" ./cmd/slimbuild)
	SLIMBUILD=$WORK/slimbuild
fi
ROOT=$WORK/root
"$REPO/hack/bases.sh" --import "$SLIMBUILD" "$ROOT"
for n in "${names[@]}"; do
	stage "$n"
	opts=()
	while IFS= read -r a; do
		case $a in
		--build-context=*=docker-image://*) opts+=("$a") ;;
		# A local named context or an ssh key is a path in the case's directory.
		--build-context=* | --ssh=*)
			k=${a%%=*} v=${a#*=}
			opts+=("$k=${v%%=*}=$WORK/ctx/$n/${v#*=}") ;;
		*) opts+=("$a") ;;
		esac
	done < <(case_args "$n")
	start=$EPOCHREALTIME
	if "$SLIMBUILD" --root "$ROOT" build --network none --progress plain "${opts[@]}" \
		--output "type=oci,dest=$WORK/images/$n.tar" "$WORK/ctx/$n" >"$WORK/logs/$n.log" 2>&1; then
		log "$n: built with slimbuild in $(elapsed "$start")s"
	else
		log "$n: slimbuild build FAILED; last lines of its log:"
		tail -n 15 "$WORK/logs/$n.log" >&2
		rm -rf "$WORK/images/$n.tar"
	fi
done
"$WORK/paritycheck" -cases "$CASES" -images "$WORK/images" \
	-base busybox="$CACHE/busybox.tar" -base builder="$CACHE/builder.tar.gz" ${RUN:+-run "$RUN"}
