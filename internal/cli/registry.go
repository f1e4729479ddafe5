package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regcache"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
)

// cacheSpec is a parsed --cache-to or --cache-from value.
type cacheSpec struct {
	Ref  string
	Mode string // "min" or "max"; --cache-to only
}

// parseCacheSpec parses the docker-buildx spelling "type=registry,ref=REF[,mode=min|max]"
// (mode only when to is set). A bare REF means type=registry,ref=REF.
func parseCacheSpec(flag, spec string, to bool) (cacheSpec, error) {
	c := cacheSpec{Mode: "min"}
	if !strings.Contains(spec, "=") {
		spec = "type=registry,ref=" + spec
	}
	fields, err := csv.NewReader(strings.NewReader(spec)).Read()
	if err != nil {
		return c, fmt.Errorf("%s %s: %w", flag, spec, err)
	}
	typ := ""
	for _, f := range fields {
		if k, v, _ := strings.Cut(f, "="); k == "type" {
			typ = v
		}
	}
	if typ != "registry" {
		return c, fmt.Errorf("%s %s: unsupported type %q (slimbuild supports type=registry)", flag, spec, typ)
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return c, fmt.Errorf("%s %s: %q is not key=value", flag, spec, f)
		}
		switch k {
		case "type":
		case "ref":
			c.Ref = v
		case "mode":
			if !to {
				return c, fmt.Errorf("%s %s: mode is for --cache-to", flag, spec)
			}
			if v != "min" && v != "max" {
				return c, fmt.Errorf("%s %s: mode %q: want min or max", flag, spec, v)
			}
			c.Mode = v
		default:
			want := "type, ref"
			if to {
				want += ", mode"
			}
			return c, fmt.Errorf("%s %s: unsupported key %q (slimbuild knows %s)", flag, spec, k, want)
		}
	}
	if c.Ref == "" {
		return c, fmt.Errorf("%s %s: missing ref=REF", flag, spec)
	}
	if _, err := image.NormalizeName(c.Ref); err != nil {
		return c, fmt.Errorf("%s %s: %w", flag, spec, err)
	}
	return c, nil
}

// parseRegistryOutput recognises "type=registry,name=REF" among --output values;
// ok is false for other types, which image.WriteOutput handles.
func parseRegistryOutput(spec string) (ref string, ok bool, err error) {
	fields, err := csv.NewReader(strings.NewReader(spec)).Read()
	if err != nil {
		return "", false, nil // image.ParseOutput reports it
	}
	for _, f := range fields {
		if k, v, _ := strings.Cut(f, "="); k == "type" && v != "registry" {
			return "", false, nil
		} else if k == "type" {
			ok = true
		}
	}
	if !ok {
		return "", false, nil
	}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "type":
		case "name":
			ref = v
		default:
			return "", true, fmt.Errorf("--output %s: unsupported key %q for type=registry (want name)", spec, k)
		}
	}
	if ref == "" {
		return "", true, fmt.Errorf("--output %s: missing name=REF", spec)
	}
	if _, err := image.NormalizeName(ref); err != nil {
		return "", true, fmt.Errorf("--output %s: %w", spec, err)
	}
	return ref, true, nil
}

// addRegistryFlags adds --insecure-registry and returns how to make the Registry.
func addRegistryFlags(cmd *cobra.Command) func(progress io.Writer) *image.Registry {
	insecure := cmd.Flags().StringArray("insecure-registry", nil, "reach this registry HOST[:PORT] over plain http (repeatable; loopback hosts always are)")
	return func(progress io.Writer) *image.Registry {
		r := &image.Registry{Insecure: *insecure}
		if progress != nil {
			r.Progress = newPushMeter(progress).update
		}
		return r
	}
}

// pushMeter prints a push's bytes and rate at most twice a second.
type pushMeter struct {
	out   io.Writer
	start time.Time

	mu   sync.Mutex
	last time.Time
}

func newPushMeter(out io.Writer) *pushMeter { return &pushMeter{out: out, start: time.Now()} }

func (m *pushMeter) update(complete, total int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if complete < total && now.Sub(m.last) < 500*time.Millisecond {
		return
	}
	m.last = now
	rate := float64(complete) / max(now.Sub(m.start).Seconds(), 0.001)
	fmt.Fprintf(m.out, "pushing: %s of %s (%s/s)\n", report.HumanSize(complete), report.HumanSize(total), report.HumanSize(int64(rate)))
}

