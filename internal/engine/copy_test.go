package engine_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/engine"
)

func TestCopy(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox AS other
RUN echo from-stage > /stage-file

FROM busybox
COPY a.txt /file-to-file
COPY a.txt /into/dir/
COPY tree /tree-contents
COPY *.md /docs/
COPY --chown=nobody a.txt /chown-name
COPY --chown=1000:2000 a.txt /chown-ids
COPY --chown=nobody:root a.txt /chown-name-group
COPY --chmod=0751 a.txt /chmod
COPY linkdir /linkdir
COPY --from=other /stage-file /from-name
COPY --from=0 /stage-file /from-index
COPY --from=busybox:latest /etc/passwd /from-image
ENV NAME=expanded
COPY <<EOF /heredoc.txt
hello $NAME
EOF
COPY <<"EOF" /heredoc-quoted.txt
hello $NAME
EOF
WORKDIR /wd
COPY a.txt relative
`,
		"a.txt":          "A\n",
		"tree/x":         "X\n",
		"tree/sub/y":     "Y\n",
		"one.md":         "1\n",
		"two.md":         "2\n",
		"three.txt":      "3\n",
		"linkdir/target": "T\n",
	})
	if err := os.Chmod(filepath.Join(dir, "tree/x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(dir, "linkdir/link")); err != nil {
		t.Fatal(err)
	}
	res, err := buildIn(t, st, dir, engine.Options{NoPull: true})
	if err != nil {
		t.Fatal(err)
	}
	fs := fsOf(t, res.Image)

	for p, want := range map[string]string{
		"file-to-file":        "A\n",
		"into/dir/a.txt":      "A\n",
		"tree-contents/x":     "X\n",
		"tree-contents/sub/y": "Y\n",
		"docs/one.md":         "1\n",
		"docs/two.md":         "2\n",
		"from-name":           "from-stage\n",
		"from-index":          "from-stage\n",
		"heredoc.txt":         "hello expanded\n",
		"heredoc-quoted.txt":  "hello $NAME\n",
		"wd/relative":         "A\n",
	} {
		if got := fileData(t, fs, p); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if got := fileData(t, fs, "from-image"); !strings.Contains(got, "nobody:x:65534") {
		t.Errorf("/from-image (busybox's /etc/passwd) = %q", got)
	}
	for _, p := range []string{"tree-contents/tree", "docs/three.txt", "tree"} {
		if _, ok := fs[p]; ok {
			t.Errorf("image has /%s", p)
		}
	}
	if e := fs["tree-contents/x"]; e.Mode != 0o700 || e.UID != 0 || e.GID != 0 {
		t.Errorf("/tree-contents/x mode %o owner %d:%d, want 700 0:0 (mode kept, owner reset)", e.Mode, e.UID, e.GID)
	}
	for p, want := range map[string][2]int{
		"chown-name":       {65534, 65534},
		"chown-ids":        {1000, 2000},
		"chown-name-group": {65534, 0},
		"file-to-file":     {0, 0},
	} {
		if e := fs[p]; e.UID != want[0] || e.GID != want[1] {
			t.Errorf("/%s owner %d:%d, want %d:%d", p, e.UID, e.GID, want[0], want[1])
		}
	}
	if e := fs["chmod"]; e.Mode != 0o751 {
		t.Errorf("/chmod mode %o, want 751", e.Mode)
	}
	if e := fs["linkdir/link"]; e.Type != tar.TypeSymlink || e.Link != "target" {
		t.Errorf("/linkdir/link = %+v, want a symlink to target", e)
	}
}

func TestAddExtractsArchives(t *testing.T) {
	st := newStore(t)
	files := map[string]string{
		"Dockerfile":  "FROM busybox\nADD gz.tar.gz /gz/\nADD plain.tar /plain\nADD notatar.txt /notatar.txt\n",
		"notatar.txt": "just text\n",
	}
	dir := writeContext(t, files)
	entries := map[string]string{"top.txt": "top\n", "sub/inner.txt": "inner\n"}
	writeTarball(t, filepath.Join(dir, "plain.tar"), entries, "")
	writeTarball(t, filepath.Join(dir, "gz.tar.gz"), entries, "gzip")
	df := files["Dockerfile"]
	if _, err := exec.LookPath("xz"); err == nil {
		writeTarball(t, filepath.Join(dir, "xz.tar.xz"), entries, "xz")
		df += "ADD xz.tar.xz /xz\n"
	} else {
		t.Log("xz is not installed: ADD of a .tar.xz is not tested")
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := buildIn(t, st, dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := fsOf(t, res.Image)
	for _, d := range []string{"gz", "plain", "xz"} {
		if d == "xz" && !strings.Contains(df, "xz.tar.xz") {
			continue
		}
		if got := fileData(t, fs, d+"/top.txt"); got != "top\n" {
			t.Errorf("/%s/top.txt = %q", d, got)
		}
		if got := fileData(t, fs, d+"/sub/inner.txt"); got != "inner\n" {
			t.Errorf("/%s/sub/inner.txt = %q", d, got)
		}
		if e := fs[d+"/top.txt"]; e.UID != 1234 || e.Mode != 0o640 {
			t.Errorf("/%s/top.txt owner %d mode %o, want the archive's 1234 and 640", d, e.UID, e.Mode)
		}
	}
	if got := fileData(t, fs, "notatar.txt"); got != "just text\n" {
		t.Errorf("ADD of a non-archive: %q", got)
	}
	for _, p := range []string{"gz/gz.tar.gz", "gz.tar.gz", "plain.tar"} {
		if _, ok := fs[p]; ok {
			t.Errorf("the archive itself was copied to /%s", p)
		}
	}
}

// writeTarball writes entries (with owner 1234 and mode 0640) as a tar, compressed with
// "gzip", "xz" (the xz command) or nothing.
func writeTarball(t *testing.T, dest string, entries map[string]string, compression string) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	tw.WriteHeader(&tar.Header{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
	for _, name := range []string{"top.txt", "sub/inner.txt"} {
		data := entries[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(data)), Uid: 1234, Gid: 1234, ModTime: mt}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out []byte
	switch compression {
	case "":
		out = raw.Bytes()
	case "gzip":
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		out = gz.Bytes()
	case "xz":
		cmd := exec.Command("xz", "-c")
		cmd.Stdin = &raw
		var err error
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("xz: %v", err)
		}
	}
	if err := os.WriteFile(dest, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunHeredoc(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
ENV WHO=world
RUN <<EOF
echo "hello $WHO" > /greeting
echo second >> /greeting
EOF
RUN <<EOT sh
echo from-sh > /viash
EOT
RUN <<'SCRIPT'
#!/bin/sh
echo "shebang $0" > /shebang
SCRIPT
`,
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	if got := fileData(t, fs, "greeting"); got != "hello world\nsecond\n" {
		t.Errorf("/greeting = %q", got)
	}
	if got := fileData(t, fs, "viash"); got != "from-sh\n" {
		t.Errorf("/viash = %q", got)
	}
	if got := fileData(t, fs, "shebang"); !strings.HasPrefix(got, "shebang ") {
		t.Errorf("/shebang = %q", got)
	}
	for p := range fs {
		if strings.HasPrefix(p, "dev/pipes") {
			t.Errorf("heredoc script mount point leaked into the image: /%s", p)
		}
	}
}

