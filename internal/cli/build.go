package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/slimbuild/slimbuild/internal/build"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func init() { register(newBuildCmd) }

func newBuildCmd(g *Globals) *cobra.Command {
	var (
		file, target, progress, output, compression string
		sourceDateEpoch                             string
		tags, buildArgs, secrets                    []string
		network                                     runtime.Network
		noCache                                     bool
		jobs                                        int
		bx                                          buildxFlags
	)
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := build.Options{
				ContextDir: args[0], Dockerfile: file, Target: target, Tags: tags, Network: network,
				NoCache: noCache, Jobs: jobs, Compression: store.Compression(compression),
				BuildArgs: map[string]string{}, Secrets: map[string]string{},
			}
			for _, kv := range buildArgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					// docker takes the value from the environment when none is given
					if ev, found := os.LookupEnv(k); found {
						v = ev
					} else {
						continue
					}
				}
				if k == "" {
					return fmt.Errorf("--build-arg %q: the argument needs a name (NAME=VALUE)", kv)
				}
				opts.BuildArgs[k] = v
			}
			var err error
			if opts.SourceDateEpoch, err = sourceDateEpochOf(cmd, sourceDateEpoch, opts.BuildArgs); err != nil {
				return err
			}
			for _, s := range secrets {
				id, src, err := parseSecret(s)
				if err != nil {
					return err
				}
				opts.Secrets[id] = src
			}
			if err := bx.check(cmd); err != nil {
				return err
			}
			if bx.quiet {
				progress = "quiet"
			}
			for _, t := range tags {
				if _, err := image.NormalizeName(t); err != nil {
					return fmt.Errorf("-t %s: %w", t, err)
				}
			}
			if err := opts.Check(); err != nil {
				return err
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			pp, err := newProgress(progress, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts.Progress = pp.Event
			res, err := build.Build(cmd.Context(), st, opts)
			pp.Close()
			if err != nil {
				return err
			}
			if output != "" {
				if err := image.WriteOutput(res.Image, output, tags); err != nil {
					return fmt.Errorf("--output %s: %w", output, err)
				}
			}
			if pp.mode != "quiet" {
				fmt.Fprintf(cmd.ErrOrStderr(), "built %s (%d steps, %d cached)\n", strings.Join(tags, ", "), res.Steps, res.CachedSteps)
			}
			if err := bx.write(res, tags); err != nil {
				return err
			}
			gateErr := afterBuild(cmd, st, res, pp.mode == "quiet")
			fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
			return gateErr
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile)")
	f.StringArrayVarP(&tags, "tag", "t", nil, "name the result (repeatable)")
	f.StringVar(&target, "target", "", "stage to build (default: the last)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set a build argument K=V (repeatable)")
	f.Var(networkFlag{&network}, "network", "network for RUN steps: default (private, outbound only), none or host")
	f.StringVar(&progress, "progress", "auto", "progress output: auto, plain, tty or quiet")
	f.StringVar(&output, "output", "", "also write the result: type=oci|docker|tar,dest=PATH")
	f.BoolVar(&noCache, "no-cache", false, "do not use the build cache")
	f.IntVar(&jobs, "jobs", 0, "how many stages may run at once (default: all that can)")
	f.StringVar(&compression, "compression", "gzip", "layer compression: gzip, zstd or none")
	f.StringArrayVar(&secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE")
	f.StringVar(&sourceDateEpoch, "source-date-epoch", "", "reproducible build: clamp layer times and date the image to these seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	bx.add(f)
	cmd.SetFlagErrorFunc(suggestFlag)
	addGateFlags(cmd)
	return cmd
}

// sourceDateEpochOf is the epoch a build uses: --source-date-epoch, else
// nil when --build-arg SOURCE_DATE_EPOCH is given (the engine reads it), else
// $SOURCE_DATE_EPOCH, the order of buildctl and buildx.
func sourceDateEpochOf(cmd *cobra.Command, flag string, buildArgs map[string]string) (*time.Time, error) {
	if cmd.Flags().Changed("source-date-epoch") {
		t, err := build.ParseSourceDateEpoch(flag)
		if err != nil {
			return nil, fmt.Errorf("--source-date-epoch: %w", err)
		}
		return t, nil
	}
	if _, ok := buildArgs[build.SourceDateEpochArg]; ok {
		return nil, nil
	}
	t, err := build.ParseSourceDateEpoch(os.Getenv(build.SourceDateEpochArg))
	if err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	return t, nil
}

func parseSecret(s string) (string, string, error) {
	var id, src string
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "id":
			id = v
		case "src", "source":
			src = v
		default:
			return "", "", fmt.Errorf("--secret %s: unknown key %q (use id=ID,src=FILE)", s, k)
		}
	}
	if id == "" || src == "" {
		return "", "", fmt.Errorf("--secret %s: needs id=ID,src=FILE", s)
	}
	if _, err := os.Stat(src); err != nil {
		return "", "", fmt.Errorf("--secret %s: %w", s, err)
	}
	return id, src, nil
}
