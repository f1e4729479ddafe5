// Command goapp is the corpus' Go binary: built with cgo off, it reads a data
// file and resolves a user and a group through os/user (pure Go: it reads
// /etc/passwd and /etc/group itself).
package main

import (
	"fmt"
	"os"
	"os/user"
	"strings"
)

func main() {
	data, err := os.ReadFile("/app/goapp/words.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	words := strings.Fields(string(data))
	u, err := user.Lookup("app")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d words, first %q, last %q\n", len(words), words[0], words[len(words)-1])
	fmt.Printf("user %s uid %s home %s group %s\n", u.Username, u.Uid, u.HomeDir, g.Name)
}
