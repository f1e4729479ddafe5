package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// TestCopyParentsContained: COPY --parents sources, pivots and patterns that
// point outside the context (by "..", or through a symlink to the host's /etc)
// are refused or resolved inside it; nothing of the host lands in the image.
func TestCopyParentsContained(t *testing.T) {
	st := newStore(t)
	outer := t.TempDir()
	if err := os.WriteFile(filepath.Join(outer, "secret"), []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(outer, "ctx")
	writeFiles(t, ctxDir, map[string]string{"sub/ok.txt": "fine\n", "sub/inner/x.txt": "x\n"})
	if err := os.Symlink("/etc", filepath.Join(ctxDir, "etclink")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, copy string }{
		{"dotdot source", "COPY --parents ../secret /x/"},
		{"dotdot pivot", "COPY --parents ../././secret /x/"},
		{"pattern climbing out of the pivot", "COPY --parents ./sub/./../../secret /x/"},
		{"pivot through a symlink", "COPY --parents ./etclink/./passwd /x/"},
		{"pattern through a symlink", "COPY --parents etclink/passwd /x/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\n"+tc.copy+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := buildIn(t, st, ctxDir, engine.Options{Network: "none"})
			if err != nil {
				t.Logf("refused: %v", err)
				if !strings.Contains(err.Error(), "Dockerfile:2") {
					t.Errorf("error %v does not name Dockerfile:2", err)
				}
				return
			}
			for p, e := range fsOf(t, res.Image) {
				if strings.HasPrefix(p, "x/") && (strings.Contains(e.Data, "host secret") || strings.HasPrefix(e.Data, "root:")) {
					t.Errorf("%s: host file copied into the image", p)
				}
			}
		})
	}
}

// TestCopyExcludeCacheKey: what --exclude leaves out does not invalidate the
// step, what it keeps does; a changed pattern does.
func TestCopyExcludeCacheKey(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY --exclude=*.log src/ /app/\n",
		"src/a.txt":  "a\n", "src/debug.log": "1\n",
	})
	build1 := func() *engine.Result {
		t.Helper()
		res, err := buildIn(t, st, dir, engine.Options{Network: "none"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := build1()
	if _, ok := fsOf(t, first.Image)["app/debug.log"]; ok {
		t.Fatal("excluded file copied")
	}
	writeFiles(t, dir, map[string]string{"src/debug.log": "2\n"})
	if res := build1(); res.Digest != first.Digest || res.CachedSteps != res.Steps {
		t.Errorf("changing an excluded file rebuilt the step (%d of %d cached)", res.CachedSteps, res.Steps)
	}
	writeFiles(t, dir, map[string]string{"src/a.txt": "b\n"})
	if res := build1(); res.Digest == first.Digest {
		t.Error("changing a kept file did not change the image")
	}
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY --exclude=*.txt src/ /app/\n"})
	fs := fsOf(t, build1().Image)
	if _, ok := fs["app/debug.log"]; !ok {
		t.Error("a changed --exclude pattern was served from the cache")
	}
}

// TestIdenticalLayersThenRun: two steps that make identical layers (the same
// COPY twice) share one layer directory; the RUN after them still mounts
// (overlayfs refuses a lowerdir listed twice) and sees the files.
func TestIdenticalLayersThenRun(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY f /x/\nCOPY f /x/\nRUN cat /x/f > /seen\n",
		"f":          "same\n",
	}, engine.Options{Network: "none"})
	if got := fileData(t, fsOf(t, res.Image), "seen"); got != "same\n" {
		t.Errorf("RUN saw %q", got)
	}
}
