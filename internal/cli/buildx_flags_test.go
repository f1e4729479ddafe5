package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regtest"
	"github.com/slimbuild/slimbuild/internal/store"
)

// slimbuildIn is slimbuild with stdin as the command's standard input.
func slimbuildIn(t *testing.T, root string, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	cmd := NewRoot()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(stdin)
	cmd.SetArgs(append([]string{"--root", root}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// imageParts returns the manifest and config of the image ref in the store at root.
func imageParts(t *testing.T, root, ref string) (*v1.Manifest, *v1.ConfigFile) {
	t.Helper()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !strings.HasPrefix(ref, "sha256:") {
		if ref, err = image.NormalizeName(ref); err != nil {
			t.Fatal(err)
		}
	}
	img, err := st.Image(ref)
	if err != nil {
		t.Fatalf("image %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return m, cf
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildxLabelsAnnotations: --label adds to and overrides the Dockerfile's
// labels in the image config; --annotation (bare or manifest:) lands on the
// image manifest. (No RUN: runs without root.)
func TestBuildxLabelsAnnotations(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\nLABEL from.dockerfile=1 overridden=dockerfile\n"})
	root := t.TempDir()
	out, stderr, err := slimbuild(t, root, "build", "--progress", "quiet",
		"--label", "overridden=cli", "--label", "extra=x=y", "--label", "empty",
		"--annotation", "org.opencontainers.image.title=hello", "--annotation", "manifest:com.example.a=b", dir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	m, cf := imageParts(t, root, last(out))
	wantLabels := map[string]string{"from.dockerfile": "1", "overridden": "cli", "extra": "x=y", "empty": ""}
	if len(cf.Config.Labels) != len(wantLabels) {
		t.Errorf("labels %v, want %v", cf.Config.Labels, wantLabels)
	}
	for k, v := range wantLabels {
		if got, ok := cf.Config.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	wantAnn := map[string]string{"org.opencontainers.image.title": "hello", "com.example.a": "b"}
	if len(m.Annotations) != len(wantAnn) || m.Annotations["org.opencontainers.image.title"] != "hello" || m.Annotations["com.example.a"] != "b" {
		t.Errorf("manifest annotations %v, want %v", m.Annotations, wantAnn)
	}
}

// TestBuildxFlagErrors: every value slimbuild cannot honour is an error that
// names the flag, before anything is built.
func TestBuildxFlagErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\nLABEL a=b\n"})
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"add-host host-gateway", []string{"--add-host", "gw:host-gateway"}, "host-gateway is not supported"},
		{"add-host bad IP", []string{"--add-host", "h:10.0.0.300"}, "invalid IP address"},
		{"add-host no IP", []string{"--add-host", "justahost"}, "needs HOST:IP"},
		{"add-host blank in name", []string{"--add-host", "a b=10.0.0.1"}, "invalid host name"},
		{"ulimit unknown", []string{"--ulimit", "bogus=1"}, "--ulimit"},
		{"ulimit soft above hard", []string{"--ulimit", "nofile=2048:1024"}, "soft limit"},
		{"ulimit not a number", []string{"--ulimit", "nproc=lots"}, "--ulimit"},
		{"shm-size not a size", []string{"--shm-size", "big"}, "--shm-size"},
		{"shm-size zero", []string{"--shm-size", "0"}, "--shm-size"},
		{"annotation on the index", []string{"--annotation", "index:a=b"}, "only manifest annotations"},
		{"annotation on a descriptor", []string{"--annotation", "manifest-descriptor:a=b"}, "only manifest annotations"},
		{"annotation per platform", []string{"--annotation", "manifest[linux/amd64]:a=b"}, "per-platform"},
		{"annotation without value", []string{"--annotation", "a"}, "KEY=VALUE"},
		{"label without key", []string{"--label", "=x"}, "needs a key"},
		{"allow unknown", []string{"--allow", "device"}, `unknown entitlement "device"`},
		{"no-cache-filter empty", []string{"--no-cache-filter", ""}, "needs a stage name"},
		{"load without docker", []string{"--load"}, "--load: no docker daemon"},
		{"stdin twice", []string{"-f", "-", "-"}, "cannot be both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			args := append([]string{"build", "--progress", "quiet"}, tc.args...)
			if args[len(args)-1] != "-" {
				args = append(args, dir)
			}
			_, _, err := slimbuild(t, root, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if tc.name != "stdin twice" {
				if _, err := os.Stat(root); err == nil {
					t.Errorf("the store was made before the flags were checked")
				}
			}
		})
	}
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
	if _, _, err := slimbuild(t, t.TempDir(), "build", "--load", dir); err == nil || !strings.Contains(err.Error(), "only unix://") {
		t.Errorf("--load with a tcp DOCKER_HOST: %v, want a refusal", err)
	}
}

// TestBuildxLoad: --load streams a docker-archive of the result, tagged, to
// POST /images/load on DOCKER_HOST's unix socket; the daemon's error is the
// build's error.
func TestBuildxLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\nLABEL a=b\n"})
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	type load struct {
		path, contentType string
		files             map[string][]byte
	}
	loads := make(chan load, 4)
	fail := false
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := load{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), files: map[string][]byte{}}
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(tr)
			l.files[h.Name] = data
		}
		loads <- l
		if fail {
			io.WriteString(w, `{"errorDetail":{"message":"no space left"},"error":"no space left"}`+"\n")
			return
		}
		io.WriteString(w, `{"stream":"Loaded image: example.com/x:1\n"}`+"\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("DOCKER_HOST", "unix://"+sock)

	root := t.TempDir()
	out, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "--load", "-t", "example.com/x:1", dir)
	if err != nil {
		t.Fatalf("build --load: %v\n%s", err, stderr)
	}
	l := <-loads
	if !strings.HasSuffix(l.path, "/images/load") || l.contentType != "application/x-tar" {
		t.Errorf("request %s (%s), want POST /images/load of application/x-tar", l.path, l.contentType)
	}
	var manifest []struct {
		Config   string
		RepoTags []string
	}
	if err := json.Unmarshal(l.files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json of the archive: %v %s", err, l.files["manifest.json"])
	}
	if len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != "example.com/x:1" {
		t.Errorf("RepoTags %v, want [example.com/x:1]", manifest[0].RepoTags)
	}
	_, cf := imageParts(t, root, last(out))
	var loaded v1.ConfigFile
	if err := json.Unmarshal(l.files[manifest[0].Config], &loaded); err != nil || loaded.Config.Labels["a"] != "b" {
		t.Errorf("loaded config %s (%v), want the built one (labels %v)", l.files[manifest[0].Config], err, cf.Config.Labels)
	}

	fail = true
	if _, _, err := slimbuild(t, root, "build", "--progress", "quiet", "--load", dir); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("build --load with a failing daemon: %v, want its error", err)
	}
	<-loads
}

// TestBuildStdinDockerfile: -f - reads the Dockerfile from standard input, the
// context stays the directory given; a context "-" that is not a tar is a
// Dockerfile with an empty context, as in buildx.
func TestBuildStdinDockerfile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\nLABEL from=file\n"})
	root := t.TempDir()
	out, stderr, err := slimbuildIn(t, root, strings.NewReader("FROM scratch\nLABEL from=stdin\n"), "build", "--progress", "quiet", "-f", "-", dir)
	if err != nil {
		t.Fatalf("build -f -: %v\n%s", err, stderr)
	}
	if _, cf := imageParts(t, root, last(out)); cf.Config.Labels["from"] != "stdin" {
		t.Errorf("-f -: label from=%q, want stdin", cf.Config.Labels["from"])
	}
	out, stderr, err = slimbuildIn(t, root, strings.NewReader("FROM scratch\nLABEL from=stdin-context\n"), "build", "--progress", "quiet", "-")
	if err != nil {
		t.Fatalf("build -: %v\n%s", err, stderr)
	}
	if _, cf := imageParts(t, root, last(out)); cf.Config.Labels["from"] != "stdin-context" {
		t.Errorf("context -: label from=%q, want stdin-context", cf.Config.Labels["from"])
	}
	_, _, err = slimbuildIn(t, root, strings.NewReader("FROM scratch\nFROBNICATE x\n"), "build", "--progress", "quiet", "-f", "-", dir)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile (stdin):2") || strings.Contains(err.Error(), "/tmp/") {
		t.Errorf("a bad Dockerfile on stdin: %v, want an error naming \"Dockerfile (stdin):2\"", err)
	}
	big := strings.NewReader("FROM scratch\n" + strings.Repeat("# x\n", dockerfile.MaxSize/4+1))
	if _, _, err := slimbuildIn(t, root, big, "build", "-f", "-", dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("build -f - of %d bytes: %v, want a size error", big.Size(), err)
	}
	assertNoTemp(t, root)
}

