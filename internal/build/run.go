package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

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
	args, script := runArgs(s, c)
	network := instructions.GetNetwork(c)
	if network == "" || network == "default" {
		network = b.opts.Network
	}
	if network != "host" && network != "none" {
		return b.fail(st, fmt.Errorf("RUN --network=%s is not supported (use default, none or host)", network))
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
		k, err := b.mountKey(s, m)
		if err != nil {
			return b.fail(st, err)
		}
		mountKeys = append(mountKeys, k)
	}
	var scriptData string
	if script != nil {
		scriptData = script.Data
	}
	key := keyOf("run", s.key, args, scriptData, keyEnv, s.cfg.Config.User, wd, network, mountKeys)
	return b.fsStep(ctx, s, st, key, func(ws *workspace) error {
		return b.execute(ctx, s, st, ws, execRequest{args: args, script: script, env: env, wd: wd, network: network, mounts: mounts})
	})
}

// mountKey is the part of a RUN's cache key that a --mount contributes.
func (b *builder) mountKey(s *stageState, m *instructions.Mount) (any, error) {
	switch m.Type {
	case instructions.MountTypeBind:
		if m.From != "" {
			src, err := b.fromSource(m.From)
			if err != nil {
				return nil, err
			}
			return []string{"bind", src.key, m.Source, m.Target, fmt.Sprint(m.ReadOnly)}, nil
		}
		sum, err := b.bctx.digestTree(m.Source)
		if err != nil {
			return nil, err
		}
		return []string{"bind-context", sum, m.Source, m.Target, fmt.Sprint(m.ReadOnly)}, nil
	case instructions.MountTypeCache:
		// A cache mount's content is not part of the result's identity, as in BuildKit.
		return []string{"cache", m.CacheID, m.Target}, nil
	case instructions.MountTypeSecret:
		// The secret's value never enters the key: only that it is mounted, and where.
		return []string{"secret", m.CacheID, m.Target}, nil
	case instructions.MountTypeTmpfs:
		return []string{"tmpfs", m.Target}, nil
	default:
		return nil, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
	}
}

type execRequest struct {
	args    []string
	script  *instructions.ShellInlineFile
	env     []string
	wd      string
	network string
	mounts  []*instructions.Mount
}

