package dockerfile

// The meaning of single instructions, apart from any build state: how a base
// image's ONBUILD triggers parse, how an instruction is written in history,
// and what command a RUN executes.

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// ParseTriggers parses a base image's ONBUILD triggers into the instructions
// they run first in a stage built from it. ONBUILD, FROM and MAINTAINER are not
// allowed as triggers, as in BuildKit.
func ParseTriggers(triggers []string) ([]instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(strings.Join(triggers, "\n")))
	if err != nil {
		return nil, err
	}
	var cmds []instructions.Command
	for _, n := range res.AST.Children {
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return nil, err
		}
		switch strings.ToUpper(c.Name()) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return nil, fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(c.Name()))
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// CommandText is an instruction as written, for progress and history.
func CommandText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// RunArgs is the command a RUN executes with the stage's shell, and a script
// file to provide at /dev/pipes/<name> when a heredoc with a shebang is the
// whole command.
func RunArgs(c *instructions.RunCommand, shell []string) (args []string, script *instructions.ShellInlineFile) {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...), nil
	}
	if len(c.Files) == 1 && len(c.CmdLine) == 1 && isHeredocMarker(c.CmdLine[0], c.Files[0].Name) {
		f := c.Files[0]
		data := f.Data
		if f.Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			f.Data = data
			return []string{"/dev/pipes/" + f.Name}, &f
		}
		return append(append([]string{}, shell...), data), nil
	}
	line := strings.Join(c.CmdLine, " ")
	if len(c.Files) > 0 {
		// The shell reads the heredocs itself: give it the whole script.
		var sb strings.Builder
		sb.WriteString(line)
		sb.WriteString("\n")
		for _, f := range c.Files {
			sb.WriteString(f.Data)
			if !strings.HasSuffix(f.Data, "\n") && f.Data != "" {
				sb.WriteString("\n")
			}
			sb.WriteString(f.Name + "\n")
		}
		line = sb.String()
	}
	return append(append([]string{}, shell...), line), nil
}

func isHeredocMarker(word, name string) bool {
	w := strings.TrimPrefix(strings.TrimPrefix(word, "<<"), "-")
	w = strings.Trim(w, `"'`)
	return strings.HasPrefix(word, "<<") && w == name
}