// assertNoTemp fails when the store's tmp/ holds anything after a command.
func assertNoTemp(t *testing.T, root string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range ents {
		t.Errorf("left in the store's tmp/: %s", e.Name())
	}
}

func tarOf(t *testing.T, entries []tar.Header, data map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data[h.Name]))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, data[h.Name])
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// TestBuildStdinTarContext: the context "-" is a tar read from standard input
// and unpacked under the store's tmp/; -f names a file in it. A symlinked
// Dockerfile or a "../" entry cannot reach outside the unpacked context.
func TestBuildStdinTarContext(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to unpack the context and COPY")
	}
	root := t.TempDir()
	ctx := tarOf(t, []tar.Header{
		{Name: "Dockerfile.alt", Typeflag: tar.TypeReg},
		{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "sub/a.txt", Typeflag: tar.TypeReg},
	}, map[string]string{"Dockerfile.alt": "FROM scratch\nCOPY sub/a.txt /a.txt\nLABEL from=tar\n", "sub/a.txt": "from the tar\n"})
	out, stderr, err := slimbuildIn(t, root, ctx, "build", "--progress", "quiet", "-f", "Dockerfile.alt", "-")
	if err != nil {
		t.Fatalf("build - (tar): %v\n%s", err, stderr)
	}
	if _, cf := imageParts(t, root, last(out)); cf.Config.Labels["from"] != "tar" {
		t.Errorf("tar context: label from=%q, want tar", cf.Config.Labels["from"])
	}
	assertNoTemp(t, root)

	// A Dockerfile on the host that a symlink in the tar points at.
	host := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\nLABEL leaked=yes\n"})
	outside := filepath.Join(t.TempDir(), "escaped")
	evil := tarOf(t, []tar.Header{
		{Name: "Dockerfile", Typeflag: tar.TypeSymlink, Linkname: filepath.Join(host, "Dockerfile")},
		{Name: "../../../../../../../.." + outside, Typeflag: tar.TypeReg},
	}, map[string]string{"../../../../../../../.." + outside: "x"})
	if _, _, err := slimbuildIn(t, root, evil, "build", "--progress", "quiet", "-"); err == nil {
		t.Errorf("a tar context whose Dockerfile is a symlink to the host's %s built", host)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("a ../ entry of the tar context was written outside it: %s", outside)
	}
	assertNoTemp(t, root)
}