// execute runs a RUN command in runc on ws.
func (b *builder) execute(ctx context.Context, s *stageState, st *step, ws *workspace, req execRequest) error {
	cwd, err := inRoot(ws.rootfs, req.wd)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("creating working directory %s: %w", req.wd, err)
	}
	files := filepath.Join(ws.dir, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		return err
	}
	var extra []specs.Mount
	bindFile := func(name, target, content string, ro bool) error {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		opts := []string{"rbind"}
		if ro {
			opts = append(opts, "ro")
		}
		extra = append(extra, specs.Mount{Destination: target, Type: "bind", Source: p, Options: opts})
		return nil
	}
	hostname := "slimbuild"
	hosts := "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if err := bindFile("hosts", "/etc/hosts", hosts, false); err != nil {
		return err
	}
	if err := bindFile("hostname", "/etc/hostname", hostname+"\n", false); err != nil {
		return err
	}
	resolv := "nameserver 127.0.0.1\n"
	if req.network == "host" {
		if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			resolv = string(data)
		}
	}
	if err := bindFile("resolv.conf", "/etc/resolv.conf", resolv, false); err != nil {
		return err
	}
	if req.script != nil {
		p := filepath.Join(files, "script-"+req.script.Name)
		if err := os.WriteFile(p, []byte(req.script.Data), 0o755); err != nil {
			return err
		}
		extra = append(extra, specs.Mount{Destination: "/dev/pipes/" + req.script.Name, Type: "bind", Source: p, Options: []string{"rbind", "ro"}})
	}
	var views []*workspace
	defer func() {
		for _, v := range views {
			v.release()
		}
	}()
	for _, m := range req.mounts {
		sm, view, err := b.resolveMount(ctx, m, files)
		if err != nil {
			return err
		}
		if view != nil {
			views = append(views, view)
		}
		extra = append(extra, sm...)
	}

	// Mount points that runc creates must not leak into the layer.
	targets := []string{"/proc", "/sys", "/dev"}
	for _, m := range extra {
		targets = append(targets, m.Destination)
	}
	before := map[string]fs.FileInfo{} // nil: did not exist before the run
	for _, t := range targets {
		for p := t; p != "/" && p != "."; p = path.Dir(p) {
			if _, ok := before[p]; ok {
				continue
			}
			hp, err := inRoot(ws.rootfs, p)
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
		Args: req.args, Env: req.env, Cwd: req.wd, Hostname: hostname, Network: req.network, Mounts: extra,
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
	if err := ws.unmount(); err != nil {
		return err
	}
	removeMountPoints(ws.upper, targets, before)
	return nil
}

// runContainer runs p in runc on ws's root as user (resolved in that root, with
// the supplementary groups BuildKit gives), in a loopback-only network namespace
// unless p's network is the host's, and returns the exit status.
func (b *builder) runContainer(ctx context.Context, ws *workspace, user string, p runtime.Process, stdio runtime.Stdio) (int, error) {
	u, err := runtime.ResolveUser(ws.rootfs, user)
	if err != nil {
		return 0, err
	}
	p.UID, p.GID, p.AddGIDs = u.UID, u.GID, withPrimary(u)
	if p.NetNS, err = loopbackNS(ws, p.Network); err != nil {
		return 0, err
	}
	bundle := filepath.Join(ws.dir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return 0, err
	}
	runner := &runtime.Runner{Runc: b.opts.Runc, StateDir: b.runDir}
	return runner.Run(ctx, "slimbuild-"+randomID(), bundle, runtime.Spec(ws.rootfs, p), stdio)
}

// resolveMount turns a RUN --mount into runtime mounts.
func (b *builder) resolveMount(ctx context.Context, m *instructions.Mount, files string) ([]specs.Mount, *workspace, error) {
	target := m.Target
	if !path.IsAbs(target) {
		target = path.Join("/", target)
	}
	switch m.Type {
	case instructions.MountTypeCache:
		id := m.CacheID
		if id == "" {
			id = target
		}
		sum := sha256.Sum256([]byte(id))
		dir := filepath.Join(b.st.Root(), "mounts", hex.EncodeToString(sum[:16]))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: dir, Options: opts}}, nil, nil
	case instructions.MountTypeSecret:
		id := m.CacheID
		if id == "" {
			id = path.Base(target)
		}
		if m.Target == "" {
			target = "/run/secrets/" + id
		}
		src, ok := b.opts.Secrets[id]
		if !ok {
			if m.Required {
				return nil, nil, fmt.Errorf("secret %q is required but was not given (--secret id=%s,src=FILE)", id, id)
			}
			return nil, nil, nil
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, nil, nil
	case instructions.MountTypeTmpfs:
		return []specs.Mount{{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}}}, nil, nil
	case instructions.MountTypeBind:
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if m.From == "" {
			src, err := b.bctx.resolve(m.Source)
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
			return []specs.Mount{{Destination: target, Type: "bind", Source: view.rootfs, Options: opts}}, view, nil
		}
		src, err := b.fromSource(m.From)
		if err != nil {
			return nil, nil, err
		}
		view, err := b.mountWorkspace(src.layers)
		if err != nil {
			return nil, nil, err
		}
		p, err := inRoot(view.rootfs, m.Source)
		if err != nil {
			view.release()
			return nil, nil, err
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: p, Options: opts}}, view, nil
	}
	return nil, nil, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
}

// lineWriter splits output into lines, emits each, and keeps the last ones.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	tail []string
	emit func(string)
}

const tailLines = 15

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err == io.EOF {
			w.buf.WriteString(line)
			break
		}
		w.line(strings.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

func (w *lineWriter) line(l string) {
	w.emit(l)
	w.tail = append(w.tail, l)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.line(w.buf.String())
		w.buf.Reset()
	}
}

func (w *lineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}

// withPrimary lists the supplementary groups of a RUN process: the primary group
// first, then the memberships from /etc/group, as BuildKit's processes have.
func withPrimary(u runtime.User) []uint32 {
	gids := []uint32{u.GID}
	for _, g := range u.AddGIDs {
		if g != u.GID {
			gids = append(gids, g)
		}
	}
	return gids
}
