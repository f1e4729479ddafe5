package cli

import (
	"encoding/json"
	"fmt"
	"github.com/agext/levenshtein"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/runtime"
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
	parsed                []v1.Platform // platforms, checked

	labels, annotations, addHosts []string
	ulimits, noCacheFilter, allow []string
	shmSize                       int64
	pull, load                    bool
}

func (x *buildxFlags) add(f *pflag.FlagSet) {
	f.StringVar(&x.iidFile, "iidfile", "", "write the image digest to FILE")
	f.StringVar(&x.metadataFile, "metadata-file", "", "write buildx's build result metadata (JSON) to FILE")
	f.BoolVarP(&x.quiet, "quiet", "q", false, "print only the image digest (same as --progress quiet)")
	f.StringVar(&x.provenance, "provenance", "", "provenance attestation: only \"false\" (slimbuild makes none)")
	f.StringVar(&x.sbom, "sbom", "", "SBOM attestation: only \"false\" (slimbuild makes none)")
	f.StringSliceVar(&x.platforms, "platform", nil, "target platforms: OS/ARCH[/VARIANT],... (default the host's, "+hostPlatform()+"); several make an image index")
	f.StringArrayVar(&x.labels, "label", nil, "set a label of the image: KEY=VALUE (repeatable)")
	f.StringArrayVar(&x.annotations, "annotation", nil, "set an annotation of the image manifest: [manifest:]KEY=VALUE (repeatable)")
	f.StringArrayVar(&x.addHosts, "add-host", nil, "add a line to RUN's /etc/hosts: HOST:IP or HOST=IP (repeatable)")
	f.StringArrayVar(&x.ulimits, "ulimit", nil, "resource limit of RUN: NAME=SOFT[:HARD], NAME as docker's (nofile, nproc, core...) (repeatable)")
	f.Var(sizeFlag{n: &x.shmSize, ram: true}, "shm-size", "size of RUN's /dev/shm (e.g. 128m; default 64m)")
	f.BoolVar(&x.pull, "pull", false, "always pull the FROM images again, even when the store has them")
	f.StringArrayVar(&x.noCacheFilter, "no-cache-filter", nil, "do not use the build cache for the steps of this stage (repeatable)")
	f.StringSliceVar(&x.allow, "allow", nil, "grant an entitlement: network.host (RUN --network=host) or security.insecure")
	f.BoolVar(&x.load, "load", false, "load the result into docker through its socket (DOCKER_HOST=unix://PATH, default /var/run/docker.sock)")
}

// options sets the build options these flags stand for, refusing every value
// slimbuild cannot honour.
func (x *buildxFlags) options(cmd *cobra.Command, opts *engine.Options) error {
	var err error
	if opts.Labels, err = keyValues("--label", x.labels); err != nil {
		return err
	}
	opts.Annotations = map[string]string{}
	for _, a := range x.annotations {
		k, v, err := parseAnnotation(a)
		if err != nil {
			return err
		}
		opts.Annotations[k] = v
	}
	for _, h := range x.addHosts {
		host, err := parseExtraHost(h)
		if err != nil {
			return err
		}
		opts.ExtraHosts = append(opts.ExtraHosts, host)
	}
	for _, u := range x.ulimits {
		r, err := parseUlimit(u)
		if err != nil {
			return err
		}
		opts.Ulimits = append(opts.Ulimits, r)
	}
	opts.ShmSize = x.shmSize
	opts.Pull = x.pull
	for _, s := range x.noCacheFilter {
		if s == "" {
			return fmt.Errorf("--no-cache-filter: needs a stage name")
		}
		opts.NoCacheFilter = append(opts.NoCacheFilter, s)
	}
	for _, a := range x.allow {
		e, err := engine.ParseEntitlement(a)
		if err != nil {
			return fmt.Errorf("--allow: %w", err)
		}
		opts.Allow = append(opts.Allow, e)
	}
	return nil
}

// keyValues parses KEY=VALUE flags; a KEY alone has the empty value, as in buildx.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("%s %q: needs a key (KEY=VALUE)", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// parseAnnotation parses buildx's [TYPE[PLATFORM]:]KEY=VALUE. slimbuild makes a
// single image manifest, so only the manifest type (the default) is accepted.
func parseAnnotation(a string) (string, string, error) {
	kv, v, ok := strings.Cut(a, "=")
	if !ok {
		return "", "", fmt.Errorf("--annotation %q: needs KEY=VALUE", a)
	}
	k := kv
	if typ, rest, ok := strings.Cut(kv, ":"); ok && isAnnotationType(typ) {
		if typ != "manifest" {
			return "", "", fmt.Errorf("--annotation %q: slimbuild makes a single image manifest: only manifest annotations are supported, not %s", a, typ)
		}
		k = rest
	} else if strings.HasPrefix(kv, "manifest[") || strings.HasPrefix(kv, "index[") {
		return "", "", fmt.Errorf("--annotation %q: per-platform annotations are not supported (use manifest:KEY=VALUE)", a)
	}
	if k == "" {
		return "", "", fmt.Errorf("--annotation %q: needs a key", a)
	}
	return k, v, nil
}

func isAnnotationType(s string) bool {
	switch s {
	case "manifest", "index", "manifest-descriptor", "index-descriptor":
		return true
	}
	return false
}

// parseExtraHost parses docker's HOST:IP or HOST=IP (an IPv6 address may be in
// brackets). host-gateway, which needs a daemon's bridge, is refused.
func parseExtraHost(s string) (runtime.Host, error) {
	sep := ":"
	if strings.Contains(s, "=") {
		sep = "="
	}
	name, addr, ok := strings.Cut(s, sep)
	if !ok || name == "" || addr == "" {
		return runtime.Host{}, fmt.Errorf("--add-host %q: needs HOST:IP", s)
	}
	if strings.ContainsAny(name, " \t\r\n#") {
		return runtime.Host{}, fmt.Errorf("--add-host %q: invalid host name %q", s, name)
	}
	if addr == "host-gateway" {
		return runtime.Host{}, fmt.Errorf("--add-host %q: host-gateway is not supported (slimbuild has no daemon bridge): give the IP address", s)
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"))
	if err != nil {
		return runtime.Host{}, fmt.Errorf("--add-host %q: invalid IP address %q", s, addr)
	}
	return runtime.Host{Name: name, IP: ip}, nil
}

// parseUlimit parses docker's NAME=SOFT[:HARD] into a runtime spec limit.
func parseUlimit(s string) (specs.POSIXRlimit, error) {
	u, err := units.ParseUlimit(s)
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: %w", s, err)
	}
	if u.Soft < 0 || u.Hard < 0 {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: limits must not be negative", s)
	}
	return specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)}, nil
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
	var err error
	if x.parsed, err = parsePlatforms(x.platforms); err != nil {
		return fmt.Errorf("--platform: %w", err)
	}
	return nil
}

// write writes --iidfile and --metadata-file.
func (x *buildxFlags) write(res *engine.Result, tags []string) error {
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
		return x.writeMetadata(map[string]any{
			"containerimage.digest":        res.Digest.String(),
			"containerimage.config.digest": cfg.String(),
		}, tags)
	}
	return nil
}

// writeMetadata writes --metadata-file: m, with the names.
func (x *buildxFlags) writeMetadata(m map[string]any, tags []string) error {
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
		d := levenshtein.Distance(name, f.Name, nil)
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