// TestBuildxRunFlags: --add-host, --ulimit and --shm-size reach every RUN
// (its /etc/hosts, its rlimits, its /dev/shm); --no-cache-filter reruns the
// steps of the stages named and only those.
func TestBuildxRunFlags(t *testing.T) {
	root := bases(t)
	dir := writeFiles(t, map[string]string{"Dockerfile": `FROM busybox AS a
RUN cat /proc/sys/kernel/random/uuid > /stamp-a
FROM busybox AS b
COPY --from=a /stamp-a /stamp-a
RUN cat /etc/hosts > /hosts; ulimit -Sn > /nofile-soft; ulimit -Hn > /nofile-hard; ulimit -Sc > /core; df -k /dev/shm | tail -n 1 > /shm; cat /proc/sys/kernel/random/uuid > /stamp-b
`})
	flags := []string{"build", "--progress", "quiet", "--add-host", "myhost:10.1.2.3", "--add-host", "v6host=[fd00::1]",
		"--ulimit", "nofile=1024:2048", "--ulimit", "core=0", "--shm-size", "128m"}
	show := func(ref string) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, f := range []string{"hosts", "nofile-soft", "nofile-hard", "core", "shm", "stamp-a", "stamp-b"} {
			out, stderr, err := slimbuild(t, root, "run", ref, "cat", "/"+f)
			if err != nil {
				t.Fatalf("run cat /%s: %v\n%s", f, err, stderr)
			}
			got[f] = strings.TrimSpace(out)
		}
		return got
	}
	out, stderr, err := slimbuild(t, root, append(flags, dir)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	first := show(last(out))
	for _, want := range []string{"10.1.2.3\tmyhost", "fd00::1\tv6host", "127.0.0.1\tlocalhost"} {
		if !strings.Contains(first["hosts"], want) {
			t.Errorf("RUN's /etc/hosts lacks %q:\n%s", want, first["hosts"])
		}
	}
	if first["nofile-soft"] != "1024" || first["nofile-hard"] != "2048" || first["core"] != "0" {
		t.Errorf("RUN's limits: nofile %s:%s core %s, want 1024:2048 and 0", first["nofile-soft"], first["nofile-hard"], first["core"])
	}
	if f := strings.Fields(first["shm"]); len(f) < 2 || f[1] != "131072" {
		t.Errorf("RUN's /dev/shm: %q, want 131072 KiB", first["shm"])
	}

	// The same flags again, with the stage b out of the cache.
	out, stderr, err = slimbuild(t, root, append(append(flags, "--no-cache-filter", "b"), dir)...)
	if err != nil {
		t.Fatalf("build --no-cache-filter b: %v\n%s", err, stderr)
	}
	second := show(last(out))
	if second["stamp-a"] != first["stamp-a"] {
		t.Errorf("stage a was rebuilt with --no-cache-filter b")
	}
	if second["stamp-b"] == first["stamp-b"] {
		t.Errorf("stage b came from the cache with --no-cache-filter b")
	}
	// Other hosts make another RUN: not the cached one.
	out, _, err = slimbuild(t, root, "build", "--progress", "quiet", "--add-host", "myhost:10.9.9.9", "--ulimit", "nofile=1024:2048", "--ulimit", "core=0", "--shm-size", "128m", dir)
	if err != nil {
		t.Fatal(err)
	}
	if third := show(last(out)); !strings.Contains(third["hosts"], "10.9.9.9\tmyhost") {
		t.Errorf("a build with another --add-host reused the cached RUN:\n%s", third["hosts"])
	}
}

