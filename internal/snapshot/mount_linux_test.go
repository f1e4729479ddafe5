package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireOverlay skips unless the test can mount overlayfs.
func requireOverlay(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fss), "\toverlay\n") {
		t.Skip("kernel has no overlayfs (/proc/filesystems)")
	}
}

// scratch returns a fresh temp dir and, at cleanup, fails the test if anything is still
// mounted beneath it (after trying to unmount it, so nothing is left behind).
func scratch(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	t.Cleanup(func() {
		points, err := mountPoints()
		if err != nil {
			t.Fatal(err)
		}
		for p := range points {
			if p == dir || strings.HasPrefix(p, dir+"/") {
				t.Errorf("%s is still mounted", p)
				_ = unix.Unmount(p, unix.MNT_DETACH)
			}
		}
	})
	return dir
}

// mountT mounts ms on a new directory and unmounts it at cleanup.
func mountT(t *testing.T, base string, ms []Mount) string {
	t.Helper()
	target := filepath.Join(base, "merged")
	mkdirs(t, target)
	if err := MountAll(ms, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Error(err)
		}
	})
	return target
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	mkdirs(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: want not exist, got err=%v", path, err)
	}
}

func assertWhiteout(t *testing.T, path string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("whiteout %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("%s: mode %o rdev %d, want a 0:0 character device", path, st.Mode, st.Rdev)
	}
}

func TestOverlayMount(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	l1, l2 := filepath.Join(base, "l1"), filepath.Join(base, "l2")
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	mkdirs(t, l1, l2, upper, work)

	// l1 (bottom): files that l2 (top) hides with a whiteout and an opaque directory.
	writeFile(t, filepath.Join(l1, "gone"), "bottom")
	writeFile(t, filepath.Join(l1, "keep"), "bottom")
	writeFile(t, filepath.Join(l1, "opaque/old"), "bottom")
	writeFile(t, filepath.Join(l1, "tree/a"), "bottom")
	writeFile(t, filepath.Join(l1, "del"), "bottom")
	if err := unix.Mknod(filepath.Join(l2, "gone"), unix.S_IFCHR|0o000, 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(l2, "opaque/new"), "top")
	if err := unix.Setxattr(filepath.Join(l2, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(l2, "keep"), "top")

	merged := mountT(t, base, Overlay([]string{l2, l1}, upper, work))

	t.Run("whiteout in lower hides file", func(t *testing.T) {
		assertMissing(t, filepath.Join(merged, "gone"))
	})
	t.Run("opaque dir hides lower contents", func(t *testing.T) {
		assertMissing(t, filepath.Join(merged, "opaque/old"))
		if got := readFile(t, filepath.Join(merged, "opaque/new")); got != "top" {
			t.Errorf("opaque/new = %q", got)
		}
	})
	t.Run("topmost lower wins", func(t *testing.T) {
		if got := readFile(t, filepath.Join(merged, "keep")); got != "top" {
			t.Errorf("keep = %q, want top", got)
		}
	})
	t.Run("writes land in upper", func(t *testing.T) {
		writeFile(t, filepath.Join(merged, "tree/b"), "written")
		if got := readFile(t, filepath.Join(upper, "tree/b")); got != "written" {
			t.Errorf("upper/tree/b = %q", got)
		}
		assertMissing(t, filepath.Join(upper, "tree/a")) // only the parent dir is copied up
		assertMissing(t, filepath.Join(l1, "tree/b"))
	})
	t.Run("deletion makes a whiteout in upper", func(t *testing.T) {
		if err := os.Remove(filepath.Join(merged, "del")); err != nil {
			t.Fatal(err)
		}
		assertMissing(t, filepath.Join(merged, "del"))
		assertWhiteout(t, filepath.Join(upper, "del"))
		if got := readFile(t, filepath.Join(l1, "del")); got != "bottom" {
			t.Errorf("lower changed: %q", got)
		}
	})
	t.Run("renaming a lower dir is refused so upper never holds redirects", func(t *testing.T) {
		err := os.Rename(filepath.Join(merged, "tree"), filepath.Join(merged, "moved"))
		if !errors.Is(err, unix.EXDEV) {
			t.Errorf("rename of lower dir: err = %v, want EXDEV (redirect_dir=off)", err)
		}
	})
}

func TestBindUpperWhenNoLowers(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	upper := filepath.Join(base, "upper")
	mkdirs(t, upper)
	merged := mountT(t, base, Overlay(nil, upper, filepath.Join(base, "work")))
	writeFile(t, filepath.Join(merged, "f"), "x")
	if got := readFile(t, filepath.Join(upper, "f")); got != "x" {
		t.Errorf("upper/f = %q", got)
	}
}

func TestReadOnlyMount(t *testing.T) {
	requireOverlay(t)
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d lowers", n), func(t *testing.T) {
			base := scratch(t)
			var lowers []string
			for i := n; i > 0; i-- {
				l := filepath.Join(base, fmt.Sprint("l", i))
				writeFile(t, filepath.Join(l, fmt.Sprint("f", i)), fmt.Sprint(i))
				lowers = append(lowers, l)
			}
			merged := mountT(t, base, ReadOnly(lowers))
			for i := 1; i <= n; i++ {
				if got := readFile(t, filepath.Join(merged, fmt.Sprint("f", i))); got != fmt.Sprint(i) {
					t.Errorf("f%d = %q", i, got)
				}
			}
			err := os.WriteFile(filepath.Join(merged, "new"), nil, 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("write: err = %v, want EROFS", err)
			}
		})
	}
}

