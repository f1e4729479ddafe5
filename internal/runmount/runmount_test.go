package runmount

// Tests of mount resolution that need no root: the build's trees are fakes,
// and files made for a RUN are owned by the user running the tests.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slimbuild/slimbuild/internal/runmount/runmounttest"
	"golang.org/x/crypto/ssh/agent"
)

// fakeTree is a Tree whose answers are set by the test; it counts what is
// asked of it.
type fakeTree struct {
	local    bool
	key      string
	host     string // what Bind returns
	readOnly bool   // what Bind returns
	bindErr  error
	copyErr  error
	copied   int // CopyDir calls
	bound    int // Binds not released yet
}

var _ Tree = (*fakeTree)(nil)

func (t *fakeTree) Local() bool { return t.local }

func (t *fakeTree) Key(p string) (string, error) {
	if t.local {
		return t.key + ":" + p, nil
	}
	return t.key, nil
}

func (t *fakeTree) Bind(p string, writable bool) (string, bool, func(), error) {
	if t.bindErr != nil {
		return "", false, nil, t.bindErr
	}
	t.bound++
	return t.host, t.readOnly, func() { t.bound-- }, nil
}

func (t *fakeTree) CopyDir(p, dir string) error {
	t.copied++
	if t.copyErr != nil {
		return t.copyErr
	}
	return os.WriteFile(filepath.Join(dir, "seeded"), []byte(t.key), 0o644)
}

// fakeSources names trees by from=; "" is the build context.
type fakeSources map[string]*fakeTree

var _ Sources = fakeSources{}

func (s fakeSources) Tree(_ context.Context, from string) (Tree, error) {
	t, ok := s[from]
	if !ok {
		return nil, fmt.Errorf("no source %q", from)
	}
	return t, nil
}

// me is the uid=,gid= options that make files the tests can own without root.
func me() string { return fmt.Sprintf("uid=%d,gid=%d", os.Getuid(), os.Getgid()) }

func newTestMounter(t *testing.T, src fakeSources, secrets map[string]string) *Mounter {
	t.Helper()
	return New(Config{Sources: src, CacheDir: filepath.Join(t.TempDir(), "mounts"), Secrets: secrets})
}

