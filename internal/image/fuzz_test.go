package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarWith(names ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
	}
	tw.Close()
	return buf.Bytes()
}

func TestExtractTarRefusesEscapes(t *testing.T) {
	for _, n := range []string{"../evil", "a/../../evil", "blobs/../../evil"} {
		base := t.TempDir()
		src := filepath.Join(base, "a.tar")
		os.WriteFile(src, tarWith(n), 0o644)
		dir := filepath.Join(base, "out")
		os.Mkdir(dir, 0o755)
		if err := extractTar(src, dir); err == nil {
			t.Errorf("extractTar accepted %q", n)
		}
		if _, err := os.Stat(filepath.Join(base, "evil")); err == nil {
			t.Errorf("%q escaped the target", n)
		}
	}
}

// FuzzExtractTar: whatever the archive, nothing is written outside the target.
func FuzzExtractTar(f *testing.F) {
	f.Add(tarWith("oci-layout", "index.json", "blobs/sha256/ab"))
	f.Add(tarWith("/abs", "./rel", "../up"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		src := filepath.Join(base, "in.tar")
		os.WriteFile(src, data, 0o644)
		dir := filepath.Join(base, "out")
		os.Mkdir(dir, 0o755)
		_ = extractTar(src, dir)
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if e.Name() != "in.tar" && e.Name() != "out" {
				t.Fatalf("wrote %q outside the target", e.Name())
			}
		}
	})
}

func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"busybox", "localhost:5000/x", "a:b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeName(s)
		if err != nil {
			return
		}
		// Normalising is idempotent and yields something the registry client parses.
		n2, err := NormalizeName(n)
		if err != nil || n2 != n {
			t.Fatalf("NormalizeName(%q) = %q, but NormalizeName(%q) = %q, %v", s, n, n, n2, err)
		}
		if _, err := parseRef(n); err != nil && !strings.Contains(err.Error(), n) {
			t.Fatalf("parseRef(%q): %v", n, err)
		}
	})
}
