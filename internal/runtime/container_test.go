package runtime

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
)

// attackRoot is a busybox root with the applets the containment tests use.
func attackRoot(t *testing.T) string {
	t.Helper()
	root := busyboxRoot(t)
	for _, d := range []string{"tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o1777); err != nil {
			t.Fatal(err)
		}
	}
	for _, applet := range []string{"mknod", "head", "grep", "nc", "ip", "readlink", "find", "tr", "true", "false", "test", "["} {
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	return root
}

// runIn runs script with sh in a fresh container on network n.
func runIn(t *testing.T, r *Runner, rootfs string, n Network, script string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status, err := r.RunContainer(context.Background(), Container{
		ID: newID(t), Rootfs: rootfs, Dir: t.TempDir(),
		Process: Process{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"}, Network: n},
		Stdio:   Stdio{Stdout: &stdout, Stderr: &stderr},
	})
	if err != nil {
		t.Fatalf("running %q: %v", script, err)
	}
	return result{status, stdout.String(), stderr.String()}
}

// hostBlockDevice is the major:minor of a block device this process can open: the
// one holding / if it can, else the first other one (some sandboxes deny the root
// disk even to root). The attack from inside a container aims at it.
func hostBlockDevice(t *testing.T) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	candidates := []string{fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))}
	entries, _ := os.ReadDir("/sys/dev/block")
	for _, e := range entries {
		candidates = append(candidates, e.Name())
	}
	dir := t.TempDir()
	for i, c := range candidates {
		var major, minor uint32
		if _, err := fmt.Sscanf(c, "%d:%d", &major, &minor); err != nil {
			continue
		}
		node := filepath.Join(dir, strconv.Itoa(i))
		if unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))) != nil {
			continue
		}
		if f, err := os.Open(node); err == nil {
			f.Close()
			return major, minor
		}
	}
	t.Skip("no block device that this process can open, so none to attack")
	return 0, 0
}

// TestContainment attacks the container's walls from inside, on every network.
func TestContainment(t *testing.T) {
	r := newRunner(t)
	rootfs := attackRoot(t)
	major, minor := hostBlockDevice(t)
	hostCgroupNS, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []Network{NetworkPrivate, NetworkHost, NetworkNone} {
		if n == NetworkPrivate {
			if _, err := PrivateHelper(); err != nil {
				t.Fatalf("private network: %v", err)
			}
		}
		t.Run(n.String(), func(t *testing.T) {
			t.Run("no cgroup file is writable", func(t *testing.T) {
				got := runIn(t, r, rootfs, n, `
					# Opening for append writes nothing; it fails on a read-only mount.
					find /sys/fs/cgroup -type f | while read f; do : 2>/dev/null >> "$f" && echo "writable: $f"; done
					for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/devices/devices.allow /sys/fs/cgroup/cgroup.subtree_control /sys/fs/cgroup/*/cgroup.subtree_control; do
						[ -e "$f" ] || continue
						echo "$f" >> /tmp/tried
						if echo $$ > "$f"; then echo "wrote $f"; fi
					done 2>/dev/null
					[ -s /tmp/tried ] || echo "no cgroup file to try"
					true`)
				if got.status != 0 || got.stdout != "" {
					t.Errorf("status %d:\n%s%s", got.status, got.stdout, got.stderr)
				}
			})
			t.Run("own cgroup namespace", func(t *testing.T) {
				got := runIn(t, r, rootfs, n, `readlink /proc/self/ns/cgroup; cat /proc/self/cgroup`)
				lines := strings.Split(strings.TrimSpace(got.stdout), "\n")
				if len(lines) < 2 || lines[0] == hostCgroupNS {
					t.Fatalf("cgroup namespace is the host's (%s):\n%s", hostCgroupNS, got.stdout)
				}
				for _, l := range lines[1:] {
					if !strings.HasSuffix(l, ":/") {
						t.Errorf("/proc/self/cgroup shows a path outside the namespace root: %q", l)
					}
				}
			})
			t.Run("sysfs is fresh and read-only", func(t *testing.T) {
				got := runIn(t, r, rootfs, n, `cat /proc/self/mountinfo`)
				var sysMounts int
				for _, line := range strings.Split(got.stdout, "\n") {
					f := strings.Fields(line)
					if len(f) < 10 {
						continue
					}
					mnt, opts := f[4], f[5]
					sep := 6
					for sep < len(f) && f[sep] != "-" {
						sep++
					}
					fstype := f[sep+1]
					if mnt != "/sys" && !strings.HasPrefix(mnt, "/sys/") {
						continue
					}
					sysMounts++
					// On cgroup v1 runc puts the hierarchies on a tmpfs of the container's
					// own, as docker does; the tmpfs holds no file (see the test above).
					v1Tmpfs := mnt == "/sys/fs/cgroup" && fstype == "tmpfs"
					if !strings.Contains(","+opts+",", ",ro,") && !v1Tmpfs {
						t.Errorf("%s (%s) is mounted read-write", mnt, fstype)
					}
					switch {
					case mnt == "/sys" && fstype != "sysfs":
						t.Errorf("/sys is %s, want sysfs", fstype)
					case mnt == "/sys", mnt == "/sys/fs/cgroup" || strings.HasPrefix(mnt, "/sys/fs/cgroup/"):
					case mnt == "/sys/firmware" || mnt == "/sys/devices/virtual/powercap":
						// masked paths
					default:
						t.Errorf("a host mount shows under /sys: %s (%s)", mnt, fstype)
					}
					if mnt == "/sys" && f[3] != "/" {
						t.Errorf("/sys is a bind of %s, want a fresh sysfs", f[3])
					}
				}
				if sysMounts < 2 {
					t.Errorf("want /sys and /sys/fs/cgroup mounted, found %d mounts:\n%s", sysMounts, got.stdout)
				}
			})
			t.Run("seccomp filter applied", func(t *testing.T) {
				got := runIn(t, r, rootfs, n, `cat /proc/self/status`)
				status := map[string]string{}
				for _, line := range strings.Split(got.stdout, "\n") {
					if k, v, ok := strings.Cut(line, ":"); ok {
						status[k] = strings.TrimSpace(v)
					}
				}
				if status["Seccomp"] != "2" {
					t.Errorf("Seccomp: %q, want 2 (filter)", status["Seccomp"])
				}
				if nf, err := strconv.Atoi(status["Seccomp_filters"]); err != nil || nf < 1 {
					t.Errorf("Seccomp_filters: %q, want >= 1", status["Seccomp_filters"])
				}
			})
			t.Run("host block device cannot be opened", func(t *testing.T) {
				// The attack: leave the container's device cgroup for the host's root
				// one (v1 and v2 paths), then make and read the host's disk.
				got := runIn(t, r, rootfs, n, fmt.Sprintf(`
					for f in /sys/fs/cgroup/devices/cgroup.procs /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/unified/cgroup.procs; do
						echo $$ > "$f"
					done 2>/dev/null
					mknod /tmp/disk b %d %d || exit 0
					head -c 1 /tmp/disk > /tmp/read && echo "read the host's disk"
					true`, major, minor))
				if got.status != 0 || strings.Contains(got.stdout, "read the host's disk") {
					t.Errorf("block device %d:%d: status %d:\n%s%s", major, minor, got.status, got.stdout, got.stderr)
				}
			})
		})
	}
}

