package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/slimbuild/slimbuild/internal/build"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// buildxFlags are the `docker buildx build` flags slimbuild takes with the same
// spelling and meaning, so that scripts run unchanged.
type buildxFlags struct {
	iidFile, metadataFile string
	quiet                 bool
	provenance, sbom      string
	platforms             []string
}

func (x *buildxFlags) add(f *pflag.FlagSet) {
	f.StringVar(&x.iidFile, "iidfile", "", "write the image digest to FILE")
	f.StringVar(&x.metadataFile, "metadata-file", "", "write buildx's build result metadata (JSON) to FILE")
	f.BoolVarP(&x.quiet, "quiet", "q", false, "print only the image digest (same as --progress quiet)")
	f.StringVar(&x.provenance, "provenance", "", "provenance attestation: only \"false\" (slimbuild makes none)")
	f.StringVar(&x.sbom, "sbom", "", "SBOM attestation: only \"false\" (slimbuild makes none)")
	f.StringSliceVar(&x.platforms, "platform", nil, "target platform: only the host's ("+hostPlatform()+")")
}

func hostPlatform() string { return goruntime.GOOS + "/" + goruntime.GOARCH }

// check refuses what slimbuild cannot honour, instead of ignoring it.
func (x *buildxFlags) check(cmd *cobra.Command) error {
	for _, name := range []string{"provenance", "sbom"} {
		if !cmd.Flags().Changed(name) {
			continue
		}
		v, _ := cmd.Flags().GetString(name)
		if b, err := strconv.ParseBool(v); err != nil || b {
			return fmt.Errorf("--%s=%s: slimbuild makes no attestations; only --%s=false is accepted", name, v, name)
		}
	}
	for _, p := range x.platforms {
		if p != hostPlatform() {
			return fmt.Errorf("--platform=%s: slimbuild builds only for the host platform %s", p, hostPlatform())
		}
	}
	return nil
}

// write writes --iidfile and --metadata-file.
func (x *buildxFlags) write(res *build.Result, tags []string) error {
	if x.iidFile != "" {
		if err := writeFileAtomic(x.iidFile, []byte(res.Digest.String())); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if x.metadataFile != "" {
		cfg, err := res.Image.ConfigName()
		if err != nil {
			return err
		}
		m := map[string]any{
			"containerimage.digest":        res.Digest.String(),
			"containerimage.config.digest": cfg.String(),
		}
		if len(tags) > 0 {
			m["image.name"] = strings.Join(tags, ",")
		}
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(x.metadataFile, append(data, '\n')); err != nil {
			return fmt.Errorf("--metadata-file: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes data to name through a temporary file in its directory.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// suggestFlag turns an unknown-flag error into one naming the nearest known
// flag, as cobra does for subcommands.
func suggestFlag(cmd *cobra.Command, err error) error {
	msg := err.Error()
	const prefix = "unknown flag: --"
	if !strings.HasPrefix(msg, prefix) {
		return err
	}
	name := strings.TrimPrefix(msg, prefix)
	best, bestD := "", cmd.SuggestionsMinimumDistance+1
	if cmd.SuggestionsMinimumDistance <= 0 {
		bestD = 3
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		d := levenshtein(name, f.Name)
		if strings.HasPrefix(f.Name, name) || strings.HasPrefix(name, f.Name) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return err
	}
	return fmt.Errorf("%w (did you mean --%s?)", err, best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
