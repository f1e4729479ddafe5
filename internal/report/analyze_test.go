package report

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const (
	pemCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	pemKey  = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
)

// plantedLayers plants one or more of every category, decoys that must not count, and files
// that later layers delete or overwrite.
func plantedLayers() []testLayer {
	return []testLayer{
		{createdBy: "/bin/sh -c apt-get install gcc", files: []tf{
			dir("bin/", 0o755), dir("usr/", 0o755), dir("usr/bin/", 0o755),
			file("bin/busybox", elf(4000), 0o755),
			symlink("bin/sh", "busybox"),
			symlink("bin/vi", "busybox"), // an applet that is no shell
			file("usr/bin/gcc-12", elf(3000), 0o755),
			symlink("usr/bin/gcc", "gcc-12"),
			symlink("usr/bin/cc", "/nonexistent/gcc"),   // dangling: not a compiler
			file("usr/bin/perl", "not runnable", 0o644), // no exec bit: not a shell
			file("usr/bin/passwd", elf(2000), 0o4755),
			file("usr/bin/ping", elf(1000), 0o755),
			file("usr/include/stdio.h", "int printf(const char *, ...);\n", 0o644),
			file("usr/include/sys/types.h", "typedef int pid_t;\n", 0o644),
			file("var/lib/dpkg/status", "Package: gcc\n", 0o644),
			dir("tmp/", 0o1777), // sticky: not world-writable
			dir("data/", 0o777), // world-writable
			file("var/log/app.log", "x", 0o666),
			file("etc/ssl/private/server.pem", pemCert+pemKey, 0o600),
			file("app/key.txt", "\n"+pemKey, 0o600),
			file("app/.env", "TOKEN=1\n", 0o600),
			file("app/.env.example", "TOKEN=\n", 0o644), // a template, not a secret
			file("usr/share/doc/notes.txt", "see -----BEGIN RSA PRIVATE KEY----- in docs\n", 0o644),
			file("big/blob", strings.Repeat("b", 100000), 0o644),
			file("etc/conf", strings.Repeat("c", 300), 0o644),
			file("opt/old", strings.Repeat("o", 200), 0o644),
			file("opt/lib/old2", strings.Repeat("o", 20), 0o644),
		}},
		{createdBy: "/bin/sh -c rm -rf /big/blob && echo > /etc/conf", files: []tf{
			whiteout("big/.wh.blob"),
			file("etc/conf", strings.Repeat("n", 50), 0o644),
			file("opt/new", "0123456789", 0o644),
			file("opt/.wh..wh..opq", "", 0o644), // after the entry it must not hide
			{name: "usr/bin/ping", mode: 0o755, body: elf(1000),
				pax: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}},
		}},
	}
}

func TestAnalyzePlanted(t *testing.T) {
	img := buildImage(t, "", plantedLayers()...)
	r := analyze(t, img)

	want := []Finding{
		{Category: Compilers, Count: 2, Names: []string{"gcc"}, Paths: []string{"/usr/bin/gcc", "/usr/bin/gcc-12"}},
		{Category: Headers, Count: 2, Names: []string{}, Paths: []string{"/usr/include/stdio.h", "/usr/include/sys/types.h"}},
		{Category: PackageManagers, Count: 1, Names: []string{"dpkg database"}, Paths: []string{"/var/lib/dpkg"}},
		{Category: Shells, Count: 2, Names: []string{"busybox", "sh"}, Paths: []string{"/bin/busybox", "/bin/sh"}},
		{Category: Setuid, Count: 1, Names: []string{"passwd"}, Paths: []string{"/usr/bin/passwd"}},
		{Category: WorldWritable, Count: 2, Names: []string{}, Paths: []string{"/data", "/var/log/app.log"}},
		{Category: Capabilities, Count: 1, Names: []string{"ping"}, Paths: []string{"/usr/bin/ping"}},
		{Category: Root, Count: 1, Names: []string{}, Paths: []string{}, Detail: "USER is not set"},
		{Category: Secrets, Count: 3, Names: []string{".env", "key.txt", "server.pem"},
			Paths: []string{"/app/.env", "/app/key.txt", "/etc/ssl/private/server.pem"}},
	}
	if d := cmp.Diff(want, r.Surface); d != "" {
		t.Errorf("attack surface (-want +got):\n%s", d)
	}
	if r.ELFExecutables != 4 { // busybox, gcc-12, passwd, ping
		t.Errorf("ELF executables = %d, want 4", r.ELFExecutables)
	}
	// Hidden: the deleted blob, the first /etc/conf, the first ping, and /opt's old files.
	if want := int64(100000 + 300 + 1000 + 200 + 20); r.HiddenSize != want {
		t.Errorf("hidden size = %d, want %d", r.HiddenSize, want)
	}
	if r.HiddenCount != 5 {
		t.Errorf("hidden count = %d, want 5", r.HiddenCount)
	}
	if r.Layers[0].HiddenSize != r.HiddenSize || r.Layers[1].HiddenSize != 0 {
		t.Errorf("hidden by layer = %d, %d; want all in layer 0", r.Layers[0].HiddenSize, r.Layers[1].HiddenSize)
	}
	if len(r.LargestHidden) == 0 || r.LargestHidden[0] != (File{Path: "/big/blob", Size: 100000, Layer: 0}) {
		t.Errorf("largest hidden = %v, want /big/blob first", r.LargestHidden)
	}
	for _, f := range r.LargestFiles {
		if strings.HasPrefix(f.Path, "/big") || f.Path == "/opt/old" {
			t.Errorf("hidden file %s listed as present", f.Path)
		}
	}
	for _, d := range r.Directories {
		if d.Path == "/big" {
			t.Errorf("deleted directory content counted: %+v", d)
		}
		if d.Path == "/opt" && (d.Size != 10 || d.Files != 1) {
			t.Errorf("/opt = %+v, want only opt/new (10 bytes) after the opaque marker", d)
		}
		if d.Path == "/etc" && d.Size != 50+int64(len(pemCert+pemKey)) {
			t.Errorf("/etc size = %d, want the new /etc/conf and the pem", d.Size)
		}
	}
	// Every copy of every file is either visible or hidden.
	var added int64
	for _, l := range r.Layers {
		added += l.FilesSize
	}
	if r.FilesSize+r.HiddenSize != added {
		t.Errorf("files %d + hidden %d != added %d", r.FilesSize, r.HiddenSize, added)
	}
	// Layers are matched to the history entries that made them, skipping empty layers.
	if got := r.Layers[1].CreatedBy; got != "/bin/sh -c rm -rf /big/blob && echo > /etc/conf" {
		t.Errorf("layer 1 created by %q", got)
	}
	if r.Layers[1].Whiteouts != 2 {
		t.Errorf("layer 1 whiteouts = %d, want 2", r.Layers[1].Whiteouts)
	}
	// Sizes add up to what the image says.
	m, _ := img.Manifest()
	want2 := m.Config.Size
	for _, l := range m.Layers {
		want2 += l.Size
	}
	raw, _ := img.RawManifest()
	if r.CompressedSize != want2+int64(len(raw)) {
		t.Errorf("compressed = %d, want %d", r.CompressedSize, want2+int64(len(raw)))
	}
	var unc int64
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, _ := l.Uncompressed()
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		unc += n
	}
	if r.UncompressedSize != unc {
		t.Errorf("uncompressed = %d, want %d", r.UncompressedSize, unc)
	}
	if r.Platform != "linux/amd64" {
		t.Errorf("platform = %q", r.Platform)
	}
}

