package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/runmount"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/slimbuild/slimbuild/internal/source"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func newBuildCmd(g *Globals) *cobra.Command {
	var (
		file, target, progress, sourceDateEpoch string
		compression                             = store.Gzip
		tags, buildArgs, secrets, outputs       []string
		namedContexts, sshs                     []string
		cacheTo, cacheFrom                      []string
		slimProbeCmds, slimHTTPProbes           []string
		network                                 runtime.Network
		noCache, push, slimIt                   bool
		jobs                                    int
		newRegistry                             func(io.Writer) *image.Registry
		bx                                      buildxFlags
	)
	var checkOnly bool
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := engine.Options{
				ContextDir: args[0], Dockerfile: file, Target: target, Tags: tags, Network: network,
				NoCache: noCache, Jobs: jobs, Compression: compression,
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
			if checkOnly {
				return runChecks(cmd.ErrOrStderr(), opts)
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
			for _, v := range namedContexts {
				name, nc, err := image.ParseNamedContext(v)
				if err != nil {
					return err
				}
				if _, dup := opts.NamedContexts[name]; dup {
					return fmt.Errorf("--build-context %q: a context of that name was already given", v)
				}
				if opts.NamedContexts == nil {
					opts.NamedContexts = map[string]image.NamedContext{}
				}
				opts.NamedContexts[name] = nc
			}
			if opts.SSH, err = runmount.ParseSSH(sshs); err != nil {
				return err
			}
			if err := bx.check(cmd); err != nil {
				return err
			}
			if err := checkGateFlags(cmd); err != nil {
				return err
			}
			if err := bx.options(cmd, &opts); err != nil {
				return err
			}
			if len(bx.parsed) == 1 {
				opts.Platform = bx.parsed[0]
			}
			if bx.quiet {
				progress = "quiet"
			}
			for _, t := range tags {
				if _, err := image.NormalizeName(t); err != nil {
					return fmt.Errorf("-t %s: %w", t, err)
				}
			}
			rb, err := parseRegistryFlags(tags, outputs, cacheTo, cacheFrom, push)
			if err != nil {
				return err
			}
			var slimProbes []slim.Probe
			if slimIt {
				if slimProbes, err = parseProbes(slimProbeCmds, slimHTTPProbes); err != nil {
					return err
				}
				// The -t names go to the slim image, once it is verified.
				opts.Tags = nil
			} else if len(slimProbeCmds)+len(slimHTTPProbes) > 0 {
				return fmt.Errorf("--slim-probe-cmd and --slim-http-probe need --slim")
			}
			if err := opts.Check(); err != nil {
				return err
			}
			if err := checkPlatforms(cmd, bx.parsed, rb, slimIt, bx.load); err != nil {
				return err
			}
			var dockerSock string
			if bx.load {
				// Before the build: no daemon to load into is an error now, not later.
				if dockerSock, err = image.DockerSocket(os.Getenv("DOCKER_HOST")); err != nil {
					return fmt.Errorf("--load: %w", err)
				}
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			if source.IsGitURL(opts.ContextDir) {
				// A git URL context (URL#ref:subdir) is checked out under the
				// store's tmp/ and removed after the build, as buildx does.
				dir, cleanup, err := source.FetchGitContext(cmd.Context(), st, opts.ContextDir)
				if err != nil {
					return err
				}
				defer cleanup()
				opts.ContextDir = dir
				if opts.Dockerfile != "" && opts.Dockerfile != "-" {
					// -f names a file in the repository (buildx's filename).
					if opts.Dockerfile, err = securejoin.SecureJoin(dir, opts.Dockerfile); err != nil {
						return fmt.Errorf("-f %s: %w", file, err)
					}
				}
			}
			ctxDir, df, cleanup, err := stdinInputs(st, cmd.InOrStdin(), opts.ContextDir, opts.Dockerfile)
			if err != nil {
				return err
			}
			defer cleanup()
			opts.ContextDir, opts.Dockerfile = ctxDir, df
			if file == "-" || args[0] == "-" && !strings.HasPrefix(df, ctxDir+string(os.PathSeparator)) {
				opts.DockerfileName = "Dockerfile (stdin)"
			}
			if len(rb.cacheFrom) > 0 {
				opts.CacheFrom, err = openCaches(cmd.Context(), newRegistry(nil), rb.cacheFrom, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
			}
			pp, err := newProgress(progress, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts.Progress = pp.Event
			if len(bx.parsed) > 1 {
				return buildPlatforms(cmd, st, opts, &bx, rb, newRegistry, tags, pp.mode == "quiet", pp.Close)
			}
			pre := prefetchSummary(cmd, st, pp.mode == "quiet" || slimIt, &opts)
			res, err := engine.Build(cmd.Context(), st, opts)
			pp.Close()
			if err != nil {
				return err
			}
			if slimIt {
				if res, err = buildSlim(cmd, st, res, tags, slimProbes, pp.mode == "quiet"); err != nil {
					return err
				}
			}
			for _, output := range rb.files {
				if err := image.WriteOutputCompressed(cmd.Context(), st, res.Image, output, tags, opts.Compression); err != nil {
					return fmt.Errorf("--output %s: %w", output, err)
				}
			}
			pushed, err := rb.publish(cmd, newRegistry, st, res, opts.Compression)
			if err != nil {
				return err
			}
			if pushed != nil {
				res.Digest = *pushed // what --iidfile, --metadata-file and stdout name
			}
			if bx.load {
				if err := image.LoadIntoDocker(cmd.Context(), dockerSock, res.Image, tags); err != nil {
					return fmt.Errorf("--load: %w", err)
				}
			}
			if pp.mode != "quiet" && !slimIt {
				fmt.Fprintf(cmd.ErrOrStderr(), "built %s (%d steps, %d cached)\n", strings.Join(tags, ", "), res.Steps, res.CachedSteps)
			}
			if err := bx.write(res, tags); err != nil {
				return err
			}
			// With --slim the comparison was the summary; the gates still apply.
			gateErr := afterBuild(cmd, st, res, pp.mode == "quiet" || slimIt, pre)
			digestOut := cmd.OutOrStdout()
			for _, output := range rb.files {
				if o, err := image.ParseOutput(output); err == nil && o.Dest == "-" {
					digestOut = cmd.ErrOrStderr() // stdout carries the output
				}
			}
			fmt.Fprintln(digestOut, res.Digest)
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
	f.StringArrayVar(&outputs, "output", nil, "also write the result: type=oci|docker|tar,dest=PATH or type=registry,name=REF (repeatable)")
	f.BoolVar(&push, "push", false, "push the result to the registry of every -t name")
	f.StringArrayVar(&cacheTo, "cache-to", nil, "export the build cache: type=registry,ref=REF[,mode=min|max] (repeatable)")
	f.StringArrayVar(&cacheFrom, "cache-from", nil, "use a shared build cache: type=registry,ref=REF (repeatable)")
	newRegistry = addRegistryFlags(cmd)
	f.BoolVar(&noCache, "no-cache", false, "do not use the build cache")
	f.Var(countFlag{&jobs}, "jobs", "how many stages may run at once (default: all that can)")
	f.Var(compressionFlag{&compression}, "compression", "layer compression: gzip, zstd or none")
	f.StringArrayVar(&secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE")
	f.StringArrayVar(&namedContexts, "build-context", nil, "additional build context: NAME=PATH|docker-image://REF|oci-layout://PATH[:TAG|@DIGEST] (repeatable)")
	f.StringArrayVar(&sshs, "ssh", nil, "ssh agent socket or keys for RUN --mount=type=ssh: default|ID[=SOCKET|KEY[,KEY]] (repeatable)")
	f.StringVar(&sourceDateEpoch, "source-date-epoch", "", "reproducible build: clamp layer times and date the image to these seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	f.BoolVar(&slimIt, "slim", false, "slim the built image as the last step (verified like slimbuild slim): the -t names go to the slim image, the full one stays untagged")
	f.StringArrayVar(&slimProbeCmds, "slim-probe-cmd", nil, "with --slim: as slim's --probe-cmd; repeatable")
	f.StringArrayVar(&slimHTTPProbes, "slim-http-probe", nil, "with --slim: as slim's --http-probe; repeatable")
	f.BoolVar(&checkOnly, "check", false, "run only the Dockerfile's build checks and print what they find (fails under # check=error=true)")
	bx.add(f)
	cmd.SetFlagErrorFunc(suggestFlag)
	addGateFlags(cmd)
	groupBuildFlags(cmd)
	return cmd
}

// runChecks is build --check: the warnings of every stage (or of --target's),
// a summary, and an error when # check=error=true and something was found.
func runChecks(w io.Writer, opts engine.Options) error {
	warnings, err := engine.Check(opts)
	for _, x := range warnings {
		fmt.Fprintln(w, "warning: "+x.String())
	}
	if err != nil {
		return err
	}
	n := 0
	for _, x := range warnings {
		if x.Rule != "" {
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "check complete, no warnings found")
	} else {
		fmt.Fprintf(w, "check complete, %d warning(s) found\n", n)
	}
	return nil
}

// buildSlim slims a finished build, tags the verified slim image under tags and
// shows the built and the slim image side by side (unless quiet). It returns the
// build's result with the slim image in place of the built one, for the outputs,
// pushes and gates that follow; the full image stays in the store untagged.
func buildSlim(cmd *cobra.Command, st *store.Store, res *engine.Result, tags []string, probes []slim.Probe, quiet bool) (*engine.Result, error) {
	w := cmd.ErrOrStderr()
	d, img, rep, err := slim.Build(cmd.Context(), st, res.Image, slim.BuildOptions{Probes: probes})
	if err != nil {
		return nil, fmt.Errorf("slimming the built image %s (kept untagged): %w", res.Digest, err)
	}
	if err := image.Tag(st, tags, d); err != nil {
		return nil, err
	}
	if !quiet {
		fmt.Fprintf(w, "built %s, slimmed to %s (verified: exit %d, same output); %s are the slim image, the full one stays untagged\n",
			res.Digest, d, rep.ExitCode, strings.Join(tags, ", "))
		a, err := analyzeStored(cmd.Context(), st, res.Image)
		if err != nil {
			return nil, fmt.Errorf("analysing the built image: %w", err)
		}
		b, err := analyzeStored(cmd.Context(), st, img)
		if err != nil {
			return nil, fmt.Errorf("analysing the slim image: %w", err)
		}
		if err := report.WriteComparisonText(w, report.Compare(a, b)); err != nil {
			return nil, err
		}
	}
	slimRes := *res
	slimRes.Digest, slimRes.Image, slimRes.Stages = d, img, nil
	return &slimRes, nil
}

// sourceDateEpochOf is the epoch a build uses: --source-date-epoch, else
// nil when --build-arg SOURCE_DATE_EPOCH is given (the engine reads it), else
// $SOURCE_DATE_EPOCH, the order of buildctl and buildx.
func sourceDateEpochOf(cmd *cobra.Command, flag string, buildArgs map[string]string) (*time.Time, error) {
	if cmd.Flags().Changed("source-date-epoch") {
		t, err := dockerfile.ParseSourceDateEpoch(flag)
		if err != nil {
			return nil, fmt.Errorf("--source-date-epoch: %w", err)
		}
		return t, nil
	}
	if _, ok := buildArgs[dockerfile.SourceDateEpochArg]; ok {
		return nil, nil
	}
	t, err := dockerfile.ParseSourceDateEpoch(os.Getenv(dockerfile.SourceDateEpochArg))
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
