package cli

import (
	"github.com/slimbuild/slimbuild/internal/build"
	"github.com/spf13/cobra"
)

// addGateFlags adds --max-size and --forbid to a command.
func addGateFlags(cmd *cobra.Command) {
	cmd.Flags().String("max-size", "", "fail when the image is larger than SIZE (e.g. 5MB)")
	cmd.Flags().String("forbid", "", "fail when the image has any of: compilers,headers,package-managers,shells,setuid,world-writable,root,secrets")
}

// afterBuild prints the payoff summary and applies the gates.
func afterBuild(cmd *cobra.Command, res *build.Result, quiet bool) error {
	return nil
}
