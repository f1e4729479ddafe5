package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildSlimAndAdvise: build --slim tags the verified slim image (not the
// full one) and shows both side by side; advise writes a multistage
// Dockerfile that builds on its own.
func TestBuildSlimAndAdvise(t *testing.T) {
	root := bases(t)
	example := filepath.Join("..", "..", "examples", "hello-c")
	naive := filepath.Join(example, "Dockerfile.naive")
	out, stderr, err := slimbuild(t, root, "build", "--slim", "--network", "none", "-f", naive, "-t", "hello:slim", example)
	if err != nil {
		t.Fatalf("build --slim: %v\n%s", err, stderr)
	}
	d := strings.TrimSpace(out)
	if !strings.Contains(stderr, "Size reduction") || !strings.Contains(stderr, "slimmed to "+d) {
		t.Errorf("no side-by-side summary naming the slim image %s:\n%s", d, stderr)
	}
	images, _, err := slimbuild(t, root, "images")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(images, "hello:slim") || !strings.Contains(images, d[:19]) {
		t.Errorf("hello:slim is not the slim image %s:\n%s", d, images)
	}
	if _, _, err := slimbuild(t, root, "build", "--slim-probe-cmd", "x", "-f", naive, example); err == nil {
		t.Error("--slim-probe-cmd without --slim was accepted")
	}

	adv := filepath.Join(t.TempDir(), "Dockerfile.advised")
	if _, stderr, err := slimbuild(t, root, "advise", "--progress", "quiet", "-f", naive, "--write", adv, example); err != nil {
		t.Fatalf("advise: %v\n%s", err, stderr)
	}
	df, err := os.ReadFile(adv)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"AS build", "FROM scratch", "COPY --from=build", `CMD ["/usr/local/bin/hello"]`} {
		if !strings.Contains(string(df), w) {
			t.Errorf("advised Dockerfile lacks %q:\n%s", w, df)
		}
	}
	if _, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "--network", "none", "-f", adv, "-t", "hello:advised", example); err != nil {
		t.Fatalf("building the advised Dockerfile: %v\n%s", err, stderr)
	}
	out, _, err = slimbuild(t, root, "run", "hello:advised")
	if err != nil || !strings.Contains(out, "ello") {
		t.Errorf("run hello:advised: %q, %v", out, err)
	}
}
