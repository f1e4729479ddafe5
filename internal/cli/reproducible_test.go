package cli

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/store"
)

const helloEpoch = 1_700_000_000

// helloCopy copies examples/hello-c into a new directory named name and sets
// every file and directory there to mtime.
func helloCopy(t *testing.T, name string, mtime time.Time) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "hello-c")
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, e.Name())
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildDigest runs `slimbuild build` and returns the digest it prints.
func buildDigest(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, stderr, err := slimbuild(t, root, append([]string{"build", "--progress", "quiet", "--network", "none"}, args...)...)
	if err != nil {
		t.Fatalf("build %v: %v\n%s", args, err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	d := lines[len(lines)-1]
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("build %v printed %q, not a digest", args, out)
	}
	return d
}

// TestReproducibleHelloC is issue 8's acceptance: examples/hello-c built from two
// copies of the context (other paths, other mtimes), in two stores that each
// imported the bases, at different times, gives one image digest with
// SOURCE_DATE_EPOCH, and two without it.
func TestReproducibleHelloC(t *testing.T) {
	rootA, rootB := bases(t), bases(t)
	now := time.Now()
	ctxA := helloCopy(t, "hello-a", now.Add(-3*time.Hour))
	ctxB := helloCopy(t, "elsewhere-b", now.Add(-50*time.Hour))

	// Store A: the environment variable.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	withA := buildDigest(t, rootA, ctxA)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	withoutA := buildDigest(t, rootA, ctxA)

	time.Sleep(1100 * time.Millisecond)

	// Store B: first without the epoch, so its cache holds every step made
	// without it; then the flag, which must win over the environment.
	withoutB := buildDigest(t, rootB, ctxB)
	t.Setenv("SOURCE_DATE_EPOCH", "1")
	withB := buildDigest(t, rootB, "--source-date-epoch", "1700000000", ctxB)

	t.Logf("with SOURCE_DATE_EPOCH=%d: %s and %s", helloEpoch, withA, withB)
	t.Logf("without: %s and %s", withoutA, withoutB)
	if withA != withB {
		t.Errorf("with SOURCE_DATE_EPOCH the two builds differ: %s and %s", withA, withB)
	}
	if withoutA == withoutB {
		t.Errorf("without SOURCE_DATE_EPOCH both builds gave %s: the test cannot tell", withoutA)
	}

	st, err := store.Open(rootB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	img, err := storedImage(st, withB)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Created.Unix() != helloEpoch {
		t.Errorf("config created %v, want %d", cfg.Created.Time, helloEpoch)
	}
	// The binary was made by RUN musl-gcc in the compile stage, then copied:
	// its time in the last layer is the epoch.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() > helloEpoch {
			t.Errorf("%s: mtime %v, after the epoch", h.Name, h.ModTime)
		}
		if strings.TrimPrefix(h.Name, "./") == "usr/local/bin/hello" {
			found = true
			if h.ModTime.Unix() != helloEpoch {
				t.Errorf("usr/local/bin/hello: mtime %v, want the epoch", h.ModTime)
			}
		}
	}
	if !found {
		t.Errorf("the last layer has no usr/local/bin/hello")
	}
}

// TestSourceDateEpochFlag checks the help text and that bad values are errors
// naming where they came from.
func TestSourceDateEpochFlag(t *testing.T) {
	out, _, err := slimbuild(t, t.TempDir(), "build", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "--source-date-epoch") || !strings.Contains(out, "$SOURCE_DATE_EPOCH") {
		t.Errorf("build --help does not document --source-date-epoch and $SOURCE_DATE_EPOCH:\n%s", out)
	}
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{name: "flag", args: []string{"--source-date-epoch", "tomorrow"}, want: "--source-date-epoch"},
		{name: "env", env: "12:00", want: "environment"},
		{name: "negative", args: []string{"--source-date-epoch=-5"}, want: "--source-date-epoch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", c.env)
			_, _, err := slimbuild(t, t.TempDir(), append(append([]string{"build", "--progress", "quiet"}, c.args...), ctx)...)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
				t.Errorf("error %v, want one naming %s and SOURCE_DATE_EPOCH", err, c.want)
			}
		})
	}
}
