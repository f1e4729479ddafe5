package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestBuildHelpGroups: `build --help` lists every buildx flag, and only those,
// in the buildx section, slimbuild's own flags after it; every name in
// buildxFlagNames is a flag of build.
func TestBuildHelpGroups(t *testing.T) {
	out, _, err := slimbuild(t, t.TempDir(), "build", "--help")
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(out, groupBuildx), strings.Index(out, groupSlimbuild)
	if i < 0 || j < i {
		t.Fatalf("help lacks the sections %q then %q:\n%s", groupBuildx, groupSlimbuild, out)
	}
	if !strings.Contains(out, "slimbuild build [OPTIONS] PATH | -\n") {
		t.Errorf("help lacks buildx's usage line:\n%s", out)
	}
	buildxPart, ownPart := out[i:j], out[j:]
	for _, name := range buildxFlagNames {
		if !strings.Contains(buildxPart, "--"+name+" ") {
			t.Errorf("--%s is not in the buildx section", name)
		}
	}
	for _, name := range []string{"slim", "compression", "forbid", "jobs", "source-date-epoch"} {
		if !strings.Contains(ownPart, "--"+name+" ") || strings.Contains(buildxPart, "--"+name+" ") {
			t.Errorf("--%s is not (only) in the slimbuild section", name)
		}
	}
	groups := flagGroups(newBuildCmd(&Globals{}))
	got := groups[groupBuildx]
	slices.Sort(got)
	if !slices.Equal(got, buildxFlagNames) {
		t.Errorf("buildx section %v, want %v (is every name a flag of build?)", got, buildxFlagNames)
	}
}
