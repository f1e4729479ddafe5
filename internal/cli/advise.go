package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slimbuild/slimbuild/internal/advise"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/spf13/cobra"
	"mvdan.cc/sh/v3/shell"
)

func newAdviseCmd(g *Globals) *cobra.Command {
	var (
		file, write, base, progress string
		tags, buildArgs, includes   []string
		probeCmds, httpProbes       []string
		network                     runtime.Network
		timeout                     = slim.DefaultVerifyTimeout
	)
	cmd := &cobra.Command{
		Use:   "advise [-f Dockerfile] [--write FILE] [--base IMAGE] [--probe-cmd 'CMD ARG...']... [--http-probe PORT[/PATH]]... CONTEXT",
		Short: "Rewrite a single-stage Dockerfile into a verified multistage one whose runtime stage holds only what the program needs",
		Long: `advise builds the Dockerfile, slims the result (static closure plus what the probes open),
writes a multistage Dockerfile (the original as the builder stage, a runtime stage FROM scratch or
--base that copies exactly the closure and repeats the runtime config), builds it and runs both
images with the same probes. The Dockerfile goes to --write, else to stdout; what advise could not
be sure of heads it as comments and goes to stderr. When the advised image does not build or does
not behave like the original, the Dockerfile is still written, its first note says so, and advise
exits non-zero.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			probes, err := parseProbes(probeCmds, httpProbes)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return fmt.Errorf("--verify-timeout must be positive, not %s", timeout)
			}
			opts := advise.Options{
				Build: engine.Options{ContextDir: args[0], Dockerfile: file, Network: network, BuildArgs: map[string]string{}},
				Slim:  slim.BuildOptions{Options: slim.Options{Include: includes}, Probes: probes, VerifyTimeout: timeout},
				Base:  base, WriteTo: write,
			}
			for _, kv := range buildArgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--build-arg %q: want NAME=VALUE", kv)
				}
				opts.Build.BuildArgs[k] = v
			}
			for _, t := range tags {
				n, err := image.NormalizeName(t)
				if err != nil {
					return fmt.Errorf("-t %s: %w", t, err)
				}
				opts.Tags = append(opts.Tags, n)
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			pp, err := newProgress(progress, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts.Build.Progress = pp.Event
			res, err := advise.Advise(cmd.Context(), st, opts)
			pp.Close()
			w := cmd.ErrOrStderr()
			if res == nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(w, "note: %s\n", n)
			}
			if write == "" {
				cmd.OutOrStdout().Write(res.Dockerfile)
			} else {
				fmt.Fprintf(w, "wrote %s\n", write)
			}
			if err != nil {
				var ve *slim.VerifyError
				if errors.As(err, &ve) || errors.Is(err, advise.ErrAdvisedBuild) {
					fmt.Fprintln(w, "the advised Dockerfile is written with a note saying it failed; fix it before use")
				}
				return err
			}
			fmt.Fprintf(w, "advised: %s → %s of files (%.1f%% smaller); verified: both images exit %d with the same output\n",
				report.HumanSize(res.OriginalBytes), report.HumanSize(res.AdvisedBytes), res.ReductionPercent(), res.ExitCode)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile)")
	f.StringVar(&write, "write", "", "write the advised Dockerfile here (default: stdout)")
	f.StringVar(&base, "base", "", "base image of the runtime stage (default scratch)")
	f.StringArrayVarP(&tags, "tag", "t", nil, "name the image built from the advised Dockerfile (repeatable)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set a build argument K=V (repeatable)")
	f.Var(networkFlag{&network}, "network", "network for RUN steps: default (private, outbound only), none or host")
	f.StringVar(&progress, "progress", "auto", "progress output: auto, plain, tty or quiet")
	f.StringArrayVar(&includes, "include", nil, "also keep this path (file or directory); repeatable")
	f.StringArrayVar(&probeCmds, "probe-cmd", nil, "run the image with these arguments after its entrypoint, watch what it opens, and compare both images on it; repeatable")
	f.StringArrayVar(&httpProbes, "http-probe", nil, "PORT[/PATH]: start the image as a server, GET this once it listens; repeatable")
	f.DurationVar(&timeout, "verify-timeout", slim.DefaultVerifyTimeout, "stop a probe run that takes longer, and fail")
	return cmd
}

// parseProbes turns --probe-cmd and --http-probe values into probes.
func parseProbes(probeCmds, httpProbes []string) ([]slim.Probe, error) {
	var probes []slim.Probe
	for _, c := range probeCmds {
		args, err := shell.Fields(c, func(string) string { return "" })
		if err != nil || len(args) == 0 {
			return nil, fmt.Errorf("--probe-cmd %q: want a command line (words, quotes): %v", c, err)
		}
		probes = append(probes, slim.Probe{Args: args})
	}
	for _, h := range httpProbes {
		pr, err := slim.ParseHTTPProbe(h)
		if err != nil {
			return nil, fmt.Errorf("--http-probe: %w", err)
		}
		probes = append(probes, pr)
	}
	return probes, nil
}
