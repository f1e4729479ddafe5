package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestSaveToStdout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: import keeps owners")
	}
	root := t.TempDir()
	rootfs := t.TempDir()
	if err := os.WriteFile(filepath.Join(rootfs, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := slimbuild(t, root, "import", rootfs, "x:1"); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	out, stderr, err := slimbuild(t, root, "save", "-o", "-", "x:1")
	if err != nil {
		t.Fatalf("save -o -: %v\n%s", err, stderr)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(out)), nil })
	if err != nil {
		t.Fatalf("stdout is not a docker-archive (%d bytes): %v", len(out), err)
	}
	if len(m) != 1 || strings.Join(m[0].RepoTags, ",") != "docker.io/library/x:1" {
		t.Errorf("manifest.json = %+v", m)
	}
	if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
		t.Errorf("save -o - left files in the working directory: %v", ents)
	}
}
