package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/runtime"
)

// runArgs is the command a RUN executes, and a script file to provide when a
// heredoc with a shebang is the whole command.
func runArgs(s *stageState, c *instructions.RunCommand) (args []string, script *instructions.ShellInlineFile) {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...), nil
	}
	if len(c.Files) == 1 && len(c.CmdLine) == 1 && isHeredocMarker(c.CmdLine[0], c.Files[0].Name) {
		f := c.Files[0]
		data := f.Data
		if f.Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			f.Data = data
			return []string{"/dev/pipes/" + f.Name}, &f
		}
		return append(append([]string{}, s.shellOf()...), data), nil
	}
	line := strings.Join(c.CmdLine, " ")
	if len(c.Files) > 0 {
		// The shell reads the heredocs itself: give it the whole script.
		var sb strings.Builder
		sb.WriteString(line)
		sb.WriteString("\n")
		for _, f := range c.Files {
			sb.WriteString(f.Data)
			if !strings.HasSuffix(f.Data, "\n") && f.Data != "" {
				sb.WriteString("\n")
			}
			sb.WriteString(f.Name + "\n")
		}
		line = sb.String()
	}
	return append(append([]string{}, s.shellOf()...), line), nil
}

func isHeredocMarker(word, name string) bool {
	w := strings.TrimPrefix(strings.TrimPrefix(word, "<<"), "-")
	w = strings.Trim(w, `"'`)
	return strings.HasPrefix(word, "<<") && w == name
}

// runMount is a RUN --mount after resolution.
type runMount struct {
	m       *instructions.Mount
	keyPart string
}

func (b *builder) runStep(ctx context.Context, s *stageState, st *step, c *instructions.RunCommand) error {
	if err := b.checkEmulation(st.stage); err != nil {
		return b.fail(st, err)
	}
	args, script := runArgs(s, c)
	network := b.opts.Network
	if n := instructions.GetNetwork(c); n != "" && n != "default" {
		var err error
		if network, err = runtime.ParseNetwork(n); err != nil {
			return b.fail(st, fmt.Errorf("RUN --network: %w", err))
		}
		if network == runtime.NetworkHost && !b.opts.allows(EntitlementNetworkHost) {
			return b.fail(st, fmt.Errorf("RUN --network=host needs the network.host entitlement: build with --allow network.host"))
		}
	}
	privileged := false
	switch sec := instructions.GetSecurity(c); sec {
	case "", instructions.SecuritySandbox:
	case instructions.SecurityInsecure:
		if !b.opts.allows(EntitlementSecurityInsecure) {
			return b.fail(st, errors.New("RUN --security=insecure is not allowed: it runs the step privileged (all capabilities, no seccomp); allow it with --allow security.insecure"))
		}
		privileged = true
	default:
		return b.fail(st, fmt.Errorf("RUN --security=%s is not supported", sec))
	}
	env := s.runEnv()
	keyEnv := env
	// Proxy build args reach RUN without an ARG, and stay out of the cache key.
	have := envMap(env)
	for _, k := range dockerfile.ProxyArgs {
		if v, ok := b.plan.BuildArgs[k]; ok {
			if _, set := have[k]; !set {
				env = append(env[:len(env):len(env)], k+"="+v)
			}
		}
	}
	wd := s.cfg.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	mounts := instructions.GetMounts(c)
	var mountKeys []any
	for _, m := range mounts {
		k, err := b.mountKey(ctx, s, m)
		if err != nil {
			return b.fail(st, err)
		}
		mountKeys = append(mountKeys, k)
	}
	var scriptData string
	if script != nil {
		scriptData = script.Data
	}
	key := keyOf("run", s.key, args, scriptData, keyEnv, s.cfg.Config.User, wd, network.String(), mountKeys)
	if rk := b.runLimitsKey(); rk != "" {
		// Hosts and limits change what a RUN may do, so they are in its key (as in
		// BuildKit); builds without them keep their keys.
		key = keyOf(key, rk)
	}
	if privileged {
		key = keyOf(key, "security=insecure")
	}
	return b.fsStep(ctx, s, st, key, func(ws *workspace) error {
		return b.execute(ctx, s, st, ws, execRequest{args: args, script: script, env: env, wd: wd, network: network, mounts: mounts, privileged: privileged})
	})
}

