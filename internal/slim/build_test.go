package slim

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/store"
)

// storeImage writes dir as a one-layer image with cfg into st.
func storeImage(t *testing.T, st *store.Store, dir string, cfg v1.Config) v1.Image {
	t.Helper()
	lw, err := st.NewLayerWriter(store.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Write(lw, dir, layer.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := lw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	_, img, err := writeImage(st, &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: cfg}, info, "test original")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerEntries lists the single layer of img: name → header.
func layerEntries(t *testing.T, img v1.Image) (names []string, hdrs map[string]*tar.Header) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers: %d, %v", len(ls), err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs = map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := "/" + strings.TrimSuffix(h.Name, "/")
		names = append(names, n)
		hdrs[n] = h
	}
	return names, hdrs
}

func TestBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc and overlayfs")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("needs runc: %v", err)
	}
	f := newFixture(t)
	// Metadata that must survive: owner and mode of the program and its directory.
	if err := os.Chown(filepath.Join(f.root, "app", "hello"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(f.root, "app", "hello"), 0o750)
	os.Chmod(filepath.Join(f.root, "app"), 0o711)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := v1.Config{Cmd: []string{"/app/hello"}, Env: []string{"PATH=/usr/bin:/bin", "GREETING=x"}, User: "app",
		Labels: map[string]string{"a": "b"}, StopSignal: "SIGINT"}
	orig := storeImage(t, st, f.root, cfg)

	d, img, rep, err := Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/slim:test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("slim image not valid: %v", err)
	}
	if !rep.Verified || rep.ExitCode != 0 {
		t.Errorf("report %+v: want verified, exit 0", rep)
	}
	tagged, err := st.Image("docker.io/library/slim:test")
	if err != nil {
		t.Fatalf("not tagged: %v", err)
	}
	if td, _ := tagged.Digest(); td != d {
		t.Errorf("tag points at %s, want %s", td, d)
	}
	names, hdrs := layerEntries(t, img)
	if diff := cmp.Diff(withParents(rep.Closure), names); diff != "" {
		t.Errorf("layer entries (-closure with parents +layer):\n%s", diff)
	}
	if h := hdrs["/app/hello"]; h == nil || h.Uid != 1000 || h.Gid != 1000 || h.Mode&0o7777 != 0o750 {
		t.Errorf("/app/hello metadata not kept: %+v", h)
	}
	if h := hdrs["/app"]; h == nil || h.Mode&0o7777 != 0o711 || h.Typeflag != tar.TypeDir {
		t.Errorf("/app metadata not kept: %+v", h)
	}
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		if hdrs[p] == nil {
			t.Errorf("USER app, but %s is not in the slim image", p)
		}
	}
	if rep.FilesAfter >= rep.FilesBefore/10 || rep.BytesAfter >= rep.BytesBefore || rep.ReductionPercent() <= 0 {
		t.Errorf("report numbers: %+v", rep)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, cf.Config); diff != "" {
		t.Errorf("config not kept (-want +got):\n%s", diff)
	}
	ents, _ := os.ReadDir(filepath.Join(st.Root(), "tmp"))
	if len(ents) != 0 {
		t.Errorf("left behind in the store's tmp: %v", ents)
	}
}

func TestBuildFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc and overlayfs")
	}
	f := newFixture(t)
	slimtest.WriteFile(t, f.root, "/app/needs-data.sh", "#!/bin/sh\nn=3\nIFS= read -r line < /usr/share/doc/pkg$n/README\necho \"got $line\"\n", 0o755)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Verification: the script reads a file that only Include or watching
	// the run would keep (its path is built at run time).
	orig := storeImage(t, st, f.root, v1.Config{Cmd: []string{"/app/needs-data.sh"}})
	_, _, _, err = Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/bad:1", NoObserve: true})
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want a VerifyError", err)
	}
	if ve.Original == ve.Slim {
		t.Errorf("both runs alike, yet an error: %+v", ve)
	}
	if _, err := st.Image("docker.io/library/bad:1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unverified image was tagged (lookup err %v)", err)
	}
	// NoVerify tags it anyway.
	if _, _, rep, err := Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/bad:1", NoVerify: true, NoObserve: true}); err != nil || rep.Verified {
		t.Errorf("NoVerify: %v, %+v", err, rep)
	}
	// Watching the original's run finds the file: verified, and explained.
	_, _, rep, err := Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/good:1"})
	if err != nil {
		t.Fatalf("observed closure: %v", err)
	}
	if c := rep.Closure.Chain("/usr/share/doc/pkg3/README"); c != "observed (probe 1: entrypoint with CMD)" {
		t.Errorf("README kept for %q, want observed by probe 1", c)
	}
	if slices.Contains(rep.Closure.Paths(), "/usr/share/doc/pkg6/README") {
		t.Errorf("a file the run did not open was kept")
	}
	if !slices.Contains(rep.Dropped, "/usr/share/doc/pkg6/README") {
		t.Errorf("dropped list lacks pkg6/README")
	}

	// Closure: a missing library is an error before anything is written.
	os.Remove(filepath.Join(f.root, "usr", "lib", "x86_64-linux-gnu", "libm.so.6"))
	orig = storeImage(t, st, f.root, v1.Config{Cmd: []string{"/app/hello"}})
	_, _, _, err = Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/bad:2"})
	if !errors.Is(err, ErrUnresolved) || !strings.Contains(err.Error(), "libm.so.6 needed by /app/hello") {
		t.Errorf("err = %v, want ErrUnresolved naming libm.so.6", err)
	}
	ents, _ := os.ReadDir(filepath.Join(st.Root(), "tmp"))
	if len(ents) != 0 {
		t.Errorf("left behind in the store's tmp: %v", ents)
	}
}

