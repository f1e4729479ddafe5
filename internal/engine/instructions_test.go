package engine_test

import (
	"archive/tar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/engine"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func TestArgAndEnvExpansion(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
ARG OVERRIDDEN=from-dockerfile
ARG DEFAULTED=kept
ARG ONLY_RUN=visible
ENV A=${UNSET:-dflt} B=${DEFAULTED:+alt} C=${UNSET:+never} D=${OVERRIDDEN}
ENV E="$A-$B"
RUN echo "$OVERRIDDEN $DEFAULTED $ONLY_RUN" > /args && echo "$A|$B|$C|$D|$E" > /envs
`,
	}, engine.Options{BuildArgs: map[string]string{"OVERRIDDEN": "from-flag", "NOT_DECLARED": "x"}})
	fs := fsOf(t, res.Image)
	if got, want := fileData(t, fs, "args"), "from-flag kept visible\n"; got != want {
		t.Errorf("ARGs seen by RUN = %q, want %q", got, want)
	}
	if got, want := fileData(t, fs, "envs"), "dflt|alt||from-flag|dflt-alt\n"; got != want {
		t.Errorf("ENVs seen by RUN = %q, want %q", got, want)
	}
	cf := configOf(t, res.Image)
	want := []string{defaultPath, "A=dflt", "B=alt", "C=", "D=from-flag", "E=dflt-alt"}
	if diff := cmp.Diff(want, cf.Config.Env); diff != "" {
		t.Errorf("config Env (-want +got), ARGs must not be stored:\n%s", diff)
	}
}

func TestWorkdir(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
WORKDIR /a
WORKDIR b
WORKDIR c
RUN pwd > /pwd
`,
	}, engine.Options{})
	fs := fsOf(t, res.Image)
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if e, ok := fs[d]; !ok || e.Type != tar.TypeDir {
			t.Errorf("/%s is not a directory in the image (%+v)", d, e)
		}
	}
	if got := fileData(t, fs, "pwd"); got != "/a/b/c\n" {
		t.Errorf("RUN pwd = %q, want /a/b/c", got)
	}
	if wd := configOf(t, res.Image).Config.WorkingDir; wd != "/a/b/c" {
		t.Errorf("WorkingDir = %q, want /a/b/c", wd)
	}
}

func TestUser(t *testing.T) {
	tests := []struct {
		name, user string
		wantIDs    string // id -u, id -g
	}{
		{name: "name from passwd", user: "nobody", wantIDs: "65534 65534"},
		{name: "uid only", user: "1234", wantIDs: "1234 0"},
		{name: "uid:gid", user: "1234:5678", wantIDs: "1234 5678"},
		{name: "name:group", user: "nobody:root", wantIDs: "65534 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			res := mustBuild(t, st, map[string]string{
				"Dockerfile": "FROM busybox\nUSER " + tc.user + "\nRUN echo $(id -u) $(id -g) > /tmp/ids\n",
			}, engine.Options{})
			fs := fsOf(t, res.Image)
			if got := strings.TrimSpace(fileData(t, fs, "tmp/ids")); got != tc.wantIDs {
				t.Errorf("id -u, id -g = %q, want %q", got, tc.wantIDs)
			}
			if got := configOf(t, res.Image).Config.User; got != tc.user {
				t.Errorf("config User = %q, want %q", got, tc.user)
			}
		})
	}
}

