#!/usr/bin/env bash
# test/parity/gitserver.sh — the git repository that the git parity cases add.
#
# Usage:
#   test/parity/gitserver.sh start DIR   makes DIR/app.git (the same commits, so the
#                                         same hashes, every time) and serves DIR with
#                                         `git daemon` on git://127.0.0.1:9419/; the
#                                         daemon's PID goes to DIR/daemon.pid
#   test/parity/gitserver.sh stop DIR    stops that daemon by its PID
#
# BuildKit (buildkitd fetches git sources itself, on the host's network) and
# slimbuild both reach it on loopback; the cases' Dockerfiles name
# git://127.0.0.1:9419/app.git.
set -euo pipefail

PORT=9419
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

g() {
	env -i PATH="$PATH" HOME="$dir" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
		GIT_AUTHOR_NAME=parity GIT_AUTHOR_EMAIL=parity@example.com GIT_AUTHOR_DATE=2024-01-02T03:04:05Z \
		GIT_COMMITTER_NAME=parity GIT_COMMITTER_EMAIL=parity@example.com GIT_COMMITTER_DATE=2024-01-02T03:04:05Z \
		git -c init.defaultBranch=main "$@"
}

case $cmd in
start)
	mkdir -p "$dir"
	work=$dir/work
	rm -rf "$work" "$dir/app.git"
	mkdir -p "$work/sub/dir"
	printf 'readme v1\n' >"$work/README"
	printf 'file v1\n' >"$work/sub/dir/file.txt"
	printf '#!/bin/sh\necho hi\n' >"$work/sub/run.sh"
	chmod 0755 "$work/sub/run.sh"
	chmod 0644 "$work/README" "$work/sub/dir/file.txt"
	ln -s dir/file.txt "$work/sub/link"
	g -C "$work" init -q
	g -C "$work" add -A
	g -C "$work" commit -q -m one
	g -C "$work" tag -a -m v1 v1
	printf 'readme v2\n' >"$work/README"
	g -C "$work" commit -q -a -m two
	g clone -q --bare "$work" "$dir/app.git"
	touch "$dir/app.git/git-daemon-export-ok"
	env -i PATH="$PATH" HOME="$dir" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
		git daemon --listen=127.0.0.1 --port=$PORT --base-path="$dir" --reuseaddr "$dir" \
		>"$dir/daemon.log" 2>&1 &
	echo $! >"$dir/daemon.pid"
	for _ in $(seq 50); do
		if g ls-remote "git://127.0.0.1:$PORT/app.git" HEAD >/dev/null 2>&1; then exit 0; fi
		sleep 0.1
	done
	echo "git daemon did not answer on 127.0.0.1:$PORT; log:" >&2
	cat "$dir/daemon.log" >&2
	kill "$(cat "$dir/daemon.pid")" 2>/dev/null || true
	exit 1
	;;
stop)
	if [ -f "$dir/daemon.pid" ]; then
		kill "$(cat "$dir/daemon.pid")" 2>/dev/null || true
		rm -f "$dir/daemon.pid"
	fi
	;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