func TestDockerignore(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /ctx/\n",
		".dockerignore": "*.log\n!keep.log\nsecret/\n",
		"keep.log":      "kept\n",
		"drop.log":      "dropped\n",
		"app.txt":       "app\n",
		"secret/key":    "k\n",
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	for _, p := range []string{"ctx/keep.log", "ctx/app.txt", "ctx/Dockerfile"} {
		if _, ok := fs[p]; !ok {
			t.Errorf("/%s is missing", p)
		}
	}
	for _, p := range []string{"ctx/drop.log", "ctx/secret/key", "ctx/secret"} {
		if _, ok := fs[p]; ok {
			t.Errorf("/%s was copied despite .dockerignore", p)
		}
	}
}

func TestCopyErrors(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		want             []string
	}{
		{name: "missing source", dockerfile: "FROM busybox\nCOPY does-not-exist.txt /x\n", want: []string{"Dockerfile:2:", "does-not-exist.txt"}},
		{name: "missing wildcard", dockerfile: "FROM busybox\nCOPY nothing-*.txt /x/\n", want: []string{"Dockerfile:2:", "nothing-*.txt"}},
		{name: "outside the context", dockerfile: "FROM busybox\nCOPY ../outside.txt /x\n", want: []string{"Dockerfile:2:", "../outside.txt", "outside"}},
		{name: "missing in a stage", dockerfile: "FROM busybox AS a\nFROM busybox\nCOPY --from=a /nope /x\n", want: []string{"Dockerfile:3:", "/nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			parent := t.TempDir()
			if err := os.WriteFile(filepath.Join(parent, "outside.txt"), []byte("secret"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "ctx")
			writeFiles(t, dir, map[string]string{"Dockerfile": tc.dockerfile})
			_, err := buildIn(t, st, dir, engine.Options{NoPull: true})
			if err == nil {
				t.Fatal("build succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "Dockerfile:") {
				t.Errorf("error %q does not start with Dockerfile:LINE:", err)
			}
			assertClean(t, st)
		})
	}
}
