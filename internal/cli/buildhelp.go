package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// buildxFlagNames are the flags of `slimbuild build` that `docker buildx build`
// has with the same spelling and meaning.
var buildxFlagNames = []string{
	"add-host", "allow", "annotation", "build-arg", "build-context", "cache-from", "cache-to", "file", "iidfile",
	"label", "load", "metadata-file", "network", "no-cache", "no-cache-filter", "output", "platform",
	"progress", "provenance", "pull", "push", "quiet", "sbom", "secret", "shm-size", "ssh", "tag", "target", "ulimit",
}

// flagGroupAnnotation names the help section a flag is listed in.
const flagGroupAnnotation = "slimbuild_flag_group"

const (
	groupBuildx    = "Options (as docker buildx build):"
	groupSlimbuild = "slimbuild options:"
)

// groupBuildFlags puts the buildx flags of cmd in their own help section,
// listed as docker lists them, and slimbuild's own flags in another.
func groupBuildFlags(cmd *cobra.Command) {
	cmd.DisableFlagsInUseLine = true
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		group := groupSlimbuild
		if slices.Contains(buildxFlagNames, f.Name) {
			group = groupBuildx
		}
		cmd.Flags().SetAnnotation(f.Name, flagGroupAnnotation, []string{group})
	})
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		w := c.OutOrStderr()
		fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
		for _, group := range []string{groupBuildx, groupSlimbuild} {
			fs := pflag.NewFlagSet(group, pflag.ContinueOnError)
			c.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if g := f.Annotations[flagGroupAnnotation]; len(g) == 1 && g[0] == group || len(g) == 0 && group == groupSlimbuild {
					fs.AddFlag(f)
				}
			})
			if fs.HasFlags() {
				fmt.Fprintf(w, "\n%s\n%s", group, fs.FlagUsages())
			}
		}
		if c.HasAvailableInheritedFlags() {
			fmt.Fprintf(w, "\nGlobal options:\n%s", c.InheritedFlags().FlagUsages())
		}
		return nil
	})
}

// flagGroups returns the help sections of cmd's flags, for tests.
func flagGroups(cmd *cobra.Command) map[string][]string {
	groups := map[string][]string{}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		g := strings.Join(f.Annotations[flagGroupAnnotation], ",")
		groups[g] = append(groups[g], f.Name)
	})
	return groups
}
