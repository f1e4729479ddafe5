package engine_test

import (
	"archive/tar"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slimbuild/slimbuild/internal/engine"
)

func TestGlobalArgsAndEnvScoping(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `ARG BASE=nonexistent
ARG GLOBAL=global-default
FROM ${BASE}
ARG GLOBAL
ENV A=old
ENV A=new B=$A
RUN echo "$GLOBAL|$A|$B" > /seen
`,
	}, engine.Options{BuildArgs: map[string]string{"BASE": "busybox"}, NoPull: true})
	if got := fileData(t, fsOf(t, res.Image), "seen"); got != "global-default|new|old\n" {
		t.Errorf("RUN saw %q, want %q (global ARG redeclared; ENV uses values from before the instruction)", got, "global-default|new|old\n")
	}
	// A global ARG is not visible in a stage that does not declare it.
	res = mustBuild(t, st, map[string]string{
		"Dockerfile": "ARG GLOBAL=g\nFROM busybox\nRUN echo \"[$GLOBAL]\" > /seen\n",
	}, engine.Options{})
	if got := fileData(t, fsOf(t, res.Image), "seen"); got != "[]\n" {
		t.Errorf("undeclared global ARG seen as %q in the stage", got)
	}
}

func TestOwnershipRules(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox AS src
RUN echo owned > /owned && chown 65534:65534 /owned && chmod 0604 /owned
FROM busybox
COPY --from=src /owned /kept-owner
COPY --chown=nobody a.txt /new/parent/a.txt
USER nobody
WORKDIR /home/nobody-work
RUN touch made-by-nobody
`,
		"a.txt": "a\n",
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	if e := fs["kept-owner"]; e.UID != 65534 || e.GID != 65534 || e.Mode != 0o604 {
		t.Errorf("COPY --from: owner %d:%d mode %o, want the source's 65534:65534 604", e.UID, e.GID, e.Mode)
	}
	if e := fs["new/parent/a.txt"]; e.UID != 65534 {
		t.Errorf("COPY --chown: owner %d, want 65534", e.UID)
	}
	if e := fs["home/nobody-work"]; e.Type != tar.TypeDir || e.UID != 65534 {
		t.Errorf("WORKDIR after USER nobody: %+v, want a directory owned by 65534", e)
	}
	if e, ok := fs["home/nobody-work/made-by-nobody"]; !ok || e.UID != 65534 {
		t.Errorf("file made by USER nobody in WORKDIR: %+v (present %v)", e, ok)
	}
}

func TestEmptyRunAddsNoLayer(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nRUN true\nRUN echo x > /x\nRUN true\n",
	}, engine.Options{})
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Errorf("image has %d layers, want 2 (base + the RUN that wrote /x)", len(layers))
	}
	cf := configOf(t, res.Image)
	var got []bool
	for _, h := range cf.History {
		got = append(got, h.EmptyLayer)
	}
	// Import's base history entry (if any) comes first; then RUN true, RUN echo, RUN true.
	if n := len(got); n < 3 || !cmp.Equal(got[n-3:], []bool{true, false, true}) {
		t.Errorf("history EmptyLayer flags = %v, want [..., true false true]", got)
	}
	// The layer of RUN echo x > /x holds /x and nothing else: no directory copied up
	// by overlayfs only because the runtime put a mount point (/etc/hosts) under it.
	for _, l := range layers[1:] {
		if names := layerNames(t, l); !cmp.Equal(names, []string{"x"}) {
			t.Errorf("a RUN layer holds %v, want only [x]", names)
		}
	}
	if len(cf.RootFS.DiffIDs) != len(layers) {
		t.Errorf("%d diff_ids for %d layers", len(cf.RootFS.DiffIDs), len(layers))
	}
}

func TestDirectoryWhiteout(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nRUN mkdir -p /gone/sub && echo x > /gone/sub/f\nRUN rm -rf /gone /usr/sbin\n",
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	for p := range fs {
		if p == "gone" || strings.HasPrefix(p, "gone/") || p == "usr/sbin" || strings.HasPrefix(p, "usr/sbin/") {
			t.Errorf("/%s survived rm -rf", p)
		}
	}
	names := layerNames(t, lastLayer(t, res.Image))
	for _, w := range []string{".wh.gone", "usr/.wh.sbin"} {
		found := false
		for _, n := range names {
			found = found || n == w
		}
		if !found {
			t.Errorf("last layer has no %s: %v", w, names)
		}
	}
}

func TestFailingStageStopsSiblings(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox AS slow
RUN sleep 30 && echo late > /late
FROM busybox AS broken
RUN sleep 1 && exit 5
FROM busybox
COPY --from=slow /late /late
COPY --from=broken /etc/passwd /p
`})
	start := time.Now()
	_, err := buildIn(t, st, dir, engine.Options{})
	took := time.Since(start)
	if err == nil {
		t.Fatal("build succeeded")
	}
	if !strings.Contains(err.Error(), "exit code 5") {
		t.Errorf("error %q is not the failing stage's", err)
	}
	if took > 10*time.Second {
		t.Errorf("build took %v: the sibling stage's RUN sleep 30 was not stopped", took)
	}
	assertClean(t, st)
}

func TestConcurrentBuildsShareAStore(t *testing.T) {
	st := newStore(t)
	files := map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
		"a.txt":      "shared\n",
	}
	const n = 3
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = writeContext(t, files)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]*engine.Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			results[i], errs[i] = engine.Build(ctx, st, engine.Options{ContextDir: dirs[i], Tags: []string{"concurrent:latest"}})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("build %d: %v", i, err)
			continue
		}
		checkResult(t, results[i])
		if got := fileData(t, fsOf(t, results[i].Image), "b.txt"); got != "shared\n" {
			t.Errorf("build %d: /b.txt = %q", i, got)
		}
	}
	assertClean(t, st)
}

func TestHeredocChompAndWorkdirRelativeCopy(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nWORKDIR /app\nCOPY <<-EOF conf.txt\n\tindented\n\tEOF\nCOPY a.txt ./sub/\nCOPY a.txt .\n",
		"a.txt":      "a\n",
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	wantData(t, fs, "app/conf.txt", "indented\n")
	wantData(t, fs, "app/sub/a.txt", "a\n")
	wantData(t, fs, "app/a.txt", "a\n")
}
