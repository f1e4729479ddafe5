package cli

import (
	"fmt"
	"time"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/spf13/cobra"
)

func init() {
	register(newSlimCmd)
}

func newSlimCmd(g *Globals) *cobra.Command {
	var (
		tag        string
		entrypoint string
		includes   []string
		noVerify   bool
		verbose    bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "slim IMAGE -t NAME [--entrypoint PATH] [--include PATH]... [--no-verify] [-- ARGS...]",
		Short: "Make the minimal image holding only what the entrypoint needs, verified by running both",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := slim.BuildOptions{
				Options:  slim.Options{Entrypoint: entrypoint, Include: includes},
				NoVerify: noVerify, VerifyTimeout: timeout,
			}
			if timeout <= 0 {
				return fmt.Errorf("--verify-timeout must be positive, not %s", timeout)
			}
			if n := cmd.ArgsLenAtDash(); n >= 0 {
				if n != 1 {
					return fmt.Errorf("slim takes one IMAGE before --, got %d arguments", n)
				}
				opts.VerifyArgs = args[1:]
			} else if len(args) != 1 {
				return fmt.Errorf("slim takes one IMAGE (verification arguments go after --)")
			}
			if tag != "" {
				n, err := image.NormalizeName(tag)
				if err != nil {
					return err
				}
				opts.Tag = n
			}
			st, img, err := g.storeAndImage(args[0])
			if err != nil {
				return err
			}
			d, _, rep, err := slim.Build(cmd.Context(), st, img, opts)
			if err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			if verbose {
				for _, e := range rep.Closure.Entries {
					fmt.Fprintf(w, "  %-7s %s  (%s)\n", e.Kind, e.Path, e.Why)
				}
			}
			fmt.Fprintf(w, "closure of %s: %d paths (%d with parents) of %d, %s → %s (%.1f%% smaller)\n",
				rep.Closure.Entrypoint, len(rep.Closure.Entries), rep.FilesAfter, rep.FilesBefore,
				humanBytes(rep.BytesBefore), humanBytes(rep.BytesAfter), rep.ReductionPercent())
			if rep.Verified {
				fmt.Fprintf(w, "verified: both images exit %d with the same output\n", rep.ExitCode)
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().StringVarP(&tag, "tag", "t", "", "name of the slim image")
	cmd.Flags().StringVar(&entrypoint, "entrypoint", "", "start the closure here instead of the image's ENTRYPOINT/CMD")
	cmd.Flags().StringArrayVar(&includes, "include", nil, "also keep this path (file or directory); repeatable")
	cmd.Flags().BoolVar(&noVerify, "no-verify", false, "do not run both images to compare them")
	cmd.Flags().DurationVar(&timeout, "verify-timeout", slim.DefaultVerifyTimeout, "stop a verification run that takes longer, and fail")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every path of the closure and why it is there")
	return cmd
}

// humanBytes renders n in B, kB, MB, GB (powers of 1000).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGT"[exp])
}
