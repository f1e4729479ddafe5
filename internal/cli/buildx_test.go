package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildxFlags: --iidfile, --metadata-file and -q write what buildx writes;
// attestation and platform flags are accepted only where slimbuild honours them;
// an unknown flag names the nearest known one.
func TestBuildxFlags(t *testing.T) {
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nLABEL a=b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	out := t.TempDir()
	iid, meta := filepath.Join(out, "iid"), filepath.Join(out, "meta.json")
	stdout, stderr, err := slimbuild(t, root, "build", "-q", "--provenance=false", "--sbom=false", "--platform", hostPlatform(),
		"-t", "x:1", "--iidfile", iid, "--metadata-file", meta, ctxDir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	digest := strings.TrimSpace(stdout)
	if !strings.HasPrefix(digest, "sha256:") || strings.Contains(digest, "\n") {
		t.Errorf("-q printed %q, want only the digest", stdout)
	}
	if stderr != "" {
		t.Errorf("-q wrote to stderr: %q", stderr)
	}
	if data, err := os.ReadFile(iid); err != nil || string(data) != digest {
		t.Errorf("--iidfile holds %q (%v), want %q", data, err, digest)
	}
	var m map[string]string
	data, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("--metadata-file: %v: %s", err, data)
	}
	if m["containerimage.digest"] != digest || !strings.HasPrefix(m["containerimage.config.digest"], "sha256:") ||
		m["containerimage.config.digest"] == digest || m["image.name"] != "x:1" {
		t.Errorf("--metadata-file: %v (digest %s)", m, digest)
	}

	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--provenance=true"}, "--provenance=true: slimbuild makes no attestations"},
		{[]string{"--provenance=mode=max"}, "--provenance=mode=max"},
		{[]string{"--sbom=true"}, "--sbom=true"},
		{[]string{"--platform", "windows/amd64"}, "--platform: platform \"windows/amd64\": slimbuild builds linux images only"},
		{[]string{"--platform", hostPlatform() + "," + hostPlatform()}, "given twice"},
		{[]string{"--platform", "linux/amd64,linux/arm64", "--output", "type=docker,dest=x.tar"}, "--output type=docker (use type=oci, or slimbuild save --platform) is not supported with several platforms"},
		{[]string{"--platform", "linux/amd64,linux/arm64", "--load"}, "--load"},
		{[]string{"--platform", "linux/amd64,linux/arm64", "--slim"}, "--slim is not supported with several platforms"},
		{[]string{"--iidfle", "x"}, "did you mean --iidfile?"},
		{[]string{"--no-cahce"}, "did you mean --no-cache?"},
		{[]string{"--frobnicate-everything"}, "unknown flag: --frobnicate-everything"},
	} {
		_, _, err := slimbuild(t, root, append(append([]string{"build"}, tc.flags...), ctxDir)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.flags, err, tc.want)
		}
		if err != nil && strings.Contains(tc.want, "unknown flag") && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("%v: %v suggests a flag that is not near", tc.flags, err)
		}
	}
}
