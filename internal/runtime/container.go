package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container is one run of a process on a mounted root filesystem.
type Container struct {
	// ID names the container in runc's state.
	ID string
	// Rootfs is the container's root, mounted by the caller.
	Rootfs string
	// Dir is a new, private directory for this run; Run fills it (bundle, network
	// namespace, /etc/hosts, /etc/hostname, /etc/resolv.conf) and the caller removes it.
	Dir string
	// User is the image's USER, resolved inside Rootfs; Process's UID and groups are
	// set from it.
	User string
	// Process runs; its Network picks the namespace, and NetNS is set by RunContainer.
	Process Process
	Stdio   Stdio
	// OnNetwork, when set, is told which network the container got (for progress).
	OnNetwork func(Network, *NetNS)
	// BeforeStart, when set, is called with the mounted root and the network
	// namespace's path ("" for the host's) before the process starts; its error
	// stops the run. slim's observed closure marks the root for fanotify with it.
	BeforeStart func(rootfs, netns string) error
}

// NewContainerID returns a fresh container ID for runc's state:
// "slimbuild-" and 16 random hex digits.
func NewContainerID() string {
	var b [8]byte
	rand.Read(b[:])
	return "slimbuild-" + hex.EncodeToString(b[:])
}

// etcFiles are the files every container gets bound from Dir, writable.
var etcFiles = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// MountPoints are the paths in a container's root that RunContainer's own mounts use;
// runc creates those that are missing. Callers that keep the root's changes remove
// what runc made.
func MountPoints() []string {
	return append([]string{"/proc", "/dev", "/sys"}, etcFiles...)
}

// RunContainer runs c to completion with runc and returns its exit status: the user
// resolved in the root (with the supplementary groups BuildKit gives), the network
// made for it (see NewNetNS) and released afterwards, hosts, hostname and resolv.conf
// of its own. The container is gone when it returns, its network helper killed.
func (r *Runner) RunContainer(ctx context.Context, c Container) (int, error) {
	u, err := ResolveUser(c.Rootfs, c.User)
	if err != nil {
		return 0, err
	}
	p := c.Process
	p.UID, p.GID, p.AddGIDs = u.UID, u.GID, withPrimary(u)
	if p.Hostname == "" {
		p.Hostname = "slimbuild"
	}
	// The helper of a private network takes longer to start than runc takes to
	// create the container: both go on at once, and a hook holds the process
	// back until the namespace is configured (waitNetwork).
	ns, put, err := r.network(p.Network, c.Dir, !p.Privileged)
	if err != nil {
		return 0, err
	}
	defer put()
	if c.OnNetwork != nil {
		c.OnNetwork(p.Network, ns)
	}
	p.NetNS = ns.Path
	if c.BeforeStart != nil {
		if err := c.BeforeStart(c.Rootfs, ns.Path); err != nil {
			return 0, err
		}
	}

	hosts := "127.0.0.1\tlocalhost " + p.Hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, h := range p.ExtraHosts {
		hosts += h.IP.String() + "\t" + h.Name + "\n"
	}
	contents := [][]byte{[]byte(hosts), []byte(p.Hostname + "\n"), ns.ResolvConf}
	var mounts []specs.Mount
	for i, dest := range etcFiles {
		src := filepath.Join(c.Dir, filepath.Base(dest))
		if err := os.WriteFile(src, contents[i], 0o644); err != nil {
			return 0, fmt.Errorf("writing %s for the container: %w", dest, err)
		}
		mounts = append(mounts, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"rbind"}})
	}
	p.Mounts = append(mounts, p.Mounts...)

	spec, err := Spec(c.Rootfs, p)
	if err != nil {
		return 0, err
	}
	bundle := filepath.Join(c.Dir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return 0, err
	}
	release, err := waitNetwork(ctx, ns, spec, filepath.Join(c.Dir, "netready"))
	if err != nil {
		return 0, err
	}
	status, err := r.Run(ctx, c.ID, bundle, spec, c.Stdio)
	if nerr := release(); nerr != nil {
		// The hook failed the run before the process started: say why.
		if cerr := ctx.Err(); cerr != nil {
			return -1, cerr
		}
		return 0, nerr
	}
	if cerr := put(); cerr != nil && err == nil {
		err = fmt.Errorf("releasing network: %w", cerr)
	}
	return status, err
}