// TestVerifyBounded: a verification run that prints without end is stopped by
// the timeout with a clear error, and what it printed is not all kept.
func TestVerifyBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc and overlayfs")
	}
	f := newFixture(t)
	slimtest.WriteFile(t, f.root, "/app/forever.sh", "#!/bin/sh\nwhile :; do echo 'again and again and again'; done\n", 0o755)
	slimtest.WriteFile(t, f.root, "/app/lots.sh", "#!/bin/sh\ni=0\nwhile [ $i -lt 20000 ]; do echo \"line $i of a long output\"; i=$((i+1)); done\n", 0o755)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	orig := storeImage(t, st, f.root, v1.Config{Cmd: []string{"/app/forever.sh"}})
	_, _, _, err = Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/forever:1", VerifyTimeout: 2 * time.Second})
	if !errors.Is(err, ErrVerifyTimeout) || !strings.Contains(err.Error(), "2s") {
		t.Fatalf("err = %v, want ErrVerifyTimeout naming the timeout", err)
	}
	if _, err := st.Image("docker.io/library/forever:1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unverified image was tagged (lookup err %v)", err)
	}

	// A long output is compared whole but only its start is kept to show.
	orig = storeImage(t, st, f.root, v1.Config{Cmd: []string{"/app/lots.sh"}})
	if _, _, _, err := Build(context.Background(), st, orig, BuildOptions{Tag: "docker.io/library/lots:1"}); err != nil {
		t.Fatalf("verifying a long but equal output: %v", err)
	}
	out := newCapture()
	big := strings.Repeat("x", 3*maxShownOutput)
	out.Write([]byte(big))
	if len(out.String()) > maxShownOutput+100 || out.size != int64(len(big)) {
		t.Errorf("capture kept %d bytes of %d (size %d)", len(out.String()), len(big), out.size)
	}
	ents, _ := os.ReadDir(filepath.Join(st.Root(), "tmp"))
	if len(ents) != 0 {
		t.Errorf("left behind in the store's tmp: %v", ents)
	}
}

// TestHTTPProbe: a server (busybox httpd) is started in its own network
// namespace, reached there, and what it served is kept because it was seen
// being opened; both images must answer alike.
func TestHTTPProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc, overlayfs and fanotify")
	}
	root := t.TempDir()
	slimtest.HostCopy(t, root, "/usr/bin/busybox")
	slimtest.WriteFile(t, root, "/www/index.html", "hello from the probe\n", 0o644)
	slimtest.WriteFile(t, root, "/www/unused.html", "never served\n", 0o644)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	orig := storeImage(t, st, root, v1.Config{Entrypoint: []string{"/usr/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"}})
	probe, err := ParseHTTPProbe("8080/index.html")
	if err != nil {
		t.Fatal(err)
	}
	// Static only: the page is missing and the answers differ.
	_, _, _, err = Build(context.Background(), st, orig, BuildOptions{Probes: []Probe{probe}, NoObserve: true})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Original.ExitCode != 200 {
		t.Fatalf("static only: err = %v, want a VerifyError with the original answering 200", err)
	}
	_, _, rep, err := Build(context.Background(), st, orig, BuildOptions{Probes: []Probe{probe}})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Closure.Chain("/www/index.html"); c != "observed (probe 1: GET :8080/index.html)" {
		t.Errorf("index.html kept for %q", c)
	}
	if slices.Contains(rep.Closure.Paths(), "/www/unused.html") {
		t.Errorf("a page never served was kept")
	}
}

func TestParseHTTPProbe(t *testing.T) {
	for _, bad := range []string{"", "x", "0", "70000/a", "-1"} {
		if _, err := ParseHTTPProbe(bad); err == nil {
			t.Errorf("ParseHTTPProbe(%q) accepted", bad)
		}
	}
	if p, err := ParseHTTPProbe("80/a/b?c=1"); err != nil || p.HTTPPort != 80 || p.HTTPPath != "/a/b?c=1" {
		t.Errorf("ParseHTTPProbe = %+v, %v", p, err)
	}
}
