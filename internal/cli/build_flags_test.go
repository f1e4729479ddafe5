package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildFlagValidation: flags no build can honour are errors at the command
// line, before the store is opened, also when the build would be fully cached.
func TestBuildFlagValidation(t *testing.T) {
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nLABEL a=b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cached := t.TempDir()
	if _, _, err := slimbuild(t, cached, "build", "--progress", "quiet", ctxDir); err != nil {
		t.Fatalf("first build: %v", err)
	}
	tests := []struct {
		name  string
		flags []string
		want  string // in the error
	}{
		{"lz4", []string{"--compression", "lz4"}, `"lz4"`},
		{"unknown compression", []string{"--compression", "brotli"}, `"brotli"`},
		{"negative jobs", []string{"--jobs", "-5"}, "-5"},
		{"empty build-arg key", []string{"--build-arg", "=x"}, "needs a name"},
		{"empty build-arg key, no value", []string{"--build-arg", "="}, "needs a name"},
		{"build-context without value", []string{"--build-context", "x"}, "--build-context"},
		{"build-context missing dir", []string{"--build-context", "x=" + filepath.Join(ctxDir, "nope")}, "--build-context"},
		{"build-context twice", []string{"--build-context", "x=" + ctxDir, "--build-context", "x:latest=" + ctxDir}, "already given"},
		{"build-context git", []string{"--build-context", "x=git@github.com:a/b.git"}, "--build-context"},
		{"ssh missing key", []string{"--ssh", "k=" + filepath.Join(ctxDir, "nope")}, "--ssh"},
		{"ssh duplicate", []string{"--ssh", "k=" + ctxDir, "--ssh", "k=" + ctxDir}, "duplicate ssh id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// On the cached store: the build would do nothing, the flag is still wrong.
			_, _, err := slimbuild(t, cached, append(append([]string{"build", "--progress", "quiet"}, tt.flags...), ctxDir)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("cached build with %v: error %v, want one containing %s", tt.flags, err, tt.want)
			}
			// On a root that does not exist: nothing is made.
			fresh := filepath.Join(t.TempDir(), "root")
			_, _, err = slimbuild(t, fresh, append(append([]string{"build", "--progress", "quiet"}, tt.flags...), ctxDir)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("build with %v: error %v, want one containing %s", tt.flags, err, tt.want)
			}
			if _, err := os.Stat(fresh); err == nil {
				t.Errorf("the store %s was made before the flags were checked", fresh)
			}
		})
	}
	for _, ok := range [][]string{{"--jobs", "0"}, {"--jobs", "2"}, {"--compression", "zstd"}, {"--compression", "none"}, {"--build-arg", "A=1"},
		{"--build-context", "x=" + ctxDir}, {"--build-context", "x=docker-image://busybox"}, {"--ssh", "k=" + filepath.Join(ctxDir, "Dockerfile")}} {
		if _, _, err := slimbuild(t, cached, append(append([]string{"build", "--progress", "quiet"}, ok...), ctxDir)...); err != nil {
			t.Errorf("build with %v: %v", ok, err)
		}
	}
}
