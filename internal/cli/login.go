package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slimbuild/slimbuild/internal/image"
)

func newLoginCmd(g *Globals) *cobra.Command {
	var (
		user, password string
		passwordStdin  bool
		newRegistry    func(io.Writer) *image.Registry
	)
	cmd := &cobra.Command{
		Use:   "login [flags] REGISTRY",
		Short: "Check credentials with a registry and save them in the docker config file",
		Long: "Check credentials with a registry and save them where docker keeps them: the credential helper\n" +
			"the docker config file names for the registry (credHelpers, credsStore), else its \"auths\"\n" +
			"($DOCKER_CONFIG/config.json or ~/.docker/config.json, mode 0600).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if user == "" {
				return fmt.Errorf("login %s: give the user name with -u USER", host)
			}
			switch {
			case passwordStdin && password != "":
				return fmt.Errorf("login %s: --password and --password-stdin are exclusive", host)
			case passwordStdin:
				line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 1<<20)).ReadString('\n')
				if err != nil && err != io.EOF {
					return fmt.Errorf("login %s: reading the password from stdin: %w", host, err)
				}
				password = strings.TrimRight(line, "\r\n")
			case password == "":
				return fmt.Errorf("login %s: give the password with --password-stdin (or -p)", host)
			}
			if password == "" {
				return fmt.Errorf("login %s: empty password", host)
			}
			reg := newRegistry(nil)
			if err := reg.CheckLogin(cmd.Context(), host, user, password); err != nil {
				return err
			}
			where, err := reg.SaveLogin(host, user, password)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "logged in to %s as %s (credentials in %s)\n", host, user, where)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&user, "username", "u", "", "user name")
	f.StringVarP(&password, "password", "p", "", "password (visible to other users in the process list: prefer --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	newRegistry = addRegistryFlags(cmd)
	return cmd
}

func newLogoutCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove the credentials saved for a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			had, err := (&image.Registry{}).Logout(args[0])
			if err != nil {
				return err
			}
			if had {
				fmt.Fprintf(cmd.ErrOrStderr(), "logged out of %s\n", args[0])
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "not logged in to %s\n", args[0])
			}
			return nil
		},
	}
}
