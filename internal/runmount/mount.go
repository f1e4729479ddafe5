package runmount

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxSecretSize is the largest secret a RUN gets, as in BuildKit.
const maxSecretSize = 500 << 10

// secretValue reads the secret m names; empty when it is optional and not given.
func (r *Mounter) secretValue(m *instructions.Mount) ([]byte, error) {
	id := secretID(m)
	src, ok := r.cfg.Secrets[id]
	if !ok {
		if m.Required {
			return nil, fmt.Errorf("secret %q is required but was not given (--secret id=%s,src=FILE)", id, id)
		}
		return nil, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", id, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", id, err)
	}
	if len(data) > maxSecretSize {
		return nil, fmt.Errorf("secret %q is larger than %d bytes", id, maxSecretSize)
	}
	return data, nil
}

// resolveMount turns a RUN --mount other than ssh into runtime mounts. files
// is a private directory of the step for files made for it; wd is the working
// directory, which a relative target is taken from, as in BuildKit. release,
// when not nil, must be called once the RUN is over, also on error.
func (r *Mounter) resolveMount(ctx context.Context, m *instructions.Mount, wd, files string) (_ []specs.Mount, release func(), _ error) {
	target := m.Target
	if !path.IsAbs(target) {
		target = path.Join("/", wd, target)
	}
	switch m.Type {
	case instructions.MountTypeCache:
		if target == "/" {
			return nil, nil, fmt.Errorf("RUN --mount=type=cache: invalid target %q", m.Target)
		}
		dir, unlock, err := r.cacheDir(ctx, m, target)
		if err != nil {
			return nil, nil, err
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: dir, Options: opts}}, unlock, nil
	case instructions.MountTypeSecret:
		if m.Env != nil && m.Target == "" {
			return nil, nil, nil // only an environment variable
		}
		id := secretID(m)
		if m.Target == "" {
			target = "/run/secrets/" + path.Base(id)
		}
		if _, ok := r.cfg.Secrets[id]; !ok && !m.Required {
			return nil, nil, nil
		}
		data, err := r.secretValue(m)
		if err != nil {
			return nil, nil, err
		}
		// The RUN sees a copy owned and moded as asked (root, 0400 by
		// default, as in BuildKit), removed with the step's directory.
		src, err := os.CreateTemp(files, "secret-")
		if err != nil {
			return nil, nil, err
		}
		uid, gid, mode := fileOwner(m, 0o400)
		_, err = src.Write(data)
		if err == nil {
			err = src.Chown(uid, gid)
		}
		if err == nil {
			err = unix.Fchmod(int(src.Fd()), mode)
		}
		if cerr := src.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, nil, fmt.Errorf("secret %q: %w", id, err)
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: src.Name(), Options: []string{"rbind", "ro"}}}, nil, nil
	case instructions.MountTypeTmpfs:
		opts := []string{"nosuid", "nodev", "mode=1777"}
		if m.SizeLimit > 0 {
			opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return []specs.Mount{{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts}}, nil, nil
	case instructions.MountTypeBind:
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		t, err := r.cfg.Sources.Tree(ctx, m.From)
		if err != nil {
			return nil, nil, err
		}
		host, readOnly, release, err := t.Bind(m.Source, !m.ReadOnly)
		if err != nil {
			return nil, nil, err
		}
		if readOnly && !m.ReadOnly {
			opts = append(opts, "ro")
		}
		return []specs.Mount{{Destination: target, Type: "bind", Source: host, Options: opts}}, release, nil
	}
	return nil, nil, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
}