func TestAnalyzeUser(t *testing.T) {
	for _, tc := range []struct {
		user string
		root bool
	}{
		{"", true}, {"0", true}, {"root", true}, {"0:0", true}, {"root:1000", true},
		{"1000", false}, {"65534", false}, {"app", false}, {"1000:0", false},
	} {
		t.Run("user="+tc.user, func(t *testing.T) {
			r := analyze(t, buildImage(t, tc.user))
			if got := r.Finding(Root).Present(); got != tc.root {
				t.Errorf("root = %v, want %v (%q)", got, tc.root, r.Finding(Root).Detail)
			}
		})
	}
}

func TestAnalyzeCleanScratch(t *testing.T) {
	cases := map[string]v1.Image{
		"empty": buildImage(t, "65534"),
		"static binary": buildImage(t, "65534", testLayer{createdBy: "COPY hello /hello", files: []tf{
			file("hello", elf(5000), 0o755),
			dir("tmp/", 0o1777),
		}}),
	}
	for name, img := range cases {
		t.Run(name, func(t *testing.T) {
			r := analyze(t, img)
			for _, f := range r.Surface {
				if f.Present() || len(f.Paths) != 0 || len(f.Names) != 0 {
					t.Errorf("clean image has %s: %+v", f.Category, f)
				}
			}
			if r.HiddenSize != 0 || r.HiddenCount != 0 {
				t.Errorf("hidden = %d in %d", r.HiddenSize, r.HiddenCount)
			}
			if v := (Gate{Forbid: strings.Split(ValidCategories(), ",")}).Check(r); len(v) != 0 {
				t.Errorf("clean image fails the strictest gate: %+v", v)
			}
		})
	}
	r := analyze(t, cases["static binary"])
	if r.ELFExecutables != 1 || r.FileCount != 1 || r.FilesSize != 5000 {
		t.Errorf("static: elf %d, files %d, size %d", r.ELFExecutables, r.FileCount, r.FilesSize)
	}
	if d := cmp.Diff([]DirSize{{Path: "/hello", Size: 5000, Files: 1}}, r.Directories); d != "" {
		t.Errorf("directories (-want +got):\n%s", d)
	}
}

// countingLayer counts how often its uncompressed stream is opened.
type countingLayer struct {
	v1.Layer
	opened *int
}

func (c countingLayer) Uncompressed() (rc io.ReadCloser, err error) {
	*c.opened++
	return c.Layer.Uncompressed()
}

func TestAnalyzeReadsEachLayerOnce(t *testing.T) {
	var opened int
	img := empty.Image
	for _, l := range plantedLayers() {
		var err error
		img, err = mutate.AppendLayers(img, countingLayer{Layer: layerOf(t, l.files), opened: &opened})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatal(err)
	}
	opened = 0
	if _, err := Analyze(img, Options{}); err != nil {
		t.Fatal(err)
	}
	if opened != 2 {
		t.Errorf("uncompressed streams opened %d times for 2 layers", opened)
	}
}

func TestAnalyzeCorruptLayer(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image, layerFromBytes(t, []byte(strings.Repeat("not a tar", 100))))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Analyze(img, Options{})
	if err == nil || !strings.Contains(err.Error(), "reading layer 0") {
		t.Errorf("err = %v, want one naming layer 0", err)
	}
}
