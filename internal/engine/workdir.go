package engine

import (
	"context"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/source"
)

// workdir sets the working directory and creates it, as BuildKit does, owned by
// the current USER when one is set.
func (b *builder) workdir(ctx context.Context, s *stageState, st *step, c *instructions.WorkdirCommand) error {
	wd := absPath(s.cfg.Config.WorkingDir, c.Path)
	s.cfg.Config.WorkingDir = wd
	key := keyOf("workdir", s.key, wd, s.cfg.Config.User)
	return b.fsStep(ctx, s, st, key, func(ws *workspace) error {
		var uid, gid int
		if s.cfg.Config.User != "" {
			u, err := runtime.ResolveUser(ws.Root(), s.cfg.Config.User)
			if err != nil {
				return err
			}
			uid, gid = int(u.UID), int(u.GID)
		}
		_, err := source.MkdirAllOwned(ws.Root(), wd, uid, gid, b.lchown)
		return err
	})
}
