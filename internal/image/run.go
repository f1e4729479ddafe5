package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/snapshot"
	"github.com/slimbuild/slimbuild/internal/store"
)

// Run runs img, stored in st, with runc on a throwaway snapshot of its layers
// (unpacked first when needed) and returns the exit status. r's Rootfs, Dir and
// Config are set from the image. Nothing is left behind: the snapshot, its
// upper directory and runc's state go whatever happens (a killed slimbuild's
// are reclaimed with the store's tmp/).
func Run(ctx context.Context, st *store.Store, img v1.Image, r runtime.ImageRun) (int, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, fmt.Errorf("reading image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	lowers, err := st.LayerDirs(layers)
	if err != nil {
		return 0, err
	}
	tmp, err := st.TempDir("run-")
	if err != nil {
		return 0, err
	}
	a, err := snapshot.Snapshotter{Dir: tmp}.Prepare(lowers)
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	stateDir := filepath.Join(tmp, runtime.StateDirName)
	defer func() {
		a.Remove()
		// runc's state directory (and its markers) holds no mounts; the snapshot's, if its
		// unmount failed, stays for the store's reclaim, and so does tmp.
		os.RemoveAll(stateDir)
		os.RemoveAll(runtime.MarkerDir(stateDir))
		os.Remove(tmp)
	}()
	c := cf.Config
	r.Rootfs, r.Dir, r.StateDir = a.Root(), a.Dir(), stateDir
	r.Config = runtime.ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
	return runtime.RunImage(ctx, r)
}
