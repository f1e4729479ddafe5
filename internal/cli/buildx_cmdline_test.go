package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// buildxExpected is test/buildx/expected.json.
type buildxExpected struct {
	Config              v1.Config         `json:"config"`
	ManifestAnnotations map[string]string `json:"manifest_annotations"`
}

// TestBuildxCommandLine runs test/buildx/command, a `docker buildx build`
// command line, with only the program name changed ("docker buildx build"
// becomes "slimbuild build"), in a copy of test/buildx, and compares the image
// with test/buildx/expected.json (buildx's documented results: BuildKit is not
// on this machine; test/buildx/run.sh also runs buildx where it is).
func TestBuildxCommandLine(t *testing.T) {
	root := bases(t)
	src, err := filepath.Abs(filepath.Join("..", "..", "test", "buildx"))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", work).CombinedOutput(); err != nil {
		t.Fatalf("copying test/buildx: %v\n%s", err, out)
	}
	line, err := os.ReadFile(filepath.Join(work, "command"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(string(line), `"'\$`) {
		t.Fatalf("test/buildx/command must be plain words (no quotes or expansions): %s", line)
	}
	args, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "docker buildx build ")
	if !ok {
		t.Fatalf("test/buildx/command does not start with \"docker buildx build \": %s", line)
	}
	var want buildxExpected
	data, err := os.ReadFile(filepath.Join(work, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	if err := os.Mkdir(filepath.Join(work, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	for run := 1; run <= 2; run++ { // the second run: stage tools from the cache, app (--no-cache-filter) not
		_, stderr, err := slimbuild(t, root, append([]string{"build"}, strings.Fields(args)...)...)
		if err != nil {
			t.Fatalf("slimbuild build %s: %v\n%s", args, err, stderr)
		}
		if run == 2 && !strings.Contains(stderr, " steps, 1 cached)") {
			t.Errorf("second run: want only stage tools' RUN cached (--no-cache-filter app):\n%s", stderr)
		}
	}
	iid, err := os.ReadFile("out/iid")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	data, err = os.ReadFile("out/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &meta); err != nil || meta["containerimage.digest"] != string(iid) {
		t.Errorf("--metadata-file %s (%v): containerimage.digest is not the --iidfile's %s", data, err, iid)
	}
	m, cf := imageParts(t, root, "buildx-test:1")
	if d, _ := imageDigest(t, root, "buildx-test:1"); d != string(iid) {
		t.Errorf("-t buildx-test:1 is %s, --iidfile %s", d, iid)
	}
	got := v1.Config{Labels: cf.Config.Labels, Env: cf.Config.Env, Cmd: cf.Config.Cmd, WorkingDir: cf.Config.WorkingDir,
		User: cf.Config.User, ExposedPorts: cf.Config.ExposedPorts}
	if d := cmp.Diff(want.Config, got); d != "" {
		t.Errorf("image config (-expected.json +slimbuild):\n%s", d)
	}
	if d := cmp.Diff(want.ManifestAnnotations, m.Annotations); d != "" {
		t.Errorf("manifest annotations (-expected.json +slimbuild):\n%s", d)
	}
	if cf.Architecture+"/"+cf.OS != "amd64/linux" {
		t.Errorf("platform %s/%s, want linux/amd64 (--platform)", cf.OS, cf.Architecture)
	}
}

func imageDigest(t *testing.T, root, ref string) (string, error) {
	t.Helper()
	out, _, err := slimbuild(t, root, "inspect", ref)
	if err != nil {
		return "", err
	}
	var v struct{ Digest string }
	err = json.Unmarshal([]byte(out), &v)
	return v.Digest, err
}
