package layer

import (
	"errors"

	"golang.org/x/sys/unix"
)

// OpenBeneath opens rel (slash-separated, relative to the directory open as
// dir; "" is dir itself) with openat2(2), refusing every symlink, "..", magic
// link and mount crossing on the way, including the last component: what it
// opens is below dir whatever the tree holds. flags are open(2) flags
// (O_CLOEXEC and O_NOFOLLOW are added). The caller closes the descriptor.
//
// Code that cleans up or finishes a tree that hostile input wrote (a RUN's
// upper directory, an unpacked layer) resolves paths with it and then acts
// relative to the descriptor (fstatat, unlinkat, utimensat with
// AT_SYMLINK_NOFOLLOW), never by a host path that the tree's symlinks could
// redirect.
func OpenBeneath(dir int, rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	for {
		fd, err := unix.Openat2(dir, rel, how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}
