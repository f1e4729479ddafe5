package cli

import (
	"fmt"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The typed flags below are checked when the command line is parsed, before any
// command opens the store: a bad value is an error naming the flag and the value
// (pflag's `invalid argument "X" for "--flag" flag: ...`), whatever the build
// would have done with it.

// networkFlag is a --network flag: default (private), none or host.
type networkFlag struct{ n *runtime.Network }

var _ pflag.Value = networkFlag{}

func (f networkFlag) String() string {
	if f.n == nil || *f.n == runtime.NetworkPrivate {
		return "default"
	}
	return f.n.String()
}

func (f networkFlag) Set(s string) error {
	n, err := runtime.ParseNetwork(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

func (networkFlag) Type() string { return "network" }

// compressionFlag is a --compression flag: gzip, zstd or none.
type compressionFlag struct{ c *store.Compression }

var _ pflag.Value = compressionFlag{}

func (f compressionFlag) String() string {
	if f.c == nil {
		return ""
	}
	return string(*f.c)
}

func (f compressionFlag) Set(s string) error {
	c, err := store.ParseCompression(s)
	if err != nil {
		return err
	}
	*f.c = c
	return nil
}

func (compressionFlag) Type() string { return "compression" }

// countFlag is a whole number of at least 0 (--jobs).
type countFlag struct{ n *int }

var _ pflag.Value = countFlag{}

func (f countFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return strconv.Itoa(*f.n)
}

func (f countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("not a whole number of 0 or more")
	}
	*f.n = n
	return nil
}

func (countFlag) Type() string { return "int" }

// sizeFlag is a size in bytes: report.ParseSize's syntax, with every unit a
// power of 1024 when ram is set (docker's memory flags, --shm-size); never 0.
// The variable keeps its value until the flag is given.
type sizeFlag struct {
	n   *int64
	ram bool
}

var _ pflag.Value = sizeFlag{}

func (f sizeFlag) String() string {
	if f.n == nil || *f.n <= 0 {
		return ""
	}
	return strconv.FormatInt(*f.n, 10)
}

func (f sizeFlag) Set(s string) error {
	parse := report.ParseSize
	if f.ram {
		parse = report.ParseRAMSize
	}
	n, err := parse(s)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("a size must be greater than 0")
	}
	*f.n = n
	return nil
}

func (sizeFlag) Type() string { return "size" }

// checkGateFlags checks --max-size and --forbid (added by addGateFlags) before
// anything is built or opened.
func checkGateFlags(cmd *cobra.Command) error {
	maxSize, _ := cmd.Flags().GetString("max-size")
	forbid, _ := cmd.Flags().GetString("forbid")
	_, err := report.ParseGate(maxSize, forbid)
	return err
}

// parsePlatforms parses a --platform list ("linux/amd64,linux/arm64"),
// normalised as BuildKit does; duplicates are an error.
func parsePlatforms(list []string) ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, s := range list {
		p, err := dockerfile.ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		name := dockerfile.FormatPlatform(p)
		if seen[name] {
			return nil, fmt.Errorf("platform %s given twice", name)
		}
		seen[name] = true
		out = append(out, dockerfile.ImagePlatform(p))
	}
	return out, nil
}
