package main

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type tf struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layerTar(t *testing.T, files ...tf) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if f.typ == tar.TypeReg {
			hdr.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if f.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func paths(fs FS) map[string]string {
	out := map[string]string{}
	for p, e := range fs {
		out[p] = describe(e)
	}
	return out
}

func TestApplyLayer(t *testing.T) {
	lower := []tf{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "./etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "./etc/a", typ: tar.TypeReg, body: "a"},
		{name: "./etc/b", typ: tar.TypeReg, body: "b"},
		{name: "./d/", typ: tar.TypeDir, mode: 0o755},
		{name: "./d/x", typ: tar.TypeReg, body: "x"},
		{name: "./d/sub/", typ: tar.TypeDir, mode: 0o755},
		{name: "./d/sub/y", typ: tar.TypeReg, body: "y"},
		{name: "./s", typ: tar.TypeSymlink, link: "/etc/a", mode: 0o777},
	}
	tests := []struct {
		name  string
		upper []tf
		want  map[string]string // path -> describe(), only for checked paths; "" = absent
	}{
		{
			name:  "whiteout removes a file",
			upper: []tf{{name: "etc/.wh.a", typ: tar.TypeReg}},
			want:  map[string]string{"/etc/a": "", "/etc/b": "file 0644 0:0 size=1 sha256=3e23e8160039"},
		},
		{
			name:  "whiteout of a directory removes its tree",
			upper: []tf{{name: "./.wh.d", typ: tar.TypeReg}},
			want:  map[string]string{"/d": "", "/d/x": "", "/d/sub/y": ""},
		},
		{
			name: "opaque directory hides lower children but keeps its own",
			upper: []tf{
				{name: "d/", typ: tar.TypeDir, mode: 0o700},
				{name: "d/new", typ: tar.TypeReg, body: "n"},
				{name: "d/.wh..wh..opq", typ: tar.TypeReg},
			},
			want: map[string]string{"/d": "dir 0700 0:0", "/d/x": "", "/d/sub": "", "/d/sub/y": "", "/d/new": "file 0644 0:0 size=1 sha256=1b16b1df538b"},
		},
		{
			name:  "hard link carries its target's content",
			upper: []tf{{name: "h", typ: tar.TypeLink, link: "etc/b"}},
			want:  map[string]string{"/h": "file 0644 0:0 size=1 sha256=3e23e8160039"},
		},
		{
			name:  "file replacing a directory drops its children; implicit parents",
			upper: []tf{{name: "d", typ: tar.TypeReg, body: "f"}, {name: "p/q/r", typ: tar.TypeReg, body: "r", mode: 0o4755}},
			want:  map[string]string{"/d/x": "", "/d": "file 0644 0:0 size=1 sha256=252f10c83610", "/p/q": "dir 0755 0:0", "/p/q/r": "file 4755 0:0 size=1 sha256=454349e422f0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := FS{}
			if err := fs.ApplyLayer(layerTar(t, lower...)); err != nil {
				t.Fatal(err)
			}
			if _, ok := fs["/s"]; !ok {
				t.Fatal("symlink missing from lower")
			}
			if err := fs.ApplyLayer(layerTar(t, tt.upper...)); err != nil {
				t.Fatal(err)
			}
			got := paths(fs)
			for p, w := range tt.want {
				if got[p] != w {
					t.Errorf("%s: got %q, want %q", p, got[p], w)
				}
			}
		})
	}
}

func TestDiffAndCompare(t *testing.T) {
	base := FS{
		"/bin":    {Path: "/bin", Type: "dir", Mode: "0755"},
		"/bin/ls": {Path: "/bin/ls", Type: "symlink", Mode: "0777", Link: "/bin/busybox"},
		"/tmp":    {Path: "/tmp", Type: "dir", Mode: "1777"},
	}
	img := FS{
		"/bin":   base["/bin"],
		"/tmp":   {Path: "/tmp", Type: "dir", Mode: "0755"},
		"/hello": {Path: "/hello", Type: "file", Mode: "0644", Size: 2, SHA256: "ab"},
	}
	diff := img.DiffAgainst(base)
	want := []Entry{
		{Path: "/bin/ls", Deleted: true},
		{Path: "/hello", Type: "file", Mode: "0644", Size: 2, SHA256: "ab"},
		{Path: "/tmp", Type: "dir", Mode: "0755"},
	}
	if d := cmp.Diff(want, diff); d != "" {
		t.Fatalf("DiffAgainst (-want +got):\n%s", d)
	}
	if d := CompareEntries(want, diff); len(d) != 0 {
		t.Errorf("identical lists compare different: %v", d)
	}
	changed := append([]Entry(nil), diff[1:]...)
	changed[0].UID = 1000
	d := CompareEntries(want, changed)
	if len(d) != 2 {
		t.Fatalf("want 2 differences (deleted /bin/ls, uid of /hello), got %q", d)
	}
}
