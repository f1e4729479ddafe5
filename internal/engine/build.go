package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/source"
	"github.com/slimbuild/slimbuild/internal/store"
)

// Options describe one build.
type Options struct {
	// ContextDir is the build context directory.
	ContextDir string
	// Dockerfile is the path of the Dockerfile (default ContextDir/Dockerfile).
	Dockerfile string
	// DockerfileName, when set, names the Dockerfile in errors instead of its path
	// (for one read from standard input into a temporary file).
	DockerfileName string
	Target         string
	BuildArgs      map[string]string
	// Tags are the names the result is stored under.
	Tags []string
	// Network is the default network of RUN steps (the zero value is a private
	// namespace with outbound access; see runtime.Network).
	Network runtime.Network
	// NoCache disables cache lookups (results are still stored).
	NoCache bool
	// Jobs limits how many stages run at once (default: all that can).
	Jobs int
	// Compression of new layers (default gzip).
	Compression store.Compression
	// Secrets maps a secret id to the file holding it, for RUN --mount=type=secret.
	Secrets map[string]string
	// Progress receives events; nil discards them.
	Progress Progress
	OnBase   func([]v1.Layer) // if set, gets each stage's base image layers once known (see report.Prefetch)
	// Runc is the runc binary; empty means "runc" from PATH.
	Runc string
	// NoPull uses only images already in the store: FROM never goes to a registry.
	NoPull bool
	// SourceDateEpoch, if set, makes the build reproducible: layer times are
	// clamped to it and the config and new history entries are dated by it
	// (see epoch.go). If nil, the build arg SOURCE_DATE_EPOCH, or a global ARG
	// default for it, is used when there is one.
	SourceDateEpoch *time.Time
	// CacheFrom are shared caches consulted, in order, when the store's cache misses.
	// A hit there downloads nothing until a later step or the final image needs
	// the layer's bytes.
	CacheFrom []CacheSource

	// Labels are added to the result's config after the Dockerfile's (buildx --label).
	Labels map[string]string
	// Annotations are set on the result's manifest (buildx --annotation).
	Annotations map[string]string
	// ExtraHosts are added to every RUN's /etc/hosts (buildx --add-host).
	ExtraHosts []runtime.Host
	// Ulimits replace RUN's default resource limits of the same type (buildx --ulimit).
	Ulimits []specs.POSIXRlimit
	// ShmSize is the size of RUN's /dev/shm in bytes; 0 is 64MiB (buildx --shm-size).
	ShmSize int64
	// Pull resolves every FROM and --from image in the registry again, even when
	// the store has it (buildx --pull).
	Pull bool
	// NoCacheFilter names the stages whose steps skip the cache (buildx --no-cache-filter).
	NoCacheFilter []string
	// Allow grants entitlements (buildx --allow); RUN --network=host needs
	// EntitlementNetworkHost, as in BuildKit.
	Allow []Entitlement
	// Platform is the target platform (TARGETPLATFORM, the platform of FROM
	// images and of the result); the zero value is the host's. A stage for
	// another architecture than the host's runs RUN through binfmt_misc (see
	// platforms.go); BuildPlatforms builds several platforms into one index.
	Platform v1.Platform
	// NamedContexts are the --build-context values by name (image.ParseNamedContext
	// gives both): FROM, COPY --from and RUN --mount=from= of that name read
	// it instead of a stage or an image, as in BuildKit.
	NamedContexts map[string]image.NamedContext
	// SSH maps an ssh id to the agent sockets or key files forwarded to
	// RUN --mount=type=ssh (buildx --ssh; runmount.ParseSSH).
	SSH map[string][]string
	// binfmtDir replaces runtime.BinfmtDir (tests).
	binfmtDir string
}

// Entitlement is a privilege a build must be granted (buildx --allow).
type Entitlement string

const (
	EntitlementNetworkHost      Entitlement = "network.host"
	EntitlementSecurityInsecure Entitlement = "security.insecure"
)

// ParseEntitlement checks an --allow value.
func ParseEntitlement(s string) (Entitlement, error) {
	switch e := Entitlement(s); e {
	case EntitlementNetworkHost, EntitlementSecurityInsecure:
		return e, nil
	}
	return "", fmt.Errorf("unknown entitlement %q: use %s or %s", s, EntitlementNetworkHost, EntitlementSecurityInsecure)
}