// TestPrivateNetwork: the default network reaches out (it has a route and an
// interface besides lo) but never the host's own services, which the host
// network does reach.
func TestPrivateNetwork(t *testing.T) {
	r := newRunner(t)
	rootfs := attackRoot(t)
	if _, err := PrivateHelper(); err != nil {
		t.Fatalf("private network: %v", err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Write([]byte("hello from the host\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// Every address of the host: loopback and the others.
	targets := []string{"127.0.0.1"}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			targets = append(targets, ipn.IP.String())
		}
	}
	connect := "for a in " + strings.Join(targets, " ") + "; do nc -w 3 $a " + strconv.Itoa(port) + " </dev/null && echo \"reached $a\"; done 2>/dev/null; true"

	t.Run("host", func(t *testing.T) {
		before := accepted.Load()
		got := runIn(t, r, rootfs, NetworkHost, connect)
		if !strings.Contains(got.stdout, "hello from the host") || accepted.Load() == before {
			t.Errorf("the host network does not reach the host's listener:\n%s%s", got.stdout, got.stderr)
		}
	})
	t.Run("private", func(t *testing.T) {
		before := accepted.Load()
		got := runIn(t, r, rootfs, NetworkPrivate, connect)
		if strings.Contains(got.stdout, "reached") || accepted.Load() != before {
			t.Errorf("the private network reached the host's listener on one of %v:\n%s%s", targets, got.stdout, got.stderr)
		}
		got = runIn(t, r, rootfs, NetworkPrivate, `ip -o -4 addr show; echo ---; ip route show default; echo ---; cat /etc/resolv.conf`)
		parts := strings.Split(got.stdout, "---\n")
		if len(parts) != 3 {
			t.Fatalf("unexpected output:\n%s%s", got.stdout, got.stderr)
		}
		var ifaces int
		for _, l := range strings.Split(strings.TrimSpace(parts[0]), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[1] != "lo" {
				ifaces++
			}
		}
		if ifaces == 0 {
			t.Errorf("no interface besides lo with an IPv4 address:\n%s", parts[0])
		}
		if !strings.HasPrefix(parts[1], "default via ") {
			t.Errorf("no default route: %q", parts[1])
		}
		if !strings.HasPrefix(parts[2], "nameserver ") || strings.Contains(parts[2], "127.") {
			t.Errorf("resolv.conf %q, want the helper's forwarder", parts[2])
		}
	})
}

// TestReapStale: a container whose runc was killed keeps running; ReapStale finds it
// in the state dir and takes it down.
func TestReapStale(t *testing.T) {
	path := requireRunc(t)
	rootfs := busyboxRoot(t)
	state := filepath.Join(t.TempDir(), StateDirName)
	bundle := t.TempDir()
	spec := mustSpec(t, rootfs, Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, Network: NetworkNone})
	if err := writeConfig(bundle, FitRlimits(spec)); err != nil {
		t.Fatal(err)
	}
	id := newID(t)
	// The detached container keeps runc's stdio: give it none to hold.
	log := filepath.Join(t.TempDir(), "log")
	if err := exec.Command(path, "--root", state, "--log", log, "run", "-d", "--bundle", bundle, id).Run(); err != nil {
		b, _ := os.ReadFile(log)
		t.Fatalf("runc run -d: %v\n%s", err, b)
	}
	ctl := &runc.Runc{Command: path, Root: state}
	t.Cleanup(func() { ctl.Delete(context.Background(), id, &runc.DeleteOpts{Force: true}) })
	c, err := ctl.State(context.Background(), id)
	if err != nil || c.Status != "running" {
		t.Fatalf("container not running: %v %+v", err, c)
	}
	if err := ReapStale(context.Background(), state); err != nil {
		t.Fatal(err)
	}
	if list, err := ctl.List(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("runc still lists %+v (%v)", list, err)
	}
	if alive(c.Pid) {
		t.Errorf("the container's process %d survived", c.Pid)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), file, filepath.Join(file, StateDirName)} {
		if err := ReapStale(context.Background(), dir); err != nil {
			t.Errorf("no state dir at %s: %v", dir, err)
		}
	}
}

// alive reports whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
