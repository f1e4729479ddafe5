package runtime

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultCapabilities is docker's and BuildKit's default capability set.
var defaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// maskedPaths and readonlyPaths are docker's defaults.
var (
	maskedPaths = []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// defaultDevices are the character devices every container gets.
var defaultDevices = []struct {
	path         string
	major, minor int64
}{
	{"/dev/null", 1, 3},
	{"/dev/zero", 1, 5},
	{"/dev/full", 1, 7},
	{"/dev/random", 1, 8},
	{"/dev/urandom", 1, 9},
	{"/dev/tty", 5, 0},
}

// nofile is the RLIMIT_NOFILE of the process (soft and hard).
const nofile = 1048576

// Spec returns the OCI runtime spec for p with rootfs as root (pure: touches no disk).
// Every container gets moby's default seccomp profile for its capabilities, a cgroup
// namespace, and read-only sysfs and cgroup mounts of its own.
func Spec(rootfs string, p Process) (*specs.Spec, error) {
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	caps := func() []string { return append([]string(nil), defaultCapabilities...) }
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false,
			User: specs.User{
				UID:            p.UID,
				GID:            p.GID,
				AdditionalGids: append([]uint32(nil), p.AddGIDs...),
			},
			Args: append([]string(nil), p.Args...),
			Env:  append([]string(nil), p.Env...),
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Effective: caps(),
				Permitted: caps(),
			},
			Rlimits:         rlimits(p.Rlimits),
			NoNewPrivileges: false,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: false},
		Hostname: p.Hostname,
		Mounts:   defaultMounts(p.ShmSize),
		Linux: &specs.Linux{
			Namespaces:    namespaces(p.Network == NetworkHost, p.NetNS),
			Devices:       devices(),
			Resources:     &specs.LinuxResources{Devices: deviceRules()},
			MaskedPaths:   append([]string(nil), maskedPaths...),
			ReadonlyPaths: append([]string(nil), readonlyPaths...),
		},
	}
	s.Mounts = append(s.Mounts, p.Mounts...)
	profile, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	s.Linux.Seccomp = profile
	if p.Privileged {
		privileged(s)
	}
	return s, nil
}

// allCapabilities are the capabilities Linux 5.9 and later know, in bit order.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// privileged lifts the sandbox as BuildKit's insecure mode does, except that
// the host's devices stay out of /dev. The capabilities are all those in this
// process's bounding set (the one thing Spec asks the kernel).
func privileged(s *specs.Spec) {
	var held []string
	for bit, name := range allCapabilities {
		if r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(bit), 0, 0, 0); err == nil && r == 1 {
			held = append(held, name)
		}
	}
	caps := func() []string { return append([]string(nil), held...) }
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps(), Effective: caps(), Permitted: caps()}
	s.Linux.Seccomp = nil
	s.Linux.MaskedPaths = nil
	s.Linux.ReadonlyPaths = nil
	for i, m := range s.Mounts {
		if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
			var opts []string
			for _, o := range m.Options {
				if o != "ro" {
					opts = append(opts, o)
				}
			}
			s.Mounts[i].Options = append(opts, "rw")
		}
	}
}

// defaultMounts are runc's and BuildKit's: sysfs is always a fresh one (root may mount
// it in any network namespace), and /sys/fs/cgroup shows the container's own cgroup
// namespace, read-only. Nothing of the host's /sys is bound in.
func defaultMounts(shmSize int64) []specs.Mount {
	shm := "size=65536k"
	if shmSize > 0 {
		shm = "size=" + strconv.FormatInt(shmSize, 10)
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", shm}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	return ms
}

// rlimits are the default limits with those of extra in place of the same type.
func rlimits(extra []specs.POSIXRlimit) []specs.POSIXRlimit {
	rs := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}
	for _, r := range extra {
		i := slices.IndexFunc(rs, func(d specs.POSIXRlimit) bool { return d.Type == r.Type })
		if i >= 0 {
			rs[i] = r
		} else {
			rs = append(rs, r)
		}
	}
	return rs
}

func namespaces(hostNetwork bool, netns string) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.CgroupNamespace},
	}
	if !hostNetwork {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	}
	return ns
}

func devices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	var uid, gid uint32
	ds := make([]specs.LinuxDevice, 0, len(defaultDevices))
	for _, d := range defaultDevices {
		ds = append(ds, specs.LinuxDevice{
			Path: d.path, Type: "c", Major: d.major, Minor: d.minor,
			FileMode: &mode, UID: &uid, GID: &gid,
		})
	}
	return ds
}

// deviceRules deny every device but the default ones, /dev/ptmx and pseudo-terminals.
func deviceRules() []specs.LinuxDeviceCgroup {
	i64 := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, d := range defaultDevices {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(d.major), Minor: i64(d.minor), Access: "rwm"})
	}
	rules = append(rules,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}, // /dev/ptmx
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},              // /dev/pts/*
	)
	return rules
}