func (o *Options) allows(e Entitlement) bool { return slices.Contains(o.Allow, e) }

// noCache reports whether the steps of stage skip the cache.
func (o *Options) noCache(stage *dockerfile.Stage) bool {
	if o.NoCache {
		return true
	}
	return stage.Name != "" && slices.ContainsFunc(o.NoCacheFilter, func(n string) bool { return strings.EqualFold(n, stage.Name) })
}

// StageResult is what one stage produced.
type StageResult struct {
	Name   string // the stage's name or index
	Index  int
	Image  v1.Image
	Target bool // the stage that was asked for
	// Remote is set when some layer of Image is only in a shared cache (see
	// Options.CacheFrom): reading Image's layers would download it.
	Remote bool
	// Layers are the stage's layers, bottom first, for readers of its files (the
	// payoff report): they need no blob, manifest or digest.
	Layers []store.LayerTree
}

// Result is a finished build.
type Result struct {
	Digest v1.Hash
	Image  v1.Image
	// Stages holds every stage that was built, the target last.
	Stages []StageResult
	// CachedSteps and Steps count steps served from the cache and all steps.
	CachedSteps, Steps int
	// CacheSteps are the filesystem steps of every stage built, for a cache export.
	CacheSteps []CacheStep
}

// Build runs the build described by opts in st.
func Build(ctx context.Context, st *store.Store, opts Options) (*Result, error) {
	b, err := newBuilder(st, opts)
	if err != nil {
		return nil, err
	}
	defer b.close()
	return b.run(ctx)
}

type builder struct {
	st     *store.Store
	opts   Options
	plan   *dockerfile.Plan
	bctx   *source.Context
	tmp    string // per-build temp dir under the store
	runDir string // runc state dir
	nets   *runtime.NetPool

	mu      sync.Mutex
	results map[int]*stageState
	images  *image.Resolver // base and --from images, once per build
	named   map[string]*namedCtx
	steps   int
	cached  int
	// consumed holds the ARG names declared by the stages built.
	consumed map[string]bool
	// stepLog lists the filesystem steps done, for cache export.
	stepLog []CacheStep
	// snaps makes the blobs of this build's snapshots on demand, once per build.
	snaps *store.SnapshotLayers
	// ships holds the stages whose layers end up in the image: the target and
	// the stages it is built FROM.
	ships map[int]bool
	// emulators answer checkEmulation, once per architecture.
	emulators runtime.Emulators
	// unpack gives layers' directories: the store's unpacked layers, or a test's.
	unpack Unpacker
	// overlay and runner, when set, replace the overlay snapshotter and runc
	// (the engine's root-free tests; see interfaces.go).
	overlay Snapshotter
	runner  Runner
	lchown  source.Chowner // sets copied files' owners, nil: os.Lchown (see interfaces.go)
}

func newBuilder(st *store.Store, opts Options) (*builder, error) {
	if err := opts.withPaths(); err != nil {
		return nil, err
	}
	abs := opts.ContextDir
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", abs)
	}
	if err := opts.Check(); err != nil {
		return nil, err
	}
	if opts.Compression == "" {
		opts.Compression = store.Gzip
	}
	if opts.Progress == nil {
		opts.Progress = func(Event) {}
	}
	if opts.Jobs == 0 {
		opts.Jobs = goruntime.NumCPU() * 4
	}
	opts.SourceDateEpoch = dockerfile.WholeSeconds(opts.SourceDateEpoch)
	opts.BuildArgs = dockerfile.WithEpochArg(opts.BuildArgs, opts.SourceDateEpoch)
	plan, err := opts.plan(false)
	if err != nil {
		return nil, err
	}
	for _, w := range plan.Warnings {
		opts.Progress(Event{Kind: Info, Text: "warning: " + w.String(), Time: time.Now()})
	}
	if err := plan.LintError(); err != nil {
		return nil, err
	}
	if opts.SourceDateEpoch == nil {
		if opts.SourceDateEpoch, err = plan.SourceDateEpoch(); err != nil {
			return nil, fmt.Errorf("%s: %w", plan.File, err)
		}
	}
	bctx, err := source.OpenContext(st, abs, opts.Dockerfile)
	if err != nil {
		return nil, err
	}
	ships := map[int]bool{}
	for i := plan.Target; i >= 0; i = plan.Stages[i].BaseStage {
		ships[i] = true
	}
	b := &builder{st: st, opts: opts, plan: plan, bctx: bctx, results: map[int]*stageState{}, ships: ships,
		snaps: st.SnapshotLayers(opts.Compression, opts.SourceDateEpoch), unpack: st}
	// A pull reports its layers (fetched, unpacked, bytes and time) as build events.
	b.images = &image.Resolver{Store: st, Pull: opts.Pull, NoPull: opts.NoPull, Logf: func(format string, args ...any) {
		b.emit(Event{Kind: Info, Text: fmt.Sprintf(format, args...)})
	}}
	b.emulators.Dir = opts.binfmtDir
	return b, nil
}

