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
	var keep string
	cmd := &cobra.Command{
		Use:   "prune [--all] [--keep-storage SIZE]",
		Short: "Remove blobs and unpacked layers nothing refers to (and, with --all, the build cache)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			var limit int64 = -1
			if keep != "" {
				if limit, err = report.ParseSize(keep); err != nil {
					return fmt.Errorf("--keep-storage: %w", err)
				}
			}
			var stats store.GCStats
			gc := func() error {
				s, err := st.GC(store.GCOptions{})
				stats.Blobs += s.Blobs
				stats.LayerDirs += s.LayerDirs
				stats.Bytes += s.Bytes
				return err
			}
			if all {
				if err := st.ClearCache(); err != nil {
					return fmt.Errorf("clearing the build cache: %w", err)
				}
			}
			if err := gc(); err != nil {
				return err
			}
			if limit >= 0 && !all {
				// Drop the least recently used cache entries, a tenth at a time,
				// until the store fits or the cache is empty.
				for {
					u, err := st.DiskUsage()
					if err != nil {
						return err
					}
					if u.BlobBytes+u.LayerDirBytes+u.CacheBytes+u.TempBytes <= limit {
						break
					}
					entries, err := st.CacheEntries()
					if err != nil {
						return err
					}
					if len(entries) == 0 {
						break
					}
					for _, e := range entries[:max(1, len(entries)/10)] {
						if err := st.DeleteCache(e.Key); err != nil {
							return err
						}
					}
					if err := gc(); err != nil {
						return err
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d blobs and %d unpacked layers, %s reclaimed\n",
				stats.Blobs, stats.LayerDirs, report.HumanSize(stats.Bytes))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove the whole build cache")
	cmd.Flags().StringVar(&keep, "keep-storage", "", "drop the least recently used build cache until the store is at most SIZE")
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
