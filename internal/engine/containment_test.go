package engine_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/store"
)

// TestRunContained: a RUN step, on the default network and on the host's, has a
// seccomp filter, its own cgroup namespace and no writable cgroup file; and the
// build says in one line which network it used.
func TestRunContained(t *testing.T) {
	for _, n := range []runtime.Network{runtime.NetworkPrivate, runtime.NetworkHost} {
		t.Run(n.String(), func(t *testing.T) {
			st := newStore(t)
			rec := &recorder{}
			res := mustBuild(t, st, map[string]string{"Dockerfile": `FROM busybox
RUN grep -E '^Seccomp(_filters)?:' /proc/self/status > /seccomp; \
    cat /proc/self/cgroup > /cgroup; \
    find /sys/fs/cgroup -type f | while read f; do : 2>/dev/null >> "$f" && echo "$f"; done > /writable; \
    for f in /sys/fs/cgroup/devices/cgroup.procs /sys/fs/cgroup/cgroup.procs; do [ -f "$f" ] && echo $$ 2>/dev/null > "$f" && echo "$f" >> /moved; done; true
`}, engine.Options{Network: n, Progress: rec.progress})
			fs := fsOf(t, res.Image)
			sc := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(fileData(t, fs, "seccomp")), "\n") {
				k, v, _ := strings.Cut(l, ":")
				sc[k] = strings.TrimSpace(v)
			}
			if nf, _ := strconv.Atoi(sc["Seccomp_filters"]); sc["Seccomp"] != "2" || nf < 1 {
				t.Errorf("seccomp status %v, want Seccomp 2 and at least one filter", sc)
			}
			for _, l := range strings.Split(strings.TrimSpace(fileData(t, fs, "cgroup")), "\n") {
				if !strings.HasSuffix(l, ":/") {
					t.Errorf("RUN sees a cgroup path outside its namespace: %q", l)
				}
			}
			if w := fileData(t, fs, "writable"); w != "" {
				t.Errorf("writable cgroup files:\n%s", w)
			}
			if _, ok := fs["moved"]; ok {
				t.Error("RUN moved itself to another cgroup")
			}
			var lines []string
			for _, e := range rec.all() {
				if e.Kind == engine.Info && strings.HasPrefix(e.Text, "network: ") {
					lines = append(lines, e.Text)
				}
			}
			want := "network: " + runtime.Describe(n)
			if len(lines) != 1 || lines[0] != want {
				t.Errorf("network lines %q, want [%q]", lines, want)
			}
		})
	}
}

// TestDefaultNetworkIsPrivate: a RUN on the default network cannot reach a service
// on the host's loopback; with --network host (option or RUN flag) it can.
func TestDefaultNetworkIsPrivate(t *testing.T) {
	if _, err := runtime.PrivateHelper(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			c.Write([]byte("secret\n"))
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	probe := "busybox nc -w 3 127.0.0.1 " + port + " </dev/null > /got 2>&1; echo $? > /status; true"
	for _, tt := range []struct {
		name    string
		opts    engine.Options
		flag    string
		reaches bool
	}{
		{"default", engine.Options{}, "", false},
		{"RUN --network=default", engine.Options{Network: runtime.NetworkHost}, "--network=default ", true},
		{"RUN --network=none", engine.Options{Network: runtime.NetworkHost}, "--network=none ", false},
		{"host option", engine.Options{Network: runtime.NetworkHost}, "", true},
		{"RUN --network=host", engine.Options{Allow: []engine.Entitlement{engine.EntitlementNetworkHost}}, "--network=host ", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t)
			before := accepted.Load()
			res := mustBuild(t, st, map[string]string{"Dockerfile": "FROM busybox\nRUN " + tt.flag + probe + "\n"}, tt.opts)
			fs := fsOf(t, res.Image)
			got := fileData(t, fs, "got")
			reached := accepted.Load() != before || strings.Contains(got, "secret")
			if reached != tt.reaches {
				t.Errorf("reached the host's 127.0.0.1 listener: %v, want %v (nc status %s, output %q)", reached, tt.reaches, strings.TrimSpace(fileData(t, fs, "status")), got)
			}
		})
	}
}

// TestStaleContainerReaped: a container left running by a killed build, recorded in
// a runc state dir under the store's tmp/, is killed and deleted when the store is
// next opened, before its directory goes.
func TestStaleContainerReaped(t *testing.T) {
	st := newStore(t)
	root := st.Root()
	runcPath, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := st.TempDir("build-")
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("cp", "-a", busyboxRoot, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	spec, err := runtime.Spec(rootfs, runtime.Process{Args: []string{"/bin/sleep", "1000"}, Env: []string{"PATH=/bin"}, Network: runtime.NetworkNone})
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Rlimits = []specs.POSIXRlimit{}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, runtime.StateDirName)
	// As a killed build leaves it: runc gone, the container running on.
	if err := exec.Command(runcPath, "--root", state, "--log", filepath.Join(dir, "log"), "run", "-d", "--bundle", bundle, "stale").Run(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("runc run -d: %v\n%s", err, b)
	}
	ctl := &runc.Runc{Command: runcPath, Root: state}
	c, err := ctl.State(context.Background(), "stale")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runtime.ReapStale(context.Background(), state) })
	if !running(c.Pid) {
		t.Fatalf("the stale container is not running: %+v", c)
	}
	st.Close()
	st2, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if running(c.Pid) {
		t.Errorf("the stale container's process %d survived the store's cleanup", c.Pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("stale tmp dir %s not removed: %v", dir, err)
	}
}

// running reports whether pid is a process that has not exited (a zombie has).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
