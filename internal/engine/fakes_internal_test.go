package engine

// Fakes of the engine's Snapshotter and Runner (interfaces.go), and a harness
// that runs the real builder with them, without root: a snapshot is a copy of
// its parents in a plain directory, whose changes are found by comparing the
// tree before and after the step; a RUN is recorded and may run a Go function
// on the root instead of a process.
//
// A layer blob (a COPY in the target stage streams straight into one) is
// unpacked by tarUnpacker without its owners: owners need root, and these
// tests look at names, contents and modes only. The owners that COPY, ADD and
// WORKDIR give what they write are recorded by an ownerLog, the builder's
// Chowner, instead of being set (so a snapshot's files keep the test's owner,
// and a test reads the owners from the log). What else needs root is left
// out, not faked: a deletion, which an upper directory records as a whiteout
// (a device node), so the fake snapshotter refuses one. The builds start FROM
// scratch or another stage.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/store"
)

var (
	_ Snapshotter = (*dirSnapshotter)(nil)
	_ Active      = (*dirActive)(nil)
	_ Runner      = (*recRunner)(nil)
	_ Unpacker    = (*tarUnpacker)(nil)
)

// tarUnpacker unpacks layer blobs under dir, one directory per diffID, with
// their names, contents and modes, not their owners. It takes directories,
// regular files and symlinks, and refuses anything else (whiteouts included).
type tarUnpacker struct {
	dir  string
	mu   sync.Mutex
	dirs map[v1.Hash]string
}

