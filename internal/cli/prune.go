package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func newPruneCmd(g *Globals) *cobra.Command {
	var all bool
	var keep int64
	cmd := &cobra.Command{
		Use:   "prune [--all | --keep-storage SIZE]",
		Short: "Remove blobs and unpacked layers nothing refers to (and, with --all, the build cache)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && keep > 0 {
				return fmt.Errorf("--all and --keep-storage exclude each other: --all drops the whole build cache")
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			stats, err := st.Prune(store.PruneOptions{All: all, KeepStorage: keep})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d blobs and %d unpacked layers, %s reclaimed\n",
				stats.Blobs, stats.LayerDirs, report.HumanSize(stats.Bytes))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove the whole build cache")
	cmd.Flags().Var(sizeFlag{n: &keep}, "keep-storage", "drop the least recently used build cache until the store is at most SIZE (e.g. 500MB, 2GiB)")
	return cmd
}

func newDfCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "df",
		Short: "Show what the store and the build cache hold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			u, err := st.DiskUsage()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tCOUNT\tSIZE")
			fmt.Fprintf(tw, "Images\t%d\t\n", u.Images)
			fmt.Fprintf(tw, "Blobs\t%d\t%s\n", u.Blobs, report.HumanSize(u.BlobBytes))
			fmt.Fprintf(tw, "Unpacked layers\t%d\t%s\n", u.LayerDirs, report.HumanSize(u.LayerDirBytes))
			fmt.Fprintf(tw, "Build cache\t%d\t%s\n", u.CacheEntries, report.HumanSize(u.CacheBytes))
			fmt.Fprintf(tw, "Temporary\t\t%s\n", report.HumanSize(u.TempBytes))
			fmt.Fprintf(tw, "Reclaimable\t\t%s\n", report.HumanSize(u.ReclaimableBytes))
			return tw.Flush()
		},
	}
}
