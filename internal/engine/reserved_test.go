package engine_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/layer"
)

// tarWith is a tar holding one empty regular file per name.
func tarWith(t *testing.T, names ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// A file named .wh.* that a build puts in a layer would ship as a whiteout
// (here, deleting the base's /etc/passwd or all of /bin). Every way in is a
// clear error naming the path.
func TestReservedWhiteoutNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "downloaded\n")
	}))
	defer srv.Close()
	tests := []struct {
		name  string
		files map[string]string
		want  string // the path the error names
	}{
		{
			name:  "COPY a context file",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY .wh.passwd /etc/\n", ".wh.passwd": ""},
			want:  "/etc/.wh.passwd",
		},
		{
			name:  "COPY a directory holding an opaque marker",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY bin /bin\n", "bin/.wh..wh..opq": ""},
			want:  "/bin/.wh..wh..opq",
		},
		{
			name:  "COPY to a reserved name",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY f /etc/.wh.group\n", "f": ""},
			want:  "/etc/.wh.group",
		},
		{
			// Exclusions in .dockerignore send COPY through the overlay.
			name: "COPY through the overlay",
			files: map[string]string{
				"Dockerfile": "FROM busybox\nCOPY app /app\n", ".dockerignore": "app/skip*\n!app/skip-not\n",
				"app/.wh.x": "", "app/skip-me": "", "app/skip-not": "",
			},
			want: "/app/.wh.x",
		},
		{
			name:  "COPY heredoc",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY <<EOF /etc/.wh.hosts\nx\nEOF\n"},
			want:  "/etc/.wh.hosts",
		},
		{
			name:  "ADD an archive",
			files: map[string]string{"Dockerfile": "FROM busybox\nADD a.tar /etc/\n"},
			want:  "/etc/.wh.passwd",
		},
		{
			name:  "ADD a URL",
			files: map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/f /etc/.wh.passwd\n"},
			want:  "/etc/.wh.passwd",
		},
		{
			name:  "RUN",
			files: map[string]string{"Dockerfile": "FROM busybox\nRUN touch /etc/.wh.passwd\n"},
			want:  "/etc/.wh.passwd",
		},
		{
			name:  "RUN making a reserved directory",
			files: map[string]string{"Dockerfile": "FROM busybox\nRUN mkdir /.wh.bin\n"},
			want:  "/.wh.bin",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			if strings.Contains(tc.files["Dockerfile"], "a.tar") {
				tc.files["a.tar"] = tarWith(t, "ok", ".wh.passwd")
			}
			err := buildErr(t, st, tc.files, engine.Options{Network: "none"})
			if !errors.Is(err, layer.ErrReservedName) {
				t.Errorf("error %v, want layer.ErrReservedName", err)
			}
			for _, w := range []string{"Dockerfile:2:", tc.want + ":", `".wh."`} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
