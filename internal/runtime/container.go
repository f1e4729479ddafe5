package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
// of its own. The container and its network helper are gone when it returns.
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
	ns, err := NewNetNS(p.Network, filepath.Join(c.Dir, "netns"))
	if err != nil {
		return 0, err
	}
	defer ns.Close()
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
	status, err := r.Run(ctx, c.ID, bundle, spec, c.Stdio)
	if cerr := ns.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("releasing network: %w", cerr)
	}
	return status, err
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