func TestManyLongLowers(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	// A deep common parent makes the absolute lowerdir list far longer than a page.
	parent := filepath.Join(base, strings.Repeat("p", 200), strings.Repeat("q", 200), "snapshots")
	const n = 60
	var lowers []string
	for i := n; i >= 1; i-- { // topmost first
		l := filepath.Join(parent, fmt.Sprint(i), "fs")
		writeFile(t, filepath.Join(l, fmt.Sprint("f", i)), fmt.Sprint(i))
		writeFile(t, filepath.Join(l, "top"), fmt.Sprint(i))
		lowers = append(lowers, l)
	}
	upper, work := filepath.Join(parent, "up", "fs"), filepath.Join(parent, "up", "work")
	mkdirs(t, upper, work)
	ms := Overlay(lowers, upper, work)
	if l := len(strings.Join(ms[0].Options, ",")); l < 3*unix.Getpagesize() {
		t.Fatalf("test data too short (%d bytes) to exercise the page limit", l)
	}
	cwd, _ := os.Getwd()
	merged := mountT(t, base, ms)
	if now, _ := os.Getwd(); now != cwd {
		t.Errorf("process working directory changed to %q", now)
	}
	for i := 1; i <= n; i++ {
		if got := readFile(t, filepath.Join(merged, fmt.Sprint("f", i))); got != fmt.Sprint(i) {
			t.Errorf("f%d = %q", i, got)
		}
	}
	if got := readFile(t, filepath.Join(merged, "top")); got != fmt.Sprint(n) {
		t.Errorf("top = %q, want the topmost lower's %d", got, n)
	}
	writeFile(t, filepath.Join(merged, "w"), "w")
	if got := readFile(t, filepath.Join(upper, "w")); got != "w" {
		t.Errorf("upper/w = %q", got)
	}

	t.Run("read-only", func(t *testing.T) {
		merged := filepath.Join(base, "ro")
		mkdirs(t, merged)
		if err := MountAll(ReadOnly(lowers), merged); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := Unmount(merged); err != nil {
				t.Error(err)
			}
		}()
		if got := readFile(t, filepath.Join(merged, "f1")); got != "1" {
			t.Errorf("f1 = %q", got)
		}
	})
}

func TestTooManyLayersFailsCleanly(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	var lowers []string
	for i := 0; i < 40; i++ { // long relative names too: no common parent helps
		l := filepath.Join(base, fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 120)))
		mkdirs(t, l)
		lowers = append(lowers, l)
	}
	target := filepath.Join(base, "merged")
	mkdirs(t, target)
	err := MountAll(ReadOnly(lowers), target)
	if err == nil {
		_ = Unmount(target)
		t.Fatal("mount of a too long lowerdir list succeeded")
	}
	if !strings.Contains(err.Error(), "exceeds a page") {
		t.Errorf("err = %v", err)
	}
}

func TestUnmount(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	src, target := filepath.Join(base, "src"), filepath.Join(base, "target")
	mkdirs(t, src, target)

	t.Run("not mounted is fine", func(t *testing.T) {
		if err := Unmount(target); err != nil {
			t.Error(err)
		}
	})
	t.Run("stacked mounts all go", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			if err := MountAll(ReadOnly([]string{src}), target); err != nil {
				t.Fatal(err)
			}
		}
		if err := Unmount(target); err != nil {
			t.Fatal(err)
		}
		if m, _ := isMountPoint(target); m {
			t.Error("still mounted")
		}
	})
	t.Run("busy mount is detached", func(t *testing.T) {
		old := busyDelay
		busyDelay = 0
		t.Cleanup(func() { busyDelay = old })
		if err := MountAll(Overlay(nil, src, ""), target); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(target, "."))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := Unmount(target); err != nil {
			t.Fatal(err)
		}
		if m, _ := isMountPoint(target); m {
			t.Error("still mounted")
		}
	})
}