func TestShellAndCommands(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox AS base
CMD ["base-cmd"]

FROM base AS entry-resets
ENTRYPOINT ["/bin/echo", "entry"]

FROM base AS shell
SHELL ["/bin/sh", "-c", "echo \"via-shell:$0\" > /shellout"]
RUN hello world
CMD run me
ENTRYPOINT ep here

FROM base AS exec
CMD ["/bin/echo", "a b"]
ENTRYPOINT ["/bin/sh", "-c"]
`,
	}, engine.Options{Target: "shell"})
	fs := fsOf(t, res.Image)
	if got := fileData(t, fs, "shellout"); got != "via-shell:hello world\n" {
		t.Errorf("RUN through SHELL wrote %q, want %q", got, "via-shell:hello world\n")
	}
	shell := []string{"/bin/sh", "-c", "echo \"via-shell:$0\" > /shellout"}
	cf := configOf(t, res.Image)
	if diff := cmp.Diff(shell, cf.Config.Shell); diff != "" {
		t.Errorf("config Shell (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(slices.Clone(shell), "run me"), cf.Config.Cmd); diff != "" {
		t.Errorf("shell-form CMD (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(slices.Clone(shell), "ep here"), cf.Config.Entrypoint); diff != "" {
		t.Errorf("shell-form ENTRYPOINT (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		target          string
		wantCmd, wantEP []string
	}{
		// ENTRYPOINT in a stage that did not set CMD resets the inherited CMD.
		{target: "entry-resets", wantCmd: nil, wantEP: []string{"/bin/echo", "entry"}},
		// CMD set in the same stage survives ENTRYPOINT.
		{target: "exec", wantCmd: []string{"/bin/echo", "a b"}, wantEP: []string{"/bin/sh", "-c"}},
		{target: "base", wantCmd: []string{"base-cmd"}},
	} {
		t.Run(tc.target, func(t *testing.T) {
			res := mustBuild(t, st, map[string]string{"Dockerfile": `FROM busybox AS base
CMD ["base-cmd"]

FROM base AS entry-resets
ENTRYPOINT ["/bin/echo", "entry"]

FROM base AS exec
CMD ["/bin/echo", "a b"]
ENTRYPOINT ["/bin/sh", "-c"]
`}, engine.Options{Target: tc.target})
			cf := configOf(t, res.Image)
			if diff := cmp.Diff(tc.wantCmd, cf.Config.Cmd); diff != "" {
				t.Errorf("Cmd (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEP, cf.Config.Entrypoint); diff != "" {
				t.Errorf("Entrypoint (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetadataInstructions(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
MAINTAINER Jane Doe <jane@example.com>
EXPOSE 80 53/udp
ENV PORT=8080
EXPOSE $PORT
VOLUME ["/data", "/logs"]
VOLUME /cache
LABEL a=b "with space"="x y"
LABEL a=override
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD wget -q localhost || exit 1
`,
	}, engine.Options{})
	cf := configOf(t, res.Image)
	c := cf.Config
	if cf.Author != "Jane Doe <jane@example.com>" {
		t.Errorf("Author = %q", cf.Author)
	}
	wantPorts := map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8080/tcp": {}}
	if diff := cmp.Diff(wantPorts, c.ExposedPorts); diff != "" {
		t.Errorf("ExposedPorts (-want +got):\n%s", diff)
	}
	wantVolumes := map[string]struct{}{"/data": {}, "/logs": {}, "/cache": {}}
	if diff := cmp.Diff(wantVolumes, c.Volumes); diff != "" {
		t.Errorf("Volumes (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{"a": "override", "with space": "x y"}
	if diff := cmp.Diff(wantLabels, c.Labels); diff != "" {
		t.Errorf("Labels (-want +got):\n%s", diff)
	}
	if c.StopSignal != "SIGINT" {
		t.Errorf("StopSignal = %q, want SIGINT", c.StopSignal)
	}
	wantHC := &v1.HealthConfig{Test: []string{"CMD-SHELL", "wget -q localhost || exit 1"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 4}
	if diff := cmp.Diff(wantHC, c.Healthcheck); diff != "" {
		t.Errorf("Healthcheck (-want +got):\n%s", diff)
	}
	// The default PATH is added because the imported busybox has no Env.
	if diff := cmp.Diff([]string{defaultPath, "PORT=8080"}, c.Env); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	// Metadata instructions add history entries but no layers.
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Errorf("image has %d layers, want only the base's", len(layers))
	}
	nonEmpty := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(layers) {
		t.Errorf("history has %d non-empty entries for %d layers", nonEmpty, len(layers))
	}
}

func TestOnbuild(t *testing.T) {
	st := newStore(t)
	base := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
ONBUILD RUN echo triggered > /onbuild
ONBUILD COPY trigger.txt /trigger.txt
RUN echo base > /base
`,
	}, engine.Options{Tags: []string{"onbuild-base:1"}})
	cf := configOf(t, base.Image)
	wantTriggers := []string{"RUN echo triggered > /onbuild", "COPY trigger.txt /trigger.txt"}
	if diff := cmp.Diff(wantTriggers, cf.Config.OnBuild); diff != "" {
		t.Errorf("OnBuild (-want +got):\n%s", diff)
	}
	if _, ok := fsOf(t, base.Image)["onbuild"]; ok {
		t.Errorf("ONBUILD trigger ran in the image that declared it")
	}

	child := mustBuild(t, st, map[string]string{
		"Dockerfile":  "FROM onbuild-base:1\nRUN test -f /onbuild && echo child > /child\n",
		"trigger.txt": "from the child's context\n",
	}, engine.Options{})
	fs := fsOf(t, child.Image)
	if got := fileData(t, fs, "onbuild"); got != "triggered\n" {
		t.Errorf("/onbuild = %q", got)
	}
	if got := fileData(t, fs, "trigger.txt"); got != "from the child's context\n" {
		t.Errorf("/trigger.txt = %q", got)
	}
	fileData(t, fs, "child")
	if got := configOf(t, child.Image).Config.OnBuild; len(got) != 0 {
		t.Errorf("child image keeps ONBUILD triggers %q; they are consumed", got)
	}
}

func TestDefaultPathKeptWhenBaseHasOne(t *testing.T) {
	st := newStore(t)
	mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nENV PATH=/opt/bin:/bin\n",
	}, engine.Options{Tags: []string{"haspath:1"}})
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM haspath:1\nRUN echo $PATH > /path\n",
	}, engine.Options{})
	if diff := cmp.Diff([]string{"PATH=/opt/bin:/bin"}, configOf(t, res.Image).Config.Env); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	if got := fileData(t, fsOf(t, res.Image), "path"); got != "/opt/bin:/bin\n" {
		t.Errorf("RUN saw PATH %q", got)
	}
}
