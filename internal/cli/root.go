package cli

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

// Globals holds the flags every command shares.
type Globals struct {
	Root string

	opened []*store.Store
}

// DefaultRoot is /var/lib/slimbuild for root, $XDG_DATA_HOME/slimbuild otherwise;
// SLIMBUILD_ROOT overrides both.
func DefaultRoot() string {
	if r := os.Getenv("SLIMBUILD_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/slimbuild"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "slimbuild")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "slimbuild")
}

// Store opens the store at the --root directory.
func (g *Globals) Store() (*store.Store, error) {
	st, err := store.Open(g.Root)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", g.Root, err)
	}
	g.opened = append(g.opened, st)
	return st, nil
}

// NewRoot returns the slimbuild command with every subcommand, each made by
// its file's constructor: nothing is registered at package init.
func NewRoot() *cobra.Command {
	g := &Globals{}
	root := &cobra.Command{
		Use:           "slimbuild",
		Short:         "Build lean container images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.Root, "root", DefaultRoot(), "directory holding all state (env SLIMBUILD_ROOT)")
	for _, c := range []*cobra.Command{
		newBuildCmd(g), newRunCmd(g), newSlimCmd(g), newAdviseCmd(g), newReportCmd(g),
		newImagesCmd(g), newTagCmd(g), newRmiCmd(g), newInspectCmd(g), newSaveCmd(g), newImportCmd(g),
		newPullCmd(g), newPushCmd(g), newLoginCmd(g), newLogoutCmd(g),
		newPruneCmd(g), newDfCmd(g), newFsckCmd(g),
	} {
		if run := c.RunE; run != nil {
			// Release the store (and its lock) when the command is done.
			c.RunE = func(cmd *cobra.Command, args []string) error {
				defer g.closeStores()
				return run(cmd, args)
			}
		}
		root.AddCommand(c)
	}
	return root
}

// storeAndImage opens the store and finds ref (a name or a digest) in it.
func (g *Globals) storeAndImage(ref string) (*store.Store, v1.Image, error) {
	st, err := g.Store()
	if err != nil {
		return nil, nil, err
	}
	img, err := storedImage(st, ref)
	if err != nil {
		return nil, nil, err
	}
	return st, img, nil
}

func (g *Globals) closeStores() {
	for _, st := range g.opened {
		st.Close()
	}
	g.opened = nil
}