// runLimitsKey is the part of every RUN's key that the extra hosts, ulimits
// and shm size make, "" when none is set.
func (b *builder) runLimitsKey() string {
	o := &b.opts
	if len(o.ExtraHosts) == 0 && len(o.Ulimits) == 0 && o.ShmSize == 0 {
		return ""
	}
	var hosts, limits []string
	for _, h := range o.ExtraHosts {
		hosts = append(hosts, h.Name+"="+h.IP.String())
	}
	for _, r := range o.Ulimits {
		limits = append(limits, fmt.Sprintf("%s=%d:%d", r.Type, r.Soft, r.Hard))
	}
	return keyOf("run-limits", hosts, limits, o.ShmSize)
}

// mountKey is the part of a RUN's cache key that a --mount contributes. It
// first rejects every option slimbuild does not honour.
func (b *builder) mountKey(ctx context.Context, s *stageState, m *instructions.Mount) (any, error) {
	if err := checkMount(m); err != nil {
		return nil, err
	}
	switch m.Type {
	case instructions.MountTypeBind:
		bctx := b.bctx
		if m.From != "" {
			src, err := b.fromSource(ctx, m.From)
			if err != nil {
				return nil, err
			}
			if src.dir == nil {
				return []string{"bind", src.key, m.Source, m.Target, fmt.Sprint(m.ReadOnly)}, nil
			}
			bctx = src.dir
		}
		sum, err := bctx.digestTree(m.Source)
		if err != nil {
			return nil, err
		}
		return []string{"bind-context", sum, m.Source, m.Target, fmt.Sprint(m.ReadOnly)}, nil
	case instructions.MountTypeCache:
		// A cache mount's content is not part of the result's identity, as in BuildKit.
		k := []any{"cache", m.CacheID, m.Target, m.ReadOnly, string(m.CacheSharing), fileOpts(m)}
		if m.From != "" || m.Source != "" {
			seed, err := b.cacheSeedName(ctx, m)
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

// checkMount returns an error naming the first --mount option that m sets and
// slimbuild does not honour for m's type. BuildKit's parser has already
// rejected the combinations it never accepts (uid on a bind mount, sharing on a
// secret...).
func checkMount(m *instructions.Mount) error {
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

type execRequest struct {
	args    []string
	script  *instructions.ShellInlineFile
	env     []string
	wd      string
	network runtime.Network
	mounts  []*instructions.Mount
	// privileged is RUN --security=insecure (allowed by the security.insecure entitlement).
	privileged bool
}

// execute runs a RUN command in runc on ws.
func (b *builder) execute(ctx context.Context, s *stageState, st *step, ws *workspace, req execRequest) error {
	cwd, err := inRoot(ws.Root(), req.wd)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("creating working directory %s: %w", req.wd, err)
	}
	files := filepath.Join(ws.Dir(), "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		return err
	}
	var extra []specs.Mount
	if req.script != nil {
		p := filepath.Join(files, "script-"+req.script.Name)
		if err := os.WriteFile(p, []byte(req.script.Data), 0o755); err != nil {
			return err
		}
		extra = append(extra, specs.Mount{Destination: "/dev/pipes/" + req.script.Name, Type: "bind", Source: p, Options: []string{"rbind", "ro"}})
	}
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	nssh := 0
	for _, m := range req.mounts {
		if m.Type == instructions.MountTypeSSH {
			// As in BuildKit: the socket is at the target (or the n-th default
			// path), and SSH_AUTH_SOCK names the first one unless set.
			target := sshTarget(m, nssh, req.wd)
			if nssh == 0 {
				if _, set := envMap(req.env)["SSH_AUTH_SOCK"]; !set {
					req.env = append(req.env[:len(req.env):len(req.env)], "SSH_AUTH_SOCK="+target)
				}
			}
			nssh++
			sm, stop, err := b.sshMount(m, target, files)
			if stop != nil {
				releases = append(releases, stop)
			}
			if err != nil {
				return err
			}
			extra = append(extra, sm...)
			continue
		}
		if m.Type == instructions.MountTypeSecret && m.Env != nil {
			v, err := b.secretValue(m)
			if err != nil {
				return err
			}
			req.env = append(req.env[:len(req.env):len(req.env)], *m.Env+"="+string(v))
		}
		sm, release, err := b.resolveMount(ctx, m, req.wd, files)
		if release != nil {
			releases = append(releases, release)
		}
		if err != nil {
			return err
		}
		extra = append(extra, sm...)
	}

	// Mount points that runc creates must not leak into the layer.
	targets := runtime.MountPoints()
	for _, m := range extra {
		targets = append(targets, m.Destination)
	}
	before := map[string]fs.FileInfo{} // nil: did not exist before the run
	for _, t := range targets {
		for p := t; p != "/" && p != "."; p = path.Dir(p) {
			if _, ok := before[p]; ok {
				continue
			}
			hp, err := inRoot(ws.Root(), p)
			if err != nil {
				return err
			}
			fi, err := os.Lstat(hp)
			if err != nil {
				fi = nil
			}
			before[p] = fi
		}
	}

	out := &lineWriter{emit: func(line string) {
		b.emit(Event{Kind: StepLog, Stage: st.stage.ID(), Step: st.n, Total: st.total, Text: line})
	}}
	code, err := b.runContainer(ctx, ws, s.cfg.Config.User, runtime.Process{
		Args: req.args, Env: req.env, Cwd: req.wd, Network: req.network, Mounts: extra,
		ExtraHosts: b.opts.ExtraHosts, Rlimits: b.opts.Ulimits, ShmSize: b.opts.ShmSize,
		Privileged: req.privileged,
	}, runtime.Stdio{Stdout: out, Stderr: out})
	out.Flush()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("running %s: %w", strings.Join(req.args, " "), err)
	}
	if code != 0 {
		return &StepError{File: b.plan.File, Line: st.line(), Stage: st.stage.ID(), Command: st.text, ExitCode: code, Tail: out.Tail()}
	}
	if err := ws.Unmount(); err != nil {
		return err
	}
	removeMountPoints(ws.Upper(), targets, before)
	return nil
}

// runContainer runs p in runc on ws's root as user (resolved in that root) and
// returns the exit status; runtime.RunContainer does the work.
func (b *builder) runContainer(ctx context.Context, ws *workspace, user string, p runtime.Process, stdio runtime.Stdio) (int, error) {
	dir := filepath.Join(ws.Dir(), "container")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return 0, err
	}
	var runner Runner = &runtime.Runner{Runc: b.opts.Runc, StateDir: b.runDir}
	if b.runner != nil {
		runner = b.runner
	}
	return runner.RunContainer(ctx, runtime.Container{
		ID: "slimbuild-" + randomID(), Rootfs: ws.Root(), Dir: dir, User: user, Process: p, Stdio: stdio,
	})
}

// maxSecretSize is the largest secret a RUN gets, as in BuildKit.
const maxSecretSize = 500 << 10

// secretValue reads the secret m names; empty when it is optional and not given.
func (b *builder) secretValue(m *instructions.Mount) ([]byte, error) {
	id := secretID(m)
	src, ok := b.opts.Secrets[id]
	if !ok {
		if m.Required {
			return nil, fmt.Errorf("secret %q is required but was not given (--secret id=%s,src=FILE)", id, id)
		}
		return nil, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", id, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", id, err)
	}
	if len(data) > maxSecretSize {
		return nil, fmt.Errorf("secret %q is larger than %d bytes", id, maxSecretSize)
	}
	return data, nil
}

