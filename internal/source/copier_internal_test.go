package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requireRoot skips unless we are root: the copier sets owners (CI is root).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("placing files with their owners needs root")
	}
}

// ownerRecorder is a Chowner that records owners (host path -> "uid:gid")
// instead of setting them, so that the copier is tested without root. It
// fails a path that is not under root, or whose parent directories include
// a symlink, as a copier must never hand one over.
type ownerRecorder struct {
	root   string
	owners map[string]string
}

func recordOwners(root string) *ownerRecorder {
	return &ownerRecorder{root: root, owners: map[string]string{}}
}

func (r *ownerRecorder) lchown(p string, uid, gid int) error {
	if !strings.HasPrefix(p, r.root+"/") || p != filepath.Clean(p) {
		return fmt.Errorf("owner set outside the root %s: %s", r.root, p)
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err != nil || d != filepath.Dir(p) {
		return fmt.Errorf("owner set through a symlink: %s (%q, %v)", p, d, err)
	}
	if _, err := os.Lstat(p); err != nil {
		return err
	}
	r.owners[p] = fmt.Sprintf("%d:%d", uid, gid)
	return nil
}

// treeOf lists dir: "path mode uid:gid" per entry, directories ending in "/".
// With owners (host path -> uid:gid), the owners are those recorded, "-" for
// an entry the copier gave none.
func treeOf(t *testing.T, dir string, owners map[string]string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			rel += "/"
		}
		st := fi.Sys().(*syscall.Stat_t)
		owner := itoa(st.Uid) + ":" + itoa(st.Gid)
		if owners != nil {
			if owner = owners[p]; owner == "" {
				owner = "-"
			}
		}
		out = append(out, rel+" "+strings.TrimPrefix(fi.Mode().Perm().String(), "-")+" "+owner)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestCopierContained: a destination through a symlink in the root, absolute
// or relative, is resolved inside the root; nothing outside it is written,
// and owners are given to paths resolved inside it (a symlink copied gets its
// own, not its target's). The directory comes first, so that the copier makes
// the destination's directories for it (a file's destination is resolved
// before they are made).
func TestCopierContained(t *testing.T) {
	outer := t.TempDir()
	host := filepath.Join(outer, "host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(outer, "root")
	writeTree(t, root, map[string]string{"etc/keep": "k"})
	if err := os.Symlink("/"+strings.TrimPrefix(host, "/"), filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../host", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{"a.txt": "a", "dir/x": "x"})
	hostFile := filepath.Join(outer, "hostfile")
	if err := os.WriteFile(hostFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostFile, filepath.Join(ctxDir, "dir/lnk")); err != nil {
		t.Fatal(err)
	}
	c := openTestContext(t, ctxDir)
	m, _ := NewMatcher(false, nil)
	items, err := m.Match(ctxDir, []string{"dir", "a.txt"}, c)
	if err != nil {
		t.Fatal(err)
	}
	rec := recordOwners(root)
	cp := NewCopier(root, CopyOptions{ResetOwner: true, Context: c, Lchown: rec.lchown})
	for _, dest := range []string{"/abs/", "/rel/", "/abs/sub/deeper/", "/rel"} {
		for _, it := range items {
			if err := cp.CopyItem(it, dest, true, false); err != nil {
				t.Logf("%s -> %s: %v", it.rel, dest, err)
			}
		}
	}
	if entries, _ := os.ReadDir(host); len(entries) != 0 {
		t.Errorf("the copy wrote outside the root: %d entries in %s", len(entries), host)
	}
	for _, p := range []string{"abs", "rel"} {
		hp := filepath.Join(root, p)
		if fi, err := os.Lstat(hp); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink (%v)", hp, err)
		}
		if _, ok := rec.owners[hp]; ok {
			t.Errorf("the copy set the owner of the symlink %s it only went through", hp)
		}
	}
	for _, p := range []string{"sub", "sub/deeper", "sub/deeper/x", "sub/deeper/lnk", "sub/deeper/a.txt"} {
		if want := filepath.Join(root, host, p); rec.owners[want] != "0:0" {
			t.Errorf("owner of %s = %q, want 0:0 (owners %v)", want, rec.owners[want], rec.owners)
		}
	}
}

// TestCopierPlacesAndExtracts: COPY gives context files root's owner (or
// --chown's) and --chmod's mode; ADD unpacks an archive with layer's
// extractor into what is there, with the archive's owners (or --chown's), and
// --chmod not applied to what it holds; a file that is not an archive is
// copied as is. Each case runs twice: setting owners (as root), and
// recording them (as any user; what was there before the copy has none).
func TestCopierPlacesAndExtracts(t *testing.T) {
	ctxDir := t.TempDir()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 1234})
	tw.WriteHeader(&tar.Header{Name: "pkg/inner.txt", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 1234, Size: 2})
	tw.Write([]byte("in"))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	writeTree(t, ctxDir, map[string]string{"a.txt": "a", "a.tgz": gz.String(), "notatar.gz": "text"})
	c := openTestContext(t, ctxDir)
	m, _ := NewMatcher(false, nil)
	items, err := m.Match(ctxDir, []string{"a.txt", "a.tgz", "notatar.gz"}, c)
	if err != nil {
		t.Fatal(err)
	}
	chmod, err := ParseChmod("0700")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts CopyOptions
		want []string
	}{
		{
			name: "plain",
			opts: CopyOptions{ResetOwner: true, Context: c},
			want: []string{
				"dst/ rwxr-xr-x 0:0", "dst/a.txt rw-r--r-- 0:0", "dst/keep rw-r--r-- 0:0",
				"dst/notatar.gz rw-r--r-- 0:0", "dst/pkg/ rwxr-x--- 1234:1234", "dst/pkg/inner.txt rw-r----- 1234:1234",
			},
		},
		{
			name: "chown chmod",
			opts: CopyOptions{Owner: Owner{set: true, uid: 7, gid: 8}, Chmod: chmod, ResetOwner: true, Context: c},
			want: []string{
				"dst/ rwxr-xr-x 0:0", "dst/a.txt rwx------ 7:8", "dst/keep rw-r--r-- 0:0",
				"dst/notatar.gz rwx------ 7:8", "dst/pkg/ rwxr-x--- 7:8", "dst/pkg/inner.txt rw-r----- 7:8",
			},
		},
	} {
		for _, record := range []bool{false, true} {
			name := tc.name + "/lchown"
			if record {
				name = tc.name + "/recorded"
			}
			t.Run(name, func(t *testing.T) {
				if !record {
					requireRoot(t)
				}
				root := t.TempDir()
				writeTree(t, root, map[string]string{"dst/keep": "k"})
				opts, want := tc.opts, tc.want
				var owners map[string]string
				if record {
					rec := recordOwners(root)
					opts.Lchown, owners = rec.lchown, rec.owners
					want = slices.Clone(want)
					for i, w := range want {
						if strings.HasPrefix(w, "dst/ ") || strings.HasPrefix(w, "dst/keep ") {
							want[i] = w[:strings.LastIndex(w, " ")] + " -"
						}
					}
				}
				cp := NewCopier(root, opts)
				for _, it := range items {
					if err := cp.CopyItem(it, "/dst/", true, true); err != nil {
						t.Fatal(err)
					}
				}
				if diff := cmp.Diff(want, treeOf(t, root, owners)); diff != "" {
					t.Errorf("tree (-want +got):\n%s", diff)
				}
				if b, _ := os.ReadFile(filepath.Join(root, "dst/pkg/inner.txt")); string(b) != "in" {
					t.Errorf("inner.txt = %q", b)
				}
			})
		}
	}
}
