package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slimbuild/slimbuild/internal/engine"
)

func TestMultistageFinalHasOnlyArtifact(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox AS builder
RUN mkdir /work && echo built > /work/artifact && echo junk > /work/builder-only && echo x > /builder-marker
FROM busybox
COPY --from=builder /work/artifact /app/artifact
`,
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	if got := fileData(t, fs, "app/artifact"); got != "built\n" {
		t.Errorf("/app/artifact = %q, want %q", got, "built\n")
	}
	for _, p := range []string{"work/builder-only", "work", "builder-marker"} {
		if _, ok := fs[p]; ok {
			t.Errorf("final image has the builder's /%s", p)
		}
	}
	if len(res.Stages) != 2 || !res.Stages[1].Target || res.Stages[0].Name != "builder" {
		t.Errorf("Stages = %+v, want builder then the target", res.Stages)
	}
}

func TestMultistageOnlyNeededStagesRun(t *testing.T) {
	df := `FROM busybox AS broken
RUN false
FROM busybox AS first
RUN echo first > /first
FROM busybox AS second
COPY --from=first /first /copied
RUN echo second > /second
FROM busybox AS unrelated
RUN false
`
	tests := []struct {
		name       string
		target     string
		wantFiles  []string
		wantAbsent []string
		wantStages []string
	}{
		{name: "default target is the last stage", target: "", wantStages: nil},
		{name: "target an earlier stage", target: "second", wantFiles: []string{"copied", "second"}, wantStages: []string{"first", "second"}},
		{name: "target the first needed stage", target: "first", wantFiles: []string{"first"}, wantAbsent: []string{"second", "copied"}, wantStages: []string{"first"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			res, err := buildIn(t, st, dir, engine.Options{Target: tc.target})
			if tc.target == "" {
				// The last stage is "unrelated", which fails: the build must fail there
				// and not in "broken".
				if err == nil {
					t.Fatal("build of the last stage (RUN false) succeeded")
				}
				if !strings.Contains(err.Error(), "unrelated") || strings.Contains(err.Error(), "broken") {
					t.Errorf("error = %v, want it from stage unrelated only", err)
				}
				assertClean(t, st)
				return
			}
			if err != nil {
				t.Fatalf("build --target %s: %v (a stage the target does not need was built?)", tc.target, err)
			}
			fs := fsOf(t, res.Image)
			for _, p := range tc.wantFiles {
				if _, ok := fs[p]; !ok {
					t.Errorf("target %s lacks /%s", tc.target, p)
				}
			}
			for _, p := range tc.wantAbsent {
				if _, ok := fs[p]; ok {
					t.Errorf("target %s has /%s", tc.target, p)
				}
			}
			var names []string
			for _, s := range res.Stages {
				names = append(names, s.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.wantStages, ",") {
				t.Errorf("built stages %v, want %v", names, tc.wantStages)
			}
		})
	}
}

// threeSleepers has three independent stages of one second each, copied into a final stage.
const threeSleepers = `FROM busybox AS a
RUN sleep 1 && echo a > /a
FROM busybox AS b
RUN sleep 1 && echo b > /b
FROM busybox AS c
RUN sleep 1 && echo c > /c
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
COPY --from=c /c /c
`

// TestMultistageConcurrency checks the schedule, not the clock: with the default
// jobs every sleeping stage starts before any of them is done; with --jobs 1 each
// starts only after the one before it is done.
func TestMultistageConcurrency(t *testing.T) {
	tests := []struct {
		name       string
		jobs       int
		overlapped bool
	}{
		{name: "independent stages run at once", jobs: 0, overlapped: true},
		{name: "jobs 1 runs them one by one", jobs: 1, overlapped: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			dir := writeContext(t, map[string]string{"Dockerfile": threeSleepers})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rec := &recorder{}
			res, err := engine.Build(ctx, st, engine.Options{ContextDir: dir, Jobs: tc.jobs, Progress: rec.progress})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res)
			// Order the RUN steps' start and end events as they happened.
			var order []string
			for _, e := range rec.all() {
				if e.Stage == "stage-3" || (e.Kind != engine.StepStart && e.Kind != engine.StepDone) {
					continue
				}
				if e.Kind == engine.StepStart {
					order = append(order, "start")
				} else {
					order = append(order, "done")
				}
			}
			want := []string{"start", "done", "start", "done", "start", "done"}
			if tc.overlapped {
				want = []string{"start", "start", "start", "done", "done", "done"}
			}
			if diff := cmp.Diff(want, order); diff != "" {
				t.Errorf("schedule of the sleeping stages (-want +got):\n%s", diff)
			}
			fs := fsOf(t, res.Image)
			for _, p := range []string{"a", "b", "c"} {
				if got := fileData(t, fs, p); got != p+"\n" {
					t.Errorf("/%s = %q", p, got)
				}
			}
		})
	}
}
