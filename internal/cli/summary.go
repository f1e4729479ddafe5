package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/build"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

// addGateFlags adds --max-size and --forbid to a command.
func addGateFlags(cmd *cobra.Command) {
	cmd.Flags().String("max-size", "", "fail when the image's uncompressed size is over SIZE (e.g. 5MB)")
	cmd.Flags().String("forbid", "", "fail when the image has any of: "+report.ValidCategories())
}

// afterBuild prints the payoff summary (unless quiet) and applies the gates.
func afterBuild(cmd *cobra.Command, st *store.Store, res *build.Result, quiet bool) error {
	maxSize, _ := cmd.Flags().GetString("max-size")
	forbid, _ := cmd.Flags().GetString("forbid")
	gate, err := report.ParseGate(maxSize, forbid)
	if err != nil {
		return err
	}
	gated := gate.MaxSize > 0 || len(gate.Forbid) > 0
	if quiet && !gated {
		return nil
	}
	ctx := cmd.Context()
	final, err := cachedAnalysis(ctx, st, res.Image)
	if err != nil {
		return fmt.Errorf("analysing the image: %w", err)
	}
	if !quiet {
		var discarded []*report.Report
		remote := 0
		for _, s := range res.Stages {
			if s.Remote {
				remote++ // served lazily from a shared cache: not downloaded to be analysed
			}
			if s.Target || s.Remote {
				continue
			}
			r, err := cachedAnalysis(ctx, st, s.Image)
			if err != nil {
				return fmt.Errorf("analysing stage %s: %w", s.Name, err)
			}
			discarded = append(discarded, r)
		}
		sum := report.Summarize(final, discarded)
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

// cachedAnalysis analyses an image once per digest: the report is kept in the
// store's cache, so rebuilding an unchanged image does not read its layers again.
func cachedAnalysis(ctx context.Context, st *store.Store, img v1.Image) (*report.Report, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	key := build.KeyOf("report/v1", d.String())
	if data, err := st.GetCache(key); err == nil {
		var r report.Report
		if json.Unmarshal(data, &r) == nil {
			return &r, nil
		}
	}
	r, err := report.AnalyzeContext(ctx, treeImage{Image: img, st: st}, report.Options{})
	if err != nil {
		return nil, err
	}
	if data, err := json.Marshal(r); err == nil {
		_ = st.PutCache(key, data)
	}
	return r, nil
}

// treeImage reads layers from their unpacked directories where the store has them,
// which spares inflating every blob after a build.
type treeImage struct {
	v1.Image
	st *store.Store
}

func (i treeImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for k, l := range ls {
		out[k] = i.st.TreeLayer(l)
	}
	return out, nil
}
