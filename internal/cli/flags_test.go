package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestFlagsCheckedBeforeTheStore: a bad option value is an error that names the
// flag and the value, and it comes before the store is opened (the --root
// directory is never made), whatever the command would have done. Needs no root.
func TestFlagsCheckedBeforeTheStore(t *testing.T) {
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nLABEL a=b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // all in the error
	}{
		{"build compression", []string{"build", "--compression", "brotli", ctxDir}, []string{"--compression", `"brotli"`}},
		{"build compression empty", []string{"build", "--compression=", ctxDir}, []string{"--compression", `""`}},
		{"build jobs negative", []string{"build", "--jobs", "-5", ctxDir}, []string{"--jobs", `"-5"`}},
		{"build jobs not a number", []string{"build", "--jobs", "many", ctxDir}, []string{"--jobs", `"many"`}},
		{"build network", []string{"build", "--network", "bridge", ctxDir}, []string{"--network", `"bridge"`}},
		{"build shm-size", []string{"build", "--shm-size", "big", ctxDir}, []string{"--shm-size", `"big"`}},
		{"build shm-size zero", []string{"build", "--shm-size", "0", ctxDir}, []string{"--shm-size", `"0"`}},
		{"build max-size", []string{"build", "--max-size", "lots", ctxDir}, []string{"--max-size", `"lots"`}},
		{"build forbid", []string{"build", "--forbid", "dragons", ctxDir}, []string{"--forbid", "dragons"}},
		{"prune keep-storage", []string{"prune", "--keep-storage", "half"}, []string{"--keep-storage", `"half"`}},
		{"prune keep-storage negative", []string{"prune", "--keep-storage", "-1GB"}, []string{"--keep-storage", `"-1GB"`}},
		{"prune all and keep-storage", []string{"prune", "--all", "--keep-storage", "1GB"}, []string{"--all", "--keep-storage"}},
		{"run network", []string{"run", "--network", "bridge", "busybox"}, []string{"--network", `"bridge"`}},
		{"run rm false", []string{"run", "--rm=false", "busybox"}, []string{"--rm=false"}},
		{"advise network", []string{"advise", "--network", "bridge", ctxDir}, []string{"--network", `"bridge"`}},
		{"report max-size", []string{"report", "--max-size", "lots", "busybox"}, []string{"--max-size", `"lots"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			_, _, err := slimbuild(t, root, tt.args...)
			if err == nil {
				t.Fatalf("%v: no error", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: error %q does not name %s", tt.args, err, w)
				}
			}
			if _, err := os.Stat(root); err == nil {
				t.Errorf("%v: the store %s was made before the flags were checked", tt.args, root)
			}
		})
	}
}

// TestTypedFlagValues: the values the typed flags accept, as the command gets them.
func TestTypedFlagValues(t *testing.T) {
	cmd := NewRoot()
	build, _, err := cmd.Find([]string{"build"})
	if err != nil {
		t.Fatal(err)
	}
	if err := build.ParseFlags([]string{"--compression", "zstd", "--jobs", "3", "--shm-size", "128m", "--network", "none"}); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"compression": "zstd", "jobs": "3", "shm-size": "134217728", "network": "none"} {
		if got := build.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	if got := build.Flags().Lookup("compression").DefValue; got != "gzip" {
		t.Errorf("--compression defaults to %q, want gzip", got)
	}
	prune, _, err := cmd.Find([]string{"prune"})
	if err != nil {
		t.Fatal(err)
	}
	if err := prune.ParseFlags([]string{"--keep-storage", "2GiB"}); err != nil {
		t.Fatal(err)
	}
	if got := prune.Flags().Lookup("keep-storage").Value.String(); got != "2147483648" {
		t.Errorf("--keep-storage 2GiB = %s bytes", got)
	}
}

// TestRunRm: --rm, as docker run lines carry it, is accepted (the run goes on to
// look for the image); --rm=false, which would ask to keep the container, is
// refused above (TestFlagsCheckedBeforeTheStore).
func TestRunRm(t *testing.T) {
	for _, args := range [][]string{{"run", "--rm", "nosuch"}, {"run", "--rm=true", "nosuch"}, {"run", "nosuch"}} {
		_, _, err := slimbuild(t, t.TempDir(), args...)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%v: error %v, want the image not found", args, err)
		}
	}
}

// TestParsePlatforms: --platform values are normalised as BuildKit does, and
// a platform given twice (in any spelling) is an error.
func TestParsePlatforms(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []v1.Platform
		err  string
	}{
		{name: "list", in: []string{"linux/amd64", "linux/arm64"}, want: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}},
		{name: "aarch64 is arm64", in: []string{"linux/aarch64"}, want: []v1.Platform{{OS: "linux", Architecture: "arm64"}}},
		{name: "arm64/v8 is arm64", in: []string{"linux/arm64/v8"}, want: []v1.Platform{{OS: "linux", Architecture: "arm64"}}},
		{name: "arm is arm/v7", in: []string{"linux/arm"}, want: []v1.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}}},
		{name: "twice", in: []string{"linux/arm64", "linux/aarch64"}, err: "given twice"},
		{name: "not linux", in: []string{"windows/amd64"}, err: "linux images only"},
		{name: "garbage", in: []string{"linux/no such"}, err: "platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePlatforms(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].Equals(tc.want[i]) {
					t.Errorf("platform %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
