#!/usr/bin/env bash
# hack/bases.sh — makes slimbuild's two base root filesystems from Debian packages.
#
# Usage: hack/bases.sh [--import SLIMBUILD_BIN ROOT]
#
#   builder.tar.gz  debootstrap --variant=minbase bookworm with gcc, libc6-dev,
#                   musl-tools and make; apt lists and caches removed; numeric
#                   owners. Image name: slimbuild/builder:bookworm.
#   busybox.tar     /bin/busybox from busybox-static with its applet links (but
#                   none for the package managers dpkg, dpkg-deb, rpm, rpm2cpio),
#                   /etc/passwd (root, nobody 65534), /etc/group, /tmp 1777.
#                   Image name: busybox:latest.
#   busybox-arm64.tar the same from Debian's busybox-static:arm64 (apt gets the
#                   arm64 architecture added for the download), imported with
#                   --platform linux/arm64: busybox:latest is then an index of both.
#
# Both are cached in ${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}; a tarball that
# exists is not made again (delete it to rebuild). Each is written to a temporary
# name and renamed, so an interrupted run leaves no half tarball behind.
# With --import, both are imported into the slimbuild store at ROOT with
#   SLIMBUILD_BIN --root ROOT import TARBALL NAME
# The Debian mirror is the one this machine's apt uses (/etc/apt/sources.list(.d)),
# unless DEBIAN_MIRROR is set.
set -euo pipefail

CACHE=${SLIMBUILD_CACHE:-/var/cache/slimbuild-bases}
SUITE=bookworm
BUILDER_NAME=slimbuild/builder:bookworm
BUSYBOX_NAME=busybox:latest

log() { printf 'bases.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	echo "usage: $0 [--import SLIMBUILD_BIN ROOT]" >&2
	exit 2
}

IMPORT_BIN= IMPORT_ROOT=
case $# in
0) ;;
3)
	[ "$1" = --import ] || usage
	IMPORT_BIN=$2 IMPORT_ROOT=$3
	[ -x "$IMPORT_BIN" ] || die "slimbuild binary $IMPORT_BIN is not executable"
	;;
*) usage ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chown need it)"

ensure_pkg() { # command package
	command -v "$1" >/dev/null 2>&1 && return
	log "installing $2 (missing $1)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >&2; } ||
		die "could not install $2"
}

# apt_mirror prints the first URI that apt uses for the plain $SUITE suite
# (not -updates or -security), from deb822 .sources files or one-line .list files.
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" '
			function flush() {
				if (uris != "" && hasSuite && !found) { split(uris, u, " "); print u[1]; found = 1 }
				uris = ""; hasSuite = 0
			}
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hasSuite = 1 }
			END { flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		# deb [options] URI suite components...
		sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
	done
}

