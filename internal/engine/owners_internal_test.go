package engine

// The owners that COPY, ADD and WORKDIR give what they write, through the
// fakes' ownerLog: without root, as the rest of the Fake tests.

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ownerPasswd and ownerGroup are the /etc of the stages that resolve names.
const (
	ownerPasswd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nsvc:x:2000:2100::/:/bin/sh\n"
	ownerGroup  = "root:x:0:\napp:x:1000:\nstaff:x:50:svc\n"
)

// tarEntry is one entry of a test archive: a file (body), a directory (name
// ending in "/") or a symlink (link).
type tarEntry struct {
	name, body, link string
	uid, gid         int
}

// tarOf is an uncompressed tar archive of entries, in order.
func tarOf(t *testing.T, entries ...tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Uid: e.uid, Gid: e.gid, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e.link, 0, 0o777
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestFakeOwners builds with the fakes and checks the owners recorded for
// image paths, the image's files, and that nothing was written or read
// outside the build. In the Dockerfiles and links, HOST is a directory on the
// host, outside the context and the store, that holds a passwd file naming
// svc as 4242: an owner from it means the host's file was read.
func TestFakeOwners(t *testing.T) {
	// A stage that does not ship ("build") copies into its snapshot, through
	// the copier; the target copies from it.
	const fromBuild = "FROM scratch\nCOPY --from=build /out /out\n"
	tests := []struct {
		name       string
		tars       map[string][]tarEntry // context archives
		links      map[string]string     // context symlinks: path -> target
		dockerfile string
		want       map[string]string // some of the image's files
		owners     map[string]string // some of the recorded owners, by image path
		unowned    []string          // image paths that must have no owner recorded
		wantErr    string
	}{
		{
			name:       "COPY in a stage that does not ship lands in its snapshot",
			dockerfile: "FROM scratch AS build\nCOPY src /out/\n" + fromBuild,
			want:       map[string]string{"/out/a.txt": "A", "/out/sub/b.txt": "B"},
			owners:     map[string]string{"/out": "0:0", "/out/a.txt": "0:0", "/out/sub": "0:0", "/out/sub/b.txt": "0:0"},
		},
		{
			name:       "COPY --chown with numbers",
			dockerfile: "FROM scratch AS build\nCOPY --chown=1000:1001 src /out/\n" + fromBuild,
			want:       map[string]string{"/out/a.txt": "A", "/out/sub/b.txt": "B"},
			owners:     map[string]string{"/out": "1000:1001", "/out/a.txt": "1000:1001", "/out/sub": "1000:1001", "/out/sub/b.txt": "1000:1001"},
		},
		{
			name:       "COPY --chown with a number alone takes it as the group",
			dockerfile: "FROM scratch AS build\nCOPY --chown=1234 src/a.txt /out/a\n" + fromBuild,
			want:       map[string]string{"/out/a": "A"},
			owners:     map[string]string{"/out/a": "1234:1234"},
		},
		{
			name:       "COPY --chown with names from the stage's /etc/passwd and /etc/group",
			dockerfile: "FROM scratch AS build\nCOPY etc /etc\nCOPY --chown=svc:staff src/a.txt /out/a\nCOPY --chown=app src/a.txt /out/b\nCOPY --chown=svc:1 src/a.txt /out/c\n" + fromBuild,
			want:       map[string]string{"/out/a": "A", "/out/b": "A", "/out/c": "A"},
			owners:     map[string]string{"/etc/passwd": "0:0", "/out/a": "2000:50", "/out/b": "1000:1000", "/out/c": "2000:1"},
		},
		{
			name:       "COPY --chown of a heredoc",
			dockerfile: "# syntax=docker/dockerfile:1\nFROM scratch AS build\nCOPY --chown=1000:1001 <<EOF /out/h\nhi\nEOF\n" + fromBuild,
			want:       map[string]string{"/out/h": "hi\n"},
			owners:     map[string]string{"/out": "1000:1001", "/out/h": "1000:1001"},
		},
		{
			name:       "COPY --chown with an unknown name",
			dockerfile: "FROM scratch AS build\nCOPY etc /etc\nCOPY --chown=nobody src/a.txt /out/a\n" + fromBuild,
			wantErr:    `no user "nobody"`,
		},
		{
			name:       "a /etc/passwd linked to the host's is read inside the root",
			links:      map[string]string{"etc/passwd": "HOST/passwd"},
			dockerfile: "FROM scratch AS build\nCOPY etc /etc\nCOPY decoy/ HOST/\nCOPY --chown=svc src/a.txt /out/a\n" + fromBuild,
			want:       map[string]string{"/out/a": "A"},
			owners:     map[string]string{"/out/a": "777:777"},
		},
		{
			name:       "a /etc/passwd linked to the host's, with nothing there in the root",
			links:      map[string]string{"etc/passwd": "HOST/passwd"},
			dockerfile: "FROM scratch AS build\nCOPY etc /etc\nCOPY --chown=svc src/a.txt /out/a\n" + fromBuild,
			wantErr:    "svc",
		},
		{
			name:       "a /etc/passwd linked up and out of the root",
			links:      map[string]string{"etc/passwd": "../../../../../../../../../../../../HOST/passwd"},
			dockerfile: "FROM scratch AS build\nCOPY etc /etc\nCOPY decoy/ HOST/\nCOPY --chown=svc src/a.txt /out/a\n" + fromBuild,
			want:       map[string]string{"/out/a": "A"},
			owners:     map[string]string{"/out/a": "777:777"},
		},
		{
			name:       "WORKDIR makes its directories owned by USER",
			dockerfile: "FROM scratch\nCOPY etc /etc\nUSER app\nWORKDIR /srv/data\nRUN x\n",
			owners:     map[string]string{"/srv": "1000:1000", "/srv/data": "1000:1000"},
		},
		{
			name:       "WORKDIR with USER name:group",
			dockerfile: "FROM scratch\nCOPY etc /etc\nUSER svc:staff\nWORKDIR /srv\nRUN x\n",
			owners:     map[string]string{"/srv": "2000:50"},
		},
		{
			name:       "WORKDIR with a numeric USER and no /etc/passwd",
			dockerfile: "FROM scratch\nUSER 1234:5678\nWORKDIR /w\nRUN x\n",
			owners:     map[string]string{"/w": "1234:5678"},
		},
		{
			name:       "WORKDIR without USER is root's",
			dockerfile: "FROM scratch\nWORKDIR /w/x\nRUN x\n",
			owners:     map[string]string{"/w": "0:0", "/w/x": "0:0"},
		},
		{
			name:       "WORKDIR leaves an existing directory's owner alone",
			dockerfile: "FROM scratch\nCOPY etc /etc\nUSER app\nWORKDIR /etc/new\nRUN x\n",
			owners:     map[string]string{"/etc/new": "1000:1000"},
			unowned:    []string{"/etc"},
		},
		{
			name:       "WORKDIR with an unknown USER",
			dockerfile: "FROM scratch\nCOPY etc /etc\nUSER ghost\nWORKDIR /w\nRUN x\n",
			wantErr:    `no user "ghost"`,
		},
		{
			name: "ADD of a local tar is merged, with the archive's owners",
			tars: map[string][]tarEntry{"app.tar": {
				{name: "bin/", uid: 7, gid: 8},
				{name: "bin/tool", body: "TOOL", uid: 1234, gid: 4321},
				{name: "replaced", body: "NEW", uid: 5, gid: 6},
			}},
			dockerfile: "FROM scratch\nCOPY src/a.txt /opt/a.txt\nCOPY src/sub/b.txt /opt/replaced\nADD app.tar /opt/\n",
			want:       map[string]string{"/opt/a.txt": "A", "/opt/replaced": "NEW", "/opt/bin/tool": "TOOL"},
			owners:     map[string]string{"/opt/bin": "7:8", "/opt/bin/tool": "1234:4321", "/opt/replaced": "5:6"},
			unowned:    []string{"/opt", "/opt/a.txt"},
		},
		{
			name: "ADD --chown of a local tar owns every entry",
			tars: map[string][]tarEntry{"app.tar": {
				{name: "bin/", uid: 7, gid: 8},
				{name: "bin/tool", body: "TOOL", uid: 1234, gid: 4321},
			}},
			dockerfile: "FROM scratch AS build\nCOPY etc /etc\nADD --chown=app:staff app.tar /out/\n" + fromBuild,
			want:       map[string]string{"/out/bin/tool": "TOOL"},
			owners:     map[string]string{"/out": "1000:50", "/out/bin": "1000:50", "/out/bin/tool": "1000:50"},
		},
		{
			name: "ADD --link --chown of a tar in a stage that does not ship",
			tars: map[string][]tarEntry{"app.tar": {
				{name: "bin/", uid: 7, gid: 8},
				{name: "bin/tool", body: "TOOL", uid: 1234, gid: 4321},
			}},
			dockerfile: "FROM scratch AS build\nADD --link --chown=1000:1001 app.tar /out/\n" + fromBuild,
			want:       map[string]string{"/out/bin/tool": "TOOL"},
			owners:     map[string]string{"/out": "1000:1001", "/out/bin": "1000:1001", "/out/bin/tool": "1000:1001"},
		},
		{
			name: "ADD of a tar whose link points at the host writes inside the root",
			tars: map[string][]tarEntry{"evil.tar": {
				{name: "lnk", link: "HOST"},
				{name: "lnk/pwned", body: "PWNED"},
			}},
			dockerfile: "FROM scratch\nADD evil.tar /x/\n",
			want:       map[string]string{"/x/HOST/pwned": "PWNED"},
			owners:     map[string]string{"/x/lnk": "0:0", "/x/HOST/pwned": "0:0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := t.TempDir()
			for name, content := range map[string]string{"passwd": "svc:x:4242:4242::/:/bin/sh\n", "group": "staff:x:4242:\n"} {
				if err := os.WriteFile(filepath.Join(host, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			subst := strings.NewReplacer("HOST", strings.TrimPrefix(host, "/"))
			abs := strings.NewReplacer("HOST", host)
			files := map[string]string{
				"Dockerfile": abs.Replace(tt.dockerfile),
				"etc/passwd": ownerPasswd, "etc/group": ownerGroup,
				"decoy/passwd": "svc:x:777:777::/:/bin/sh\n",
				"src/a.txt":    "A", "src/sub/b.txt": "B",
			}
			for p, entries := range tt.tars {
				entries = slices.Clone(entries)
				for i := range entries {
					entries[i].link = abs.Replace(entries[i].link)
				}
				files[p] = tarOf(t, entries...)
			}
			for p := range tt.links {
				delete(files, p)
			}
			e := newFakeEnv(t, files)
			for p, target := range tt.links {
				target = subst.Replace(target)
				if !strings.HasPrefix(target, "../") {
					target = "/" + target
				}
				if err := os.Symlink(target, filepath.Join(e.dir, p)); err != nil {
					t.Fatal(err)
				}
			}
			fb, err := e.build(Options{}, nil)
			if left, _ := os.ReadDir(host); len(left) != 2 {
				t.Errorf("the build wrote on the host: %s holds %d entries", host, len(left))
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "Dockerfile:") {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := imageFiles(t, fb.res)
			for p, want := range tt.want {
				p = subst.Replace(p)
				if got[p] != want {
					t.Errorf("image file %s = %q, want %q (files %v)", p, got[p], want, got)
				}
			}
			owners := fb.owners.inImage()
			for p, want := range tt.owners {
				p = subst.Replace(p)
				if owners[p] != want {
					t.Errorf("owner of %s = %q, want %q (owners %v)", p, owners[p], want, owners)
				}
			}
			for _, p := range tt.unowned {
				if o, ok := owners[p]; ok {
					t.Errorf("%s was given owner %s, want none", p, o)
				}
			}
		})
	}
}

// TestOwnerLog checks the fakes' recorder itself: it takes a path inside
// its roots and refuses one outside them or through a symlink, so that
// TestFakeOwners fails if the engine hands it such a path.
func TestOwnerLog(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(root, "dir"), filepath.Join(outside, "d")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nowhere", filepath.Join(root, "dir/dangling")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		ok   bool
	}{
		{"a directory inside", filepath.Join(root, "dir"), true},
		{"a symlink itself, not followed", filepath.Join(root, "dir/dangling"), true},
		{"outside the roots", filepath.Join(outside, "d"), false},
		{"the root itself", root, false},
		{"through a symlink", filepath.Join(root, "link/d"), false},
		{"not clean", root + "/dir/../dir", false},
		{"missing", filepath.Join(root, "nothing"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &ownerLog{roots: []string{root}}
			err := o.Lchown(tt.path, 1, 2)
			if (err == nil) != tt.ok {
				t.Fatalf("Lchown(%s) = %v, want ok %v", tt.path, err, tt.ok)
			}
			if tt.ok && (len(o.set) != 1 || o.set[0] != (owned{tt.path, "1:2"})) {
				t.Errorf("recorded %v", o.set)
			}
		})
	}
}
