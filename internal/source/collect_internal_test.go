package source

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestCollect: context paths are matched and keyed, URLs are ADD's only and
// downloaded, git refs are ADD's only; a failure leaves no download behind.
func TestCollect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "payload\n")
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a.txt", []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := openTestContext(t, dir)
	for _, tc := range []struct {
		name      string
		paths     []string
		add       bool
		wantItems int
		wantKey   []string // strings the key holds, in order
		wantErr   string
	}{
		{name: "context path", paths: []string{"a.txt"}, wantItems: 1, wantKey: []string{"context"}},
		{name: "missing context path", paths: []string{"nope"}, wantErr: "nope"},
		{name: "URL for ADD", paths: []string{srv.URL + "/f.txt", "a.txt"}, add: true, wantItems: 2, wantKey: []string{"url", srv.URL + "/f.txt", "context"}},
		{name: "URL for COPY", paths: []string{srv.URL + "/f.txt"}, wantErr: "source can't be a URL for COPY"},
		{name: "git for COPY", paths: []string{"https://example.invalid/repo.git#main"}, wantErr: "source can't be a git ref for COPY"},
		{name: "a failed download removes the others", paths: []string{srv.URL + "/f.txt", srv.URL + "/missing"}, add: true, wantErr: "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			m, err := NewMatcher(false, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Collect(context.Background(), Sources{Paths: tc.paths, Add: tc.add, Context: c, TempDir: func() (string, error) { return tmp, nil }})
			left, _ := os.ReadDir(tmp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if len(left) != 0 {
					t.Errorf("%d files left in the temp dir after an error", len(left))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Items) != tc.wantItems {
				t.Errorf("%d items, want %d", len(got.Items), tc.wantItems)
			}
			var keys []string
			for _, k := range got.Key {
				if s, ok := k.(string); ok && !strings.HasPrefix(s, "sha256:") && len(s) != 64 {
					keys = append(keys, s)
				}
			}
			if strings.Join(keys, " ") != strings.Join(tc.wantKey, " ") {
				t.Errorf("key strings %q, want %q", keys, tc.wantKey)
			}
			if len(got.Downloads) != len(left) {
				t.Errorf("%d downloads reported, %d files in the temp dir", len(got.Downloads), len(left))
			}
		})
	}
}