make_builder() {
	local out=$CACHE/builder.tar.gz
	if [ -s "$out" ]; then
		log "builder: cached $out"
		return
	fi
	ensure_pkg debootstrap debootstrap
	local mirror=${DEBIAN_MIRROR:-}
	[ -n "$mirror" ] || mirror=$(apt_mirror | head -n 1)
	[ -n "$mirror" ] || die "no Debian mirror for $SUITE in /etc/apt/sources.list(.d); set DEBIAN_MIRROR"
	local dir
	dir=$(mktemp -d "$CACHE/builder.XXXXXX")
	# debootstrap mounts /proc and /sys in the target; never leave them behind.
	trap 'umount_under "'"$dir"'"; rm -rf "'"$dir"'" "'"$out"'.tmp"' EXIT
	log "builder: debootstrap --variant=minbase $SUITE from $mirror (a few minutes)"
	debootstrap --variant=minbase --include=gcc,libc6-dev,musl-tools,make \
		"$SUITE" "$dir/rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
	umount_under "$dir"
	log "builder: cleaning apt lists, caches and logs"
	local r=$dir/rootfs
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
		"$r"/var/cache/apt/archives/partial/* "$r"/var/cache/debconf/*-old \
		"$r"/var/log/apt/* "$r"/var/log/dpkg.log "$r"/var/log/bootstrap.log "$r"/var/log/alternatives.log \
		"$r"/debootstrap "$r"/dev/* "$r"/proc/* "$r"/sys/* "$r"/tmp/* "$r"/var/tmp/*
	chmod 1777 "$r/tmp" "$r/var/tmp"
	log "builder: writing $out"
	tar --numeric-owner --sort=name --xattrs -C "$r" -czf "$out.tmp" .
	mv "$out.tmp" "$out"
	rm -rf "$dir"
	trap - EXIT
	log "builder: $(du -h "$out" | cut -f1) $out"
}

umount_under() { # dir: unmount everything mounted below dir, deepest first
	local m
	for m in $(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" || log "warning: could not unmount $m"
	done
}

make_busybox() {
	local out=$CACHE/busybox.tar
	# Bump when the recipe below changes, so a cached tarball is made again.
	local recipe="busybox-runtime-2"
	if [ -s "$out" ] && [ "$(cat "$CACHE/busybox.recipe" 2>/dev/null)" = "$recipe" ]; then
		log "busybox: cached $out"
		return
	fi
	local bb=/bin/busybox
	if ! dpkg -s busybox-static >/dev/null 2>&1; then
		log "installing busybox-static"
		DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >&2 || die "could not install busybox-static"
	fi
	bb=$(dpkg -L busybox-static | grep -E '/bin/busybox$' | head -n 1)
	[ -x "$bb" ] || die "busybox-static installed but its /bin/busybox is missing"
	local dir r
	dir=$(mktemp -d "$CACHE/busybox.XXXXXX")
	trap 'rm -rf "'"$dir"'" "'"$out"'.tmp"' EXIT
	r=$dir/rootfs
	log "busybox: assembling rootfs from $bb ($(dpkg-query -W -f='${Version}' busybox-static))"
	install -d -m 0755 "$r" "$r/bin" "$r/sbin" "$r/usr" "$r/usr/bin" "$r/usr/sbin" \
		"$r/etc" "$r/home" "$r/var" "$r/dev" "$r/proc" "$r/sys"
	install -d -m 0700 "$r/root"
	install -d -m 1777 "$r/tmp"
	install -m 0755 "$bb" "$r/bin/busybox"
	local applet n=0
	for applet in $("$bb" --list-full); do
		[ "$applet" = bin/busybox ] && continue
		# A runtime base carries no package manager: leave out the applet links
		# that would install software into a running container.
		case ${applet##*/} in dpkg | dpkg-deb | rpm | rpm2cpio) continue ;; esac
		[ -e "$r/$applet" ] || [ -L "$r/$applet" ] && continue
		install -d -m 0755 "$r/$(dirname "$applet")"
		ln -s /bin/busybox "$r/$applet"
		n=$((n + 1))
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
	chmod 0644 "$r/etc/passwd" "$r/etc/group"
	chown -R 0:0 "$r"
	log "busybox: $n applet links; writing $out"
	tar --numeric-owner --sort=name -C "$r" -cf "$out.tmp" .
	mv "$out.tmp" "$out"
	echo "$recipe" >"$CACHE/busybox.recipe"
	rm -rf "$dir"
	trap - EXIT
	log "busybox: $(du -h "$out" | cut -f1) $out"
}