// network makes or takes the network of one container (from r.Nets when set,
// else bound in dir) and returns it with the function that gives it back (to the
// pool when reuse is true) or closes it; that function may be called twice.
func (r *Runner) network(n Network, dir string, reuse bool) (*NetNS, func() error, error) {
	if r.Nets == nil {
		ns, err := StartNetNS(n, filepath.Join(dir, "netns"))
		if err != nil {
			return nil, nil, err
		}
		return ns, ns.Close, nil
	}
	ns, err := r.Nets.Get(n)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	var perr error
	return ns, func() error {
		once.Do(func() { perr = r.Nets.Put(ns, reuse) })
		return perr
	}, nil
}

// NetReadyScript is the hook ("sh -c NetReadyScript FIFO") that holds a
// container's process back until its network is configured: it reads one line
// from the FIFO given as $0. A hook whose slimbuild was killed before it opened
// the FIFO waits for a writer forever: the store's reclaim kills it
// (IsNetReadyHook).
const NetReadyScript = `read r <"$0" && [ "$r" = ready ]`

// IsNetReadyHook reports whether args (a process's command line) is the network
// hook waiting on a FIFO below dir.
func IsNetReadyHook(args []string, dir string) bool {
	return len(args) == 4 && filepath.Base(args[0]) == "sh" && args[1] == "-c" &&
		args[2] == NetReadyScript && strings.HasPrefix(args[3], dir+"/")
}

// waitNetwork makes spec wait, before its process starts, until ns is ready: a
// createRuntime hook (run by runc once the container's namespaces exist, before
// the process is started) reads a line from the FIFO fifo, which this process
// writes once ns.Ready returns: "ready", or "failed" when the helper failed or
// ctx ended, which fails the run. Nothing is added for a network with no helper
// to wait for. release, called once runc is done, waits for that line to be
// written, closes the FIFO and returns why it said "failed" (nil for "ready").
func waitNetwork(ctx context.Context, ns *NetNS, spec *specs.Spec, fifo string) (release func() error, _ error) {
	if ns.isReady() {
		return func() error { return nil }, nil
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("creating network FIFO: %w", err)
	}
	// Read and write: the open does not wait for the hook, and what is written
	// stays in the pipe until the hook reads it.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening network FIFO: %w", err)
	}
	readyc := make(chan error, 1)
	go func() { readyc <- ns.Ready() }()
	done := make(chan error, 1)
	go func() {
		var err error
		select {
		case err = <-readyc:
		case <-ctx.Done():
			err = ctx.Err()
		}
		line := "ready\n"
		if err != nil {
			line = "failed\n"
		}
		if _, werr := f.WriteString(line); werr != nil && err == nil {
			err = fmt.Errorf("signalling the network is ready: %w", werr)
		}
		done <- err
	}()
	timeout := int(helperTimeout/time.Second) + 5
	if spec.Hooks == nil {
		spec.Hooks = &specs.Hooks{}
	}
	spec.Hooks.CreateRuntime = append(spec.Hooks.CreateRuntime, specs.Hook{
		Path: "/bin/sh", Args: []string{"sh", "-c", NetReadyScript, fifo}, Timeout: &timeout,
	})
	return func() error {
		err := <-done
		f.Close()
		return err
	}, nil
}

// withPrimary lists the supplementary groups of a process: the primary group first,
// then the memberships from /etc/group, as BuildKit's processes have.
func withPrimary(u User) []uint32 {
	gids := []uint32{u.GID}
	for _, g := range u.AddGIDs {
		if g != u.GID {
			gids = append(gids, g)
		}
	}
	return gids
}