// resolveMount turns a RUN --mount into runtime mounts. files is a private
// directory of the step for files made for it; wd is the working directory,
// which a relative target is taken from, as in BuildKit. release, when not nil,
// must be called once the RUN is over, also on error.
func (b *builder) resolveMount(ctx context.Context, m *instructions.Mount, wd, files string) (_ []specs.Mount, release func(), _ error) {
	target := m.Target
	if !path.IsAbs(target) {
		target = path.Join("/", wd, target)
	}
	switch m.Type {
	case instructions.MountTypeCache:
		if target == "/" {
			return nil, nil, fmt.Errorf("RUN --mount=type=cache: invalid target %q", m.Target)
		}
		dir, unlock, err := b.cacheDir(ctx, m, target)
		if err != nil {
			return nil, nil, err
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: dir, Options: opts}}, unlock, nil
	case instructions.MountTypeSecret:
		if m.Env != nil && m.Target == "" {
			return nil, nil, nil // only an environment variable
		}
		id := secretID(m)
		if m.Target == "" {
			target = "/run/secrets/" + path.Base(id)
		}
		if _, ok := b.opts.Secrets[id]; !ok && !m.Required {
			return nil, nil, nil
		}
		data, err := b.secretValue(m)
		if err != nil {
			return nil, nil, err
		}
		// The RUN sees a copy owned and moded as asked (root, 0400 by
		// default, as in BuildKit), removed with the step's directory.
		src, err := os.CreateTemp(files, "secret-")
		if err != nil {
			return nil, nil, err
		}
		uid, gid, mode := fileOwner(m, 0o400)
		_, err = src.Write(data)
		if err == nil {
			err = src.Chown(uid, gid)
		}
		if err == nil {
			err = unix.Fchmod(int(src.Fd()), mode)
		}
		if cerr := src.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, nil, fmt.Errorf("secret %q: %w", id, err)
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: src.Name(), Options: []string{"rbind", "ro"}}}, nil, nil
	case instructions.MountTypeTmpfs:
		opts := []string{"nosuid", "nodev", "mode=1777"}
		if m.SizeLimit > 0 {
			opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return []specs.Mount{{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts}}, nil, nil
	case instructions.MountTypeBind:
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		bctx := b.bctx
		var from *source
		if m.From != "" {
			var err error
			if from, err = b.fromSource(ctx, m.From); err != nil {
				return nil, nil, err
			}
			bctx = from.dir // a local-directory named context, else nil
		}
		if bctx != nil {
			src, err := bctx.resolve(m.Source)
			if err != nil {
				return nil, nil, err
			}
			fi, err := os.Stat(src)
			if err != nil {
				return nil, nil, fmt.Errorf("RUN --mount source %s: %w", m.Source, err)
			}
			if !fi.IsDir() || m.ReadOnly {
				return []specs.Mount{{Destination: target, Type: "bind", Source: src, Options: append(opts, "ro")}}, nil, nil
			}
			// Writes to a bind mount are thrown away, as in BuildKit: bind a
			// copy-on-write view of the context directory.
			view, err := b.mountDirView(src)
			if err != nil {
				return nil, nil, err
			}
			return []specs.Mount{{Destination: target, Type: "bind", Source: view.Root(), Options: opts}}, view.Remove, nil
		}
		view, err := b.mountWorkspace(from.layers)
		if err != nil {
			return nil, nil, err
		}
		p, err := inRoot(view.Root(), m.Source)
		if err != nil {
			return nil, view.Remove, err
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: p, Options: opts}}, view.Remove, nil
	}
	return nil, nil, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
}

