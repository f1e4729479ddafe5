package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
)

// cacheDockerfile has three stages; "indep" shares nothing with the others.
// Filesystem steps: src#1 src#2 indep#1 stage-2#2..5 (stage-2#1 is ARG).
const cacheDockerfile = `FROM busybox AS src
COPY files/ /files/
RUN cat /files/* > /src.out

FROM scratch AS indep
COPY indep.txt /indep.txt

FROM busybox
ARG USED=one
COPY a.txt /a.txt
RUN echo "$USED" > /used
COPY --from=src /src.out /src.out
COPY --from=indep /indep.txt /indep.txt
`

var cacheSteps = []string{"src#1", "src#2", "indep#1", "stage-2#2", "stage-2#3", "stage-2#4", "stage-2#5"}

// expectSteps marks the listed steps "miss" and every other one "hit".
func expectSteps(misses ...string) map[string]string {
	m := map[string]string{}
	for _, s := range cacheSteps {
		m[s] = "hit"
	}
	for _, s := range misses {
		m[s] = "miss"
	}
	return m
}

func TestCacheOneInputAtATime(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, st *store.Store, dir string, opts *engine.Options)
		want   map[string]string
		// sameDigest: the result must be the very same image as the first build's.
		sameDigest bool
		// anyDigest: the digest may or may not change (a rebuild of the same inputs).
		anyDigest bool
		check     func(t *testing.T, fs map[string]entry)
	}{
		{
			name:       "nothing changed",
			change:     func(*testing.T, *store.Store, string, *engine.Options) {},
			want:       expectSteps(),
			sameDigest: true,
		},
		{
			name: "file content",
			change: func(t *testing.T, _ *store.Store, dir string, _ *engine.Options) {
				// Same size: only the content digest tells the change.
				writeFiles(t, dir, map[string]string{"a.txt": "A2\n"})
			},
			want:  expectSteps("stage-2#2", "stage-2#3", "stage-2#4", "stage-2#5"),
			check: func(t *testing.T, fs map[string]entry) { wantData(t, fs, "a.txt", "A2\n") },
		},
		{
			name: "file mode",
			change: func(t *testing.T, _ *store.Store, dir string, _ *engine.Options) {
				if err := os.Chmod(filepath.Join(dir, "a.txt"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: expectSteps("stage-2#2", "stage-2#3", "stage-2#4", "stage-2#5"),
			check: func(t *testing.T, fs map[string]entry) {
				if m := fs["a.txt"].Mode; m != 0o600 {
					t.Errorf("/a.txt mode %o, want 600", m)
				}
			},
		},
		{
			name: "build arg the RUN uses",
			change: func(_ *testing.T, _ *store.Store, _ string, o *engine.Options) {
				o.BuildArgs = map[string]string{"USED": "two"}
			},
			want:  expectSteps("stage-2#3", "stage-2#4", "stage-2#5"),
			check: func(t *testing.T, fs map[string]entry) { wantData(t, fs, "used", "two\n") },
		},
		{
			name: "build arg no stage declares",
			change: func(_ *testing.T, _ *store.Store, _ string, o *engine.Options) {
				o.BuildArgs = map[string]string{"UNUSED": "x"}
			},
			want:       expectSteps(),
			sameDigest: true,
		},
		{
			name: "base image",
			change: func(t *testing.T, st *store.Store, _ string, _ *engine.Options) {
				root := filepath.Join(t.TempDir(), "rootfs")
				if err := makeBusyboxRootfs(root, map[string]string{"etc/changed": "yes\n"}); err != nil {
					t.Fatal(err)
				}
				if _, err := image.Import(context.Background(), st, root, busyboxName); err != nil {
					t.Fatal(err)
				}
			},
			// indep is FROM scratch: it does not depend on busybox.
			want:  expectSteps("src#1", "src#2", "stage-2#2", "stage-2#3", "stage-2#4", "stage-2#5"),
			check: func(t *testing.T, fs map[string]entry) { wantData(t, fs, "etc/changed", "yes\n") },
		},
		{
			name: ".dockerignore excludes a copied file",
			change: func(t *testing.T, _ *store.Store, dir string, _ *engine.Options) {
				writeFiles(t, dir, map[string]string{".dockerignore": "files/b.txt\n"})
			},
			want:  expectSteps("src#1", "src#2", "stage-2#4", "stage-2#5"),
			check: func(t *testing.T, fs map[string]entry) { wantData(t, fs, "src.out", "fa\n") },
		},
		{
			name: ".dockerignore excludes nothing that is copied",
			change: func(t *testing.T, _ *store.Store, dir string, _ *engine.Options) {
				writeFiles(t, dir, map[string]string{".dockerignore": "unrelated.txt\n"})
			},
			want:       expectSteps(),
			sameDigest: true,
		},
		{
			name: "unrelated context file",
			change: func(t *testing.T, _ *store.Store, dir string, _ *engine.Options) {
				writeFiles(t, dir, map[string]string{"unrelated.txt": "changed\n"})
			},
			want:       expectSteps(),
			sameDigest: true,
		},
		{
			name: "source stage of COPY --from",
			change: func(t *testing.T, _ *store.Store, dir string, _ *engine.Options) {
				writeFiles(t, dir, map[string]string{"files/a.txt": "fA\n"})
			},
			want:  expectSteps("src#1", "src#2", "stage-2#4", "stage-2#5"),
			check: func(t *testing.T, fs map[string]entry) { wantData(t, fs, "src.out", "fA\nfb\n") },
		},
		{
			name:      "no cache",
			change:    func(_ *testing.T, _ *store.Store, _ string, o *engine.Options) { o.NoCache = true },
			want:      expectSteps(cacheSteps...),
			anyDigest: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			dir := writeContext(t, map[string]string{
				"Dockerfile":    cacheDockerfile,
				"files/a.txt":   "fa\n",
				"files/b.txt":   "fb\n",
				"indep.txt":     "indep\n",
				"a.txt":         "A1\n",
				"unrelated.txt": "unrelated\n",
			})
			first := &recorder{}
			res1, err := buildIn(t, st, dir, engine.Options{Progress: first.progress})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(expectSteps(cacheSteps...), first.fsSteps()); diff != "" {
				t.Fatalf("first build into an empty cache (-want +got):\n%s", diff)
			}
			opts := engine.Options{}
			tc.change(t, st, dir, &opts)
			second := &recorder{}
			opts.Progress = second.progress
			res2, err := buildIn(t, st, dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, second.fsSteps()); diff != "" {
				t.Errorf("cache hits after the change (-want +got):\n%s", diff)
			}
			wantCached := 0
			for _, v := range tc.want {
				if v == "hit" {
					wantCached++
				}
			}
			if res2.CachedSteps != wantCached {
				t.Errorf("Result.CachedSteps = %d, want %d", res2.CachedSteps, wantCached)
			}
			if tc.sameDigest && res1.Digest != res2.Digest {
				t.Errorf("digest changed from %s to %s with every step cached", res1.Digest, res2.Digest)
			}
			if !tc.sameDigest && !tc.anyDigest && res1.Digest == res2.Digest {
				t.Errorf("digest %s did not change although an input did", res1.Digest)
			}
			if tc.check != nil {
				tc.check(t, fsOf(t, res2.Image))
			}
			assertClean(t, st)
		})
	}
}

func wantData(t *testing.T, fs map[string]entry, p, want string) {
	t.Helper()
	if got := fileData(t, fs, p); got != want {
		t.Errorf("/%s = %q, want %q", p, got, want)
	}
}

// TestCacheMissDoesNotStopIndependentHits changes one stage and checks that the
// other stage's steps still hit even though they come after it in the file.
func TestCacheMissDoesNotStopIndependentHits(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox AS one\nCOPY one.txt /\nRUN cat /one.txt\nFROM busybox AS two\nCOPY two.txt /\nRUN cat /two.txt\nFROM busybox\nCOPY --from=one /one.txt /\nCOPY --from=two /two.txt /\n",
		"one.txt":    "1\n",
		"two.txt":    "2\n",
	})
	if _, err := buildIn(t, st, dir, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"one.txt": "I\n"})
	rec := &recorder{}
	if _, err := buildIn(t, st, dir, engine.Options{Progress: rec.progress}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"one#1": "miss", "one#2": "miss", "two#1": "hit", "two#2": "hit", "stage-2#1": "miss", "stage-2#2": "miss"}
	if diff := cmp.Diff(want, rec.fsSteps()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, e := range rec.all() {
		if e.Kind == engine.StepCached && !strings.HasPrefix(e.Stage, "two") {
			t.Errorf("unexpected hit %s#%d", e.Stage, e.Step)
		}
	}
}