// openCaches reads each --cache-from cache; a ref that does not exist yet is an
// empty cache (the first build of a fleet), noted on stderr.
func openCaches(ctx context.Context, reg *image.Registry, specs []cacheSpec, stderr io.Writer) ([]engine.CacheSource, error) {
	var out []engine.CacheSource
	for _, s := range specs {
		c, found, err := regcache.Open(ctx, reg, s.Ref)
		if err != nil {
			return nil, fmt.Errorf("--cache-from %s: %w", s.Ref, err)
		}
		if !found {
			fmt.Fprintf(stderr, "cache %s: not found, starting empty\n", s.Ref)
			continue
		}
		fmt.Fprintf(stderr, "cache %s: %d steps\n", s.Ref, c.Len())
		out = append(out, c)
	}
	return out, nil
}

// exportCache writes the build's steps to the --cache-to ref: mode min keeps the
// steps of the stages that make the final image, max those of every stage.
func exportCache(ctx context.Context, reg *image.Registry, spec cacheSpec, res *engine.Result) (string, error) {
	var steps []regcache.Step
	for _, s := range res.CacheSteps {
		if spec.Mode == "min" && !s.Final {
			continue
		}
		info, err := s.LayerInfo()
		if err != nil {
			return "", fmt.Errorf("--cache-to %s: %w", spec.Ref, err)
		}
		steps = append(steps, regcache.Step{Key: s.Key, Layer: info, Created: s.Created, Blob: s.Blob})
	}
	d, err := regcache.Export(ctx, reg, spec.Ref, steps)
	if err != nil {
		return "", fmt.Errorf("--cache-to %s: %w", spec.Ref, err)
	}
	return fmt.Sprintf("cache %s: exported %d steps (mode=%s) as %s", spec.Ref, len(steps), spec.Mode, d), nil
}

// registryFlags are build's registry flags, parsed and checked before building.
type registryFlags struct {
	files     []string // --output specs image.WriteOutput handles
	pushTo    []string // registry references to push the result to
	cacheTo   []cacheSpec
	cacheFrom []cacheSpec
}

func parseRegistryFlags(tags, outputs, cacheTo, cacheFrom []string, push bool) (*registryFlags, error) {
	rf := &registryFlags{}
	if push {
		if len(tags) == 0 {
			return nil, fmt.Errorf("--push needs a name to push to: give -t REGISTRY/NAME:TAG")
		}
		rf.pushTo = append(rf.pushTo, tags...)
	}
	for _, o := range outputs {
		ref, ok, err := parseRegistryOutput(o)
		if err != nil {
			return nil, err
		}
		if ok {
			rf.pushTo = append(rf.pushTo, ref)
			continue
		}
		if _, err := image.ParseOutput(o); err != nil {
			return nil, fmt.Errorf("--output %s: %w", o, err)
		}
		rf.files = append(rf.files, o)
	}
	for _, c := range cacheTo {
		spec, err := parseCacheSpec("--cache-to", c, true)
		if err != nil {
			return nil, err
		}
		rf.cacheTo = append(rf.cacheTo, spec)
	}
	for _, c := range cacheFrom {
		spec, err := parseCacheSpec("--cache-from", c, false)
		if err != nil {
			return nil, err
		}
		rf.cacheFrom = append(rf.cacheFrom, spec)
	}
	return rf, nil
}

// publish pushes the result, its layers compressed as c says, and exports the
// cache, reporting on stderr. It returns the digest of the manifest pushed
// (nil when nothing was pushed).
func (rf *registryFlags) publish(cmd *cobra.Command, newRegistry func(io.Writer) *image.Registry, st *store.Store, res *engine.Result, c store.Compression) (*v1.Hash, error) {
	ctx, stderr := cmd.Context(), cmd.ErrOrStderr()
	var pushed *v1.Hash
	for _, ref := range rf.pushTo {
		d, err := newRegistry(stderr).Push(ctx, st, res.Image, ref, c)
		if err != nil {
			return nil, fmt.Errorf("pushing %s: %w", ref, err)
		}
		fmt.Fprintf(stderr, "pushed %s@%s\n", ref, d)
		pushed = &d
	}
	for _, spec := range rf.cacheTo {
		msg, err := exportCache(ctx, newRegistry(nil), spec, res)
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(stderr, msg)
	}
	return pushed, nil
}
