// Command agentlist is run inside a RUN by the ssh mount tests: it lists the
// keys of the agent at $SSH_AUTH_SOCK, one fingerprint a line, and checks that
// the agent refuses to be changed.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	ag := agent.NewClient(c)
	keys, err := ag.List()
	if err != nil {
		fmt.Println("list:", err)
		os.Exit(1)
	}
	for _, k := range keys {
		fmt.Println("key", ssh.FingerprintSHA256(k))
		sig, err := ag.Sign(k, []byte("data"))
		if err != nil {
			fmt.Println("sign:", err)
			os.Exit(1)
		}
		if err := k.Verify([]byte("data"), sig); err != nil {
			fmt.Println("verify:", err)
			os.Exit(1)
		}
		fmt.Println("signed")
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := ag.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		fmt.Println("add refused")
	} else {
		fmt.Println("add accepted")
	}
}
