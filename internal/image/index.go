package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slimbuild/slimbuild/internal/store"
)

// WriteIndexOutput writes a multi-platform image as spec says: only type=oci
// (an OCI layout directory, or an archive when dest ends in ".tar") holds
// several platforms; the docker and tar types hold one, and are refused.
func WriteIndexOutput(idx v1.ImageIndex, spec string, tags []string) error {
	o, err := ParseOutput(spec)
	if err != nil {
		return err
	}
	if o.Type != "oci" {
		return fmt.Errorf("output %q: type=%s holds one platform, the build made several: use type=oci, or slimbuild save --platform OS/ARCH for a docker-archive of one", spec, o.Type)
	}
	var norm []string
	for _, t := range tags {
		n, err := NormalizeName(t)
		if err != nil {
			return fmt.Errorf("output %q: %w", spec, err)
		}
		norm = append(norm, n)
	}
	fill := fillLayout(norm, func(p layout.Path, opts ...layout.Option) error {
		return p.AppendIndex(idx, opts...)
	})
	if !strings.HasSuffix(o.Dest, ".tar") {
		err = writeDirDest(o.Dest, isLayoutDir, fill)
	} else {
		err = writeDest(o.Dest, func(w io.Writer) error {
			dir, err := os.MkdirTemp(filepath.Dir(o.Dest), ".oci-index-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if err := fill(dir); err != nil {
				return err
			}
			return tarDir(w, dir)
		})
	}
	if err != nil {
		return fmt.Errorf("writing output %q: %w", spec, err)
	}
	return nil
}

// tarDir writes the regular files and directories under dir (a layout this
// process just wrote) as a tar stream, in walk order.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: rel + "/", Mode: 0o755, Typeflag: tar.TypeDir})
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", rel)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// PushIndex uploads a multi-platform image (its images, then the index) to
// dest and returns the index digest.
func (r *Registry) PushIndex(ctx context.Context, idx v1.ImageIndex, dest string) (v1.Hash, error) {
	ref, err := r.Ref(dest)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx, r.Options(ctx)...); err != nil {
		return v1.Hash{}, Explain(ref.Context().RegistryStr(), err)
	}
	return d, nil
}

// storedIndex returns the index src (a name or digest) names in st, or nil
// when src names an image or nothing.
func storedIndex(st *store.Store, src string) (v1.ImageIndex, error) {
	if !strings.HasPrefix(src, "sha256:") {
		n, err := NormalizeName(src)
		if err != nil {
			return nil, err
		}
		src = n
	}
	if ok, err := st.IsIndex(src); err != nil || !ok {
		return nil, nil
	}
	return st.Index(src)
}
