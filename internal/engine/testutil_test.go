package engine_test

// Shared helpers for the engine's integration tests. These tests need root,
// runc and overlayfs: TestMain makes a busybox root filesystem once, imports it
// into a template store, and every test copies that store into its own
// t.TempDir(). After each test, and again after the whole package, nothing may
// be left under a test store: no overlay mount, no container process, no
// per-build temporary directory.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/snapshot"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
)

const busyboxName = "busybox:latest"

var (
	// skipReason is set when the machine lacks something the engine needs.
	skipReason string
	// topDir holds the busybox rootfs and the template store.
	topDir       string
	busyboxRoot  string // the busybox root filesystem directory
	templateRoot string // a store with busybox:latest imported

	rootsMu sync.Mutex
	roots   []string // every store root a test used, checked after the run
)

func TestMain(m *testing.M) {
	code := func() int {
		setUp()
		defer func() {
			if topDir != "" {
				os.RemoveAll(topDir)
			}
		}()
		code := m.Run()
		if leaks := finalLeaks(); len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: the build engine left things behind:")
			for _, l := range leaks {
				fmt.Fprintln(os.Stderr, "  "+l)
			}
			return 1
		}
		return code
	}()
	os.Exit(code)
}

// setUp checks the machine and makes the busybox base; problems become skipReason.
func setUp() {
	if os.Geteuid() != 0 {
		skipReason = "needs root (overlay mounts and runc)"
		return
	}
	if _, err := exec.LookPath("runc"); err != nil {
		skipReason = "runc is not installed (apt-get install runc)"
		return
	}
	if data, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(data), "overlay") {
		skipReason = "the kernel has no overlayfs (modprobe overlay)"
		return
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		skipReason = "/bin/busybox is missing (apt-get install busybox-static)"
		return
	}
	var err error
	topDir, err = os.MkdirTemp("", "slimbuild-build-test-")
	if err != nil {
		skipReason = "cannot make a temporary directory: " + err.Error()
		return
	}
	busyboxRoot = filepath.Join(topDir, "busybox-rootfs")
	if err := makeBusyboxRootfs(busyboxRoot, nil); err != nil {
		panic(fmt.Sprintf("making busybox rootfs: %v", err))
	}
	templateRoot = filepath.Join(topDir, "template")
	st, err := store.Open(templateRoot)
	if err != nil {
		panic(fmt.Sprintf("opening template store: %v", err))
	}
	defer st.Close()
	if _, err := image.Import(context.Background(), st, busyboxRoot, busyboxName); err != nil {
		panic(fmt.Sprintf("importing busybox: %v", err))
	}
	registerRoot(templateRoot)
}

// makeBusyboxRootfs makes a small root filesystem: /bin/busybox with its applet
// links, /etc/passwd (root, nobody), /etc/group, /tmp 1777. extra files are
// added (path -> content).
func makeBusyboxRootfs(dir string, extra map[string]string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "dev", "proc", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "root"), 0o700); err != nil {
		return err
	}
	if err := copyFile("/bin/busybox", filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" {
			continue
		}
		p := filepath.Join(dir, applet)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", p); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	for p, content := range files {
		hp := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(hp, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func registerRoot(root string) {
	rootsMu.Lock()
	defer rootsMu.Unlock()
	roots = append(roots, root)
}

// requireEngine skips the test when the machine lacks root, runc or overlayfs.
func requireEngine(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip("build engine integration test: " + skipReason)
	}
}

// newStore gives the test a fresh store holding busybox:latest. When the test
// ends, the store must hold no mount, no container and no temporary directory.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	requireEngine(t)
	root := t.TempDir()
	// cp -a keeps the owners and modes of the unpacked layer directories.
	if out, err := exec.Command("cp", "-a", templateRoot+"/.", root).CombinedOutput(); err != nil {
		t.Fatalf("copying template store: %v\n%s", err, out)
	}
	registerRoot(root)
	st, err := store.Open(root)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		for _, l := range leaksUnder(root, true) {
			t.Errorf("left behind after the test: %s", l)
		}
		detachMountsUnder(root)
	})
	return st
}

