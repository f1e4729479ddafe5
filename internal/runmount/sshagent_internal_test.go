package runmount

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slimbuild/slimbuild/internal/runmount/runmounttest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestParseSSH(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "/run/agent.sock-not-checked")
	tests := []struct {
		name   string
		values []string
		want   map[string][]string
		err    string
	}{
		{"none", nil, nil, ""},
		{"key", []string{"k=" + key}, map[string][]string{"k": {key}}, ""},
		{"two keys", []string{"k=" + key + "," + key}, map[string][]string{"k": {key, key}}, ""},
		{"missing file", []string{"k=" + filepath.Join(dir, "nope")}, nil, "no such file"},
		{"duplicate", []string{"k=" + key, "k=" + key}, nil, "duplicate ssh id"},
		{"empty id", []string{"=" + key}, nil, "want default|ID"},
		{"empty path", []string{"k=" + key + ","}, nil, "empty path"},
		{"default, agent gone", []string{"default"}, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSSH(tt.values)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--ssh") {
					t.Fatalf("error %v, want one naming --ssh and %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := ParseSSH([]string{"default"}); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("--ssh default without SSH_AUTH_SOCK: error %v", err)
	}
}

// TestSSHSourceKeys: key files make a read-only agent; a protected key or a
// file that is no key is refused with the file's name.
func TestSSHSourceKeys(t *testing.T) {
	p, pub := runmounttest.WriteKey(t, "")
	open, err := sshSource("k", []string{p})
	if err != nil {
		t.Fatal(err)
	}
	ag, closer, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	keys, err := ag.List()
	if err != nil || len(keys) != 1 || ssh.FingerprintSHA256(keys[0]) != ssh.FingerprintSHA256(pub) {
		t.Fatalf("agent lists %v (%v), want the key file's key", keys, err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if err := ag.Add(agent.AddedKey{PrivateKey: other}); err == nil {
		t.Errorf("the agent accepted a new key")
	}
	if err := ag.RemoveAll(); err == nil {
		t.Errorf("the agent let its keys be removed")
	}
	if err := ag.Lock([]byte("x")); err == nil {
		t.Errorf("the agent let itself be locked")
	}

	locked, _ := runmounttest.WriteKey(t, "pw")
	if _, err := sshSource("k", []string{locked}); err == nil || !strings.Contains(err.Error(), "passphrase") || !strings.Contains(err.Error(), locked) {
		t.Errorf("protected key: error %v, want one naming the file and the passphrase", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	if _, err := sshSource("k", []string{junk}); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("not a key: error %v, want one naming the file", err)
	}
	huge := filepath.Join(t.TempDir(), "huge")
	os.WriteFile(huge, make([]byte, maxKeyFile+1), 0o600)
	if _, err := sshSource("k", []string{huge}); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized key file: error %v", err)
	}
}