func TestKey(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte("s3cret-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fakeSources{
		"":      {local: true, key: "ctx"},
		"stage": {key: "stage-key"},
		"dir":   {local: true, key: "dirctx"},
	}
	r := newTestMounter(t, src, map[string]string{"tok": secret})
	tests := []struct {
		mount string
		want  any
		err   string
	}{
		{"type=bind,source=src,target=/t", []string{"bind-context", "ctx:src", "src", "/t", "true"}, ""},
		{"type=bind,source=src,target=/t,rw", []string{"bind-context", "ctx:src", "src", "/t", "false"}, ""},
		{"type=bind,from=stage,source=/out,target=/t,ro", []string{"bind", "stage-key", "/out", "/t", "true"}, ""},
		{"type=bind,from=missing,target=/t", nil, `no source "missing"`},
		{"type=cache,target=/c", []any{"cache", "", "/c", false, "", ""}, ""},
		{"type=cache,target=/c,id=x,sharing=locked,uid=1,mode=0700", []any{"cache", "x", "/c", false, "locked", "1:-:700"}, ""},
		{"type=cache,target=/c,from=stage,source=/x", []any{"cache", "", "/c", false, "", "", "from=stage-key\x00source=/x"}, ""},
		{"type=cache,target=/c,from=dir,source=x", []any{"cache", "", "/c", false, "", "", "from=dir:dirctx:x\x00source=/x"}, ""},
		{"type=secret,id=tok", []any{"secret", "tok", "", "", ""}, ""},
		{"type=secret,id=tok,env=TOKEN,mode=0440", []any{"secret", "tok", "", "env=TOKEN", "-:-:440"}, ""},
		{"type=tmpfs,target=/t,size=1m", []any{"tmpfs", "/t", int64(1 << 20), false}, ""},
		{"type=ssh", []any{"ssh", "default", "", false, ""}, ""},
		{"type=tmpfs,target=/t,from=stage", nil, `option "from" is not supported`},
		{"type=cache,target=/c,source=/x", nil, `"source" is not supported without from=`},
	}
	for _, tt := range tests {
		t.Run(tt.mount, func(t *testing.T) {
			got, err := r.Key(context.Background(), parseRunMounts(t, "RUN --mount="+tt.mount+" true")[0])
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("key (-want +got):\n%s", d)
			}
			if strings.Contains(fmt.Sprint(got), "s3cret-value") {
				t.Errorf("the key %q holds the secret's value", got)
			}
		})
	}
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "tok")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge")
	if err := os.WriteFile(huge, make([]byte, maxSecretSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"tok": secret, "huge": huge}
	tests := []struct {
		name, mount, wd string
		dest            string      // "" : no mount
		mode            os.FileMode // of the copy the RUN sees
		env             []string
		err             string
	}{
		{"default target and mode", "type=secret,id=tok," + me(), "/", "/run/secrets/tok", 0o400, nil, ""},
		{"mode", "type=secret,id=tok,mode=0440," + me(), "/", "/run/secrets/tok", 0o440, nil, ""},
		{"relative target", "type=secret,id=tok,target=etc/tok," + me(), "/app", "/app/etc/tok", 0o400, nil, ""},
		{"id from the target", "type=secret,target=/x/tok," + me(), "/", "/x/tok", 0o400, nil, ""},
		{"env only", "type=secret,id=tok,env=TOKEN", "/", "", 0, []string{"TOKEN=s3cret"}, ""},
		{"env and file", "type=secret,id=tok,env=TOKEN,target=/t," + me(), "/", "/t", 0o400, []string{"TOKEN=s3cret"}, ""},
		{"optional, not given", "type=secret,id=absent", "/", "", 0, nil, ""},
		{"required, not given", "type=secret,id=absent,required", "/", "", 0, nil, `secret "absent" is required`},
		{"too large", "type=secret,id=huge," + me(), "/", "", 0, nil, "larger than"},
		{"too large, as env", "type=secret,id=huge,env=X", "/", "", 0, nil, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestMounter(t, fakeSources{}, secrets)
			files := t.TempDir()
			run, err := r.Resolve(context.Background(), parseRunMounts(t, "RUN --mount="+tt.mount+" true"), tt.wd, []string{"PATH=/bin"}, files)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one saying %q", err, tt.err)
				}
				if left, _ := os.ReadDir(files); len(left) > 0 {
					t.Errorf("a failed secret left %d files behind", len(left))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer run.Release()
			if d := cmp.Diff(append([]string{"PATH=/bin"}, tt.env...), run.Env); d != "" {
				t.Errorf("env (-want +got):\n%s", d)
			}
			if tt.dest == "" {
				if len(run.Mounts) != 0 {
					t.Errorf("mounts %v, want none", run.Mounts)
				}
				return
			}
			if len(run.Mounts) != 1 {
				t.Fatalf("mounts %v, want one", run.Mounts)
			}
			m := run.Mounts[0]
			if m.Destination != tt.dest || !slices.Contains(m.Options, "ro") {
				t.Errorf("mount %+v, want a read-only bind at %s", m, tt.dest)
			}
			if filepath.Dir(m.Source) != files {
				t.Errorf("the secret's copy %s is not in the step's files directory", m.Source)
			}
			fi, err := os.Stat(m.Source)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.mode {
				t.Errorf("the copy has mode %v, want %v", fi.Mode().Perm(), tt.mode)
			}
			if data, _ := os.ReadFile(m.Source); string(data) != "s3cret" {
				t.Errorf("the copy holds %q", data)
			}
		})
	}
}

