package runmount

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Sources gives the trees that bind mounts and seeded cache mounts read. The
// engine implements it.
type Sources interface {
	// Tree returns the tree that a --mount's from= names: a named context, a
	// stage or an image (pulled under ctx when missing). "" names the build
	// context.
	Tree(ctx context.Context, from string) (Tree, error)
}

// A Tree is a directory tree a mount reads: a local directory (the build
// context, a named context directory) or a stage's or an image's layers.
// Paths given to it are the Dockerfile's, resolved inside the tree.
type Tree interface {
	// Local reports whether the tree is a local directory.
	Local() bool
	// Key identifies, for cache keys, what path p of the tree holds: the
	// digest of its content in a local directory (after .dockerignore), the
	// identity of the whole tree (a stage's key, an image's digest) otherwise.
	Key(p string) (string, error)
	// Bind makes path p of the tree available on the host for a bind mount:
	// its host path, whether it may only be bound read-only, and release
	// (nil when there is nothing to release), which the caller calls once
	// the RUN is over. What a writable mount writes never reaches the tree:
	// it goes to a throwaway view. On error nothing is held.
	Bind(p string, writable bool) (host string, readOnly bool, release func(), err error)
	// CopyDir copies directory p of the tree into dir, an existing
	// directory: owners and modes as in layers, root's for a local directory
	// (as COPY makes them). It is an error when p is not a directory.
	CopyDir(p, dir string) error
}

// Config is what a Mounter needs of the build.
type Config struct {
	Sources Sources
	// CacheDir holds the cache mounts, a directory and a lock file each. It
	// is made (0700) on first use.
	CacheDir string
	// Secrets maps a secret id to the file holding it.
	Secrets map[string]string
	// SSH maps an ssh id to the agent socket or key files it forwards (ParseSSH).
	SSH map[string][]string
}

// A Mounter resolves the --mount flags of a build's RUN steps.
type Mounter struct{ cfg Config }

// New returns a Mounter for cfg.
func New(cfg Config) *Mounter { return &Mounter{cfg: cfg} }

// Check returns an error naming the first --mount option that m sets and
// slimbuild does not honour for m's type. BuildKit's parser has already
// rejected the combinations it never accepts (uid on a bind mount, sharing on a
// secret...).
func Check(m *instructions.Mount) error {
	var set []string // options given, in the order of instructions.Mount
	if m.From != "" {
		set = append(set, "from")
	}
	if m.Source != "" {
		set = append(set, "source")
	}
	if m.SizeLimit != 0 {
		set = append(set, "size")
	}
	if m.CacheID != "" {
		set = append(set, "id")
	}
	if m.CacheSharing != "" {
		set = append(set, "sharing")
	}
	if m.Env != nil {
		set = append(set, "env")
	}
	if m.Mode != nil {
		set = append(set, "mode")
	}
	if m.UID != nil {
		set = append(set, "uid")
	}
	if m.GID != nil {
		set = append(set, "gid")
	}
	if m.Type == instructions.MountTypeSecret && !m.ReadOnly {
		set = append(set, "rw")
	}
	honoured := map[instructions.MountType]string{
		instructions.MountTypeBind:   "from source",
		instructions.MountTypeCache:  "from source id sharing mode uid gid",
		instructions.MountTypeSecret: "id source env mode uid gid",
		instructions.MountTypeTmpfs:  "size",
		instructions.MountTypeSSH:    "id mode uid gid",
	}
	ok, known := honoured[m.Type]
	if !known {
		return fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
	}
	if m.Type == instructions.MountTypeCache && m.Source != "" && m.From == "" {
		// BuildKit mounts that path of the cache itself; slimbuild keeps a
		// seeded cache per from= and source=, and mounts its root.
		return fmt.Errorf("RUN --mount=type=cache,source=...: option \"source\" is not supported without from=")
	}
	for _, o := range set {
		if !slices.Contains(strings.Fields(ok), o) {
			return fmt.Errorf("RUN --mount=type=%s,%s=...: option %q is not supported", m.Type, o, o)
		}
	}
	return nil
}

