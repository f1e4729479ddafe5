#!/usr/bin/env bash
# Installs the Debian packages slimbuild and its tests use, when they are missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have runc || need+=(runc)
# The default RUN network: a private namespace connected by pasta (slirp4netns as fallback).
have pasta || need+=(passt)
have slirp4netns || need+=(slirp4netns)
[ -x /bin/busybox ] || need+=(busybox-static)
have debootstrap || need+=(debootstrap)
have musl-gcc || need+=(musl-tools)
have chromium || need+=(chromium)
have docker-registry || need+=(docker-registry)
have skopeo || need+=(skopeo)
# ADD of git repositories and git URL contexts (and the parity git server).
have git || need+=(git)
# The compressors whose output the layer tests read back.
have xz || need+=(xz-utils)
have bzip2 || need+=(bzip2)
have zstd || need+=(zstd)
# The slim corpus' server, Node.js app and TLS client (dpkg -L reads their files).
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
have node || need+=(nodejs)
have npm || need+=(npm)
have openssl || need+=(openssl)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
# Multi-platform builds: RUN for arm64 through binfmt_misc and Debian's qemu.
have qemu-aarch64-static || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "hack/deps.sh: need root to install ${need[*]}" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# qemu's handlers (flags F: they work inside containers), registered when the
# package's postinst could not (no systemd running).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	/lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-*.conf || echo "hack/deps.sh: registering qemu's binfmt handlers failed" >&2
fi
modprobe overlay 2>/dev/null || true
if ! grep -qw overlay /proc/filesystems; then
	echo "hack/deps.sh: this kernel has no overlayfs (modprobe overlay failed)" >&2
	exit 1
fi
