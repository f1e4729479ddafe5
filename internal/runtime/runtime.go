package runtime

import (
	"io"
	"net/netip"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Process is what a RUN step executes.
type Process struct {
	Args     []string
	Env      []string
	Cwd      string // absolute, created beforehand by the caller
	UID, GID uint32
	AddGIDs  []uint32
	Hostname string
	Network  Network
	// NetNS, when set and Network is not NetworkHost, is a network namespace to join
	// (see NewLoopbackNetNS) instead of a new, empty one.
	NetNS string
	// Mounts are extra mounts (bind hosts/resolv.conf/hostname, cache and secret mounts, ...).
	Mounts []specs.Mount
	// ExtraHosts are added to the container's /etc/hosts (docker's --add-host).
	ExtraHosts []Host
	// Rlimits replace the default limits of the same type (docker's --ulimit);
	// RLIMIT_NOFILE is 1048576 unless given here.
	Rlimits []specs.POSIXRlimit
	// ShmSize is the size of /dev/shm in bytes (docker's --shm-size); 0 is 64MiB.
	ShmSize int64
	// Privileged is RUN --security=insecure: every capability, no seccomp
	// filter, no masked or read-only paths, writable sysfs and cgroupfs.
	Privileged bool
}

// Host is one /etc/hosts entry.
type Host struct {
	Name string
	IP   netip.Addr
}

// User is a resolved USER instruction.
type User struct {
	UID, GID uint32
	AddGIDs  []uint32
}

// Stdio is where the container's output goes; Stdin may be nil.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Runner runs containers with runc.
type Runner struct {
	// Runc is the runc binary ("runc" from PATH when empty).
	Runc string
	// StateDir is runc's --root.
	StateDir string
	// Nets, when set, gives RunContainer its networks, and takes them back for
	// reuse by the next container (see NetPool).
	Nets *NetPool
}
