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
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/tmp/hosts", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "cgroup"}, {Type: "network"}},
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
		// Only the network namespace differs: sysfs and cgroup mounts are the
		// container's own with the host's network too.
		s.Linux.Namespaces = s.Linux.Namespaces[:5]
	}
	return s
}

func TestSpec(t *testing.T) {
	for _, network := range []Network{NetworkNone, NetworkHost, NetworkPrivate} {
		t.Run(network.String(), func(t *testing.T) {
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
			got := mustSpec(t, "/var/lib/x/rootfs", p)
			// Deterministic: the same input encodes to the same bytes.
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(mustSpec(t, "/var/lib/x/rootfs", p))
			if string(a) != string(b) {
				t.Error("Spec is not deterministic")
			}
			checkSeccomp(t, got.Linux.Seccomp)
			got.Linux.Seccomp = nil
			if diff := cmp.Diff(wantSpec(network == NetworkHost), got); diff != "" {
				t.Errorf("Spec() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecDoesNotAlias(t *testing.T) {
	p := Process{Args: []string{"a"}, Env: []string{"A=1"}, AddGIDs: []uint32{1}}
	s1 := mustSpec(t, "/r", p)
	s1.Process.Args[0] = "changed"
	s1.Process.Capabilities.Bounding[0] = "changed"
	s1.Linux.MaskedPaths[0] = "changed"
	s2 := mustSpec(t, "/r", p)
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

func mustSpec(t *testing.T, rootfs string, p Process) *specs.Spec {
	t.Helper()
	s, err := Spec(rootfs, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSeccomp checks that a profile is moby's default one for the default
// capabilities: everything not listed fails, and the syscalls that need a
// capability the container lacks (or that docker never allows) are not allowed.
func checkSeccomp(t *testing.T, sc *specs.LinuxSeccomp) {
	t.Helper()
	if sc == nil {
		t.Fatal("no seccomp profile")
	}
	if sc.DefaultAction != specs.ActErrno {
		t.Errorf("default action %q, want %q", sc.DefaultAction, specs.ActErrno)
	}
	if len(sc.Architectures) == 0 {
		t.Error("no architectures")
	}
	allowed := map[string]bool{}
	for _, rule := range sc.Syscalls {
		if rule.Action == specs.ActAllow && len(rule.Args) == 0 {
			for _, n := range rule.Names {
				allowed[n] = true
			}
		}
	}
	for _, n := range []string{"read", "write", "execve", "fork", "mknod", "chown"} {
		if !allowed[n] {
			t.Errorf("%s is not allowed", n)
		}
	}
	// mount, unshare, setns and bpf need CAP_SYS_ADMIN, module loading CAP_SYS_MODULE;
	// open_by_handle_at needs CAP_DAC_READ_SEARCH; keyctl and kexec are never allowed.
	for _, n := range []string{"mount", "umount2", "unshare", "setns", "bpf", "init_module", "finit_module", "open_by_handle_at", "keyctl", "add_key", "kexec_load", "reboot", "swapon"} {
		if allowed[n] {
			t.Errorf("%s is allowed", n)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Network
		wantErr bool
	}{
		{"", NetworkPrivate, false},
		{"default", NetworkPrivate, false},
		{"private", NetworkPrivate, false},
		{"host", NetworkHost, false},
		{"none", NetworkNone, false},
		{"bridge", "", true},
		{"HOST", "", true},
		{" host", "", true},
	} {
		got, err := ParseNetwork(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseNetwork(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
