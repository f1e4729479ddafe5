package runtime

import (
	"fmt"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// OpenInRoot opens name for reading, resolved inside root: symlinks resolve as if
// root were /, in one walk that nothing can swap a link into (pathrs-lite). What
// it reads may be hostile (an image's or a tar context's files, unpacked with
// their FIFOs and devices), so only a regular file is opened: a FIFO is refused
// instead of waited on and a device such as /dev/urandom is never read. With
// max > 0, a file of more than max bytes is refused too; the caller still bounds
// its reads, since the file may grow. A missing file's error wraps
// fs.ErrNotExist.
func OpenInRoot(root, name string, max int64) (*os.File, error) {
	h, err := pathrs.OpenInRoot(root, name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", name, fi.Mode().Type())
	}
	if max > 0 && fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", name, fi.Size(), max)
	}
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
}
