package engine_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// TestAddURL downloads from a loopback server: the file lands with mode 0600, into a
// directory or under a new name, and a changed body invalidates the step.
func TestAddURL(t *testing.T) {
	st := newStore(t)
	body := "first version\n"
	modified := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/tool.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	files := map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nADD %s/files/tool.txt /opt/\nADD %s/files/tool.txt /opt/renamed\n", srv.URL, srv.URL)}

	res := mustBuild(t, st, files, engine.Options{Network: "none"})
	fs := fsOf(t, res.Image)
	for _, p := range []string{"opt/tool.txt", "opt/renamed"} {
		if got := fileData(t, fs, p); got != body {
			t.Errorf("%s = %q, want %q", p, got, body)
		}
		if e := fs[p]; e.Mode&0o7777 != 0o600 {
			t.Errorf("%s: mode %o, want 0600", p, e.Mode)
		}
	}

	body = "second version\n"
	rec := &recorder{}
	res = mustBuild(t, st, files, engine.Options{Network: "none", Progress: rec.progress})
	if got := fileData(t, fsOf(t, res.Image), "opt/tool.txt"); got != body {
		t.Errorf("after change: %q, want %q", got, body)
	}
	if res.CachedSteps != 0 {
		t.Errorf("changed download served from the cache: %v", rec.fsSteps())
	}

	missing := map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nADD %s/nope /x\n", srv.URL)}
	if err := buildErr(t, st, missing, engine.Options{}); err == nil {
		t.Error("ADD of a missing URL succeeded")
	}
}
