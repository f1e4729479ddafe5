package engine_test

import (
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// TestPredefinedArgs: the automatic platform ARGs, proxy build args that need no ARG
// and stay out of the image and the cache key, and the warning for unused ones.
func TestPredefinedArgs(t *testing.T) {
	st := newStore(t)
	files := map[string]string{"Dockerfile": `ARG BASE=busybox
FROM ${BASE}
ARG TARGETARCH
ARG TARGETOS
RUN echo "$TARGETOS/$TARGETARCH proxy=$HTTP_PROXY" > /out
`}
	rec := &recorder{}
	res := mustBuild(t, st, files, engine.Options{
		Network:   "none",
		BuildArgs: map[string]string{"HTTP_PROXY": "http://127.0.0.1:3128", "UNUSED": "x"},
		Progress:  rec.progress,
	})
	want := "linux/" + goruntime.GOARCH + " proxy=http://127.0.0.1:3128\n"
	if got := fileData(t, fsOf(t, res.Image), "out"); got != want {
		t.Errorf("/out = %q, want %q", got, want)
	}
	for _, e := range configOf(t, res.Image).Config.Env {
		if strings.Contains(e, "PROXY") || strings.Contains(e, "TARGET") {
			t.Errorf("build arg leaked into the config: %s", e)
		}
	}
	warned := false
	for _, e := range rec.all() {
		if e.Kind == engine.Info && strings.Contains(e.Text, "UNUSED") {
			warned = true
			if strings.Contains(e.Text, "HTTP_PROXY") {
				t.Errorf("a proxy arg was reported unused: %s", e.Text)
			}
		}
	}
	if !warned {
		t.Error("no warning for the unused build arg")
	}

	// Another proxy value: the RUN is still served from the cache.
	res = mustBuild(t, st, files, engine.Options{Network: "none", BuildArgs: map[string]string{"HTTP_PROXY": "http://127.0.0.1:9"}})
	if res.CachedSteps != 1 {
		t.Errorf("a changed proxy arg invalidated the RUN: %d steps cached, want 1", res.CachedSteps)
	}
}
