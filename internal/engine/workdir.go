package engine

import (
	"context"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/source"
)

// workdir sets the working directory and creates it, as BuildKit does, owned by
// the current USER when one is set.
func (b *builder) workdir(ctx context.Context, s *stageState, st *step, c *instructions.WorkdirCommand) error {
	wd := dockerfile.AbsPath(s.Image.Config.WorkingDir, c.Path)
	s.Image.Config.WorkingDir = wd
	key := cachekey.Of("workdir", s.key, wd, s.Image.Config.User)
	return b.fsStep(ctx, s, st, key, func(ws *workspace) error {
		var uid, gid int
		if s.Image.Config.User != "" {
			u, err := runtime.ResolveUser(ws.Root(), s.Image.Config.User)
			if err != nil {
				return err
			}
			uid, gid = int(u.UID), int(u.GID)
		}
		_, err := source.MkdirAllOwned(ws.Root(), wd, uid, gid, b.lchown)
		return err
	})
}
