package runtime

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// wantSpec spells the expected spec out literally, so a change of a default shows here.
func wantSpec(hostNetwork bool) *specs.Spec {
	caps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	mode := os.FileMode(0o666)
	zero := uint32(0)
	dev := func(path string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &zero, GID: &zero}
	}
	n := func(v int64) *int64 { return &v }
	allow := func(major int64, minor *int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: n(major), Minor: minor, Access: "rwm"}
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:         specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{27, 44}},
			Args:         []string{"/bin/sh", "-c", "make"},
			Env:          []string{"PATH=/usr/bin:/bin", "HOME=/home/u"},
			Cwd:          "/src",
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}},
		},
		Root:     &specs.Root{Path: "/var/lib/x/rootfs"},
		Hostname: "buildhost",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/tmp/hosts", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}},
			Devices: []specs.LinuxDevice{
				dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
				dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
			},
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				allow(1, n(3)), allow(1, n(5)), allow(1, n(7)), allow(1, n(8)), allow(1, n(9)), allow(5, n(0)),
				allow(5, n(2)), allow(136, nil),
			}},
			MaskedPaths: []string{
				"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
				"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if hostNetwork {
		s.Mounts[5] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		s.Linux.Namespaces = s.Linux.Namespaces[:4]
	}
	return s
}

func TestSpec(t *testing.T) {
	for _, network := range []string{"none", "host"} {
		t.Run(network, func(t *testing.T) {
			p := Process{
				Args:     []string{"/bin/sh", "-c", "make"},
				Env:      []string{"PATH=/usr/bin:/bin", "HOME=/home/u"},
				Cwd:      "/src",
				UID:      1000,
				GID:      100,
				AddGIDs:  []uint32{27, 44},
				Hostname: "buildhost",
				Network:  network,
				Mounts:   []specs.Mount{{Destination: "/etc/hosts", Type: "bind", Source: "/tmp/hosts", Options: []string{"rbind", "ro"}}},
			}
			got := Spec("/var/lib/x/rootfs", p)
			if diff := cmp.Diff(wantSpec(network == "host"), got); diff != "" {
				t.Errorf("Spec() mismatch (-want +got):\n%s", diff)
			}
			// Deterministic: the same input encodes to the same bytes.
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(Spec("/var/lib/x/rootfs", p))
			if string(a) != string(b) {
				t.Error("Spec is not deterministic")
			}
		})
	}
}

func TestSpecDoesNotAlias(t *testing.T) {
	p := Process{Args: []string{"a"}, Env: []string{"A=1"}, AddGIDs: []uint32{1}}
	s1 := Spec("/r", p)
	s1.Process.Args[0] = "changed"
	s1.Process.Capabilities.Bounding[0] = "changed"
	s1.Linux.MaskedPaths[0] = "changed"
	s2 := Spec("/r", p)
	if p.Args[0] != "a" || s2.Process.Capabilities.Bounding[0] != "CAP_CHOWN" || s2.Linux.MaskedPaths[0] != "/proc/asound" {
		t.Error("Spec shares slices between calls or with its input")
	}
	if s1.Process.Capabilities.Effective[0] != "CAP_CHOWN" {
		t.Error("capability sets share one slice")
	}
	if s2.Process.Cwd != "/" {
		t.Errorf("empty Cwd = %q, want /", s2.Process.Cwd)
	}
}
