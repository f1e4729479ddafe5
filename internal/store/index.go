package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// RefNameAnnotation holds an image's normalised name in index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.path("index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading store index: %w", err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("parsing store index %q: %w", s.path("index.json"), err)
	}
	return &im, nil
}

// errUnchanged, returned by an updateIndex callback, leaves index.json as it is.
var errUnchanged = errors.New("index unchanged")

// updateIndex rewrites index.json under the exclusive lock on ROOT/lock.
func (s *Store) updateIndex(fn func(*v1.IndexManifest) error) error {
	lf, err := os.OpenFile(s.path("lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening store lock: %w", err)
	}
	defer lf.Close() // releases the lock
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking store index: %w", err)
	}
	im := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if _, err := os.Stat(s.path("index.json")); err == nil {
		if im, err = s.readIndex(); err != nil {
			return err
		}
	}
	if err := fn(im); errors.Is(err, errUnchanged) {
		return nil
	} else if err != nil {
		return err
	}
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	sort.SliceStable(im.Manifests, func(i, j int) bool {
		return im.Manifests[i].Annotations[RefNameAnnotation] < im.Manifests[j].Annotations[RefNameAnnotation]
	})
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.path("index.json"), b)
}

// manifestDescriptor describes the stored manifest blob h.
func (s *Store) manifestDescriptor(h v1.Hash) (v1.Descriptor, error) {
	if !s.HasBlob(h) {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, ErrNotFound)
	}
	b, err := ReadLimited(s.BlobPath(h), MaxManifestSize)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("reading manifest %s: %w", h, err)
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Config    *v1.Descriptor  `json:"config"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("parsing manifest %s: %w", h, err)
	}
	mt := m.MediaType
	if mt == "" {
		// OCI manifests may omit mediaType; docker schema 2 always sets it.
		mt = types.OCIManifestSchema1
		if m.Config == nil {
			mt = types.OCIImageIndex
		}
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(b))}, nil
}

// Tag points name at the manifest digest (atomically replacing index.json).
// name must already be normalised.
func (s *Store) Tag(name string, h v1.Hash) error {
	if name == "" {
		return errors.New("tagging: empty name")
	}
	desc, err := s.manifestDescriptor(h)
	if err != nil {
		return fmt.Errorf("tagging %q: %w", name, err)
	}
	desc.Annotations = map[string]string{RefNameAnnotation: name}
	err = s.updateIndex(func(im *v1.IndexManifest) error {
		for _, d := range im.Manifests {
			if d.Annotations[RefNameAnnotation] == name && d.Digest == desc.Digest && d.MediaType == desc.MediaType && d.Size == desc.Size {
				return errUnchanged // spares a rewrite and its fsyncs on an unchanged rebuild
			}
		}
		out := im.Manifests[:0]
		for _, d := range im.Manifests {
			if d.Annotations[RefNameAnnotation] != name {
				out = append(out, d)
			}
		}
		im.Manifests = append(out, desc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tagging %q: %w", name, err)
	}
	return nil
}

// Untag removes a name. The image's blobs stay until GC.
func (s *Store) Untag(name string) error {
	found := false
	err := s.updateIndex(func(im *v1.IndexManifest) error {
		out := im.Manifests[:0]
		for _, d := range im.Manifests {
			if d.Annotations[RefNameAnnotation] == name {
				found = true
				continue
			}
			out = append(out, d)
		}
		im.Manifests = out
		if !found {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("untagging %q: %w", name, err)
	}
	return nil
}

// List returns every named image, sorted by name.
func (s *Store) List() ([]Entry, error) {
	im, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, d := range im.Manifests {
		if n := d.Annotations[RefNameAnnotation]; n != "" {
			out = append(out, Entry{Name: n, Digest: d.Digest})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// lookup returns the descriptor named name.
func (s *Store) lookup(name string) (v1.Descriptor, error) {
	im, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[RefNameAnnotation] == name {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("image %q: %w", name, ErrNotFound)
}
