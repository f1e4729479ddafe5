// Command runcspec writes the OCI runtime spec that slimbuild gives a RUN step
// (runtime.Spec: moby's default seccomp profile, default capabilities, masked
// and read-only paths, device rules, its own namespaces with an empty network
// namespace), for a rootfs and a command, so that the benchmark can time runc
// alone on the same work: a floor that no runc-based builder can go under.
//
// Usage: runcspec -rootfs DIR [-cwd DIR] [-env K=V]... -- COMMAND [ARG]...
//
// The spec goes to standard output as config.json. The files slimbuild binds
// over /etc/hosts, /etc/hostname and /etc/resolv.conf are left out.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/slimbuild/slimbuild/internal/runtime"
)

type envFlag []string

func (e *envFlag) String() string     { return fmt.Sprint(*e) }
func (e *envFlag) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	rootfs := flag.String("rootfs", "", "the container's root directory")
	cwd := flag.String("cwd", "/", "working directory in the container")
	var env envFlag
	flag.Var(&env, "env", "environment variable K=V (repeatable)")
	flag.Parse()
	if *rootfs == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: runcspec -rootfs DIR [-cwd DIR] [-env K=V]... -- COMMAND [ARG]...")
		os.Exit(2)
	}
	spec, err := runtime.Spec(*rootfs, runtime.Process{
		Args: flag.Args(), Env: env, Cwd: *cwd, Hostname: "slimbuild", Network: runtime.NetworkNone,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "runcspec:", err)
		os.Exit(1)
	}
	// As Runner.Run does: limits above this process's hard ones are lowered.
	if err := json.NewEncoder(os.Stdout).Encode(runtime.FitRlimits(spec)); err != nil {
		fmt.Fprintln(os.Stderr, "runcspec:", err)
		os.Exit(1)
	}
}
