package slim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"
	"github.com/slimbuild/slimbuild/internal/store"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// corpusPackages are the Debian packages whose files, copied from the host,
// make every corpus case's fat filesystem; a case adds its own (Case.pkgs).
var corpusPackages = slimtest.CorpusPackages

// TestCorpus slims fat images (Debian packages plus one app each, from
// test/slim/) without --include, verifies each, and prints the table
// (also written to $SLIMBUILD_CORPUS_TABLE when set). The apps are made at
// test time where they must be: C compiled, the Go binary built with the
// host's go, the TLS case's CA and server certificate generated (the CA joins
// the image's system bundle), the Node.js app's dependency installed by npm.
// Each case's image holds corpusPackages and the packages it names, so a
// case's original size is not inflated by another's runtime. An entrypoint
// case must also exit 0: two images failing alike verify.
func TestCorpus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc, overlayfs and fanotify")
	}
	src := filepath.Join("..", "..", "test", "slim")
	goBinary := slimtest.GoBuild(t, filepath.Join(src, "goapp"))
	nodeApp := t.TempDir()
	withNode := corpusNodeApp(t, filepath.Join(src, "node"), nodeApp)
	// fatRoot makes a fat filesystem: corpusPackages and pkgs, and every app.
	fatRoot := func(pkgs []string) string {
		root := slimtest.PackageRoot(t, append(append([]string(nil), corpusPackages...), pkgs...)...)
		copyIn := func(from, to string, mode os.FileMode) {
			slimtest.CopyFile(t, filepath.Join(src, from), filepath.Join(root, to), mode)
		}
		copyIn("shell/run.sh", "/app/shell/run.sh", 0o755)
		copyIn("shell/app.conf", "/etc/app/app.conf", 0o644)
		copyIn("shell/greeting.txt", "/etc/app/greeting.txt", 0o644)
		copyIn("python/main.py", "/app/python/main.py", 0o644)
		copyIn("perl/main.pl", "/app/perl/main.pl", 0o644)
		copyIn("httpd/index.html", "/srv/www/index.html", 0o644)
		corpusTLS(t, root)
		copyIn("tls/main.py", "/app/tls/main.py", 0o644)
		slimtest.CopyFile(t, goBinary, filepath.Join(root, "app", "goapp", "goapp"), 0o755)
		copyIn("goapp/words.txt", "/app/goapp/words.txt", 0o644)
		copyIn("nginx/nginx.conf", "/etc/nginx/corpus.conf", 0o644)
		copyIn("nginx/index.html", "/srv/nginx/index.html", 0o644)
		if withNode {
			copyTree(t, nodeApp, filepath.Join(root, "app", "node"))
		}
		for _, c := range []string{"nss", "iconv"} {
			b, err := os.ReadFile(filepath.Join(src, c, c+".c"))
			if err != nil {
				t.Fatal(err)
			}
			slimtest.Compile(t, string(b), filepath.Join(root, "app", c, c))
		}
		slimtest.WriteFile(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644)
		slimtest.WriteFile(t, root, "/etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n", 0o644)
		slimtest.WriteFile(t, root, "/etc/hosts", "127.0.0.1 localhost\n10.1.2.3 corpus.example\n", 0o644)
		return root
	}

	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type corpusCase struct {
		name   string
		pkgs   []string // beyond corpusPackages
		cfg    v1.Config
		probes []Probe
	}
	cases := []corpusCase{
		{"shell script + coreutils", nil, v1.Config{Entrypoint: []string{"/app/shell/run.sh"}}, nil},
		{"python3 stdlib app", nil, v1.Config{Entrypoint: []string{"python3", "/app/python/main.py"}}, nil},
		{"perl script", nil, v1.Config{Entrypoint: []string{"perl", "/app/perl/main.pl"}}, nil},
		{"C: users and hosts via NSS", nil, v1.Config{Entrypoint: []string{"/app/nss/nss"}}, nil},
		{"C: iconv", nil, v1.Config{Entrypoint: []string{"/app/iconv/iconv"}}, nil},
		{"busybox httpd (--http-probe)", nil, v1.Config{Entrypoint: []string{"busybox", "httpd", "-f", "-p", "8080", "-h", "/srv/www"}},
			[]Probe{{HTTPPort: 8080, HTTPPath: "/index.html"}}},
		{"TLS client (system CA store)", nil, v1.Config{Entrypoint: []string{"python3", "/app/tls/main.py"}}, nil},
		{"Go binary (cgo off, os/user)", nil, v1.Config{Entrypoint: []string{"/app/goapp/goapp"}}, nil},
		{"nginx (--http-probe)", []string{"nginx", "nginx-common", "libpcre2-8-0"},
			v1.Config{Entrypoint: []string{"/usr/sbin/nginx", "-c", "/etc/nginx/corpus.conf", "-e", "stderr"}},
			[]Probe{{HTTPPort: 8081, HTTPPath: "/"}}},
	}
	if withNode {
		cases = append(cases, corpusCase{"Node.js app + npm dependency", []string{"nodejs", "libstdc++6", "libgcc-s1"},
			v1.Config{Entrypoint: []string{"node", "/app/node/main.js"}}, nil})
	}
	bases := map[string]v1.Image{}
	var table strings.Builder
	fmt.Fprintf(&table, "%-32s %12s %12s %9s %7s %s\n", "case", "original", "slim", "reduction", "files", "verified")
	var reductions []float64
	for _, tc := range cases {
		key := strings.Join(tc.pkgs, " ")
		base, ok := bases[key]
		if !ok {
			base = storeImage(t, st, fatRoot(tc.pkgs), v1.Config{Cmd: []string{"/bin/true"}})
			bases[key] = base
		}
		cf, err := base.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config = tc.cfg
		layers, _ := base.Layers()
		info := layerInfo(t, layers[0])
		_, img, err := writeImage(st, cf, info, "corpus "+tc.name)
		if err != nil {
			t.Fatal(err)
		}
		_, _, rep, err := Build(context.Background(), st, img, BuildOptions{Probes: tc.probes})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			fmt.Fprintf(&table, "%-32s failed\n", tc.name)
			continue
		}
		if len(tc.probes) == 0 && rep.ExitCode != 0 {
			// Both images failing alike verifies, but the case is meant to work.
			t.Errorf("%s: the entrypoint exited %d in both images", tc.name, rep.ExitCode)
		}
		reductions = append(reductions, rep.ReductionPercent())
		fmt.Fprintf(&table, "%-32s %12d %12d %8.1f%% %7d %v\n", tc.name, rep.BytesBefore, rep.BytesAfter, rep.ReductionPercent(), rep.FilesAfter, rep.Verified)
	}
	sort.Float64s(reductions)
	if len(reductions) > 0 {
		fmt.Fprintf(&table, "median reduction %.1f%% over %d verified cases of %d\n", reductions[len(reductions)/2], len(reductions), len(cases))
	}
	t.Log("\n" + table.String())
	if p := os.Getenv("SLIMBUILD_CORPUS_TABLE"); p != "" {
		if err := os.WriteFile(p, []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// layerInfo describes a stored layer for writeImage.
func layerInfo(t *testing.T, l v1.Layer) store.LayerInfo {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	diff, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return store.LayerInfo{Digest: d, DiffID: diff, Size: size, MediaType: mt}
}
