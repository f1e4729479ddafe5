package cli

import (
	"fmt"

	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func newFsckCmd(g *Globals) *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "fsck [--repair]",
		Short: "Check the store: names, blobs, unpacked layers, cache records and leftovers of killed builds",
		Long: `Checks that every name points to a complete manifest whose config and layer
blobs exist and match their digests, that every blob and unpacked layer matches
its digest, that build cache records point at existing layers, and (when no other
slimbuild process has the store open) reports temporary files, mounts, containers
and processes left by killed builds.

Problems go to stdout, one per line; the summary to stderr. With --repair, what is
corrupt is removed (names pointing at it are untagged; unpacked layers are re-made
from their blobs when next needed) and leftovers are reclaimed. The exit status is
0 when the store is clean (or was repaired) and 1 when problems remain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := store.Fsck(cmd.Context(), g.Root, store.FsckOptions{Repair: repair})
			if err != nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			repaired := 0
			for _, p := range rep.Problems {
				if p.Repaired {
					repaired++
				}
			}
			msg := fmt.Sprintf("checked %d names, %d blobs, %d unpacked layers, %d cache records: %d problems, %d repaired",
				rep.Names, rep.Blobs, rep.LayerDirs, rep.CacheEntries, len(rep.Problems), repaired)
			if rep.Busy {
				msg += " (store in use by another process: leftovers of killed builds not checked)"
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			if !rep.Clean() {
				return &exitError{code: 1, msg: ""}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "remove what is corrupt and reclaim leftovers")
	return cmd
}
