package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/runmount"
	"github.com/slimbuild/slimbuild/internal/runtime"
)

func (b *builder) runStep(ctx context.Context, s *stageState, st *step, c *instructions.RunCommand) error {
	if err := b.checkEmulation(st.stage); err != nil {
		return b.fail(st, err)
	}
	args, script := dockerfile.RunArgs(c, s.Shell())
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
	env, keyEnv := s.RunEnv(b.plan)
	wd := s.Image.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	mounts := instructions.GetMounts(c)
	var mountKeys []any
	for _, m := range mounts {
		k, err := b.mounts().Key(ctx, m)
		if err != nil {
			return b.fail(st, err)
		}
		mountKeys = append(mountKeys, k)
	}
	var scriptData string
	if script != nil {
		scriptData = script.Data
	}
	key := cachekey.Of("run", s.key, args, scriptData, keyEnv, s.Image.Config.User, wd, network.String(), mountKeys)
	if rk := b.runLimitsKey(); rk != "" {
		// Hosts and limits change what a RUN may do, so they are in its key (as in
		// BuildKit); builds without them keep their keys.
		key = cachekey.Of(key, rk)
	}
	if privileged {
		key = cachekey.Of(key, "security=insecure")
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
	return cachekey.Of("run-limits", hosts, limits, o.ShmSize)
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
	// The image's own symlinks are followed without leaving the root.
	cwd, err := securejoin.SecureJoin(ws.Root(), req.wd)
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
	run, err := b.mounts().Resolve(ctx, req.mounts, req.wd, req.env, files)
	if err != nil {
		return err
	}
	defer run.Release()
	extra = append(extra, run.Mounts...)
	req.env = run.Env

	// Mount points that runc creates must not leak into the layer.
	targets := runtime.MountPoints()
	for _, m := range extra {
		targets = append(targets, m.Destination)
	}
	points, err := runmount.RecordPoints(ws.Root(), targets)
	if err != nil {
		return err
	}

	out := runtime.NewLineWriter(func(line string) {
		b.emit(Event{Kind: StepLog, Stage: st.stage.ID(), Step: st.n, Total: st.total, Text: line})
	})
	code, err := b.runContainer(ctx, ws, s.Image.Config.User, runtime.Process{
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
	points.Remove(ws.Upper())
	return nil
}

// runContainer runs p in runc on ws's root as user (resolved in that root) and
// returns the exit status; runtime.RunContainer does the work.
func (b *builder) runContainer(ctx context.Context, ws *workspace, user string, p runtime.Process, stdio runtime.Stdio) (int, error) {
	dir := filepath.Join(ws.Dir(), "container")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return 0, err
	}
	var runner Runner = &runtime.Runner{Runc: b.opts.Runc, StateDir: b.runDir, Nets: b.nets}
	if b.runner != nil {
		runner = b.runner
	}
	// What the process writes goes to disk while it runs, not all at the commit.
	defer b.st.WriteBehind()()
	return runner.RunContainer(ctx, runtime.Container{
		ID: runtime.NewContainerID(), Rootfs: ws.Root(), Dir: dir, User: user, Process: p, Stdio: stdio,
	})
}
