package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrUnauthorized is wrapped by errors about credentials a registry refused.
var ErrUnauthorized = errors.New("the registry refused the credentials")

// DockerConfigPath is the docker config file: $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json. go-containerregistry's default keychain reads the same file.
func DockerConfigPath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the docker config file: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// registryName parses a registry host as docker login takes it.
func (r *Registry) registryName(host string) (name.Registry, error) {
	var opts []name.Option
	if IsLoopback(host) || containsHost(r.Insecure, host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("registry %q: %w", host, err)
	}
	return reg, nil
}

func containsHost(hosts []string, h string) bool {
	for _, x := range hosts {
		if x == h {
			return true
		}
	}
	return false
}

// configKey is the key docker uses for a registry in the config file.
func configKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return "https://index.docker.io/v1/"
	}
	return reg.RegistryStr()
}

// CheckLogin asks the registry host whether user and password are good.
func (r *Registry) CheckLogin(ctx context.Context, host, user, password string) error {
	reg, err := r.registryName(host)
	if err != nil {
		return err
	}
	base := r.baseTransport()
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return loginError(reg, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(reg, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("logging in to %s as %s: %w (%s)", reg.RegistryStr(), user, ErrUnauthorized, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logging in to %s: unexpected status %s", reg.RegistryStr(), resp.Status)
	}
	return nil
}

func loginError(reg name.Registry, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("logging in to %s: %w: %v", reg.RegistryStr(), ErrUnauthorized, err)
	}
	return fmt.Errorf("logging in to %s: %w", reg.RegistryStr(), err)
}

// SaveLogin stores user and password for host: in the credential helper the docker
// config names for it (credHelpers, else credsStore), else base64 in its "auths",
// and returns where they went. The config file keeps every other setting; it is
// written to a temporary file (mode 0600) and renamed over the old one.
func (r *Registry) SaveLogin(host, user, password string) (string, error) {
	reg, err := r.registryName(host)
	if err != nil {
		return "", err
	}
	path, err := DockerConfigPath()
	if err != nil {
		return "", err
	}
	key := configKey(reg)
	cfg, err := readDockerConfig(path)
	if err != nil {
		return "", err
	}
	if helper := credHelper(cfg, reg.RegistryStr()); helper != "" {
		c := &credentials.Credentials{ServerURL: key, Username: user, Secret: password}
		if err := client.Store(client.NewShellProgramFunc("docker-credential-"+helper), c); err != nil {
			return "", fmt.Errorf("storing credentials for %s with docker-credential-%s: %w", reg.RegistryStr(), helper, err)
		}
		return "docker-credential-" + helper, nil
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := cfg["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return "", fmt.Errorf("docker config %s: auths: %w", path, err)
		}
	}
	entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
	auths[key] = entry
	cfg["auths"], _ = json.Marshal(auths)
	if err := writeDockerConfig(path, cfg); err != nil {
		return "", err
	}
	return path, nil
}

// Logout removes what SaveLogin stored for host; it reports whether there was anything.
func (r *Registry) Logout(host string) (bool, error) {
	reg, err := r.registryName(host)
	if err != nil {
		return false, err
	}
	path, err := DockerConfigPath()
	if err != nil {
		return false, err
	}
	key := configKey(reg)
	cfg, err := readDockerConfig(path)
	if err != nil {
		return false, err
	}
	if helper := credHelper(cfg, reg.RegistryStr()); helper != "" {
		if err := client.Erase(client.NewShellProgramFunc("docker-credential-"+helper), key); err != nil {
			if credentials.IsErrCredentialsNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("erasing credentials for %s with docker-credential-%s: %w", reg.RegistryStr(), helper, err)
		}
		return true, nil
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := cfg["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return false, fmt.Errorf("docker config %s: auths: %w", path, err)
		}
	}
	if _, ok := auths[key]; !ok {
		return false, nil
	}
	delete(auths, key)
	cfg["auths"], _ = json.Marshal(auths)
	return true, writeDockerConfig(path, cfg)
}

// credHelper is the credential helper the config names for host, "" for none.
func credHelper(cfg map[string]json.RawMessage, host string) string {
	var helpers map[string]string
	if raw, ok := cfg["credHelpers"]; ok && json.Unmarshal(raw, &helpers) == nil && helpers[host] != "" {
		return helpers[host]
	}
	var store string
	if raw, ok := cfg["credsStore"]; ok && json.Unmarshal(raw, &store) == nil {
		return store
	}
	return ""
}

func readDockerConfig(path string) (map[string]json.RawMessage, error) {
	cfg := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading docker config: %w", err)
	}
	if len(data) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	return cfg, nil
}

// writeDockerConfig writes cfg to path atomically, readable by the owner only.
func writeDockerConfig(path string, cfg map[string]json.RawMessage) error {
	data, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing docker config: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config.json-")
	if err != nil {
		return fmt.Errorf("writing docker config: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing docker config %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing docker config %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