# make_busybox_arm64: the same busybox rootfs for linux/arm64, from Debian's
# busybox-static:arm64 (apt adds the arm64 architecture for the download; the
# package is never installed). The applet links are the host busybox's list,
# which is the same package version. Imported with --platform linux/arm64, so
# busybox:latest becomes an index of amd64 and arm64 (multi-platform tests).
make_busybox_arm64() {
	local out=$CACHE/busybox-arm64.tar
	local recipe="busybox-arm64-1"
	if [ -s "$out" ] && [ "$(cat "$CACHE/busybox-arm64.recipe" 2>/dev/null)" = "$recipe" ]; then
		log "busybox arm64: cached $out"
		return
	fi
	local dir r deb list
	dir=$(mktemp -d "$CACHE/busybox-arm64.XXXXXX")
	trap 'rm -rf "'"$dir"'" "'"$out"'.tmp"' EXIT
	if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
		log "busybox arm64: adding the arm64 architecture to apt (downloads only)"
		dpkg --add-architecture arm64
		apt-get -o DPkg::Lock::Timeout=300 update >&2 || die "apt-get update failed"
	fi
	(cd "$dir" && apt-get -o DPkg::Lock::Timeout=300 download busybox-static:arm64 >&2) || die "could not download busybox-static:arm64"
	deb=$(ls "$dir"/busybox-static_*_arm64.deb)
	dpkg-deb -x "$deb" "$dir/deb"
	[ -f "$dir/deb/bin/busybox" ] || die "busybox-static:arm64 has no /bin/busybox"
	list=$(/bin/busybox --list-full)
	r=$dir/rootfs
	log "busybox arm64: assembling rootfs from $(basename "$deb")"
	install -d -m 0755 "$r" "$r/bin" "$r/sbin" "$r/usr" "$r/usr/bin" "$r/usr/sbin" \
		"$r/etc" "$r/home" "$r/var" "$r/dev" "$r/proc" "$r/sys"
	install -d -m 0700 "$r/root"
	install -d -m 1777 "$r/tmp"
	install -m 0755 "$dir/deb/bin/busybox" "$r/bin/busybox"
	local applet
	for applet in $list; do
		[ "$applet" = bin/busybox ] && continue
		case ${applet##*/} in dpkg | dpkg-deb | rpm | rpm2cpio) continue ;; esac
		[ -e "$r/$applet" ] || [ -L "$r/$applet" ] && continue
		install -d -m 0755 "$r/$(dirname "$applet")"
		ln -s /bin/busybox "$r/$applet"
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
	chmod 0644 "$r/etc/passwd" "$r/etc/group"
	chown -R 0:0 "$r"
	tar --numeric-owner --sort=name -C "$r" -cf "$out.tmp" .
	mv "$out.tmp" "$out"
	echo "$recipe" >"$CACHE/busybox-arm64.recipe"
	rm -rf "$dir"
	trap - EXIT
	log "busybox arm64: $(du -h "$out" | cut -f1) $out"
}

mkdir -p "$CACHE"
make_busybox
make_busybox_arm64
make_builder

if [ -n "$IMPORT_BIN" ]; then
	# An import of the same tarball gives the same image (it is dated by the
	# tarball's mtime), so a store that already holds it under the same digest
	# needs nothing: the digest of each import is remembered per store.
	stamps=$CACHE/imported
	mkdir -p "$stamps"
	import_one() { # tarball name
		local key stamp digest
		key=$(printf '%s\n' "$IMPORT_ROOT" "$2" "$1" "$(stat -c '%s %Y' "$1")" | sha256sum | cut -c1-32)
		stamp=$stamps/$key
		if [ -s "$stamp" ] && "$IMPORT_BIN" --root "$IMPORT_ROOT" inspect "$(cat "$stamp")" >/dev/null 2>&1 &&
			"$IMPORT_BIN" --root "$IMPORT_ROOT" inspect "$2" 2>/dev/null | grep -q "\"digest\": \"$(cat "$stamp")\""; then
			log "$2: already imported into $IMPORT_ROOT"
			return
		fi
		digest=$("$IMPORT_BIN" --root "$IMPORT_ROOT" import "$1" "$2")
		echo "$digest" >"$stamp"
		log "imported $2 ($digest)"
	}
	import_one "$CACHE/builder.tar.gz" "$BUILDER_NAME"
	import_one "$CACHE/busybox.tar" "$BUSYBOX_NAME"
	# Joins busybox:latest as its linux/arm64 image (an index); the import of the
	# amd64 tarball above replaces the name, so this one runs every time (~1 s).
	digest=$("$IMPORT_BIN" --root "$IMPORT_ROOT" import --platform linux/arm64 "$CACHE/busybox-arm64.tar" "$BUSYBOX_NAME")
	log "imported $BUSYBOX_NAME for linux/arm64 ($digest)"
fi
log "done: $CACHE/builder.tar.gz $CACHE/busybox.tar"