// Key is the part of a RUN's cache key that the --mount m contributes, made of
// strings, bools and numbers. It first rejects (Check) every option slimbuild
// does not honour. A secret's value and an ssh agent's keys never enter it.
func (r *Mounter) Key(ctx context.Context, m *instructions.Mount) (any, error) {
	if err := Check(m); err != nil {
		return nil, err
	}
	switch m.Type {
	case instructions.MountTypeBind:
		t, err := r.cfg.Sources.Tree(ctx, m.From)
		if err != nil {
			return nil, err
		}
		sum, err := t.Key(m.Source)
		if err != nil {
			return nil, err
		}
		if !t.Local() {
			return []string{"bind", sum, m.Source, m.Target, fmt.Sprint(m.ReadOnly)}, nil
		}
		return []string{"bind-context", sum, m.Source, m.Target, fmt.Sprint(m.ReadOnly)}, nil
	case instructions.MountTypeCache:
		// A cache mount's content is not part of the result's identity, as in BuildKit.
		k := []any{"cache", m.CacheID, m.Target, m.ReadOnly, string(m.CacheSharing), fileOpts(m)}
		if m.From != "" || m.Source != "" {
			seed, err := r.cacheSeedName(ctx, m)
			if err != nil {
				return nil, err
			}
			k = append(k, seed)
		}
		return k, nil
	case instructions.MountTypeSecret:
		// The secret's value never enters the key: only that it is mounted, and how.
		env := ""
		if m.Env != nil {
			env = "env=" + *m.Env
		}
		return []any{"secret", secretID(m), m.Target, env, fileOpts(m)}, nil
	case instructions.MountTypeTmpfs:
		return []any{"tmpfs", m.Target, m.SizeLimit, m.ReadOnly}, nil
	case instructions.MountTypeSSH:
		// Which keys the agent holds never enters the key, as with secrets.
		return []any{"ssh", sshID(m), m.Target, m.Required, fileOpts(m)}, nil
	default:
		return nil, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
	}
}

// A Run is the --mount flags of one RUN, resolved.
type Run struct {
	// Mounts are the container's mounts, in the order of the flags.
	Mounts []specs.Mount
	// Env is the RUN's environment with what its mounts add: a secret's
	// env=, and SSH_AUTH_SOCK naming the first ssh mount unless it is set.
	Env      []string
	releases []func()
}

// Release gives back what the mounts hold (cache locks, views, ssh agents).
// It is called once the RUN is over.
func (run *Run) Release() {
	for _, r := range run.releases {
		r()
	}
	run.releases = nil
}

// Resolve turns the --mount flags of a RUN into its container's mounts. wd is
// the RUN's working directory, which relative targets are taken from (as in
// BuildKit), env its environment, and files a private directory of the step
// for the files made for it (secret copies, ssh agent sockets), removed with
// the step. On error nothing is held; otherwise the caller calls
// Run.Release once the RUN is over.
func (r *Mounter) Resolve(ctx context.Context, mounts []*instructions.Mount, wd string, env []string, files string) (_ *Run, err error) {
	run := &Run{Env: env}
	defer func() {
		if err != nil {
			run.Release()
		}
	}()
	nssh := 0
	for _, m := range mounts {
		if err := Check(m); err != nil {
			return nil, err
		}
		if m.Type == instructions.MountTypeSSH {
			// As in BuildKit: the socket is at the target (or the n-th default
			// path), and SSH_AUTH_SOCK names the first one unless set.
			target := sshTarget(m, nssh, wd)
			if nssh == 0 && !hasEnv(run.Env, "SSH_AUTH_SOCK") {
				run.Env = append(run.Env[:len(run.Env):len(run.Env)], "SSH_AUTH_SOCK="+target)
			}
			nssh++
			sm, stop, err := r.sshMount(m, target, files)
			if stop != nil {
				run.releases = append(run.releases, stop)
			}
			if err != nil {
				return nil, err
			}
			run.Mounts = append(run.Mounts, sm...)
			continue
		}
		if m.Type == instructions.MountTypeSecret && m.Env != nil {
			v, err := r.secretValue(m)
			if err != nil {
				return nil, err
			}
			run.Env = append(run.Env[:len(run.Env):len(run.Env)], *m.Env+"="+string(v))
		}
		sm, release, err := r.resolveMount(ctx, m, wd, files)
		if release != nil {
			run.releases = append(run.releases, release)
		}
		if err != nil {
			return nil, err
		}
		run.Mounts = append(run.Mounts, sm...)
	}
	return run, nil
}

// hasEnv reports whether env (KEY=VALUE entries) sets key.
func hasEnv(env []string, key string) bool {
	return slices.ContainsFunc(env, func(e string) bool {
		k, _, _ := strings.Cut(e, "=")
		return k == key
	})
}

// secretID is the secret a secret mount names: source=, else id=, else the
// target's base name, as in BuildKit.
func secretID(m *instructions.Mount) string {
	switch {
	case m.Source != "":
		return m.Source
	case m.CacheID != "":
		return m.CacheID
	}
	return path.Base(m.Target)
}

// fileOpts is a cache or secret mount's uid, gid and mode, "" when none is set.
func fileOpts(m *instructions.Mount) string {
	if m.UID == nil && m.GID == nil && m.Mode == nil {
		return ""
	}
	show := func(p *uint64, base int) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatUint(*p, base)
	}
	return show(m.UID, 10) + ":" + show(m.GID, 10) + ":" + show(m.Mode, 8)
}

// fileOwner returns m's uid, gid and mode (permission bits as chmod takes
// them), with root and mode for those not set.
func fileOwner(m *instructions.Mount, mode uint32) (uid, gid int, _ uint32) {
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if m.Mode != nil {
		mode = uint32(*m.Mode & 0o7777)
	}
	return uid, gid, mode
}