// cacheBase is the directory of the cache of a mount at target with no id,
// owner, mode or seed (see cacheDir).
func cacheBase(r *Mounter, target string) string {
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(r.cfg.CacheDir, hex.EncodeToString(sum[:16]))
}

// resolveOne resolves one mount and returns its run and its mount's source.
func resolveOne(t *testing.T, ctx context.Context, r *Mounter, mount string) (*Run, string, error) {
	t.Helper()
	run, err := r.Resolve(ctx, parseRunMounts(t, "RUN --mount="+mount+" true"), "/", nil, t.TempDir())
	if err != nil {
		return nil, "", err
	}
	if len(run.Mounts) != 1 {
		t.Fatalf("mounts %v, want one", run.Mounts)
	}
	return run, run.Mounts[0].Source, nil
}

func TestCacheSharing(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	t.Run("locked waits for the holder", func(t *testing.T) {
		r := newTestMounter(t, fakeSources{}, nil)
		mount := "type=cache,target=/c,sharing=locked," + me()
		first, dir, err := resolveOne(t, ctx, r, mount)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := resolveOne(t, cancelled, r, mount); !errors.Is(err, context.Canceled) {
			t.Fatalf("a second locked RUN did not wait for the first: error %v", err)
		}
		first.Release()
		second, dir2, err := resolveOne(t, cancelled, r, mount)
		if err != nil {
			t.Fatalf("once released, the cache is still locked: %v", err)
		}
		second.Release()
		if dir != dir2 {
			t.Errorf("the same cache is at %s, then %s", dir, dir2)
		}
	})
	t.Run("private takes a free instance", func(t *testing.T) {
		r := newTestMounter(t, fakeSources{}, nil)
		mount := "type=cache,target=/c,sharing=private," + me()
		first, dir, err := resolveOne(t, ctx, r, mount)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Release()
		second, dir2, err := resolveOne(t, cancelled, r, mount)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Release()
		if dir == dir2 {
			t.Errorf("two private RUNs share %s", dir)
		}
	})
	t.Run("shared shares", func(t *testing.T) {
		r := newTestMounter(t, fakeSources{}, nil)
		mount := "type=cache,target=/c," + me()
		first, dir, err := resolveOne(t, ctx, r, mount)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Release()
		second, dir2, err := resolveOne(t, cancelled, r, mount)
		if err != nil {
			t.Fatalf("a shared cache waited: %v", err)
		}
		defer second.Release()
		if dir != dir2 {
			t.Errorf("a shared cache is at %s and %s", dir, dir2)
		}
	})
}

