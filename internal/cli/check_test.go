package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildCheck: --check prints the build checks' warnings with file:line and
// builds nothing; # check=error=true turns them into a failure.
func TestBuildCheck(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
		wantErr   string
	}{
		{name: "warnings", src: "FROM busybox as Base\nCMD echo hi\n",
			want: []string{"Dockerfile:1: StageNameCasing", "Dockerfile:1: FromAsCasing", "Dockerfile:2: JSONArgsRecommended", "3 warning(s)"}},
		{name: "clean", src: "FROM busybox\n", want: []string{"no warnings"}},
		{name: "error=true", src: "# check=error=true\nFROM busybox as base\n", want: []string{"Dockerfile:2: FromAsCasing"}, wantErr: "FromAsCasing"},
		{name: "skipped", src: "# check=skip=FromAsCasing;error=true\nFROM busybox as base\n", want: []string{"no warnings"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(t.TempDir(), "root")
			_, stderr, err := slimbuild(t, root, "build", "--check", dir)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("build --check: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("build --check: error %v, want one naming %s", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(root); err == nil {
				t.Errorf("--check opened the store %s", root)
			}
		})
	}
}