// LowerDirs gives a snapshot layer's own directory and unpacks any other.
func (u *tarUnpacker) LowerDirs(layers []v1.Layer) ([]string, error) {
	dirs := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		var d string
		var err error
		if sl, ok := layers[i].(*store.SnapshotLayer); ok {
			d, err = sl.Dir()
		} else {
			d, err = u.LayerDir(layers[i])
		}
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

func (u *tarUnpacker) LayerDir(l v1.Layer) (string, error) {
	id, err := l.DiffID()
	if err != nil {
		return "", err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if d, ok := u.dirs[id]; ok {
		return d, nil
	}
	d, err := os.MkdirTemp(u.dir, "layer-")
	if err != nil {
		return "", err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(path.Base(h.Name), ".wh.") {
			return "", fmt.Errorf("fake unpacker: %s is a whiteout", h.Name)
		}
		hp, err := securejoin.SecureJoin(d, h.Name)
		if err != nil {
			return "", err
		}
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(hp, 0o755); err != nil {
				return "", err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(hp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return "", err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, hp); err != nil {
				return "", err
			}
			continue
		default:
			return "", fmt.Errorf("fake unpacker: %s has tar type %c", h.Name, h.Typeflag)
		}
		if err := os.Chmod(hp, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return "", err
		}
		if err := os.Chtimes(hp, h.ModTime, h.ModTime); err != nil {
			return "", err
		}
	}
	if u.dirs == nil {
		u.dirs = map[v1.Hash]string{}
	}
	u.dirs[id] = d
	return d, nil
}

// dirSnapshotter prepares each snapshot as a copy of its parents under dir.
type dirSnapshotter struct {
	dir string
}

// dirActive is a dirSnapshotter's snapshot. Until Unmount, root is the step's
// filesystem; Unmount writes what changed under root into upper and removes
// root, as unmounting an overlay leaves only its upper directory.
type dirActive struct {
	dir, root, upper string
	before           map[string]entry // the tree as prepared, by relative path
	unmounted        bool
}

// entry is what the fake compares to find a change: type and mode bits,
// content or link target, and modification time.
type entry struct {
	mode    fs.FileMode
	content string
	mtime   int64
}

func (d *dirSnapshotter) Prepare(parents []string) (Active, error) {
	dir, err := os.MkdirTemp(d.dir, "step-")
	if err != nil {
		return nil, err
	}
	a := &dirActive{dir: dir, root: filepath.Join(dir, "rootfs"), upper: filepath.Join(dir, "upper")}
	for _, p := range []string{a.root, a.upper} {
		if err := os.Mkdir(p, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	// Parents are topmost first: copy the bottom one first, the others over it.
	for i := len(parents) - 1; i >= 0; i-- {
		if err := copyTree(parents[i], a.root); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("fake snapshot of %s: %w", parents[i], err)
		}
	}
	if a.before, err = scanTree(a.root); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return a, nil
}

func (a *dirActive) Root() string  { return a.root }
func (a *dirActive) Upper() string { return a.upper }
func (a *dirActive) Dir() string   { return a.dir }

func (a *dirActive) Unmount() error {
	if a.unmounted {
		return nil
	}
	after, err := scanTree(a.root)
	if err != nil {
		return err
	}
	for rel := range a.before {
		if _, ok := after[rel]; !ok {
			return fmt.Errorf("fake snapshotter: %s was deleted, and a deletion needs a whiteout (a device node, root)", rel)
		}
	}
	changed := make([]string, 0, len(after))
	for rel, e := range after {
		if old, ok := a.before[rel]; !ok || old != e {
			changed = append(changed, rel)
		}
	}
	slices.Sort(changed) // parents before their children
	for _, rel := range changed {
		// A change deep in the tree brings its parent directories up with it.
		for _, p := range parentsOf(rel) {
			if err := copyEntry(filepath.Join(a.root, p), filepath.Join(a.upper, p), true); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		if err := copyEntry(filepath.Join(a.root, rel), filepath.Join(a.upper, rel), true); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if err := os.RemoveAll(a.root); err != nil {
		return err
	}
	a.unmounted = true
	return os.Mkdir(a.root, 0o755)
}

func (a *dirActive) Commit(keep func(upper string) error) (bool, error) {
	defer a.Remove()
	if err := a.Unmount(); err != nil {
		return false, err
	}
	ents, err := os.ReadDir(a.upper)
	if err != nil || len(ents) == 0 {
		return false, err
	}
	return true, keep(a.upper)
}

func (a *dirActive) Remove() { os.RemoveAll(a.dir) }

// parentsOf lists the directories above rel, top first.
func parentsOf(rel string) []string {
	var out []string
	for p := filepath.Dir(rel); p != "."; p = filepath.Dir(p) {
		out = append([]string{p}, out...)
	}
	return out
}

// scanTree describes every path under root.
func scanTree(root string) (map[string]entry, error) {
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := entry{mode: fi.Mode(), mtime: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content = string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.content, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir():
		default:
			return fmt.Errorf("fake snapshotter: %s is a special file", rel)
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// copyTree copies src's tree over dst (directories merge, files replace).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyEntry(p, filepath.Join(dst, rel), false)
	})
}

// copyEntry copies one directory (without its contents), file or link with its
// mode and time; an existing directory is kept, anything else replaced, unless
// keepExisting, which leaves whatever exists and returns fs.ErrExist.
func copyEntry(src, dst string, keepExisting bool) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if old, err := os.Lstat(dst); err == nil {
		if keepExisting {
			return fs.ErrExist
		}
		if !(old.IsDir() && fi.IsDir()) {
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
		}
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	default:
		return fmt.Errorf("fake snapshotter: %s is a special file (a whiteout?)", src)
	}
	if err := os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// ownerLog records the owners a build gives paths (the builder's Chowner in
// the fake builds) instead of setting them. It stands for lchown(2) on a path
// that the engine has resolved inside a step's root, and fails the call,
// failing the build, unless the path is clean, exists, lies under one of
// roots and has no symlink above it: an owner must never reach a path
// outside the build's own directories, nor through a link.
type ownerLog struct {
	roots []string // the snapshots' directory and the store's
	mu    sync.Mutex
	set   []owned // in order
}

type owned struct{ path, owner string }

func (o *ownerLog) Lchown(p string, uid, gid int) error {
	if p != filepath.Clean(p) || !filepath.IsAbs(p) {
		return fmt.Errorf("fake lchown: %q is not a clean absolute path", p)
	}
	root := ""
	for _, r := range o.roots {
		if strings.HasPrefix(p, r+string(filepath.Separator)) {
			root = r
		}
	}
	if root == "" {
		return fmt.Errorf("fake lchown: %s is outside the build's directories %v", p, o.roots)
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err != nil || d != filepath.Dir(p) {
		return fmt.Errorf("fake lchown: %s goes through a symlink (%q, %v)", p, d, err)
	}
	if _, err := os.Lstat(p); err != nil {
		return fmt.Errorf("fake lchown: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.set = append(o.set, owned{p, fmt.Sprintf("%d:%d", uid, gid)})
	return nil
}

// inImage gives the owners recorded in steps' trees by image path (a later
// step's wins): a step's root is step-*/rootfs under the snapshots'
// directory; an ADD --link or COPY --link copies onto a tree add-link-* in the
// build's temp dir under the store.
func (o *ownerLog) inImage() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]string{}
	for _, s := range o.set {
		if rel, err := filepath.Rel(o.roots[0], s.path); err == nil && !strings.HasPrefix(rel, "../") {
			parts := strings.SplitN(filepath.ToSlash(rel), "/", 3)
			if len(parts) == 3 && strings.HasPrefix(parts[0], "step-") && parts[1] == "rootfs" {
				out["/"+parts[2]] = s.owner
			}
			continue
		}
		if _, tree, ok := strings.Cut(filepath.ToSlash(s.path), "/add-link-"); ok {
			if _, p, ok := strings.Cut(tree, "/"); ok {
				out["/"+p] = s.owner
			}
		}
	}
	return out
}

// recRunner records every container it is asked to run, makes the mount
// points in its root that runc would (the engine must keep them out of the
// layer) and, when do is set, runs do instead of the process (its exit code is
// the RUN's).
type recRunner struct {
	mu   sync.Mutex
	runs []runtime.Container
	do   func(ctx context.Context, c runtime.Container) (int, error)
}

func (r *recRunner) RunContainer(ctx context.Context, c runtime.Container) (int, error) {
	r.mu.Lock()
	r.runs = append(r.runs, c)
	r.mu.Unlock()
	if err := makeMountPoints(c); err != nil {
		return 0, err
	}
	if r.do == nil {
		return 0, nil
	}
	return r.do(ctx, c)
}

// makeMountPoints makes, as runc does, a directory or an empty file in c's
// root for each of its mounts that is not there yet.
func makeMountPoints(c runtime.Container) error {
	type point struct {
		dest string
		dir  bool
	}
	var points []point
	for _, p := range runtime.MountPoints() {
		points = append(points, point{p, !strings.HasPrefix(p, "/etc/")})
	}
	for _, m := range c.Process.Mounts {
		fi, err := os.Stat(m.Source)
		points = append(points, point{m.Destination, m.Type == "tmpfs" || (err == nil && fi.IsDir())})
	}
	for _, p := range points {
		hp, err := securejoin.SecureJoin(c.Rootfs, p.dest)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(hp); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		if p.dir {
			err = os.Mkdir(hp, 0o755)
		} else {
			err = os.WriteFile(hp, nil, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ran lists the commands run, in order: the last argument of each (the shell
// script, or an exec form's last word).
func (r *recRunner) ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.runs {
		out = append(out, c.Process.Args[len(c.Process.Args)-1])
	}
	return out
}

// writeIn writes a file inside a container's root, as a RUN would.
func writeIn(c runtime.Container, p, content string) error {
	hp, err := securejoin.SecureJoin(c.Rootfs, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		return err
	}
	return os.WriteFile(hp, []byte(content), 0o644)
}

// fakeBuild is one build's outcome with the fakes.
type fakeBuild struct {
	res    *Result
	runner *recRunner
	owners *ownerLog
	// steps maps each filesystem step's text to whether it came from the cache.
	steps map[string]bool
	order []string // filesystem steps' texts as they finished
}

// fakeEnv is a build context and a store that builds with fakes share, so that
// a second build sees the first one's cache.
type fakeEnv struct {
	t   *testing.T
	dir string // the context
	st  *store.Store
}

func newFakeEnv(t *testing.T, files map[string]string) *fakeEnv {
	t.Helper()
	e := &fakeEnv{t: t, dir: t.TempDir()}
	e.write(files)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	return e
}

// write sets context files (path -> content).
func (e *fakeEnv) write(files map[string]string) {
	e.t.Helper()
	for p, content := range files {
		hp := filepath.Join(e.dir, p)
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// build runs the real builder on the context's Dockerfile with opts, a
// dirSnapshotter and a recRunner that calls do. Every snapshot must be gone
// when the build returns, whatever its outcome.
func (e *fakeEnv) build(opts Options, do func(runtime.Container) (int, error)) (*fakeBuild, error) {
	e.t.Helper()
	var doCtx func(context.Context, runtime.Container) (int, error)
	if do != nil {
		doCtx = func(_ context.Context, c runtime.Container) (int, error) { return do(c) }
	}
	return e.buildCtx(context.Background(), opts, doCtx)
}

// buildCtx is build under ctx, with do given the RUN's context (cancelled
// when the build stops).
func (e *fakeEnv) buildCtx(ctx context.Context, opts Options, do func(context.Context, runtime.Container) (int, error)) (*fakeBuild, error) {
	e.t.Helper()
	opts.ContextDir = e.dir
	out := &fakeBuild{runner: &recRunner{do: do}, steps: map[string]bool{}}
	var mu sync.Mutex
	opts.Progress = func(ev Event) {
		if ev.Kind != StepCached && ev.Kind != StepDone {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		out.steps[ev.Text] = ev.Kind == StepCached
		out.order = append(out.order, ev.Text)
	}
	b, err := newBuilder(e.st, opts)
	if err != nil {
		return nil, err
	}
	snaps := e.t.TempDir()
	b.unpack = &tarUnpacker{dir: e.t.TempDir()}
	b.overlay, b.runner = &dirSnapshotter{dir: snaps}, out.runner
	out.owners = &ownerLog{roots: []string{snaps, e.st.Root()}}
	b.lchown = out.owners.Lchown
	out.res, err = b.run(ctx)
	b.close()
	if left, _ := os.ReadDir(snaps); len(left) > 0 {
		e.t.Errorf("the build left %d snapshot(s) behind, first %s", len(left), left[0].Name())
	}
	return out, err
}

// mustBuild is build that fails the test on an error.
func (e *fakeEnv) mustBuild(opts Options, do func(runtime.Container) (int, error)) *fakeBuild {
	e.t.Helper()
	out, err := e.build(opts, do)
	if err != nil {
		e.t.Fatalf("build: %v", err)
	}
	return out
}

// imageFiles reads the regular files of img's layers (path -> content, upper
// layers winning).
func imageFiles(t *testing.T, res *Result) map[string]string {
	t.Helper()
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		if err := readTar(rc, files); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	return files
}

// envOf is a recorded run's environment as a map.
func envOf(c runtime.Container) map[string]string { return dockerfile.EnvMap(c.Process.Env) }

// readTar adds the regular files of a layer tar to files.
func readTar(r io.Reader, files map[string]string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		files[filepath.Clean("/"+h.Name)] = string(data)
	}
}
