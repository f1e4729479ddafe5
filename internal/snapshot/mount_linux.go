package snapshot

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// flagOptions are the options that are mount(2) flags rather than file system data.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":          {false, unix.MS_RDONLY},
	"rw":          {true, unix.MS_RDONLY},
	"bind":        {false, unix.MS_BIND},
	"rbind":       {false, unix.MS_BIND | unix.MS_REC},
	"nosuid":      {false, unix.MS_NOSUID},
	"suid":        {true, unix.MS_NOSUID},
	"nodev":       {false, unix.MS_NODEV},
	"dev":         {true, unix.MS_NODEV},
	"noexec":      {false, unix.MS_NOEXEC},
	"exec":        {true, unix.MS_NOEXEC},
	"noatime":     {false, unix.MS_NOATIME},
	"relatime":    {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
}

// parseOptions splits options into mount flags and the comma-joined data string.
func parseOptions(options []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

func mountOne(m Mount, target string) error {
	flags, data := parseOptions(m.Options)
	if m.Type == "bind" || flags&unix.MS_BIND != 0 {
		flags |= unix.MS_BIND
		if err := unix.Mount(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return err
		}
		// A bind ignores every other flag; they take effect by a remount.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unmountOnce(target)
				return fmt.Errorf("remounting bind with %v: %w", m.Options, err)
			}
		}
		return nil
	}
	if len(data) < unix.Getpagesize() {
		return unix.Mount(m.Source, target, m.Type, flags, data)
	}
	if m.Type != "overlay" {
		return fmt.Errorf("mount data of %d bytes exceeds a page", len(data))
	}
	dir, short, err := relativeOverlayData(m.Options)
	if err != nil {
		return err
	}
	_, data = parseOptions(short)
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("overlay data of %d bytes exceeds a page even relative to %q: too many layers", len(data), dir)
	}
	return mountFromDir(dir, m.Source, target, m.Type, flags, data)
}

// relativeOverlayData rewrites lowerdir, upperdir and workdir relative to the deepest
// directory containing all of them, and returns that directory.
func relativeOverlayData(options []string) (string, []string, error) {
	var paths []string
	for _, o := range options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			paths = append(paths, strings.Split(v, ":")...)
		case "upperdir", "workdir":
			paths = append(paths, v)
		}
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return "", nil, fmt.Errorf("overlay path %q is not absolute", p)
		}
	}
	dir := commonDir(paths)
	rel := func(p string) string {
		r, err := filepath.Rel(dir, p)
		if err != nil { // cannot happen: dir is a prefix of every path
			return p
		}
		return r
	}
	out := make([]string, 0, len(options))
	for _, o := range options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			ls := strings.Split(v, ":")
			for i := range ls {
				ls[i] = rel(ls[i])
			}
			o = k + "=" + strings.Join(ls, ":")
		case "upperdir", "workdir":
			o = k + "=" + rel(v)
		}
		out = append(out, o)
	}
	return dir, out, nil
}

// commonDir returns the deepest directory that is an ancestor of (or equal to the parent
// of) every path; paths are absolute.
func commonDir(paths []string) string {
	common := filepath.Dir(filepath.Clean(paths[0]))
	for _, p := range paths[1:] {
		p = filepath.Clean(p)
		for common != "/" && !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
		}
	}
	return common
}

// mountFromDir calls mount(2) with dir as the working directory of the calling thread only.
func mountFromDir(dir, source, target, fstype string, flags uintptr, data string) error {
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked: its file system context diverges from the process's,
		// so the runtime must discard it when this goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unsharing fs context: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("changing to %q: %w", dir, err)
			return
		}
		errc <- unix.Mount(source, target, fstype, flags, data)
	}()
	return <-errc
}

func unmountOnce(target string) error {
	return unix.Unmount(target, unix.MNT_DETACH)
}

// Tunables of Unmount, variables so tests can shorten them.
var (
	busyRetries = 10
	busyDelay   = 50 * time.Millisecond
)

// Unmount unmounts target (lazily if busy, after retries), and returns an error only
// if target is still a mount point afterwards. Every mount stacked on target is removed;
// a target that is not mounted is not an error.
func Unmount(target string) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("unmounting %q: %w", target, err)
	}
	var lastErr error
	// Several mounts may be stacked on target; each iteration removes one.
	for stacked := 0; stacked < 64; stacked++ {
		err := unix.Unmount(abs, 0)
		for i := 0; errors.Is(err, unix.EBUSY) && i < busyRetries; i++ {
			time.Sleep(busyDelay)
			err = unix.Unmount(abs, 0)
		}
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(abs, unix.MNT_DETACH)
		}
		if err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				lastErr = err
			}
			break
		}
	}
	mounted, err := isMountPoint(abs)
	if err != nil {
		return fmt.Errorf("unmounting %q: %w", target, err)
	}
	if mounted {
		if lastErr == nil {
			lastErr = errors.New("still mounted")
		}
		return fmt.Errorf("unmounting %q: %w", target, lastErr)
	}
	return nil
}

// isMountPoint reports whether path is a mount point in /proc/self/mountinfo.
func isMountPoint(path string) (bool, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	points, err := mountPoints()
	if err != nil {
		return false, err
	}
	_, ok := points[path]
	return ok, nil
}

// mountPoints returns the set of mount points of this mount namespace.
func mountPoints() (map[string]struct{}, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	points := make(map[string]struct{}, len(infos))
	for _, i := range infos {
		points[i.Mountpoint] = struct{}{}
	}
	return points, nil
}

// MountsUnder lists the mount points at or below dir in this mount namespace,
// for callers that check nothing was left mounted.
func MountsUnder(dir string) ([]string, error) {
	points, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var out []string
	for mp := range points {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Strings(out)
	return out, nil
}