// cacheDir returns the store directory of a cache mount, made on first use
// with m's owner and mode (root, 0755 by default), and the lock it holds for
// the RUN: shared (the default) takes a shared lock, locked an exclusive one
// and waits for it, and private takes the first instance of the cache that no
// other RUN holds, as BuildKit's sharing modes do. As in BuildKit, a different
// owner or mode is a different cache.
func (b *builder) cacheDir(ctx context.Context, m *instructions.Mount, target string) (string, func(), error) {
	id := m.CacheID
	if id == "" {
		id = path.Clean(target)
	}
	name := id
	if o := fileOpts(m); o != "" {
		name += "\x00" + o
	}
	if m.From != "" || m.Source != "" {
		// As in BuildKit, a cache seeded from a source is its own cache,
		// one per content of that source.
		seed, err := b.cacheSeedName(ctx, m)
		if err != nil {
			return "", nil, err
		}
		name += "\x00" + seed
	}
	sum := sha256.Sum256([]byte(name))
	base := filepath.Join(b.st.Root(), "mounts", hex.EncodeToString(sum[:16]))
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return "", nil, err
	}
	for i := 0; ; i++ {
		dir := base
		if i > 0 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		how := unix.LOCK_SH
		switch m.CacheSharing {
		case instructions.MountSharingLocked:
			how = unix.LOCK_EX
		case instructions.MountSharingPrivate:
			how = unix.LOCK_EX | unix.LOCK_NB
		}
		unlock, err := lockFile(ctx, dir+".lock", how)
		if errors.Is(err, unix.EWOULDBLOCK) {
			continue // private: this instance is in use, try the next
		}
		if err != nil {
			return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		if err := b.makeCacheDir(ctx, dir, m); err != nil {
			unlock()
			return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		return dir, unlock, nil
	}
}

// makeCacheDir makes dir with m's owner and mode unless it exists, seeded
// with the content of m's from= and source= when given.
func (b *builder) makeCacheDir(ctx context.Context, dir string, m *instructions.Mount) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".new-")
	if err != nil {
		return err
	}
	uid, gid, mode := fileOwner(m, 0o755)
	if err := os.Lchown(tmp, uid, gid); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := unix.Chmod(tmp, mode); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if m.From != "" {
		if err := b.seedCache(ctx, tmp, m); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Lstat(dir); serr == nil {
			return nil // made by another RUN meanwhile
		}
		return err
	}
	return nil
}

