package runmount

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/sys/unix"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ParseSSH parses buildx --ssh values, default|ID[=SOCKET|KEY[,KEY...]], into
// the paths of each id. An id without paths, as `default`, forwards the agent
// of $SSH_AUTH_SOCK. Paths must exist: a socket is an agent to forward, any
// other file a private key to serve.
func ParseSSH(values []string) (map[string][]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for _, v := range values {
		id, list, _ := strings.Cut(v, "=")
		if id == "" {
			return nil, fmt.Errorf("--ssh %q: want default|ID[=SOCKET|KEY[,KEY]]", v)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--ssh %q: duplicate ssh id %q", v, id)
		}
		var paths []string
		if list != "" {
			paths = strings.Split(list, ",")
		} else {
			sock := os.Getenv("SSH_AUTH_SOCK")
			if sock == "" {
				return nil, fmt.Errorf("--ssh %s: no paths given and SSH_AUTH_SOCK is not set", v)
			}
			paths = []string{sock}
		}
		for _, p := range paths {
			if p == "" {
				return nil, fmt.Errorf("--ssh %q: empty path", v)
			}
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("--ssh %s: %w", v, err)
			}
		}
		out[id] = paths
	}
	return out, nil
}

// maxKeyFile bounds a private key file read for --ssh.
const maxKeyFile = 1 << 20

// sshSource opens what an --ssh id names: an agent that serves the key
// files, or one that forwards to the agent socket (a single path that is a
// socket). Either is read-only to the RUN: it cannot add, remove or lock keys.
func sshSource(id string, paths []string) (func() (agent.Agent, io.Closer, error), error) {
	if len(paths) == 1 {
		if fi, err := os.Stat(paths[0]); err == nil && fi.Mode()&os.ModeSocket != 0 {
			sock := paths[0]
			return func() (agent.Agent, io.Closer, error) {
				c, err := net.Dial("unix", sock)
				if err != nil {
					return nil, nil, fmt.Errorf("ssh %q: connecting to agent %s: %w", id, sock, err)
				}
				return readOnlyAgent{agent.NewClient(c)}, c, nil
			}, nil
		}
	}
	keyring := agent.NewKeyring()
	for _, p := range paths {
		if err := addKeyFile(keyring, p); err != nil {
			return nil, fmt.Errorf("ssh %q: %w", id, err)
		}
	}
	return func() (agent.Agent, io.Closer, error) { return readOnlyAgent{keyring}, io.NopCloser(nil), nil }, nil
}

// addKeyFile parses the private key in file p into keyring.
func addKeyFile(keyring agent.Agent, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("reading key %s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return fmt.Errorf("reading key %s: %w", p, err)
	}
	if len(data) > maxKeyFile {
		return fmt.Errorf("key %s is larger than %d bytes", p, maxKeyFile)
	}
	key, err := ssh.ParseRawPrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("key %s is protected by a passphrase, which slimbuild cannot ask for: load it into an ssh-agent and use --ssh default", p)
	}
	if err != nil {
		return fmt.Errorf("parsing key %s: %w", p, err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: key, Comment: filepath.Base(p)}); err != nil {
		return fmt.Errorf("adding key %s: %w", p, err)
	}
	return nil
}

// readOnlyAgent refuses every request that changes the agent, as BuildKit's
// forwarded agent does.
type readOnlyAgent struct{ agent.Agent }

var _ agent.ExtendedAgent = readOnlyAgent{}

var errReadOnlyAgent = errors.New("the build's ssh agent is read-only")

func (readOnlyAgent) Add(agent.AddedKey) error   { return errReadOnlyAgent }
func (readOnlyAgent) Remove(ssh.PublicKey) error { return errReadOnlyAgent }
func (readOnlyAgent) RemoveAll() error           { return errReadOnlyAgent }
func (readOnlyAgent) Lock([]byte) error          { return errReadOnlyAgent }
func (readOnlyAgent) Unlock([]byte) error        { return errReadOnlyAgent }

// SignWithFlags lets RSA keys sign with SHA-2, when the agent can.
func (a readOnlyAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	if ext, ok := a.Agent.(agent.ExtendedAgent); ok {
		return ext.SignWithFlags(key, data, flags)
	}
	if flags == 0 {
		return a.Sign(key, data)
	}
	return nil, errors.New("the agent cannot sign with flags")
}

func (readOnlyAgent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

// sshID is the --ssh id an ssh mount names, "default" when none.
func sshID(m *instructions.Mount) string {
	if m.CacheID != "" {
		return m.CacheID
	}
	return "default"
}

// maxAgentConns bounds the connections a RUN may hold open to its agent.
const maxAgentConns = 16

// sshMount serves the agent of m's id on a socket in dir, owned and moded as m
// says (root, 0600 by default, as in BuildKit), and returns its mount at
// target and the function that stops it. An id not given with --ssh is an
// error when m is required, else no mount at all, as in BuildKit.
func (r *Mounter) sshMount(m *instructions.Mount, target, dir string) ([]specs.Mount, func(), error) {
	id := sshID(m)
	paths, ok := r.cfg.SSH[id]
	if !ok {
		if m.Required {
			return nil, nil, fmt.Errorf("no SSH key %q forwarded: build with --ssh %s[=SOCKET|KEY]", id, id)
		}
		return nil, nil, nil
	}
	open, err := sshSource(id, paths)
	if err != nil {
		return nil, nil, err
	}
	sockDir, err := os.MkdirTemp(dir, "ssh-")
	if err != nil {
		return nil, nil, err
	}
	// Bind through the directory's descriptor: the socket's path may be
	// longer than a unix socket address can hold.
	d, err := os.Open(sockDir)
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, nil, err
	}
	defer d.Close()
	l, err := net.Listen("unix", fmt.Sprintf("/proc/self/fd/%d/agent.sock", d.Fd()))
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, nil, fmt.Errorf("ssh %q: serving agent: %w", id, err)
	}
	sock := filepath.Join(sockDir, "agent.sock")
	uid, gid, mode := fileOwner(m, 0o600)
	if err == nil {
		err = os.Lchown(sock, uid, gid)
	}
	if err == nil {
		err = unix.Fchmodat(unix.AT_FDCWD, sock, mode, 0)
	}
	if err != nil {
		l.Close()
		os.RemoveAll(sockDir)
		return nil, nil, fmt.Errorf("ssh %q: %w", id, err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	slots := make(chan struct{}, maxAgentConns)
	wg.Go(func() {
		for {
			slots <- struct{}{} // a free slot before accepting: stop never waits on one
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() { <-slots }()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				ag, closer, err := open()
				if err != nil {
					return
				}
				defer closer.Close()
				agent.ServeAgent(ag, c)
			})
		}
	})
	stop := func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		os.RemoveAll(sockDir)
	}
	return []specs.Mount{{Destination: target, Type: "bind", Source: sock, Options: []string{"rbind"}}}, stop, nil
}

// sshTarget is where an ssh mount's socket is: its target, else BuildKit's
// default for the n-th ssh mount of the RUN.
func sshTarget(m *instructions.Mount, n int, wd string) string {
	if m.Target == "" {
		return fmt.Sprintf("/run/buildkit/ssh_agent.%d", n)
	}
	if !path.IsAbs(m.Target) {
		return path.Join("/", wd, m.Target)
	}
	return m.Target
}