// assertClean fails the test if the store holds a mount, a container process or
// a temporary directory right now (between builds).
func assertClean(t testing.TB, st *store.Store) {
	t.Helper()
	for _, l := range leaksUnder(st.Root(), true) {
		t.Errorf("left behind: %s", l)
	}
}

// leaksUnder lists mounts and processes rooted under root and, when checkTmp is
// set, anything left in the store's tmp directory.
func leaksUnder(root string, checkTmp bool) []string {
	var leaks []string
	for _, m := range mountsUnder(root) {
		leaks = append(leaks, "mount "+m)
	}
	for _, p := range processesUnder(root) {
		leaks = append(leaks, p)
	}
	if checkTmp {
		entries, _ := os.ReadDir(filepath.Join(root, "tmp"))
		for _, e := range entries {
			leaks = append(leaks, "temporary "+filepath.Join(root, "tmp", e.Name()))
		}
	}
	return leaks
}

// finalLeaks checks every store root used by the run, and the shared top dir.
func finalLeaks() []string {
	rootsMu.Lock()
	all := append([]string(nil), roots...)
	rootsMu.Unlock()
	if topDir != "" {
		all = append(all, topDir)
	}
	seen := map[string]bool{}
	var leaks []string
	for _, r := range all {
		for _, l := range leaksUnder(r, false) {
			if !seen[l] {
				seen[l] = true
				leaks = append(leaks, l)
			}
		}
		// Run's tmp dirs of a store that still exists must be gone too.
		entries, _ := os.ReadDir(filepath.Join(r, "tmp"))
		for _, e := range entries {
			l := "temporary " + filepath.Join(r, "tmp", e.Name())
			if !seen[l] {
				seen[l] = true
				leaks = append(leaks, l)
			}
		}
		detachMountsUnder(r)
	}
	return leaks
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	out, err := snapshot.MountsUnder(dir)
	if err != nil {
		return []string{"cannot read /proc/self/mountinfo: " + err.Error()}
	}
	return out
}

// processesUnder lists processes whose root directory is below dir: containers
// the engine failed to stop.
func processesUnder(dir string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		r, err := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if err != nil {
			continue
		}
		if r == dir || strings.HasPrefix(r, dir+"/") {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, fmt.Sprintf("process %d (%s) rooted in %s", pid, strings.ReplaceAll(string(cmd), "\x00", " "), r))
		}
	}
	return out
}

// detachMountsUnder removes leftover mounts below dir (deepest first), so a failed
// test does not leave them on the machine.
func detachMountsUnder(dir string) {
	ms := mountsUnder(dir)
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	for _, m := range ms {
		unix.Unmount(m, unix.MNT_DETACH)
	}
}

