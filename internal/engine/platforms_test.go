package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	rt "github.com/slimbuild/slimbuild/internal/runtime"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// foreign is an architecture the test host does not run natively.
func foreign() v1.Platform {
	if runtime.GOARCH == "arm64" {
		return amd64
	}
	return arm64
}

// TestPlatformKeysSeparate: the same steps for two target platforms never
// share a cached result, even FROM scratch where the base is the same; the
// config says each platform.
func TestPlatformKeysSeparate(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "same\n"})
	host := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	r1, err := buildIn(t, st, dir, engine.Options{Platform: host})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := buildIn(t, st, dir, engine.Options{Platform: foreign()})
	if err != nil {
		t.Fatal(err)
	}
	if r2.CachedSteps != 0 {
		t.Errorf("the %s build took %d steps from the %s build's cache", platformName(foreign()), r2.CachedSteps, runtime.GOARCH)
	}
	r3, err := buildIn(t, st, dir, engine.Options{Platform: foreign()})
	if err != nil {
		t.Fatal(err)
	}
	if r3.CachedSteps != 1 {
		t.Errorf("a second %s build took %d steps from the cache, want 1", platformName(foreign()), r3.CachedSteps)
	}
	for _, c := range []struct {
		res  *engine.Result
		want v1.Platform
	}{{r1, host}, {r2, foreign()}} {
		cf := configOf(t, c.res.Image)
		if cf.OS != c.want.OS || cf.Architecture != c.want.Architecture {
			t.Errorf("config says %s/%s, want %s", cf.OS, cf.Architecture, platformName(c.want))
		}
	}
}

func platformName(p v1.Platform) string { return p.OS + "/" + p.Architecture }