// TestBuildxAllowNetworkHost: RUN --network=host needs --allow network.host,
// as BuildKit's entitlement; --network host on the command line does not.
func TestBuildxAllowNetworkHost(t *testing.T) {
	root := bases(t)
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --network=host true\n"})
	_, _, err := slimbuild(t, root, "build", "--progress", "quiet", dir)
	if err == nil || !strings.Contains(err.Error(), "--allow network.host") {
		t.Fatalf("RUN --network=host without --allow: %v, want an entitlement error", err)
	}
	if _, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "--allow", "network.host", dir); err != nil {
		t.Fatalf("RUN --network=host with --allow network.host: %v\n%s", err, stderr)
	}
	other := writeFiles(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	if _, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "--network", "host", other); err != nil {
		t.Fatalf("--network host: %v\n%s", err, stderr)
	}
}

// TestBuildxPull: without --pull a FROM image in the store is used as it is;
// with --pull the registry's current image is.
func TestBuildxPull(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	rootA := smallImage(t, "small:a")
	rootB := smallImage(t, "small:b") // another hello.txt: another layer
	if _, stderr, err := slimbuild(t, rootA, "push", "small:a", reg+"/base/x:1"); err != nil {
		t.Fatalf("push a: %v\n%s", err, stderr)
	}
	root := t.TempDir()
	if _, stderr, err := slimbuild(t, root, "pull", reg+"/base/x:1"); err != nil {
		t.Fatalf("pull: %v\n%s", err, stderr)
	}
	if _, stderr, err := slimbuild(t, rootB, "push", "small:b", reg+"/base/x:1"); err != nil {
		t.Fatalf("push b: %v\n%s", err, stderr)
	}
	_, cfA := imageParts(t, rootA, "small:a")
	_, cfB := imageParts(t, rootB, "small:b")
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/x:1\nLABEL k=v\n"})
	for _, tc := range []struct {
		flags []string
		want  *v1.ConfigFile
	}{{nil, cfA}, {[]string{"--pull"}, cfB}} {
		out, stderr, err := slimbuild(t, root, append(append([]string{"build", "--progress", "quiet"}, tc.flags...), dir)...)
		if err != nil {
			t.Fatalf("build %v: %v\n%s", tc.flags, err, stderr)
		}
		_, cf := imageParts(t, root, last(out))
		if len(cf.RootFS.DiffIDs) != 1 || cf.RootFS.DiffIDs[0] != tc.want.RootFS.DiffIDs[0] {
			t.Errorf("build %v: layers %v, want %v", tc.flags, cf.RootFS.DiffIDs, tc.want.RootFS.DiffIDs)
		}
	}
}
