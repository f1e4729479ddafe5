package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/report"
)

// slimbuild runs the CLI in-process with root as --root and returns stdout, stderr.
func slimbuild(t *testing.T, root string, args ...string) (string, string, error) {
	t.Helper()
	cmd := NewRoot()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(append([]string{"--root", root}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// bases imports the builder and busybox bases made by hack/bases.sh.
func bases(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc and overlayfs")
	}
	dir := os.Getenv("SLIMBUILD_BASES")
	if dir == "" {
		t.Skip("builder base not made: run make test (it runs hack/bases.sh and sets SLIMBUILD_BASES)")
	}
	root := t.TempDir()
	for _, b := range []struct{ file, name string }{
		{"builder.tar.gz", "slimbuild/builder:bookworm"},
		{"busybox.tar", "busybox:latest"},
	} {
		if _, _, err := slimbuild(t, root, "import", filepath.Join(dir, b.file), b.name); err != nil {
			t.Fatalf("import %s: %v", b.file, err)
		}
	}
	return root
}

// TestHelloPayoff is issue 3's acceptance on examples/hello-c: the gate fails the naive
// build and passes the multistage one, and the comparison shows what was left behind.
func TestHelloPayoff(t *testing.T) {
	root := bases(t)
	example := filepath.Join("..", "..", "examples", "hello-c")

	_, _, err := slimbuild(t, root, "build", "--progress", "quiet", "-f", filepath.Join(example, "Dockerfile.naive"),
		"-t", "hello:naive", "--forbid", "compilers", example)
	var gate *report.GateError
	if !errors.As(err, &gate) {
		t.Fatalf("naive build with --forbid compilers: err = %v, want a gate failure", err)
	}
	if gate.ExitCode() == 0 || !strings.Contains(err.Error(), "/usr/bin/gcc") {
		t.Errorf("gate error does not name /usr/bin/gcc:\n%s", err)
	}
	// The image is built and stored even though the gate failed.
	if _, _, err := slimbuild(t, root, "inspect", "hello:naive"); err != nil {
		t.Fatalf("naive image not stored after gate failure: %v", err)
	}

	out, stderr, err := slimbuild(t, root, "build", "--progress", "plain", "-t", "hello:slim", "--forbid", "compilers,headers", example)
	if err != nil {
		t.Fatalf("multistage build with --forbid compilers: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "sha256:") {
		t.Errorf("last stdout line %q is not a digest", last)
	}
	for _, want := range []string{"left behind in discarded stages:", "gcc", "headers", "stages: 2 built, 1 discarded"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("build summary lacks %q:\n%s", want, stderr)
		}
	}

	out, _, err = slimbuild(t, root, "report", "hello:naive", "--compare", "hello:slim", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var c report.Comparison
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if c.CompressedReductionPercent < 99 || c.ReductionPercent < 99 {
		t.Errorf("reduction %.2f%% (compressed %.2f%%), want ≥ 99%%", c.ReductionPercent, c.CompressedReductionPercent)
	}
	onlyNaive := map[report.Category]bool{}
	for _, cat := range c.OnlyInA {
		onlyNaive[cat] = true
	}
	for _, cat := range []report.Category{report.Compilers, report.Headers, report.PackageManagers} {
		if !onlyNaive[cat] {
			t.Errorf("%s: not reported as present only in the naive image (only in naive: %v)", cat, c.OnlyInA)
		}
	}

	out, _, err = slimbuild(t, root, "run", "hello:slim")
	if err != nil || !strings.Contains(out, "Hello from a lean image") {
		t.Errorf("run hello:slim: %v, output %q", err, out)
	}
}

func TestRunExitCode(t *testing.T) {
	root := bases(t)
	_, _, err := slimbuild(t, root, "run", "busybox", "sh", "-c", "exit 42")
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 42 {
		t.Fatalf("run exit 42: err = %v", err)
	}
}