// TestForeignRunNeedsEmulator: with no binfmt_misc handler, a RUN for another
// architecture fails with an error that names the platform and the setup.
func TestForeignRunNeedsEmulator(t *testing.T) {
	st := newStore(t)
	// busybox:latest for the foreign platform: the host's busybox, relabelled (the
	// RUN never starts, so what it holds does not matter).
	if _, err := image.ImportFor(context.Background(), st, busyboxRoot, busyboxName, foreign()); err != nil {
		t.Fatal(err)
	}
	opts := engine.Options{Platform: foreign()}
	for name, dir := range map[string]string{"no binfmt_misc": t.TempDir(), "handler without F": fakeBinfmt(t, "OP")} {
		t.Run(name, func(t *testing.T) {
			engine.SetBinfmtDir(&opts, dir)
			err := buildErr(t, st, map[string]string{"Dockerfile": "FROM busybox:latest\nRUN true\n"}, opts)
			if !errors.Is(err, rt.ErrNoEmulator) {
				t.Fatalf("error %v, want ErrNoEmulator", err)
			}
			for _, want := range []string{"Dockerfile:2", platformName(foreign()), "qemu-user-static"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// fakeBinfmt is a binfmt_misc directory with one handler for foreign() with flags.
func fakeBinfmt(t *testing.T, flags string) string {
	dir := t.TempDir()
	magic := map[string]string{
		"arm64": "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
		"amd64": "magic 7f454c4602010100000000000000000002003e00\nmask fffffffffffefe00fffffffffffffffffeffffff\n",
	}[foreign().Architecture]
	data := "enabled\ninterpreter /usr/bin/qemu\nflags: " + flags + "\noffset 0\n" + magic
	if err := os.WriteFile(filepath.Join(dir, "qemu-x"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// multiBases imports the bases of the multi-platform tests: the builder, and
// busybox for amd64 and arm64 ($SLIMBUILD_BASES, made by hack/bases.sh).
func multiBases(t *testing.T) string {
	bases := os.Getenv("SLIMBUILD_BASES")
	if bases == "" {
		t.Skip("bases not made: run make test (hack/bases.sh)")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the multi-platform tests cross-compile from amd64")
	}
	if err := rt.CheckEmulation(rt.BinfmtDir, "arm64"); err != nil {
		t.Fatalf("the multi-platform tests need qemu for arm64: %v", err)
	}
	return bases
}

// TestRunUnderQemu: a RUN in an arm64 busybox stage runs arm64 code.
func TestRunUnderQemu(t *testing.T) {
	bases := multiBases(t)
	st := newStore(t)
	if _, err := image.ImportFor(context.Background(), st, filepath.Join(bases, "busybox-arm64.tar"), busyboxName, arm64); err != nil {
		t.Fatal(err)
	}
	res := mustBuild(t, st, map[string]string{"Dockerfile": "FROM busybox:latest\nARG TARGETPLATFORM\nRUN uname -m > /arch && echo $TARGETPLATFORM > /target\n"},
		engine.Options{Platform: arm64, Network: "none"})
	fs := fsOf(t, res.Image)
	if got := fileData(t, fs, "arch"); got != "aarch64\n" {
		t.Errorf("uname -m in the arm64 stage: %q, want aarch64", got)
	}
	if got := fileData(t, fs, "target"); got != "linux/arm64\n" {
		t.Errorf("TARGETPLATFORM in the arm64 stage: %q", got)
	}
}

// crossDebs are Debian's gcc for aarch64 and its arm64 libraries (amd64 and all
// packages, installed into the builder by the test's Dockerfile).
var crossDebs = []string{
	"binutils-aarch64-linux-gnu", "cpp-12-aarch64-linux-gnu", "gcc-12-aarch64-linux-gnu", "gcc-12-aarch64-linux-gnu-base",
	"libasan8-arm64-cross", "libatomic1-arm64-cross", "libc6-arm64-cross", "libc6-dev-arm64-cross", "libgcc-12-dev-arm64-cross",
	"libgcc-s1-arm64-cross", "libgomp1-arm64-cross", "libhwasan0-arm64-cross", "libitm1-arm64-cross", "liblsan0-arm64-cross",
	"libstdc++6-arm64-cross", "libtsan2-arm64-cross", "libubsan1-arm64-cross", "linux-libc-dev-arm64-cross", "gcc-12-cross-base",
}

// downloadCrossDebs fetches crossDebs with apt-get download into dir, once
// ($SLIMBUILD_BASES/cross-arm64-2 keeps them).
func downloadCrossDebs(t *testing.T, bases string) string {
	dir := filepath.Join(bases, "cross-arm64-2")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(bases, "cross-arm64.")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	cmd := exec.Command("apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300", "download"}, crossDebs...)...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644)
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

const crossDockerfile = `# hello-c for every target, compiled natively on the build platform.
FROM --platform=$BUILDPLATFORM slimbuild/builder:bookworm AS compile
COPY debs /debs
RUN dpkg -i /debs/*.deb >/dev/null
ARG TARGETARCH
WORKDIR /src
COPY hello.c .
RUN case "$TARGETARCH" in amd64) cc=gcc ;; arm64) cc=aarch64-linux-gnu-gcc-12 ;; *) exit 1 ;; esac && \
    $cc -static -O2 -s -o hello hello.c

FROM scratch
COPY --from=compile /src/hello /hello
ENTRYPOINT ["/hello"]
`

// TestHelloCMultiPlatform builds hello-c for amd64 and arm64 in one build: an
// index of both, each config for its platform, and the arm64 binary runs under
// qemu and greets.
func TestHelloCMultiPlatform(t *testing.T) {
	bases := multiBases(t)
	st := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := image.Import(ctx, st, filepath.Join(bases, "builder.tar.gz"), "slimbuild/builder:bookworm"); err != nil {
		t.Fatal(err)
	}
	debs := downloadCrossDebs(t, bases)
	_, file, _, _ := runtime.Caller(0)
	hello, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello-c", "hello.c"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"Dockerfile": crossDockerfile, "hello.c": string(hello)}
	ents, err := os.ReadDir(debs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".deb") {
			b, err := os.ReadFile(filepath.Join(debs, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files["debs/"+e.Name()] = string(b)
		}
	}
	dir := writeContext(t, files)
	res, err := engine.BuildPlatforms(ctx, st, engine.Options{ContextDir: dir, Network: "none", Tags: []string{"hello:multi"}}, []v1.Platform{amd64, arm64})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(res.Index); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	im, err := res.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index holds %d manifests, want 2", len(im.Manifests))
	}
	const greeting = "Hello from a lean image, built by slimbuild!\n"
	for i, want := range []v1.Platform{amd64, arm64} {
		d := im.Manifests[i]
		if d.Platform == nil || !d.Platform.Equals(want) {
			t.Errorf("manifest %d: platform %v, want %v", i, d.Platform, want)
		}
		img, err := st.ImageFor("docker.io/library/hello:multi", want)
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := img.Digest(); h != d.Digest {
			t.Errorf("hello:multi for %s is %s, index says %s", platformName(want), h, d.Digest)
		}
		cf := configOf(t, img)
		if cf.Architecture != want.Architecture || cf.OS != want.OS {
			t.Errorf("%s config says %s/%s", platformName(want), cf.OS, cf.Architecture)
		}
		var stdout, stderr bytes.Buffer
		code, err := image.Run(ctx, st, img, rt.ImageRun{Stdout: &stdout, Stderr: &stderr})
		if err != nil || code != 0 || stdout.String() != greeting {
			t.Errorf("running the %s image: code %d, %v, stdout %q, stderr %q", platformName(want), code, err, stdout.String(), stderr.String())
		}
		bin := fileHead(t, img, "hello", 20)
		machine := map[string]string{"amd64": "\x3e\x00", "arm64": "\xb7\x00"}[want.Architecture]
		if len(bin) < 20 || bin[:4] != "\x7fELF" || bin[18:20] != machine {
			t.Errorf("the %s binary is not an ELF file for that machine", platformName(want))
		}
	}
}

// fileHead is the first n bytes of the file p in img's filesystem.
func fileHead(t *testing.T, img v1.Image, p string, n int) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("image has no /%s: %v", p, err)
		}
		if cleanName(h.Name) == p {
			b := make([]byte, n)
			k, _ := io.ReadFull(tr, b)
			return string(b[:k])
		}
	}
}
