package cli

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/slimbuild/slimbuild/internal/store"
)

// slimApp is a C program that greets and, given an argument, prints a data file
// it opens at run time (which no static walk can see).
const slimApp = `#include <stdio.h>
#include <math.h>
int main(int argc, char **argv) {
	printf("hello from the slim image, %.1f\n", sqrt(16.0 * argc));
	if (argc > 1) {
		FILE *f = fopen(argv[1], "r");
		if (!f) { perror(argv[1]); return 3; }
		char buf[128]; size_t n = fread(buf, 1, sizeof buf, f);
		fwrite(buf, 1, n, stdout);
	}
	return 0;
}
`

// slimRootfs makes a root filesystem with /app/hello (compiled by the host's
// gcc against libm), its libraries and loader at the host's paths, /bin/sh with
// its libraries, a data file and a few hundred unrelated files.
func slimRootfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc and overlayfs")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "app", "hello")
	slimtest.Compile(t, slimApp, bin, "-lm")
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bin, sh} {
		for _, p := range slimtest.LddPaths(t, b) {
			slimtest.HostCopy(t, root, p)
		}
	}
	slimtest.HostCopy(t, root, "/bin/sh")
	for i := 0; i < 300; i++ {
		p := filepath.Join(root, "usr", "share", "junk", strings.Repeat("d", i%5+1), "f"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat("junk", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr", "share", "greeting"), []byte("data only --include keeps\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// imageFiles counts the paths of a stored image's final filesystem.
func imageFiles(t *testing.T, root, ref string) (int, v1.Image) {
	t.Helper()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	img, err := storedImage(st, ref)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	n := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n, img
}

// fullHelloStore is a store holding hello:full: slimRootfs imported, with CMD
// ["/app/hello"].
func fullHelloStore(t *testing.T) string {
	t.Helper()
	rootfs := slimRootfs(t)
	root := t.TempDir()
	if _, stderr, err := slimbuild(t, root, "import", rootfs, "hello-full"); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM hello-full\nCMD [\"/app/hello\"]\n"), 0o644)
	if _, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "-t", "hello:full", ctx); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	return root
}

func TestSlim(t *testing.T) {
	root := fullHelloStore(t)

	out, stderr, err := slimbuild(t, root, "slim", "hello:full", "-t", "slim:1")
	if err != nil {
		t.Fatalf("slim: %v\n%s", err, stderr)
	}
	if d := strings.TrimSpace(out); !strings.HasPrefix(d, "sha256:") || strings.Contains(d, "\n") {
		t.Errorf("stdout %q is not one digest", out)
	}
	for _, want := range []string{"closure of /app/hello", "smaller", "verified"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
	out, _, err = slimbuild(t, root, "run", "slim:1")
	if err != nil || !strings.Contains(out, "hello from the slim image, 4.0") {
		t.Errorf("run slim:1: %v, output %q", err, out)
	}
	full, _ := imageFiles(t, root, "hello:full")
	small, img := imageFiles(t, root, "slim:1")
	if small*5 > full {
		t.Errorf("slim image has %d paths, the original %d: want far fewer", small, full)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("slim image is not valid: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Cmd; len(got) != 1 || got[0] != "/app/hello" {
		t.Errorf("slim CMD = %q", got)
	}
	if h := cf.History[len(cf.History)-1]; h.CreatedBy != "slimbuild slim" || h.EmptyLayer {
		t.Errorf("last history entry %+v", h)
	}
}

func TestSlimVerifyFails(t *testing.T) {
	root := fullHelloStore(t)

	// The static closure of /bin/sh lacks /app/hello and libm, which CMD runs
	// (watching the run would find them: --no-observe).
	_, _, err := slimbuild(t, root, "slim", "hello:full", "--entrypoint", "/bin/sh", "--no-observe", "-t", "slim:sh")
	var ve *slim.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("slim --entrypoint /bin/sh: err = %v, want a verification failure", err)
	}
	if !strings.Contains(err.Error(), "hello from the slim image") || ve.Original.ExitCode != 0 || ve.Slim.ExitCode == 0 {
		t.Errorf("verification error does not show both runs:\n%v", err)
	}
	if _, _, err := slimbuild(t, root, "inspect", "slim:sh"); err == nil {
		t.Errorf("slim:sh was tagged although verification failed")
	}

	// A data file opened at run time: statically, only --include keeps it.
	_, _, err = slimbuild(t, root, "slim", "hello:full", "--no-observe", "-t", "slim:data", "--", "/app/hello", "/usr/share/greeting")
	if !errors.As(err, &ve) || !strings.Contains(ve.Original.Stdout, "data only --include keeps") || ve.Slim.ExitCode != 3 {
		t.Fatalf("slim without --include: err = %v, want a verification failure where the slim run exits 3", err)
	}
	_, stderr, err := slimbuild(t, root, "slim", "hello:full", "-t", "slim:data", "--include", "/usr/share/greeting", "--", "/app/hello", "/usr/share/greeting")
	if err != nil {
		t.Fatalf("slim --include: %v\n%s", err, stderr)
	}
	out, _, err := slimbuild(t, root, "run", "slim:data", "/app/hello", "/usr/share/greeting")
	if err != nil || !strings.Contains(out, "data only --include keeps") {
		t.Errorf("run slim:data: %v, output %q", err, out)
	}
	// Watching the run keeps it without --include, and says so.
	explain := filepath.Join(t.TempDir(), "explain.txt")
	out, stderr, err = slimbuild(t, root, "slim", "hello:full", "-t", "slim:seen", "--explain-file", explain, "--format", "json",
		"--probe-cmd", "/app/hello /usr/share/greeting")
	if err != nil {
		t.Fatalf("slim --probe-cmd: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(explain)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "/usr/share/greeting\tobserved (probe 1: /app/hello /usr/share/greeting)") || !strings.Contains(string(b), "# dropped: ") {
		t.Errorf("explain file lacks the observed greeting or the dropped list:\n%s", b)
	}
	var js struct {
		Digest string
		Report struct {
			Verified bool
			Dropped  []string
			Closure  struct{ Entries []struct{ Path, Why string } }
		}
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || !js.Report.Verified || len(js.Report.Dropped) == 0 || len(js.Report.Closure.Entries) == 0 {
		t.Errorf("--format json: %v, %+v", err, js)
	}
}
