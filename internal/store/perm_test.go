package store

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// An existing store made by an earlier version (0755 everywhere) is made
// private by the next Open.
func TestOpenMakesStorePrivate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Mkdir(filepath.Join(root, "mounts"), 0o755); err != nil {
		t.Fatal(err)
	}
	dirs := []string{"", "blobs", "blobs/sha256", "layers", "cache", "tmp", "mounts"}
	for _, d := range dirs {
		if err := os.Chmod(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range dirs {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); got != 0o700 {
			t.Errorf("%s/%s: mode %o after Open, want 0700", root, d, got)
		}
	}
}

func TestOpenRefusesAFileOrSymlinkedDirs(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Error("Open accepted a regular file as the store root")
	}
	root := filepath.Join(base, "store")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	if err := os.Chmod(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(root, "layers")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err == nil || !strings.Contains(err.Error(), "layers") {
		t.Errorf("Open with layers/ a symlink: %v, want an error naming layers", err)
	}
	if fi, err := os.Stat(elsewhere); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the symlink's target was touched: %v %v", fi.Mode(), err)
	}
}

// asNobody runs argv as uid/gid 65534 with no supplementary groups and returns
// its combined output and error.
func asNobody(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Another user can neither read a blob or an unpacked file nor run a setuid-root
// program from an unpacked layer. The first half shows the attack works on a
// store as earlier versions left it (0755), so the second half proves Open's fix.
func TestStoreUnreadableByOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacks a setuid-root file and runs commands as uid 65534")
	}
	// The path down to the store must be open to others, or the test proves nothing.
	tmp := t.TempDir()
	for p := tmp; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(tmp, "store")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	idBin, err := os.ReadFile("/usr/bin/id")
	if err != nil {
		t.Skip("needs /usr/bin/id")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"suid-id", 0o4755, idBin}, {"etc/hostname", 0o644, []byte("box\n")}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	info := writeLayer(t, s, Gzip, buf.Bytes())
	l, err := s.Layer(info)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.LayerDir(l)
	if err != nil {
		t.Fatal(err)
	}
	blob := s.BlobPath(info.Digest)
	suid := filepath.Join(dir, "suid-id")
	probes := [][]string{
		{"/bin/cat", blob},
		{"/bin/cat", filepath.Join(dir, "etc/hostname")},
		{"/bin/ls", filepath.Join(root, "layers")},
		{suid, "-u"},
	}

	// As an earlier version left it.
	for _, d := range []string{"", "blobs", "blobs/sha256", "layers", "tmp", "cache"} {
		if err := os.Chmod(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, argv := range probes {
		if out, err := asNobody(argv...); err != nil {
			t.Fatalf("control: %v as uid 65534 on a 0755 store failed (%v: %.200s); the machine cannot show the attack", argv, err, out)
		}
	}
	if out, _ := asNobody(suid, "-u"); strings.TrimSpace(out) != "0" {
		t.Fatalf("control: the setuid file ran with euid %q, want 0 (nosuid filesystem?)", out)
	}

	// The next Open closes the store.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, argv := range probes {
		out, err := asNobody(argv...)
		if err == nil {
			t.Errorf("%v as uid 65534 succeeded: %.80q", argv, out)
			continue
		}
		if !strings.Contains(out, "Permission denied") && !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%v as uid 65534: %v %s, want permission denied", argv, err, out)
		}
	}
}
