package cli

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

// The store keeps the report's per-layer analyses in its cache.
var _ report.Cache = (*store.Store)(nil)

// addGateFlags adds --max-size and --forbid to a command.
func addGateFlags(cmd *cobra.Command) {
	cmd.Flags().String("max-size", "", "fail when the image's uncompressed size is over SIZE (e.g. 5MB)")
	cmd.Flags().String("forbid", "", "fail when the image has any of: "+report.ValidCategories())
}

// summaryGate parses the gate flags and says whether a build's summary is
// made: it is printed unless quiet, and a gate needs it whatever the output.
func summaryGate(cmd *cobra.Command, quiet bool) (report.Gate, bool, error) {
	maxSize, _ := cmd.Flags().GetString("max-size")
	forbid, _ := cmd.Flags().GetString("forbid")
	gate, err := report.ParseGate(maxSize, forbid)
	if err != nil {
		return gate, false, err
	}
	return gate, !quiet || gate.MaxSize > 0 || len(gate.Forbid) > 0, nil
}

// prefetchSummary sets opts up so that the summary reads the stages' bases while
// the build runs (see report.Prefetch): OnBase hands it each base, and the first
// step that runs (a summary made anew, not one served from the cache) lets it
// begin. It returns the prefetch for afterBuild, nil when no summary will be made.
func prefetchSummary(cmd *cobra.Command, st *store.Store, quiet bool, opts *engine.Options) *report.Prefetch {
	if _, made, err := summaryGate(cmd, quiet); err != nil || !made {
		return nil
	}
	pre := report.NewPrefetch(st)
	opts.OnBase = func(ls []v1.Layer) {
		if trees, err := st.LayerTrees(ls); err == nil {
			pre.Base(layerSources(trees))
		}
	}
	progress := opts.Progress
	opts.Progress = func(e engine.Event) {
		if e.Kind == engine.StepStart {
			pre.Start()
		}
		if progress != nil {
			progress(e)
		}
	}
	return pre
}

// afterBuild prints the payoff summary (unless quiet) and applies the gates;
// pre, if not nil, holds the bases read while the build ran.
func afterBuild(cmd *cobra.Command, st *store.Store, res *engine.Result, quiet bool, pre *report.Prefetch) error {
	gate, made, err := summaryGate(cmd, quiet)
	if err != nil || !made {
		return err
	}
	b := report.Build{Image: res.Image}
	remote := 0
	for _, s := range res.Stages {
		switch {
		case s.Target:
			b.Layers = layerSources(s.Layers)
		case s.Remote:
			remote++ // served lazily from a shared cache: not downloaded to be analysed
		case !quiet:
			b.Discarded = append(b.Discarded, layerSources(s.Layers))
		}
	}
	if b.Layers == nil {
		if b.Layers, err = imageLayers(st, res.Image); err != nil {
			return fmt.Errorf("analysing the image: %w", err)
		}
	}
	final, sum, err := report.SummarizeBuild(cmd.Context(), b, report.Options{Cache: st, Prefetch: pre})
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprint(cmd.ErrOrStderr(), indent(sum.Text()))
		if remote > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "stages left in the registry cache (not downloaded, not analysed): %d\n", remote)
		}
	}
	if v := gate.Check(final); len(v) > 0 {
		return &report.GateError{Violations: v}
	}
	return nil
}

func indent(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func layerSources(ls []store.LayerTree) []report.LayerSource {
	out := make([]report.LayerSource, len(ls))
	for i, l := range ls {
		out[i] = report.LayerSource{ID: l.ID, Open: l.Open}
	}
	return out
}

// imageLayers describes img's layers for the report, read from their unpacked
// directories where the store has them, which spares inflating every blob.
func imageLayers(st *store.Store, img v1.Image) ([]report.LayerSource, error) {
	ls, err := report.ImageLayers(img)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for i, l := range layers {
		ls[i].Open = st.TreeLayer(l).Uncompressed
	}
	return ls, nil
}

// analyzeStored analyses a stored image, reading only layers the cache lacks.
func analyzeStored(ctx context.Context, st *store.Store, img v1.Image) (*report.Report, error) {
	ls, err := imageLayers(st, img)
	if err != nil {
		return nil, err
	}
	return report.AnalyzeLayers(ctx, img, ls, report.Options{Cache: st})
}