func TestCacheDirMade(t *testing.T) {
	r := newTestMounter(t, fakeSources{}, nil)
	tests := []struct {
		mount string
		mode  os.FileMode
	}{
		{"type=cache,target=/c," + me(), 0o755},
		{"type=cache,target=/c,mode=0710," + me(), 0o710},
		{"type=cache,target=/c,id=other,mode=0710," + me(), 0o710},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		run, dir, err := resolveOne(t, context.Background(), r, tt.mount)
		if err != nil {
			t.Fatal(err)
		}
		run.Release()
		if seen[dir] {
			t.Errorf("%s: shares its cache %s with another owner, mode or id", tt.mount, dir)
		}
		seen[dir] = true
		if filepath.Dir(dir) != r.cfg.CacheDir {
			t.Errorf("%s: cache at %s, outside the cache directory", tt.mount, dir)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != tt.mode || !fi.IsDir() {
			t.Errorf("%s: cache dir %v (%v), want a directory of mode %v", tt.mount, fi.Mode(), err, tt.mode)
		}
	}
	if fi, err := os.Stat(r.cfg.CacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the cache directory is %v (%v), want 0700", fi.Mode(), err)
	}
	if _, _, err := resolveOne(t, context.Background(), r, "type=cache,target=/"); err == nil {
		t.Errorf("a cache mount on / was accepted")
	}
}

// TestCacheLockNoFollow plants a symlink where a cache's lock file goes: the
// lock must not follow it to create or lock a file elsewhere.
func TestCacheLockNoFollow(t *testing.T) {
	r := newTestMounter(t, fakeSources{}, nil)
	canary := filepath.Join(t.TempDir(), "canary")
	if err := os.MkdirAll(r.cfg.CacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(canary, cacheBase(r, "/c")+".lock"); err != nil {
		t.Fatal(err)
	}
	// No uid=: the lock comes before the directory is made and chowned.
	if run, _, err := resolveOne(t, context.Background(), r, "type=cache,target=/c"); err == nil {
		run.Release()
		t.Errorf("a cache whose lock file is a symlink was mounted")
	}
	if _, err := os.Lstat(canary); err == nil {
		t.Errorf("the lock followed the symlink and made %s", canary)
	}
}

func TestCacheSeed(t *testing.T) {
	stage := &fakeTree{key: "stage-1"}
	other := &fakeTree{key: "stage-2"}
	broken := &fakeTree{key: "broken", copyErr: errors.New("not a directory")}
	r := newTestMounter(t, fakeSources{"stage": stage, "other": other, "broken": broken}, nil)
	ctx := context.Background()
	mount := "type=cache,target=/c,from=stage,source=/data," + me()
	for range 2 {
		run, dir, err := resolveOne(t, ctx, r, mount)
		if err != nil {
			t.Fatal(err)
		}
		run.Release()
		if data, err := os.ReadFile(filepath.Join(dir, "seeded")); err != nil || string(data) != "stage-1" {
			t.Errorf("the cache holds %q (%v), want the seed of stage-1", data, err)
		}
	}
	if stage.copied != 1 {
		t.Errorf("the cache was seeded %d times, want once (when new)", stage.copied)
	}
	run, dir, err := resolveOne(t, ctx, r, "type=cache,target=/c,from=other,source=/data,"+me())
	if err != nil {
		t.Fatal(err)
	}
	run.Release()
	if data, _ := os.ReadFile(filepath.Join(dir, "seeded")); string(data) != "stage-2" || other.copied != 1 {
		t.Errorf("another seed shares a cache: it holds %q", data)
	}

	_, _, err = resolveOne(t, ctx, r, "type=cache,target=/c,from=broken,source=/data,"+me())
	if err == nil || !strings.Contains(err.Error(), "from=broken,source=/data") {
		t.Fatalf("a failed seed: error %v, want one naming from= and source=", err)
	}
	entries, err := os.ReadDir(r.cfg.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) != 2 {
		t.Errorf("the cache directory holds %v: a failed seed left a directory", dirs)
	}
}

// TestResolveReleasesOnError: when a later mount fails, Resolve gives back
// what the earlier ones hold.
func TestResolveReleasesOnError(t *testing.T) {
	ctx := context.Background()
	bound := &fakeTree{key: "stage", host: "/h"}
	r := newTestMounter(t, fakeSources{"stage": bound}, nil)
	cache := "type=cache,target=/c,sharing=locked," + me()
	mounts := parseRunMounts(t, "RUN --mount="+cache+" --mount=type=bind,from=stage,target=/b --mount=type=secret,id=absent,required true")
	if _, err := r.Resolve(ctx, mounts, "/", nil, t.TempDir()); err == nil {
		t.Fatal("a missing required secret was accepted")
	}
	if bound.bound != 0 {
		t.Errorf("%d bind views held after the failed Resolve", bound.bound)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	run, _, err := resolveOne(t, cancelled, r, cache)
	if err != nil {
		t.Fatalf("the cache stayed locked after the failed Resolve: %v", err)
	}
	run.Release()
}

func TestResolveBindAndTmpfs(t *testing.T) {
	file := &fakeTree{local: true, key: "ctx", host: "/ctx/file", readOnly: true}
	layers := &fakeTree{key: "stage", host: "/view/out"}
	r := newTestMounter(t, fakeSources{"": file, "stage": layers}, nil)
	mounts := parseRunMounts(t, "RUN --mount=type=bind,source=file,target=f --mount=type=bind,from=stage,source=/out,target=/o,rw --mount=type=bind,from=stage,target=/r,ro --mount=type=tmpfs,target=/t,size=1k true")
	run, err := r.Resolve(context.Background(), mounts, "/app", nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.Mount{
		{Destination: "/app/f", Type: "bind", Source: "/ctx/file", Options: []string{"rbind", "ro"}},
		{Destination: "/o", Type: "bind", Source: "/view/out", Options: []string{"rbind"}},
		{Destination: "/r", Type: "bind", Source: "/view/out", Options: []string{"rbind", "ro"}},
		{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1024"}},
	}
	if d := cmp.Diff(want, run.Mounts); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}
	if file.bound != 1 || layers.bound != 2 {
		t.Errorf("binds held: %d and %d, want 1 and 2", file.bound, layers.bound)
	}
	run.Release()
	if file.bound != 0 || layers.bound != 0 {
		t.Errorf("after Release, binds held: %d and %d", file.bound, layers.bound)
	}
	// Resolve refuses what Check refuses, even when no key was asked for first.
	_, err = r.Resolve(context.Background(), parseRunMounts(t, "RUN --mount=type=tmpfs,target=/t,from=stage true"), "/", nil, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `option "from" is not supported`) {
		t.Errorf("a tmpfs mount with from=: error %v", err)
	}
}

func TestResolveSSH(t *testing.T) {
	key, pub := runmounttest.WriteKey(t, "")
	r := New(Config{Sources: fakeSources{}, SSH: map[string][]string{"k": {key}}})
	// The step's files directory: its path may be longer than a socket address holds.
	files := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(files, 0o700); err != nil {
		t.Fatal(err)
	}
	mounts := parseRunMounts(t, "RUN --mount=type=ssh,id=k,mode=0640,"+me()+" --mount=type=ssh,id=absent --mount=type=ssh,id=k,target=s.sock,"+me()+" true")
	run, err := r.Resolve(context.Background(), mounts, "/w", []string{"A=1"}, files)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"A=1", "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"}, run.Env); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	var dests []string
	for _, m := range run.Mounts {
		dests = append(dests, m.Destination)
	}
	if d := cmp.Diff([]string{"/run/buildkit/ssh_agent.0", "/w/s.sock"}, dests); d != "" {
		t.Errorf("ssh mounts (-want +got):\n%s", d)
	}
	sock := run.Mounts[0].Source
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("the agent socket is %v (%v), want a socket of mode 0640", fi.Mode(), err)
	}
	c, err := dialUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := agent.NewClient(c).List()
	c.Close()
	if err != nil || len(keys) != 1 || string(keys[0].Blob) != string(pub.Marshal()) {
		t.Errorf("the agent lists %v (%v), want the key file's key", keys, err)
	}
	run.Release()
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("the agent's socket stayed after Release")
	}

	// SSH_AUTH_SOCK set by the Dockerfile wins; a required id not given fails.
	run, err = r.Resolve(context.Background(), mounts[:1], "/", []string{"SSH_AUTH_SOCK=/mine"}, files)
	if err != nil {
		t.Fatal(err)
	}
	run.Release()
	if d := cmp.Diff([]string{"SSH_AUTH_SOCK=/mine"}, run.Env); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	_, err = r.Resolve(context.Background(), parseRunMounts(t, "RUN --mount=type=ssh,id=x,required true"), "/", nil, files)
	if err == nil || !strings.Contains(err.Error(), `no SSH key "x"`) {
		t.Errorf("a required ssh id not given: error %v", err)
	}
}

// dialUnix connects to the socket p through its directory's descriptor: its
// path may be longer than a socket address holds.
func dialUnix(p string) (net.Conn, error) {
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(p)))
}