// Check runs only the Dockerfile's build checks over every stage, as
// `docker buildx build --check` does: the warnings, and an error when the file
// does not parse or sets # check=error=true and something was reported.
func Check(opts Options) ([]dockerfile.Warning, error) {
	if err := opts.withPaths(); err != nil {
		return nil, err
	}
	plan, err := opts.plan(opts.Target == "")
	if err != nil {
		return nil, err
	}
	return plan.Warnings, plan.LintError()
}

// withPaths makes ContextDir absolute and fills in the Dockerfile's default path.
func (o *Options) withPaths() error {
	if o.ContextDir == "" {
		o.ContextDir = "."
	}
	abs, err := filepath.Abs(o.ContextDir)
	if err != nil {
		return err
	}
	o.ContextDir = abs
	if o.Dockerfile == "" {
		o.Dockerfile = filepath.Join(abs, "Dockerfile")
	}
	return nil
}

// plan parses the Dockerfile and plans the build (every stage when allStages).
func (o *Options) plan(allStages bool) (*dockerfile.Plan, error) {
	f, err := os.OpenFile(o.Dockerfile, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a FIFO is refused, not waited on
	if err != nil {
		return nil, fmt.Errorf("reading Dockerfile: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading Dockerfile %s: not a regular file", o.Dockerfile)
	}
	shown := o.DockerfileName
	if shown == "" {
		shown = o.Dockerfile
		if rel, err := filepath.Rel(o.ContextDir, o.Dockerfile); err == nil && !strings.HasPrefix(rel, "..") {
			shown = rel
		}
	}
	parsed, err := dockerfile.Parse(shown, f)
	if err != nil {
		return nil, err
	}
	return parsed.Plan(dockerfile.Options{Target: o.Target, BuildArgs: o.BuildArgs, AllStages: allStages, Platform: dockerfile.SpecPlatform(o.Platform)})
}

// tempDir lazily makes the per-build temp dir.
func (b *builder) tempDir() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tmp == "" {
		d, err := b.st.TempDir("build-")
		if err != nil {
			return "", err
		}
		b.tmp, b.runDir, b.nets = d, filepath.Join(d, runtime.StateDirName), &runtime.NetPool{Dir: d}
	}
	return b.tmp, nil
}

func (b *builder) close() {
	if b.bctx != nil {
		b.bctx.Save()
	}
	if b.tmp != "" {
		b.nets.Close()
		os.RemoveAll(b.tmp)
	}
}

func (b *builder) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.opts.Progress(e)
}

