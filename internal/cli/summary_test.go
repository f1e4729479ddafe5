package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/spf13/cobra"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/store"
)

// TestSummaryUsesStageLayers: the payoff summary reads a discarded stage through its
// Layers only (its Image is nil here, as a stage without blobs may have none), reads each
// layer once, and reads nothing again on a rebuild of the same stages.
func TestSummaryUsesStageLayers(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	final, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := random.Image(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]int{}
	res := &engine.Result{Image: final, Stages: []engine.StageResult{
		{Name: "builder", Index: 0, Layers: trees(t, builder, opened)},
		{Name: "1", Index: 1, Image: final, Target: true, Layers: trees(t, final, opened)},
	}}
	for run := 0; run < 2; run++ {
		cmd := &cobra.Command{}
		addGateFlags(cmd)
		var out bytes.Buffer
		cmd.SetErr(&out)
		cmd.SetContext(context.Background())
		if err := afterBuild(cmd, st, res, false, nil); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if !strings.Contains(out.String(), "stages: 2 built, 1 discarded") || !strings.Contains(out.String(), ", 2 layers,") {
			t.Errorf("run %d: summary:\n%s", run, out.String())
		}
	}
	if len(opened) != 5 {
		t.Errorf("opened %d layers, want all 5", len(opened))
	}
	for id, n := range opened {
		if n != 1 {
			t.Errorf("layer %s opened %d times over two summaries, want once", id, n)
		}
	}
}

// trees describes img's layers as a stage's layer trees that count their opens.
func trees(t *testing.T, img v1.Image, opened map[string]int) []store.LayerTree {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []store.LayerTree
	for _, l := range ls {
		id, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		l := l
		out = append(out, store.LayerTree{ID: id.String(), Open: func() (io.ReadCloser, error) {
			opened[id.String()]++
			return l.Uncompressed()
		}})
	}
	return out
}

// TestPrefetchSummary: with a summary to make, the build's options hand the
// stage bases over and still report every event; with none (quiet, no gate),
// they are left as they were.
func TestPrefetchSummary(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cmd := &cobra.Command{}
	addGateFlags(cmd)
	var opts engine.Options
	if pre := prefetchSummary(cmd, st, true, &opts); pre != nil || opts.OnBase != nil || opts.Progress != nil {
		t.Fatal("quiet without a gate: a prefetch was set up")
	}
	var seen []engine.EventKind
	opts.Progress = func(e engine.Event) { seen = append(seen, e.Kind) }
	if pre := prefetchSummary(cmd, st, false, &opts); pre == nil || opts.OnBase == nil {
		t.Fatal("a summary to make: no prefetch set up")
	}
	opts.Progress(engine.Event{Kind: engine.StepStart})
	opts.Progress(engine.Event{Kind: engine.StepDone})
	if len(seen) != 2 || seen[0] != engine.StepStart || seen[1] != engine.StepDone {
		t.Errorf("events reported through the options: %v, want StepStart, StepDone", seen)
	}
}
