package advise

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/slimbuild/slimbuild/internal/slim/slimtest"
	"github.com/slimbuild/slimbuild/internal/store"
)

// corpusPackages make the fat base of the interpreted cases, as in slim's corpus.
var corpusPackages = append(append([]string(nil), slimtest.CorpusPackages...),
	// coreutils' own libraries: the skeleton stage runs mkdir, chmod and ln in the builder
	"libselinux1", "libpcre2-8-0", "libacl1", "libattr1",
	// the nginx case's server
	"nginx", "nginx-common")

// TestAdviseCorpus runs Advise on examples/hello-c's Dockerfile.naive and on
// the single-stage Dockerfiles of test/slim/, and prints the table: original
// and advised file bytes, reduction, verified; then the share of working
// multistage builds and the median reduction (also written to
// $SLIMBUILD_ADVISE_TABLE when set). It fails when a case does not verify.
func TestAdviseCorpus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc, overlayfs and fanotify")
	}
	bases := os.Getenv("SLIMBUILD_BASES")
	if bases == "" {
		t.Skip("builder base not made: run make test (it runs hack/bases.sh and sets SLIMBUILD_BASES)")
	}
	ctx := context.Background()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := image.Import(ctx, st, filepath.Join(bases, "builder.tar.gz"), "slimbuild/builder:bookworm"); err != nil {
		t.Fatal(err)
	}
	// fatBase imports a fat filesystem of corpusPackages and pkgs as ref.
	fatBase := func(ref string, pkgs ...string) {
		root := slimtest.PackageRoot(t, append(append([]string(nil), corpusPackages...), pkgs...)...)
		if _, err := image.Import(ctx, st, root, ref); err != nil {
			t.Fatal(err)
		}
	}
	fatBase("slimbuild-corpus/base")
	// The Node.js case's own base (node is big: the other cases do not carry
	// it) and its context with node_modules installed by npm.
	fatBase("slimbuild-corpus/node", "nodejs", "libstdc++6", "libgcc-s1")
	// contextOf copies the named files of test/slim/dir to a new context.
	contextOf := func(dir string, files ...string) string {
		c := t.TempDir()
		for _, f := range files {
			slimtest.CopyFile(t, filepath.Join("..", "..", "test", "slim", dir, f), filepath.Join(c, f), 0o644)
		}
		return c
	}
	goContext := contextOf("goapp", "Dockerfile", "words.txt")
	slimtest.CopyFile(t, slimtest.GoBuild(t, filepath.Join("..", "..", "test", "slim", "goapp")), filepath.Join(goContext, "goapp"), 0o755)
	tlsContext := contextOf("tls", "Dockerfile", "main.py")
	pki := slimtest.NewTestPKI(t)
	slimtest.WriteFile(t, tlsContext, "test-ca.crt", pki.CA, 0o644)
	slimtest.WriteFile(t, tlsContext, "server.crt", pki.ServerCert, 0o644)
	slimtest.WriteFile(t, tlsContext, "server.key", pki.ServerKey, 0o600)
	nodeContext := contextOf("node", "Dockerfile", "package.json", "main.js")
	npm := exec.Command("npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--no-package-lock")
	npm.Dir = nodeContext
	withNode := true
	if b, err := npm.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("npm install in %s: %v\n%s", nodeContext, err, b)
		}
		t.Logf("the Node.js case is left out: npm install failed (is the npm registry reachable?): %v\n%s", err, b)
		withNode = false
	}

	slimDir := filepath.Join("..", "..", "test", "slim")
	hello := filepath.Join("..", "..", "examples", "hello-c")
	cases := []struct {
		name, context, dockerfile string
		probes                    []slim.Probe
	}{
		{"hello-c Dockerfile.naive", hello, filepath.Join(hello, "Dockerfile.naive"), nil},
		{"shell script + coreutils", filepath.Join(slimDir, "shell"), "", nil},
		{"python3 stdlib app", filepath.Join(slimDir, "python"), "", nil},
		{"perl script", filepath.Join(slimDir, "perl"), "", nil},
		{"C (gcc in image): NSS", filepath.Join(slimDir, "nss"), "", nil},
		{"C (gcc in image): iconv", filepath.Join(slimDir, "iconv"), "", nil},
		{"busybox httpd (--http-probe)", filepath.Join(slimDir, "httpd"), "", []slim.Probe{{HTTPPort: 8080, HTTPPath: "/index.html"}}},
		{"nginx (--http-probe)", filepath.Join(slimDir, "nginx"), "", []slim.Probe{{HTTPPort: 8081, HTTPPath: "/"}}},
		{"TLS client (system CA store)", tlsContext, "", nil},
		{"Go binary (cgo off, os/user)", goContext, "", nil},
	}
	if withNode {
		cases = append(cases, struct {
			name, context, dockerfile string
			probes                    []slim.Probe
		}{"Node.js app + npm dependency", nodeContext, "", nil})
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-30s %12s %12s %9s %s\n", "case", "original", "advised", "reduction", "verified")
	var reductions []float64
	for _, tc := range cases {
		out := filepath.Join(t.TempDir(), "Dockerfile.advised")
		res, err := Advise(ctx, st, Options{
			Build:   engine.Options{ContextDir: tc.context, Dockerfile: tc.dockerfile, Network: "none", NoPull: true},
			Slim:    slim.BuildOptions{Probes: tc.probes},
			WriteTo: out,
		})
		if err != nil {
			df, _ := os.ReadFile(out)
			t.Errorf("%s: %v\n%s", tc.name, err, df)
			fmt.Fprintf(&table, "%-30s failed: %s\n", tc.name, strings.SplitN(err.Error(), "\n", 2)[0])
			continue
		}
		if len(tc.probes) == 0 && res.ExitCode != 0 {
			// Both images failing alike verifies, but the case is meant to work.
			t.Errorf("%s: the entrypoint exited %d in both images", tc.name, res.ExitCode)
		}
		reductions = append(reductions, res.ReductionPercent())
		fmt.Fprintf(&table, "%-30s %12d %12d %8.1f%% %v\n", tc.name, res.OriginalBytes, res.AdvisedBytes, res.ReductionPercent(), res.Verified)
	}
	sort.Float64s(reductions)
	fmt.Fprintf(&table, "working multistage builds: %d of %d (%.0f%%)\n", len(reductions), len(cases), 100*float64(len(reductions))/float64(len(cases)))
	if len(reductions) > 0 {
		fmt.Fprintf(&table, "median size reduction (file bytes): %.1f%%\n", reductions[len(reductions)/2])
	}
	t.Log("\n" + table.String())
	if p := os.Getenv("SLIMBUILD_ADVISE_TABLE"); p != "" {
		if err := os.WriteFile(p, []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}