// writeContext makes a build context from files (path -> content; a path ending
// in "/" is an empty directory).
func writeContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		hp := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(hp, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// buildIn builds the context dir with opts (ContextDir is set from dir). Every
// image the build returns is checked with validate.Image.
func buildIn(t testing.TB, st *store.Store, dir string, opts engine.Options) (*engine.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts.ContextDir = dir
	res, err := engine.Build(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	checkResult(t, res)
	return res, nil
}

// validateImage is validate.Image for images whose layers may be stored
// uncompressed or zstd (validate reads every layer blob as gzip): the manifest
// and config are validated as validate.Image does, and each layer's blob must
// have its digest and size, and its tar its diffID.
func validateImage(img v1.Image) error {
	if err := validate.Image(img, validate.Fast); err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(m.Layers) || len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("%d layers, %d in the manifest, %d diffIDs", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for k, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h, n, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if h != m.Layers[k].Digest || n != m.Layers[k].Size {
			return fmt.Errorf("layer %d: blob %s of %d bytes, manifest says %s of %d", k, h, n, m.Layers[k].Digest, m.Layers[k].Size)
		}
		u, err := l.Uncompressed()
		if err != nil {
			return err
		}
		d, _, err := v1.SHA256(u)
		u.Close()
		if err != nil {
			return err
		}
		if d != cf.RootFS.DiffIDs[k] {
			return fmt.Errorf("layer %d: tar %s, config says %s", k, d, cf.RootFS.DiffIDs[k])
		}
	}
	return nil
}

// checkResult validates the result image and every stage image.
func checkResult(t testing.TB, res *engine.Result) {
	t.Helper()
	if res == nil || res.Image == nil {
		t.Fatalf("Build returned no image and no error")
	}
	if err := validateImage(res.Image); err != nil {
		t.Errorf("validate.Image(result): %v", err)
	}
	d, err := res.Image.Digest()
	if err != nil {
		t.Fatalf("digest of result: %v", err)
	}
	if d != res.Digest {
		t.Errorf("Result.Digest = %s, but the image's digest is %s", res.Digest, d)
	}
	for _, s := range res.Stages {
		if s.Image == nil {
			t.Errorf("stage %s has no image", s.Name)
			continue
		}
		if err := validateImage(s.Image); err != nil {
			t.Errorf("validate.Image(stage %s): %v", s.Name, err)
		}
	}
}

// mustBuild writes files as a context and builds it; any error is fatal.
func mustBuild(t testing.TB, st *store.Store, files map[string]string, opts engine.Options) *engine.Result {
	t.Helper()
	dir := writeContext(t, files)
	res, err := buildIn(t, st, dir, opts)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return res
}

// buildErr writes files as a context and builds it, expecting an error; it
// then checks that the failed build left nothing behind.
func buildErr(t testing.TB, st *store.Store, files map[string]string, opts engine.Options) error {
	t.Helper()
	dir := writeContext(t, files)
	_, err := buildIn(t, st, dir, opts)
	if err == nil {
		t.Fatalf("build succeeded, want an error")
	}
	assertClean(t, st)
	return err
}

// entry is one path of an image's flattened filesystem.
type entry struct {
	Type     byte
	Mode     int64 // permission and special bits
	UID, GID int
	Link     string
	Size     int64
	Data     string // content of regular files up to 64 KiB
}

// fsOf flattens img's layers (mutate.Extract) into path -> entry; paths have no
// leading "/" or "./".
func fsOf(t testing.TB, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	m, err := readTar(rc)
	if err != nil {
		t.Fatalf("flattening image: %v", err)
	}
	return m
}

func readTar(r io.Reader) (map[string]entry, error) {
	m := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		e := entry{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Link: h.Linkname, Size: h.Size}
		if h.Typeflag == tar.TypeReg && h.Size <= 64*1024 {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			e.Data = string(data)
		}
		m[cleanName(h.Name)] = e
	}
}

func cleanName(n string) string {
	n = path.Clean("/" + n)
	return strings.TrimPrefix(n, "/")
}

// configOf returns img's config file.
func configOf(t testing.TB, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	return cf
}

// layerNames lists the entries of a layer's uncompressed tar, cleaned.
func layerNames(t testing.TB, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatalf("opening layer: %v", err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		names = append(names, cleanName(h.Name))
	}
}

// lastLayer returns img's topmost layer.
func lastLayer(t testing.TB, img v1.Image) v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) == 0 {
		t.Fatal("image has no layers")
	}
	return ls[len(ls)-1]
}

// fileData returns the content of a regular file of fs, failing when it is missing.
func fileData(t testing.TB, fs map[string]entry, p string) string {
	t.Helper()
	e, ok := fs[p]
	if !ok {
		t.Fatalf("image has no /%s", p)
	}
	if e.Type != tar.TypeReg {
		t.Fatalf("/%s is not a regular file (type %q)", p, e.Type)
	}
	return e.Data
}

// recorder collects progress events.
type recorder struct {
	mu     sync.Mutex
	events []engine.Event
}

func (r *recorder) progress(e engine.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []engine.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.Event(nil), r.events...)
}

// fsSteps says, for each filesystem step ("stage#step"), whether it was served
// from the cache ("hit") or ran ("miss"). Metadata steps (which only report
// StepDone) are left out.
func (r *recorder) fsSteps() map[string]string {
	out := map[string]string{}
	for _, e := range r.all() {
		k := fmt.Sprintf("%s#%d", e.Stage, e.Step)
		switch e.Kind {
		case engine.StepCached:
			out[k] = "hit"
		case engine.StepStart:
			out[k] = "miss"
		}
	}
	return out
}
