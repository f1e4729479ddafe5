package slim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slimbuild/slimbuild/internal/slim/slimtest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestExplainChain(t *testing.T) {
	f := scriptFixture(t)
	res, err := Closure(f.root, v1.Config{Entrypoint: []string{"/app/run.sh"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	libc := "/usr/lib/x86_64-linux-gnu/libc.so.6"
	tests := []struct{ path, want string }{
		{"/app/run.sh", "entrypoint"},
		{"/usr/bin/helper2", "script command of /usr/local/bin/tool ← script command of /app/run.sh ← entrypoint"},
		{"/usr/bin/libcmd", "script command of /opt/lib.sh ← script path of /app/run.sh ← entrypoint"},
		{"/usr/bin/dash", "#! of /app/run.sh ← entrypoint"},
		{libc, "DT_NEEDED of /usr/bin/dash ← #! of /app/run.sh ← entrypoint"},
		{"/etc/passwd", "nsswitch.conf of /etc/nsswitch.conf (passwd: files)"},
		{"/etc/unused.conf", ""},
	}
	for _, tc := range tests {
		if got := res.Chain(tc.path); got != tc.want {
			t.Errorf("Chain(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
	var b bytes.Buffer
	if err := WriteExplain(&b, res); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != len(res.Entries)+len(res.Notes) {
		t.Errorf("explain has %d lines for %d entries and %d notes", n, len(res.Entries), len(res.Notes))
	}
	if !strings.Contains(b.String(), "file    /usr/bin/helper2\tscript command of /usr/local/bin/tool ← ") {
		t.Errorf("explain lacks helper2's line:\n%s", b.String())
	}
}

func TestCountTreeDropped(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"/a/keep", "/a/drop", "/b/c/drop2", "/keep2"} {
		slimtest.WriteFile(t, root, p, "12345", 0o644)
	}
	if err := os.Symlink("keep", filepath.Join(root, "a", "link")); err != nil {
		t.Fatal(err)
	}
	kept := withParents(&Result{Entries: []Entry{{Path: "/a/keep"}, {Path: "/keep2"}}})
	n, size, dropped, err := countTree(root, kept)
	if err != nil {
		t.Fatal(err)
	}
	if n != 8 || size != 20 {
		t.Errorf("countTree = %d paths, %d bytes; want 8, 20", n, size)
	}
	if diff := cmp.Diff([]string{"/a/drop", "/a/link", "/b", "/b/c", "/b/c/drop2"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}
