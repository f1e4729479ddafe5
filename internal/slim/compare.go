package slim

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/store"
)

// Compare runs original and candidate with each of opts' probes (as Build's
// verification does: network none, same arguments, opts.VerifyTimeout) and
// returns the exit status of the first probe, or a *VerifyError naming the
// first probe on which candidate does not behave like original. Advise uses
// it to check an image built from a rewritten Dockerfile.
func Compare(ctx context.Context, st *store.Store, original, candidate v1.Image, opts BuildOptions) (int, error) {
	probes := opts.Probes
	if len(probes) == 0 {
		probes = []Probe{{Args: opts.VerifyArgs}}
	}
	var originals []RunOutput
	for i, pr := range probes {
		out, _, err := runProbe(ctx, st, original, pr, opts, false)
		if err != nil {
			return 0, fmt.Errorf("running the original (probe %d, %s): %w", i+1, pr, err)
		}
		originals = append(originals, out)
	}
	d, err := candidate.Digest()
	if err != nil {
		return 0, err
	}
	return verify(ctx, st, candidate, d, probes, originals, opts)
}