// run builds the needed stages, each as soon as its dependencies are done.
func (b *builder) run(ctx context.Context) (*Result, error) {
	b.emit(Event{Kind: Info, Text: "network: " + runtime.Describe(b.opts.Network)})
	for _, n := range b.opts.NoCacheFilter {
		if !slices.ContainsFunc(b.plan.Stages, func(s *dockerfile.Stage) bool { return strings.EqualFold(s.Name, n) }) {
			b.emit(Event{Kind: Info, Text: fmt.Sprintf("warning: --no-cache-filter %s names no stage of %s", n, b.plan.File)})
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := map[int]chan struct{}{}
	for _, i := range b.plan.Needed {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, b.opts.Jobs)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel(err) })
	}
	for _, i := range b.plan.Needed {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer close(done[i])
			for _, d := range b.plan.Stages[i].Deps {
				select {
				case <-done[d]:
				case <-ctx.Done():
					return
				}
				b.mu.Lock()
				ok := b.results[d] != nil
				b.mu.Unlock()
				if !ok {
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			s, err := b.buildStage(ctx, b.plan.Stages[i])
			if err != nil {
				fail(err)
				return
			}
			b.mu.Lock()
			b.results[i] = s
			b.mu.Unlock()
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	b.warnUnconsumed()
	res := &Result{Steps: b.steps, CachedSteps: b.cached}
	target := b.results[b.plan.Target]
	digest, img, err := b.assemble(target)
	if err != nil {
		return nil, err
	}
	if err := image.Tag(b.st, b.opts.Tags, digest); err != nil {
		return nil, err
	}
	res.Digest, res.Image = digest, img
	for _, i := range b.plan.Needed {
		sr := StageResult{Name: b.plan.Stages[i].ID(), Index: i, Target: i == b.plan.Target}
		if i == b.plan.Target {
			sr.Image = img
		} else {
			// Made on first use: a stage's image needs its layers' blobs, and a
			// stage that does not ship has none until something asks.
			s := b.results[i]
			sr.Image = image.Lazy(func() (v1.Image, error) { return imageOf(s, nil, nil) })
			sr.Remote = image.RemoteOnly(s.layers)
		}
		if sr.Layers, err = b.st.LayerTrees(b.results[i].layers); err != nil {
			return nil, fmt.Errorf("stage %s: %w", sr.Name, err)
		}
		res.Stages = append(res.Stages, sr)
	}
	res.CacheSteps = b.cacheSteps()
	return res, nil
}

// ErrNeedRoot is returned when a step has to mount an overlay or unpack a layer
// and the process is not root. (A build served whole from the cache needs neither.)
var ErrNeedRoot = errors.New("this step needs root: slimbuild mounts overlayfs, unpacks layers with their owners and runs RUN in runc (run it as root)")

// consume records that an ARG was declared by a stage being built.
func (b *builder) consume(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.consumed == nil {
		b.consumed = map[string]bool{}
	}
	b.consumed[name] = true
}

// warnUnconsumed reports --build-arg values no ARG asked for, as BuildKit does.
func (b *builder) warnUnconsumed() {
	if unused := b.plan.UnusedBuildArgs(b.consumed); len(unused) > 0 {
		b.emit(Event{Kind: Info, Text: "warning: build-arg " + strings.Join(unused, ", ") + " not consumed by any ARG of the stages built"})
	}
}

// Check rejects options that no build could honour: an unknown compression, a
// negative Jobs, a build argument without a name. Build calls it first; the
// CLI calls it before it opens the store.
func (o *Options) Check() error {
	if o.Compression != "" {
		if _, err := store.ParseCompression(string(o.Compression)); err != nil {
			return err
		}
	}
	if _, err := runtime.ParseNetwork(string(o.Network)); err != nil {
		return err
	}
	if o.Jobs < 0 {
		return fmt.Errorf("jobs must be 0 (as many as can run) or more, not %d", o.Jobs)
	}
	for k := range o.BuildArgs {
		if k == "" {
			return fmt.Errorf("a build argument needs a name (--build-arg NAME=VALUE)")
		}
	}
	for _, e := range o.Allow {
		if _, err := ParseEntitlement(string(e)); err != nil {
			return err
		}
	}
	if o.Pull && o.NoPull {
		return fmt.Errorf("pull and no-pull exclude each other")
	}
	if o.Platform.OS != "" || o.Platform.Architecture != "" {
		if _, err := dockerfile.ParsePlatform(platformString(o.Platform)); err != nil {
			return err
		}
	}
	if o.ShmSize < 0 {
		return fmt.Errorf("shm size must be 0 (the default) or more, not %d", o.ShmSize)
	}
	for _, h := range o.ExtraHosts {
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n#") || !h.IP.IsValid() {
			return fmt.Errorf("extra host %q needs a name (no blanks) and an IP address", h.Name)
		}
	}
	return nil
}
