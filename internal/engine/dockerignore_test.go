package engine_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slimbuild/slimbuild/internal/engine"
)

// TestDockerignoreExceptionInExcludedDir: an exception brings a file back from an
// excluded directory, which is then created to hold it, and nothing else of it.
func TestDockerignoreExceptionInExcludedDir(t *testing.T) {
	for _, tc := range []struct {
		name, ignore string
		want         []string
	}{
		{
			name:   "exception under an excluded dir",
			ignore: "docs\n!docs/README.md\n",
			want:   []string{"app/docs/", "app/docs/README.md", "app/src/", "app/src/main.c"},
		},
		{
			name:   "exception two levels down",
			ignore: "docs\n!docs/sub/keep.md\n",
			want:   []string{"app/docs/", "app/docs/sub/", "app/docs/sub/keep.md", "app/src/", "app/src/main.c"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			res := mustBuild(t, st, map[string]string{
				"Dockerfile":       "FROM busybox\nCOPY docs /app/docs/\nCOPY src /app/src/\n",
				".dockerignore":    tc.ignore,
				"docs/README.md":   "readme\n",
				"docs/other.md":    "other\n",
				"docs/sub/keep.md": "keep\n",
				"docs/sub/drop.md": "drop\n",
				"src/main.c":       "int main;\n",
			}, engine.Options{})
			var got []string
			for p, e := range fsOf(t, res.Image) {
				if !strings.HasPrefix(p, "app/") {
					continue
				}
				if e.Type == '5' {
					p += "/"
				}
				got = append(got, p)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("files under /app (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDockerignoreExcludedSource: naming a source that .dockerignore removes from the
// context is an error, as in BuildKit, not an empty copy.
func TestDockerignoreExcludedSource(t *testing.T) {
	st := newStore(t)
	err := buildErr(t, st, map[string]string{
		"Dockerfile":     "FROM busybox\nCOPY docs /app/docs/\n",
		".dockerignore":  "docs\n",
		"docs/README.md": "readme\n",
	}, engine.Options{})
	if !strings.Contains(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("error %q does not name the line and .dockerignore", err)
	}
}
