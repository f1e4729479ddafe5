// Package cli is slimbuild's command line: one file per command, each parsing flags,
// calling one library function and printing. Digests and JSON go to stdout; progress
// and logs go to stderr.
package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

// Globals holds the flags every command shares.
type Globals struct {
	Root string
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
	return st, nil
}

// NewRoot returns the slimbuild command with every subcommand.
func NewRoot() *cobra.Command {
	g := &Globals{}
	root := &cobra.Command{
		Use:           "slimbuild",
		Short:         "Build lean container images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.Root, "root", DefaultRoot(), "directory holding all state (env SLIMBUILD_ROOT)")
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root
}

// commands is filled by each command's file through register.
var commands []func(*Globals) *cobra.Command

func register(f func(*Globals) *cobra.Command) { commands = append(commands, f) }
