package cli

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regtest"
)

// smallImage imports a one-file root filesystem as name into a fresh root.
func smallImage(t *testing.T, name string) string {
	t.Helper()
	root := t.TempDir()
	rootfs := t.TempDir()
	if err := os.WriteFile(filepath.Join(rootfs, "hello.txt"), []byte("hello from "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := slimbuild(t, root, "import", rootfs, name); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	return root
}

// TestPushSkopeo: an image pushed by slimbuild reads back in skopeo (another
// implementation of the distribution protocol) with the digest slimbuild printed.
func TestPushSkopeo(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	root := smallImage(t, "small:1")
	out, stderr, err := slimbuild(t, root, "push", "small:1", reg+"/interop/small:1")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	digest := strings.TrimSpace(out)
	if !strings.HasPrefix(digest, "sha256:") || !strings.Contains(stderr, "pushed "+reg+"/interop/small:1@"+digest) {
		t.Fatalf("push printed %q, stderr %q", out, stderr)
	}
	got, err := regtest.SkopeoDigest(reg + "/interop/small:1")
	if err != nil {
		t.Fatal(err)
	}
	if got != digest {
		t.Errorf("skopeo sees %s, slimbuild pushed %s", got, digest)
	}
}

// TestBuildPushOutputs: --push and several --output type=registry at once push the
// same image to every name; the digest printed is what the registry holds.
func TestBuildPushOutputs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to build")
	}
	reg := regtest.Start(t, regtest.Options{})
	root := t.TempDir()
	dir := t.TempDir()
	for name, content := range map[string]string{"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := slimbuild(t, root, "build", "--progress", "plain", "-t", reg+"/multi/a:1", "--push",
		"--output", "type=registry,name="+reg+"/multi/b:1", "--output", "type=registry,name="+reg+"/multi/c:1",
		"--output", "type=oci,dest="+filepath.Join(t.TempDir(), "out.tar"), dir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	digest := last(out)
	for _, repo := range []string{"a", "b", "c"} {
		got, err := regtest.SkopeoDigest(reg + "/multi/" + repo + ":1")
		if err != nil {
			t.Fatal(err)
		}
		if got != digest {
			t.Errorf("%s: registry holds %s, build printed %s", repo, got, digest)
		}
	}
	if !strings.Contains(stderr, "pushing: ") {
		t.Errorf("no push progress on stderr:\n%s", stderr)
	}
}

func TestRegistryFlagErrors(t *testing.T) {
	root := t.TempDir()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"cache-to of another type", []string{"--cache-to", "type=local,dest=/tmp/x"}, `unsupported type "local"`},
		{"cache-to with an unknown key", []string{"--cache-to", "type=registry,ref=localhost:5000/x:c,compression=zstd"}, `unsupported key "compression"`},
		{"cache-to with a bad mode", []string{"--cache-to", "type=registry,ref=localhost:5000/x:c,mode=all"}, `mode "all"`},
		{"cache-to without ref", []string{"--cache-to", "type=registry"}, "missing ref"},
		{"cache-from with mode", []string{"--cache-from", "type=registry,ref=localhost:5000/x:c,mode=max"}, "mode is for --cache-to"},
		{"cache-from of another type", []string{"--cache-from", "type=gha"}, `unsupported type "gha"`},
		{"output registry with an unknown key", []string{"--output", "type=registry,name=localhost:5000/x:1,push=true"}, `unsupported key "push"`},
		{"output registry without name", []string{"--output", "type=registry"}, "missing name"},
		{"push without a tag", []string{"--push"}, "--push needs a name"},
		{"output of an unknown type", []string{"--output", "type=s3,dest=x"}, `unknown type "s3"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := slimbuild(t, root, append(append([]string{"build", "--progress", "quiet"}, tc.args...), dir)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestLoginAuth runs the real registry with htpasswd basic auth: without
// credentials and with wrong ones, push fails with an error that names the
// registry; login with the right ones writes the docker config (0600) and push
// works; logout removes them.
func TestLoginAuth(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{Users: map[string]string{"ci": "s3cret"}})
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	root := smallImage(t, "small:1")
	dest := reg + "/private/small:1"

	_, _, err := slimbuild(t, root, "push", "small:1", dest)
	if !errors.Is(err, image.ErrUnauthorized) || !strings.Contains(err.Error(), reg) || !strings.Contains(err.Error(), "slimbuild login "+reg) {
		t.Fatalf("push without credentials: %v; want an unauthorized error naming %s", err, reg)
	}

	cmd := NewRoot()
	cmd.SetArgs([]string{"--root", root, "login", "-u", "ci", "--password-stdin", reg})
	cmd.SetIn(strings.NewReader("wrong\n"))
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	err = cmd.Execute()
	if !errors.Is(err, image.ErrUnauthorized) || !strings.Contains(err.Error(), reg) {
		t.Fatalf("login with a wrong password: %v; want an unauthorized error naming %s", err, reg)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); !os.IsNotExist(err) {
		t.Errorf("a failed login wrote the config file (%v)", err)
	}

	// Other settings in the config file survive login and logout.
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"other.example:5000":{"auth":"eDp5"}},"detachKeys":"ctrl-x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := slimbuild(t, root, "login", "-u", "ci", "-p", "s3cret", reg); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	fi, err := os.Stat(filepath.Join(cfgDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json has mode %v, want 0600", fi.Mode().Perm())
	}
	cfg := readConfig(t, cfgDir)
	if _, ok := cfg.Auths[reg]; !ok || cfg.DetachKeys != "ctrl-x" || cfg.Auths["other.example:5000"].Auth != "eDp5" {
		t.Errorf("config after login: %+v", cfg)
	}
	if _, stderr, err := slimbuild(t, root, "push", "small:1", dest); err != nil {
		t.Fatalf("push after login: %v\n%s", err, stderr)
	}

	if _, _, err := slimbuild(t, root, "logout", reg); err != nil {
		t.Fatal(err)
	}
	cfg = readConfig(t, cfgDir)
	if _, ok := cfg.Auths[reg]; ok || cfg.DetachKeys != "ctrl-x" {
		t.Errorf("config after logout: %+v", cfg)
	}
	if _, _, err := slimbuild(t, root, "push", "small:1", dest); !errors.Is(err, image.ErrUnauthorized) {
		t.Errorf("push after logout: %v, want unauthorized", err)
	}

	// Wrong credentials in the config file: a clear error naming the registry.
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg+`":{"auth":"Y2k6d3Jvbmc="}}}`), 0o600)
	_, _, err = slimbuild(t, root, "push", "small:1", dest)
	if !errors.Is(err, image.ErrUnauthorized) || !strings.Contains(err.Error(), reg) {
		t.Errorf("push with wrong saved credentials: %v", err)
	}
}

// TestLoginCredentialHelper: a credential helper the docker config names for the
// registry stores the credentials at login, and push reads them from it.
func TestLoginCredentialHelper(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{Users: map[string]string{"ci": "s3cret"}})
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	bin := t.TempDir()
	secrets := filepath.Join(t.TempDir(), "helper-store.json")
	helper := `#!/bin/sh
case "$1" in
store) cat > "` + secrets + `" ;;
get) if [ -f "` + secrets + `" ]; then cat "` + secrets + `"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) rm -f "` + secrets + `" ;;
list) echo "{}" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-slimtest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credHelpers":{"`+reg+`":"slimtest"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	root := smallImage(t, "small:1")
	if _, stderr, err := slimbuild(t, root, "login", "-u", "ci", "-p", "s3cret", reg); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if data, err := os.ReadFile(secrets); err != nil || !strings.Contains(string(data), "s3cret") {
		t.Fatalf("the helper did not receive the credentials: %q, %v", data, err)
	}
	if data, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(data), "auths") {
		t.Errorf("credentials went to the config file although a helper is named: %s", data)
	}
	if _, stderr, err := slimbuild(t, root, "push", "small:1", reg+"/helper/small:1"); err != nil {
		t.Fatalf("push with the helper's credentials: %v\n%s", err, stderr)
	}
	if _, _, err := slimbuild(t, root, "logout", reg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(secrets); !os.IsNotExist(err) {
		t.Errorf("logout left the helper's credentials")
	}
}

type dockerConfig struct {
	Auths map[string]struct {
		Auth string `json:"auth"`
	} `json:"auths"`
	DetachKeys string `json:"detachKeys"`
}

func readConfig(t *testing.T, dir string) dockerConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c dockerConfig
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseCacheSpec(t *testing.T) {
	cases := []struct {
		spec string
		to   bool
		want cacheSpec
	}{
		{"type=registry,ref=localhost:5000/app:cache", true, cacheSpec{Ref: "localhost:5000/app:cache", Mode: "min"}},
		{"type=registry,ref=localhost:5000/app:cache,mode=max", true, cacheSpec{Ref: "localhost:5000/app:cache", Mode: "max"}},
		{"localhost:5000/app:cache", false, cacheSpec{Ref: "localhost:5000/app:cache", Mode: "min"}},
		{`"ref=localhost:5000/app:cache",type=registry`, false, cacheSpec{Ref: "localhost:5000/app:cache", Mode: "min"}},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := parseCacheSpec("--cache", tc.spec, tc.to)
			if err != nil || got != tc.want {
				t.Errorf("parseCacheSpec(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
		})
	}
}

// TestPushCompressesImportedLayers: an import stores its layer as a plain tar;
// push and build --push ship it gzip (or zstd with --compression), and what
// push prints, --iidfile and --metadata-file name the manifest the registry
// holds, not the stored one.
func TestPushCompressesImportedLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to unpack an import")
	}
	reg := regtest.Start(t, regtest.Options{})
	root := smallImage(t, "base:1")
	stored, _, err := slimbuild(t, root, "inspect", "base:1")
	if err != nil {
		t.Fatal(err)
	}
	var insp struct {
		Digest   string
		Manifest struct{ Layers []struct{ MediaType string } }
	}
	if err := json.Unmarshal([]byte(stored), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp.Manifest.Layers) != 1 || insp.Manifest.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar" {
		t.Fatalf("imported layers %+v, want one plain tar", insp.Manifest.Layers)
	}
	for _, tc := range []struct{ compression, mediaType string }{
		{"gzip", "application/vnd.oci.image.layer.v1.tar+gzip"},
		{"zstd", "application/vnd.oci.image.layer.v1.tar+zstd"},
	} {
		ref := reg + "/push/" + tc.compression + ":1"
		out, stderr, err := slimbuild(t, root, "push", "--compression", tc.compression, "base:1", ref)
		if err != nil {
			t.Fatalf("push: %v\n%s", err, stderr)
		}
		got, err := regtest.SkopeoDigest(ref)
		if err != nil {
			t.Fatal(err)
		}
		if last(out) != got || got == insp.Digest {
			t.Errorf("push printed %s, the registry holds %s (stored %s)", last(out), got, insp.Digest)
		}
		raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), `"`+tc.mediaType+`"`) {
			t.Errorf("pushed manifest has no %s layer:\n%s", tc.mediaType, raw)
		}
	}
	if _, _, err := slimbuild(t, root, "push", "--compression", "lzma", "base:1", reg+"/push/x:1"); err == nil {
		t.Error("push --compression lzma succeeded")
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM base:1\nCOPY a.txt /a.txt\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644)
	iid, meta := filepath.Join(t.TempDir(), "iid"), filepath.Join(t.TempDir(), "meta.json")
	out, stderr, err := slimbuild(t, root, "build", "--progress", "plain", "-t", reg+"/push/built:1", "--push",
		"--iidfile", iid, "--metadata-file", meta, dir)
	if err != nil {
		t.Fatalf("build --push: %v\n%s", err, stderr)
	}
	got, err := regtest.SkopeoDigest(reg + "/push/built:1")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(iid); string(b) != got || last(out) != got {
		t.Errorf("--iidfile %q, printed %q; the registry holds %s", b, last(out), got)
	}
	if b, _ := os.ReadFile(meta); !strings.Contains(string(b), got) {
		t.Errorf("--metadata-file does not name the pushed %s:\n%s", got, b)
	}
}
