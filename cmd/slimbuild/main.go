// Command slimbuild builds lean OCI images from Dockerfiles without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/slimbuild/slimbuild/internal/cli"
)

func main() {
	// A build is a short-lived process that allocates mostly long-lived data
	// (plans, file lists): collect garbage less often than the default.
	debug.SetGCPercent(400)
	// SLIMBUILD_CPUPROFILE=FILE writes a CPU profile of the run, for developers.
	if p := os.Getenv("SLIMBUILD_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
			code := run()
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRoot().ExecuteContext(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil && interrupted {
		fmt.Fprintln(os.Stderr, "slimbuild: interrupted; the running step was stopped and cleaned up")
		return 130
	}
	if err != nil {
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) && ec.ExitCode() >= 0 {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "slimbuild:", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "slimbuild:", err)
		return 1
	}
	return 0
}
