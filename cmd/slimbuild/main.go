// Command slimbuild builds lean OCI images from Dockerfiles without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slimbuild/slimbuild/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRoot().ExecuteContext(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil && interrupted {
		fmt.Fprintln(os.Stderr, "slimbuild: interrupted; the running step was stopped and cleaned up")
		os.Exit(130)
	}
	if err != nil {
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) && ec.ExitCode() >= 0 {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "slimbuild:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "slimbuild:", err)
		os.Exit(1)
	}
}
