package runtime

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeHelper stands in for pasta: a shell script named slimbuild-fake-net (on PATH
// for the test) run as `slimbuild-fake-net PIDFILE`, which is ready when it has
// written its pid to PIDFILE, as pasta is.
func fakeHelper(t *testing.T, script string) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "slimbuild-fake-net"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	saved := netHelpers
	t.Cleanup(func() { netHelpers = saved })
	netHelpers = []netHelper{{name: "slimbuild-fake-net", resolv: "nameserver 192.0.2.1\n",
		prepare: func(cmd *exec.Cmd, _, pidFile string) (func(<-chan struct{}) error, error) {
			cmd.Args = []string{cmd.Args[0], pidFile}
			return pidFileReady(cmd, pidFile), nil
		}}}
}

// runMarked runs script in a private-network container that sees the host
// directory shared at /shared, and returns its output and error.
func runMarked(t *testing.T, shared, script string) (string, error) {
	t.Helper()
	r := newRunner(t)
	var out bytes.Buffer
	_, err := r.RunContainer(context.Background(), Container{
		ID: newID(t), Rootfs: attackRoot(t), Dir: t.TempDir(),
		Process: Process{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"}, Network: NetworkPrivate,
			Mounts: []specs.Mount{{Destination: "/shared", Type: "bind", Source: shared, Options: []string{"rbind"}}}},
		Stdio: Stdio{Stdout: &out, Stderr: &out},
	})
	return out.String(), err
}

// TestProcessWaitsForNetwork: the private network's helper starts while runc
// creates the container, but the process starts only once the helper is ready.
// The fake helper takes a second and leaves a mark on the host just before it
// says it is ready; the process must see the mark as its first act.
func TestProcessWaitsForNetwork(t *testing.T) {
	shared := t.TempDir()
	mark := filepath.Join(shared, "configured")
	fakeHelper(t, `sleep 1; : >"`+mark+`"; echo $$ >"$1"; exec sleep 1000`)
	out, err := runMarked(t, shared, `if [ -e /shared/configured ]; then echo configured; else echo early; fi`)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != "configured" {
		t.Errorf("the process started before its network was ready: %q", out)
	}
}

// TestHelperFailureStopsTheRun: a helper that dies before the namespace is ready
// fails the run with its error, and the process never starts.
func TestHelperFailureStopsTheRun(t *testing.T) {
	shared := t.TempDir()
	fakeHelper(t, `sleep 0.5; echo "no network for you" >&2; exit 3`)
	out, err := runMarked(t, shared, `: >/shared/ran`)
	if err == nil || !strings.Contains(err.Error(), "private network (slimbuild-fake-net)") || !strings.Contains(err.Error(), "no network for you") {
		t.Errorf("err = %v, want the helper's failure\n%s", err, out)
	}
	if _, serr := os.Stat(filepath.Join(shared, "ran")); serr == nil {
		t.Error("the process ran although its network failed")
	}
}
