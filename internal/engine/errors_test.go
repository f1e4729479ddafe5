package engine_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/engine"
)

func TestWhiteouts(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
RUN mkdir -p /d/keep-dir && echo a > /d/a && echo x > /other
RUN rm /bin/vi
RUN rm -rf /d && mkdir /d && echo b > /d/b
`,
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	if _, ok := fs["bin/vi"]; ok {
		t.Errorf("/bin/vi is still in the final filesystem")
	}
	if _, ok := fs["bin/sh"]; !ok {
		t.Errorf("/bin/sh is gone: the whiteout removed too much")
	}
	for _, p := range []string{"d/a", "d/keep-dir"} {
		if _, ok := fs[p]; ok {
			t.Errorf("/%s survived rm -rf /d", p)
		}
	}
	if got := fileData(t, fs, "d/b"); got != "b\n" {
		t.Errorf("/d/b = %q", got)
	}
	fileData(t, fs, "other")

	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 4 {
		t.Fatalf("image has %d layers, want 4 (base + 3 RUN)", len(layers))
	}
	rmLayer := layerNames(t, layers[2])
	if !slices.Contains(rmLayer, "bin/.wh.vi") {
		t.Errorf("the layer of RUN rm /bin/vi has no bin/.wh.vi: %v", rmLayer)
	}
	opq := layerNames(t, layers[3])
	if !slices.Contains(opq, "d/.wh..wh..opq") {
		t.Errorf("the layer of RUN rm -rf /d && mkdir /d has no opaque marker d/.wh..wh..opq: %v", opq)
	}
	for _, l := range [][]string{rmLayer, opq} {
		for _, n := range l {
			for _, leak := range []string{"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf", "etc/hostname"} {
				if n == leak || strings.HasPrefix(n, leak+"/") {
					t.Errorf("runtime mount point %s leaked into a RUN layer", n)
				}
			}
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		opts       engine.Options
		wantPrefix string
		want       []string
		wantIs     error
	}{
		{name: "unknown instruction", dockerfile: "FROM busybox\nRUN true\nFROBNICATE now\n", wantPrefix: "Dockerfile:3:", want: []string{"frobnicate"}},
		{name: "COPY without destination", dockerfile: "FROM busybox\nCOPY onlyone\n", wantPrefix: "Dockerfile:2:"},
		{name: "no FROM", dockerfile: "RUN true\n", wantPrefix: "Dockerfile:"},
		{name: "unknown target", dockerfile: "FROM busybox AS a\nFROM busybox AS b\n", opts: engine.Options{Target: "nosuch"}, want: []string{"nosuch"}, wantIs: dockerfile.ErrUnknownTarget},
		{name: "unknown --from index", dockerfile: "FROM busybox\nFROM busybox\nCOPY --from=7 /x /x\n", wantPrefix: "Dockerfile:3:", want: []string{"7"}},
		{name: "unknown --from stage name", dockerfile: "FROM busybox AS a\nFROM busybox\nCOPY --from=nosuchstage /x /x\n", opts: engine.Options{NoPull: true}, wantPrefix: "Dockerfile:3:", want: []string{"nosuchstage"}},
		{name: "base not in the store and not pullable", dockerfile: "FROM busybox AS ok\nFROM 127.0.0.1:1/nothing/here:v1\nRUN true\n", wantPrefix: "Dockerfile:2:", want: []string{"127.0.0.1:1/nothing/here:v1", "import"}},
		{name: "base not in the store, no pull", dockerfile: "FROM not-imported:v9\n", opts: engine.Options{NoPull: true}, wantPrefix: "Dockerfile:1:", want: []string{"not-imported:v9", "import"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			start := time.Now()
			err := buildErr(t, st, map[string]string{"Dockerfile": tc.dockerfile}, tc.opts)
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("the error took %v", took)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.HasPrefix(msg, tc.wantPrefix) {
				t.Errorf("error %q does not start with %q", msg, tc.wantPrefix)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", msg, tc.wantIs)
			}
		})
	}
}

func TestFailingRun(t *testing.T) {
	st := newStore(t)
	lines := []string{}
	for i := 1; i <= 30; i++ {
		lines = append(lines, "echo output-line-"+string(rune('a'+i%26))+"-"+strconv.Itoa(i))
	}
	df := "FROM busybox\nRUN echo ok > /ok\nRUN " + strings.Join(lines, " && ") + " && echo to-stderr >&2 && exit 7\n"
	err := buildErr(t, st, map[string]string{"Dockerfile": df}, engine.Options{})
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, w := range []string{"Dockerfile:3:", "exit code 7", "echo output-line-", "output-line-e-30", "to-stderr"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "output-line-b-1\n") {
		t.Errorf("error holds the whole output, want only the last lines:\n%s", msg)
	}
	var se *engine.StepError
	if !errors.As(err, &se) {
		t.Fatalf("error is not a *engine.StepError: %T", err)
	}
	if se.ExitCode != 7 || se.Line != 3 {
		t.Errorf("StepError exit code %d line %d, want 7 and 3", se.ExitCode, se.Line)
	}
}

func TestCancelDuringRun(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started && sleep 30\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	var once bool
	rec := &recorder{}
	opts := engine.Options{ContextDir: dir, Progress: func(e engine.Event) {
		rec.progress(e)
		if e.Kind == engine.StepLog && strings.Contains(e.Text, "started") && !once {
			once = true
			close(started)
		}
	}}
	type result struct {
		res *engine.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := engine.Build(ctx, st, opts)
		done <- result{res, err}
	}()
	select {
	case <-started:
	case r := <-done:
		t.Fatalf("build ended before the RUN started: %v", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the RUN did not start within 30s")
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	cancelled := time.Now()
	select {
	case r := <-done:
		if took := time.Since(cancelled); took > 3*time.Second {
			t.Errorf("Build returned %v after the cancel, want within 3s", took)
		}
		if r.err == nil {
			t.Fatal("cancelled build returned no error")
		}
		t.Logf("error: %v", r.err)
		if !errors.Is(r.err, context.Canceled) {
			t.Logf("note: error %q does not wrap context.Canceled", r.err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("Build did not return after the cancel")
	}
	assertClean(t, st)
}
