package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultDockerSocket is where docker listens unless DOCKER_HOST says otherwise.
const DefaultDockerSocket = "/var/run/docker.sock"

// DockerSocket is the unix socket of the docker daemon named by dockerHost
// (the value of DOCKER_HOST: "" or unix://PATH); it must exist and be a socket.
// Other schemes are refused: slimbuild talks to docker only on this machine.
func DockerSocket(dockerHost string) (string, error) {
	sock := DefaultDockerSocket
	if dockerHost != "" {
		p, ok := strings.CutPrefix(dockerHost, "unix://")
		if !ok || p == "" {
			return "", fmt.Errorf("DOCKER_HOST=%s: only unix://PATH sockets are supported", dockerHost)
		}
		sock = p
	}
	fi, err := os.Stat(sock)
	if err != nil {
		return "", fmt.Errorf("no docker daemon: %w (start docker, or set DOCKER_HOST=unix://PATH)", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return "", fmt.Errorf("no docker daemon: %s is not a socket", sock)
	}
	return sock, nil
}

// maxDockerReply bounds what is read of the daemon's reply.
const maxDockerReply = 1 << 20

// LoadIntoDocker streams img as a docker-archive, tagged with names, to the
// docker daemon listening on the unix socket sock (POST /images/load, what
// `docker load` does) and returns the daemon's error, if any.
func LoadIntoDocker(ctx context.Context, sock string, img v1.Image, names []string) error {
	var tags []string
	for _, n := range names {
		norm, err := NormalizeName(n)
		if err != nil {
			return err
		}
		tags = append(tags, norm)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeDocker(pw, img, tags)) }()
	defer pr.Close()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/images/load?quiet=1", pr)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("loading into docker at %s: %w", sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerReply))
	if err != nil {
		return fmt.Errorf("loading into docker at %s: reading the reply: %w", sock, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return fmt.Errorf("loading into docker at %s: %s", sock, e.Message)
		}
		return fmt.Errorf("loading into docker at %s: %s: %s", sock, resp.Status, strings.TrimSpace(string(body)))
	}
	// The reply is a stream of JSON messages; a failure is one with an error.
	dec := json.NewDecoder(strings.NewReader(string(body)))
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("loading into docker at %s: unreadable reply: %w", sock, err)
		}
		if m.Error != "" {
			return fmt.Errorf("loading into docker at %s: %s", sock, m.Error)
		}
	}
}