// cacheSeedName is what a cache mount's from= and source= add to its name:
// the source's identity and, for a local-directory named context, the digest
// of the directory it seeds from.
func (b *builder) cacheSeedName(ctx context.Context, m *instructions.Mount) (string, error) {
	src := path.Clean("/" + m.Source)
	from, err := b.fromSource(ctx, m.From)
	if err != nil {
		return "", err
	}
	if from.dir != nil {
		sum, err := from.dir.digestTree(m.Source)
		if err != nil {
			return "", err
		}
		return "from=dir:" + sum + "\x00source=" + src, nil
	}
	return "from=" + from.key + "\x00source=" + src, nil
}

// seedCache copies the directory that m's source= names in its from= (a
// stage, an image or a named context) into dir, a new cache: the path is
// resolved inside the source's root, and what is copied keeps its owners and
// modes (a context directory's files are root's, as COPY makes them).
func (b *builder) seedCache(ctx context.Context, dir string, m *instructions.Mount) error {
	from, err := b.fromSource(ctx, m.From)
	if err != nil {
		return err
	}
	c := &copier{root: dir}
	root := ""
	if from.dir != nil {
		root, c.bctx, c.resetOwner = from.dir.dir, from.dir, true
	} else {
		view, err := b.mountWorkspace(from.layers)
		if err != nil {
			return err
		}
		defer view.Remove()
		root = view.Root()
	}
	host, err := inRoot(root, m.Source)
	if err != nil {
		return fmt.Errorf("cache mount from=%s,source=%s: %w", m.From, m.Source, err)
	}
	fi, err := os.Stat(host)
	if err != nil {
		return fmt.Errorf("cache mount from=%s,source=%s: %w", m.From, m.Source, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cache mount from=%s,source=%s: not a directory", m.From, m.Source)
	}
	if err := c.copyItem(srcItem{host: host, rel: strings.TrimPrefix(path.Clean("/"+m.Source), "/"), fi: fi}, "/", true, false); err != nil {
		return fmt.Errorf("cache mount from=%s,source=%s: seeding: %w", m.From, m.Source, err)
	}
	return nil
}

// lockFile flocks the file p (created when missing) with how and returns its
// unlock. A blocking lock is waited for in steps so that ctx can end the wait;
// with LOCK_NB a held lock is unix.EWOULDBLOCK.
func lockFile(ctx context.Context, p string, how int) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || how&unix.LOCK_NB != 0 {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Limits of a RUN step's log. A line is cut at maxLogLine bytes (the rest is
// counted, not kept). Once a step has printed more than maxStepLog bytes, the
// rest of its output is read and dropped after one clipNotice, as BuildKit
// does with its default step log limit; the tail for errors is still kept.
const (
	maxLogLine = 64 << 10
	maxStepLog = 2 << 20
	tailLines  = 15
	clipNotice = "[output clipped, log limit 2MiB reached]"
)

// lineWriter splits output into lines, emits each within the limits above,
// and keeps the last ones. Its memory is bounded whatever is written.
type lineWriter struct {
	mu      sync.Mutex
	cur     []byte // the line being read, at most maxLogLine bytes
	cut     int64  // bytes of that line past maxLogLine
	total   int64  // bytes written so far
	clipped bool   // the step's log limit was reached
	tail    []string
	emit    func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i+1]
		}
		w.total += int64(len(part))
		part = bytes.TrimSuffix(part, []byte("\n"))
		keep := min(len(part), maxLogLine-len(w.cur))
		w.cur = append(w.cur, part[:keep]...)
		w.cut += int64(len(part) - keep)
		if i < 0 {
			break
		}
		w.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// endLine emits the line read so far, or the notice when it passes the limit.
func (w *lineWriter) endLine() {
	l := strings.TrimRight(string(w.cur), "\r")
	if w.cut > 0 {
		l += fmt.Sprintf(" [line clipped, %d more bytes]", w.cut)
	}
	w.cur, w.cut = w.cur[:0], 0
	w.tail = append(w.tail, l)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
	if w.clipped {
		return
	}
	w.emit(l)
	if w.total > maxStepLog {
		w.clipped = true
		w.emit(clipNotice)
	}
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cur) > 0 || w.cut > 0 {
		w.endLine()
	}
}

func (w *lineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}
