package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/spf13/cobra"
)

func newSlimCmd(g *Globals) *cobra.Command {
	var (
		tag        string
		entrypoint string
		includes   []string
		noVerify   bool
		verbose    bool
		timeout    time.Duration
		explain    bool
		explainTo  string
		format     string
		probeCmds  []string
		httpProbes []string
		noObserve  bool
	)
	cmd := &cobra.Command{
		Use:   "slim IMAGE -t NAME [--entrypoint PATH] [--include PATH]... [--probe-cmd 'CMD ARG...']... [--http-probe PORT[/PATH]]... [--explain] [--no-verify] [-- ARGS...]",
		Short: "Make the minimal image holding only what the entrypoint needs, verified by running both",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := slim.BuildOptions{
				Options:  slim.Options{Entrypoint: entrypoint, Include: includes},
				NoVerify: noVerify, VerifyTimeout: timeout,
			}
			opts.NoObserve = noObserve
			probes, err := parseProbes(probeCmds, httpProbes)
			if err != nil {
				return err
			}
			opts.Probes = probes
			if format != "text" && format != "json" {
				return fmt.Errorf("--format must be text or json, not %q", format)
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
			w := cmd.ErrOrStderr()
			if rep != nil {
				// Also when verification failed: the explanation is what helps.
				if explain || verbose {
					if werr := slim.WriteExplain(w, rep.Closure); werr != nil {
						return werr
					}
				}
				if explainTo != "" {
					if werr := writeExplainFile(explainTo, rep); werr != nil {
						return werr
					}
				}
			}
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Digest string       `json:"digest"`
					Report *slim.Report `json:"report"`
				}{d.String(), rep})
			}
			fmt.Fprintf(w, "closure of %s: %d paths (%d with parents) of %d, %s → %s (%.1f%% smaller)\n",
				rep.Closure.Entrypoint, len(rep.Closure.Entries), rep.FilesAfter, rep.FilesBefore,
				report.HumanSize(rep.BytesBefore), report.HumanSize(rep.BytesAfter), rep.ReductionPercent())
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
	cmd.Flags().StringArrayVar(&probeCmds, "probe-cmd", nil, "run the image with these arguments after its entrypoint, watch what it opens, and compare both images on it; repeatable")
	cmd.Flags().StringArrayVar(&httpProbes, "http-probe", nil, "PORT[/PATH]: start the image as a server, GET this once it listens, watch what it opens, compare both answers; repeatable")
	cmd.Flags().BoolVar(&noObserve, "no-observe", false, "keep only the static closure: do not watch the original run")
	cmd.Flags().BoolVar(&noVerify, "no-verify", false, "do not run both images to compare them")
	cmd.Flags().DurationVar(&timeout, "verify-timeout", slim.DefaultVerifyTimeout, "stop a verification run that takes longer, and fail")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every path of the closure and why it is there (as --explain)")
	cmd.Flags().BoolVar(&explain, "explain", false, "print every kept path with the chain that brought it in, to stderr")
	cmd.Flags().StringVar(&explainTo, "explain-file", "", "write every kept path with its chain, then every dropped path, to this file")
	cmd.Flags().StringVar(&format, "format", "text", "text, or json: the digest and the whole report (kept paths with their reasons, dropped paths) on stdout")
	return cmd
}

// writeExplainFile writes the kept paths with their chains, then the dropped
// ones, to name (through a temporary file renamed into place).
func writeExplainFile(name string, rep *slim.Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".explain-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	fmt.Fprintf(bw, "# kept: %d paths\n", len(rep.Closure.Entries))
	if err := slim.WriteExplain(bw, rep.Closure); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	fmt.Fprintf(bw, "# dropped: %d paths\n", len(rep.Dropped))
	if err := slim.WriteDropped(bw, rep); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
