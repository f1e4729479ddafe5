package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

app:x:1000:1001:App:/home/app:/bin/sh
bad:x:notanumber:1:::
`

const testGroup = `root:x:0:
wheel:x:10:root,app
staff:x:50:other, app
app:x:1001:
audio:x:29:daemon
docker:x:999:app
`

func imageRoot(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveUser(t *testing.T) {
	root := imageRoot(t, testPasswd, testGroup)
	tests := []struct {
		user    string
		want    User
		wantErr string // substring
	}{
		{user: "", want: User{}},
		{user: "0", want: User{AddGIDs: []uint32{10}}},
		{user: "root", want: User{AddGIDs: []uint32{10}}},
		{user: "app", want: User{UID: 1000, GID: 1001, AddGIDs: []uint32{10, 50, 999}}},
		{user: "1000", want: User{UID: 1000, GID: 1001, AddGIDs: []uint32{10, 50, 999}}},
		{user: "daemon", want: User{UID: 1, GID: 1, AddGIDs: []uint32{29}}},
		{user: "4242", want: User{UID: 4242, GID: 0}},
		{user: "app:docker", want: User{UID: 1000, GID: 999}},
		{user: "app:7", want: User{UID: 1000, GID: 7}},
		{user: "1000:1000", want: User{UID: 1000, GID: 1000}},
		{user: "4242:staff", want: User{UID: 4242, GID: 50}},
		{user: "nobody", wantErr: `no user "nobody" in /etc/passwd`},
		{user: "app:nogroup", wantErr: `no group "nogroup" in /etc/group`},
		{user: "bad", wantErr: `bad entry for "bad" in /etc/passwd`},
		{user: ":1", wantErr: "malformed"},
		{user: "app:", wantErr: "malformed"},
		{user: "4294967296", wantErr: `no user "4294967296"`}, // does not fit a uid
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := ResolveUser(root, tt.user)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ResolveUser(%q) mismatch (-want +got):\n%s", tt.user, diff)
			}
		})
	}
	if _, err := ResolveUser(root, "nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("unknown user: err = %v, want ErrUnknownUser", err)
	}
}

func TestResolveUserMissingFiles(t *testing.T) {
	root := t.TempDir() // no /etc at all
	tests := []struct {
		user    string
		want    User
		wantErr string
	}{
		{user: "0", want: User{}},
		{user: "1000", want: User{UID: 1000}},
		{user: "1000:1000", want: User{UID: 1000, GID: 1000}},
		{user: "app", wantErr: "/etc/passwd"},
		{user: "1000:staff", wantErr: "/etc/group"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := ResolveUser(root, tt.user)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to name %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveUserSymlinksStayInRoot: the image's files may be symlinks, absolute or with
// "..", and must resolve inside rootfs, never to the host's files.
func TestResolveUserSymlinksStayInRoot(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:0:0:::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		filepath.Join(outside, "passwd"),                 // absolute host path
		"../../../../../../../../" + outside + "/passwd", // climbing out
	} {
		t.Run(target, func(t *testing.T) {
			root := t.TempDir()
			etc := filepath.Join(root, "etc")
			if err := os.MkdirAll(etc, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(etc, "passwd")); err != nil {
				t.Fatal(err)
			}
			if _, err := ResolveUser(root, "evil"); err == nil {
				t.Fatal("resolved a user from a file outside rootfs")
			}
			// The same link resolves inside rootfs when the file exists there.
			inside := filepath.Join(root, strings.TrimPrefix(filepath.Clean("/"+outside), "/"))
			if err := os.MkdirAll(inside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(inside, "passwd"), []byte("good:x:5:6:::\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ResolveUser(root, "good")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(User{UID: 5, GID: 6}, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveUserNotARegularFile: an image's /etc/passwd may be a FIFO (the read
// would wait forever), a character device such as /dev/urandom (it would never
// end) or huge; each is refused at once, and nothing is read past the bound.
func TestResolveUserNotARegularFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string) error
		want string
	}{
		{"fifo", func(_ *testing.T, p string) error { return unix.Mkfifo(p, 0o644) }, "not a regular file"},
		{"urandom", func(t *testing.T, p string) error {
			if os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			return unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 9)))
		}, "not a regular file"},
		{"directory", func(_ *testing.T, p string) error { return os.Mkdir(p, 0o755) }, "not a regular file"},
		{"huge", func(_ *testing.T, p string) error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(maxColonFile + 1) // sparse: no disk used
		}, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := imageRoot(t, "", "")
			if err := tc.make(t, filepath.Join(root, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := ResolveUser(root, "app"); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/etc/passwd") {
					t.Fatalf("err = %v, want %q naming /etc/passwd", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ResolveUser still reading after 10 s")
			}
		})
	}
}

func FuzzResolveUser(f *testing.F) {
	f.Add(testPasswd, testGroup, "app")
	f.Add("a:b:c", "::::", "1:2")
	f.Fuzz(func(t *testing.T, passwd, group, user string) {
		root := t.TempDir()
		etc := filepath.Join(root, "etc")
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(etc, "passwd"), []byte(passwd), 0o644)
		_ = os.WriteFile(filepath.Join(etc, "group"), []byte(group), 0o644)
		_, _ = ResolveUser(root, user) // must not panic
	})
}
