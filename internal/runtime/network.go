package runtime

import "fmt"

// Network is how a container reaches the network. The zero value is NetworkPrivate.
type Network string

const (
	// NetworkPrivate is a network namespace of the container's own, with outbound
	// access through a user-mode helper (pasta or slirp4netns) and DNS through the
	// helper's forwarder. The host's loopback services are out of reach. It is what
	// `docker build` gives RUN by default.
	NetworkPrivate Network = ""
	// NetworkHost shares the host's network namespace.
	NetworkHost Network = "host"
	// NetworkNone is a namespace with only the loopback interface, up.
	NetworkNone Network = "none"
)

// ParseNetwork reads a --network value: "default" (or empty), "private", "host" or "none".
func ParseNetwork(s string) (Network, error) {
	switch s {
	case "", "default", "private":
		return NetworkPrivate, nil
	case string(NetworkHost):
		return NetworkHost, nil
	case string(NetworkNone):
		return NetworkNone, nil
	}
	return "", fmt.Errorf("unsupported network %q: use default, none or host", s)
}

// String is the network's name as a user writes it ("private" for the default).
func (n Network) String() string {
	if n == NetworkPrivate {
		return "private"
	}
	return string(n)
}
