package cli

import (
	"context"
	"fmt"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra to main.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func newRunCmd(g *Globals) *cobra.Command {
	var network runtime.Network
	var rm bool
	cmd := &cobra.Command{
		Use:   "run [--network default|none|host] [--rm] IMAGE [CMD [ARG...]]",
		Short: "Run a stored image with runc",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !rm {
				return fmt.Errorf("--rm=false: slimbuild run keeps no container to inspect afterwards (its overlay, upper directory and runc state always go)")
			}
			st, img, err := g.storeAndImage(args[0])
			if err != nil {
				return err
			}
			code, err := image.Run(cmd.Context(), st, img, runtime.ImageRun{
				Args: args[1:], Network: network, Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				if cmd.Context().Err() == context.Canceled {
					return &exitError{code: 130, msg: "interrupted"}
				}
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().Var(networkFlag{&network}, "network", "network: default (private, outbound only), none or host")
	// docker's --rm, accepted so that docker run command lines work: the
	// container is always removed, and --rm=false, which asks to keep it, is refused.
	cmd.Flags().BoolVar(&rm, "rm", true, "remove the container when it exits (always: --rm=false is refused)")
	cmd.Flags().SetInterspersed(false)
	return cmd
}
