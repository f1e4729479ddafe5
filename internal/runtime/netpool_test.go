package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// countingHelper installs a fake network helper that notes each start in a file
// and returns how many starts there were so far.
func countingHelper(t *testing.T) func() int {
	t.Helper()
	log := filepath.Join(t.TempDir(), "starts")
	fakeHelper(t, `echo start >>"`+log+`"; echo $$ >"$1"; exec sleep 1000`)
	return func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "start")
	}
}

func gone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", path, err)
	}
}

// TestNetPool: a private network given back is handed out again, but never to
// two holders at once; one given back for no reuse, one whose helper died, one of
// another kind and one given back after Close are closed instead.
func TestNetPool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	starts := countingHelper(t)
	p := &NetPool{Dir: t.TempDir()}
	defer p.Close()
	get := func(n Network) *NetNS {
		t.Helper()
		ns, err := p.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.Ready(); err != nil {
			t.Fatal(err)
		}
		return ns
	}

	a := get(NetworkPrivate)
	b := get(NetworkPrivate) // a is held: b is its own
	if a == b || a.Path == b.Path || starts() != 2 {
		t.Fatalf("two holders share a network (%d helper starts)", starts())
	}
	bPath := b.Path
	p.Put(a, true)
	p.Put(b, false)
	gone(t, bPath)
	if c := get(NetworkPrivate); c != a || starts() != 2 {
		t.Fatalf("the network given back was not reused (%d helper starts)", starts())
	}

	// A helper that died while its network was idle: that network is closed, and a
	// new one is started.
	p.Put(a, true)
	aPath := a.Path
	a.cmd.Process.Kill()
	<-a.done
	if d := get(NetworkPrivate); d == a || starts() != 3 {
		t.Fatalf("a network whose helper died was handed out (%d helper starts)", starts())
	} else {
		gone(t, aPath)
		p.Put(d, true)
	}

	// The other kinds are never pooled.
	none := get(NetworkNone)
	nonePath := none.Path
	p.Put(none, true)
	gone(t, nonePath)
	if n := get(NetworkNone); n == none {
		t.Fatal("a none network was reused")
	} else {
		p.Put(n, true)
	}

	// Close closes the idle ones, and what comes back afterwards.
	held := get(NetworkPrivate)
	heldPath := held.Path
	idle, _ := p.Get(NetworkPrivate)
	idlePath := idle.Path
	p.Put(idle, true)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	gone(t, idlePath)
	<-idle.done // its helper is killed
	p.Put(held, true)
	gone(t, heldPath)
	if _, err := p.Get(NetworkPrivate); err == nil {
		t.Fatal("Get on a closed pool")
	}
}

// TestRunContainerReusesNetworks: containers run one after another with a pool
// share one helper, except that a privileged container's network is not given
// back (it could have changed the namespace).
func TestRunContainerReusesNetworks(t *testing.T) {
	r := newRunner(t)
	starts := countingHelper(t)
	r.Nets = &NetPool{Dir: t.TempDir()}
	defer r.Nets.Close()
	rootfs := attackRoot(t)
	for i, privileged := range []bool{false, false, true, false} {
		var out bytes.Buffer
		status, err := r.RunContainer(context.Background(), Container{
			ID: newID(t), Rootfs: rootfs, Dir: t.TempDir(),
			Process: Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}, Privileged: privileged},
			Stdio:   Stdio{Stdout: &out, Stderr: &out},
		})
		if err != nil || status != 0 {
			t.Fatalf("run %d: %d %v\n%s", i, status, err, out.String())
		}
	}
	// The first network serves the first three runs; the third is privileged, so
	// the fourth gets a new one.
	if n := starts(); n != 2 {
		t.Errorf("%d helper starts for 4 runs, want 2", n)
	}
}
