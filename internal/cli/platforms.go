package cli

import (
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

// checkPlatforms refuses, before the store opens, what a build for several
// platforms (an index) cannot give: slimbuild makes one docker-archive, slim
// image, cache export and report per image.
func checkPlatforms(cmd *cobra.Command, platforms []v1.Platform, rb *registryFlags, slimIt, load bool) error {
	if len(platforms) < 2 {
		return nil
	}
	why := func(what string) error {
		return fmt.Errorf("%s is not supported with several platforms (the result is an image index)", what)
	}
	switch {
	case slimIt:
		return why("--slim")
	case load:
		return why("--load (load one platform with: slimbuild save --platform OS/ARCH -o FILE NAME; docker load -i FILE)")
	case len(rb.cacheTo) > 0:
		return why("--cache-to")
	}
	for _, f := range []string{"max-size", "forbid"} {
		if cmd.Flags().Changed(f) {
			return why("--" + f)
		}
	}
	for _, o := range rb.files {
		if po, err := image.ParseOutput(o); err == nil && po.Type != "oci" {
			return why("--output type=" + po.Type + " (use type=oci, or slimbuild save --platform)")
		}
	}
	return nil
}

// buildPlatforms runs a build for several platforms and writes, pushes and
// names its index.
func buildPlatforms(cmd *cobra.Command, st *store.Store, opts engine.Options, bx *buildxFlags, rb *registryFlags, newRegistry func(io.Writer) *image.Registry, tags []string, quiet bool, done func()) error {
	res, err := engine.BuildPlatforms(cmd.Context(), st, opts, bx.parsed)
	done()
	if err != nil {
		return err
	}
	for _, output := range rb.files {
		if err := image.WriteIndexOutput(res.Index, output, tags); err != nil {
			return fmt.Errorf("--output %s: %w", output, err)
		}
	}
	stderr := cmd.ErrOrStderr()
	for _, ref := range rb.pushTo {
		d, err := newRegistry(stderr).PushIndex(cmd.Context(), res.Index, ref)
		if err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		fmt.Fprintf(stderr, "pushed %s@%s\n", ref, d)
	}
	if !quiet {
		var parts []string
		steps, cached := 0, 0
		for i, r := range res.Results {
			parts = append(parts, fmt.Sprintf("%s %s", platformName(bx.parsed[i]), r.Digest))
			steps += r.Steps
			cached += r.CachedSteps
		}
		fmt.Fprintf(stderr, "built %s for %s (%d steps, %d cached)\n", strings.Join(tags, ", "), strings.Join(parts, ", "), steps, cached)
	}
	if bx.iidFile != "" {
		if err := writeFileAtomic(bx.iidFile, []byte(res.Digest.String())); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if bx.metadataFile != "" {
		if err := bx.writeMetadata(map[string]any{"containerimage.digest": res.Digest.String()}, tags); err != nil {
			return err
		}
	}
	fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
	return nil
}

func platformName(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// storedIndexDigest reports whether ref (a name or digest) names an index in
// st, and its digest when it does.
func storedIndexDigest(st *store.Store, ref string) (v1.Hash, bool, error) {
	if len(ref) <= 7 || ref[:7] != "sha256:" {
		n, err := image.NormalizeName(ref)
		if err != nil {
			return v1.Hash{}, false, err
		}
		ref = n
	}
	ok, err := st.IsIndex(ref)
	if err != nil || !ok {
		// A missing name is storedImage's error to give.
		return v1.Hash{}, false, nil
	}
	idx, err := st.Index(ref)
	if err != nil {
		return v1.Hash{}, false, err
	}
	d, err := idx.Digest()
	return d, true, err
}
