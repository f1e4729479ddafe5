package engine_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/runmount"
	"github.com/slimbuild/slimbuild/internal/runmount/runmounttest"
)

// agentList builds testdata/agentlist, static, into dir and returns its path:
// run in a RUN, it lists the keys of $SSH_AUTH_SOCK's agent, signs with each
// and tries to add one.
func agentList(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "agentlist"), "./testdata/agentlist")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building agentlist: %v\n%s", err, out)
	}
}

// newKey writes a new ed25519 private key to a file and returns the file and
// the key's fingerprint.
func newKey(t *testing.T, passphrase string) (string, string) {
	p, pub := runmounttest.WriteKey(t, passphrase)
	return p, ssh.FingerprintSHA256(pub)
}

func TestSSHMountKeyFile(t *testing.T) {
	st := newStore(t)
	keyFile, fp := newKey(t, "")
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY agentlist /agentlist
RUN --mount=type=ssh,id=k /agentlist > /out && echo "sock=$SSH_AUTH_SOCK" >> /out && test -S /run/buildkit/ssh_agent.0 && echo socket >> /out
RUN --mount=type=ssh,id=k,target=/tmp/a.sock,uid=65534,mode=0640 stat -c '%u %a' /tmp/a.sock > /stat
RUN --mount=type=ssh,id=other echo "optional=$SSH_AUTH_SOCK" > /opt && (test -e /run/buildkit/ssh_agent.0 || echo absent >> /opt)
`,
	})
	agentList(t, dir)
	ssh, err := runmount.ParseSSH([]string{"k=" + keyFile})
	if err != nil {
		t.Fatal(err)
	}
	res, err := buildIn(t, st, dir, engine.Options{SSH: ssh})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fsOf(t, res.Image)
	want := "key " + fp + "\nsigned\nadd refused\nsock=/run/buildkit/ssh_agent.0\nsocket\n"
	if got := fileData(t, fsys, "out"); got != want {
		t.Errorf("the RUN saw the agent as\n%s\nwant\n%s", got, want)
	}
	if got := fileData(t, fsys, "stat"); got != "65534 640\n" {
		t.Errorf("the socket at target= is %q, want owner 65534 and mode 640", got)
	}
	if got := fileData(t, fsys, "opt"); got != "optional=/run/buildkit/ssh_agent.0\nabsent\n" {
		t.Errorf("an optional ssh mount of an id not given: %q", got)
	}
	for p := range fsys {
		if strings.HasPrefix(p, "run/buildkit") || p == "tmp/a.sock" || strings.Contains(p, "agent.sock") {
			t.Errorf("the ssh mount left %s in the image", p)
		}
	}
}

// TestSSHMountForwardsSocket forwards an agent socket (as --ssh default does
// with $SSH_AUTH_SOCK): the RUN lists its keys but cannot add one.
func TestSSHMountForwardsSocket(t *testing.T) {
	st := newStore(t)
	keyFile, fp := newKey(t, "")
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "ag")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.Close()
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { agent.ServeAgent(keyring, c); c.Close() })
		}
	})
	t.Setenv("SSH_AUTH_SOCK", sock)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY agentlist /agentlist\nRUN --mount=type=ssh /agentlist > /out\n",
	})
	agentList(t, dir)
	sshs, err := runmount.ParseSSH([]string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := buildIn(t, st, dir, engine.Options{SSH: sshs})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fileData(t, fsOf(t, res.Image), "out"), "key "+fp+"\nsigned\nadd refused\n"; got != want {
		t.Errorf("the RUN saw the forwarded agent as\n%s\nwant\n%s", got, want)
	}
	if keys, _ := keyring.List(); len(keys) != 1 {
		t.Errorf("the host's agent holds %d keys after the build, want 1", len(keys))
	}
}

func TestSSHMountErrors(t *testing.T) {
	st := newStore(t)
	locked, _ := newKey(t, "secret")
	for _, tc := range []struct {
		name, dockerfile string
		ssh              []string
		want             string
	}{
		{"required id not given", "FROM busybox\nRUN --mount=type=ssh,id=x,required true\n", nil, `no SSH key "x" forwarded`},
		{"passphrase", "FROM busybox\nRUN --mount=type=ssh true\n", []string{"default=" + locked}, "protected by a passphrase"},
		{"source", "FROM busybox\nRUN --mount=type=ssh,source=/x true\n", nil, "source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sshs, err := runmount.ParseSSH(tc.ssh)
			if err != nil {
				t.Fatal(err)
			}
			err = buildErr(t, st, map[string]string{"Dockerfile": tc.dockerfile}, engine.Options{SSH: sshs})
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}
