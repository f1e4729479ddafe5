package image

import (
	"archive/tar"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/store"
)

// Output is a parsed output spec.
type Output struct {
	Type string // "oci", "docker" or "tar"
	Dest string
}

// ParseOutput parses "type=oci|docker|tar,dest=PATH" (CSV; quote a dest holding commas).
func ParseOutput(spec string) (Output, error) {
	var o Output
	r := csv.NewReader(strings.NewReader(spec))
	fields, err := r.Read()
	if err != nil {
		return o, fmt.Errorf("output %q: %w", spec, err)
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return o, fmt.Errorf("output %q: %q is not key=value", spec, f)
		}
		switch strings.TrimSpace(k) {
		case "type":
			o.Type = v
		case "dest":
			o.Dest = v
		default:
			return o, fmt.Errorf("output %q: unknown key %q (want type, dest)", spec, k)
		}
	}
	switch o.Type {
	case "oci", "docker", "tar":
	case "":
		return o, fmt.Errorf("output %q: missing type (want oci, docker or tar)", spec)
	default:
		return o, fmt.Errorf("output %q: unknown type %q (want oci, docker or tar)", spec, o.Type)
	}
	if o.Dest == "" {
		return o, fmt.Errorf("output %q: missing dest", spec)
	}
	return o, nil
}

// WriteOutput writes img as spec says (see ParseOutput). docker: a docker-archive
// that docker load accepts, with RepoTags = tags; oci: an OCI layout directory, or an
// OCI archive when dest ends in ".tar", naming the image with tags; tar: the
// flattened root filesystem. A dest of "-" is standard output; a device, fifo or
// symlink is written in place; a regular file or directory appears complete or
// not at all (see writeDest and writeDirDest).
func WriteOutput(img v1.Image, spec string, tags []string) error {
	o, err := ParseOutput(spec)
	if err != nil {
		return err
	}
	var norm []string
	for _, t := range tags {
		n, err := NormalizeName(t)
		if err != nil {
			return fmt.Errorf("output %q: %w", spec, err)
		}
		norm = append(norm, n)
	}
	switch {
	case o.Type == "oci" && !strings.HasSuffix(o.Dest, ".tar"):
		err = writeLayoutDir(img, o.Dest, norm)
	default:
		err = writeDest(o.Dest, func(w io.Writer) error {
			switch o.Type {
			case "docker":
				return writeDocker(w, img, norm)
			case "oci":
				return writeOCIArchive(w, img, norm)
			default:
				rc := mutate.Extract(img)
				defer rc.Close()
				_, err := io.Copy(w, rc)
				return err
			}
		})
	}
	if err != nil {
		return fmt.Errorf("writing output %q: %w", spec, err)
	}
	return nil
}

// WriteOutputCompressed is WriteOutput for an image of st, with the layers of
// an OCI output (layout or archive) compressed as c says whatever the store
// holds (see Compressed). A docker-archive gets the layers as stored (docker
// load takes tar and gzip alike, so nothing is compressed), a tar output the
// flattened files.
func WriteOutputCompressed(ctx context.Context, st *store.Store, img v1.Image, spec string, tags []string, c store.Compression) error {
	o, err := ParseOutput(spec)
	if err != nil {
		return err
	}
	if o.Type == "oci" {
		if img, err = Compressed(ctx, st, img, c); err != nil {
			return fmt.Errorf("writing output %q: %w", spec, err)
		}
	}
	return WriteOutput(img, spec, tags)
}

// WriteDocker writes img as a docker-archive with names as its RepoTags (none
// when empty), the stream `docker load` reads.
func WriteDocker(w io.Writer, img v1.Image, names []string) error { return writeDocker(w, img, names) }

func writeDocker(w io.Writer, img v1.Image, names []string) error {
	for _, n := range names {
		if _, err := name.NewTag(n); err != nil {
			return fmt.Errorf("docker-archive tags must be tags, not digests: %q: %w", n, err)
		}
	}
	return writeDockerArchive(w, []dockerEntry{{img: img, tags: names}})
}

// Save writes imgs (keyed by name) as one docker-archive, for "slimbuild save".
// Images with the same digest share one entry; names keep their sorted order.
func Save(w io.Writer, imgs map[string]v1.Image) error {
	if len(imgs) == 0 {
		return errors.New("saving: no images")
	}
	keys := make([]string, 0, len(imgs))
	for n := range imgs {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	var entries []dockerEntry
	byDigest := map[v1.Hash]int{}
	for _, n := range keys {
		norm, err := NormalizeName(n)
		if err != nil {
			return fmt.Errorf("saving: %w", err)
		}
		if _, err := name.NewTag(norm); err != nil {
			return fmt.Errorf("saving %q: docker-archive names must be tags: %w", n, err)
		}
		d, err := imgs[n].Digest()
		if err != nil {
			return fmt.Errorf("saving %q: %w", n, err)
		}
		if i, ok := byDigest[d]; ok {
			entries[i].tags = append(entries[i].tags, norm)
			continue
		}
		byDigest[d] = len(entries)
		entries = append(entries, dockerEntry{img: imgs[n], tags: []string{norm}})
	}
	if err := writeDockerArchive(w, entries); err != nil {
		return fmt.Errorf("saving: %w", err)
	}
	return nil
}

// SaveFile writes Save's archive to path: "-" is standard output, a device,
// fifo or symlink is written in place, a regular file is replaced atomically.
func SaveFile(path string, imgs map[string]v1.Image) error {
	return writeDest(path, func(w io.Writer) error { return Save(w, imgs) })
}

// dockerEntry is one image of a docker-archive and its RepoTags, in order.
type dockerEntry struct {
	img  v1.Image
	tags []string
}

// writeDockerArchive writes the `docker save` format: each config as
// sha256:HEX → HEX.json, each layer blob as HEX.tar.gz (streamed from the image,
// written once even when shared), and manifest.json last, with RepoTags (full
// names, which docker load normalises) in the order given.
func writeDockerArchive(w io.Writer, entries []dockerEntry) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	type manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []manifestEntry
	add := func(name string, size int64, open func() (io.ReadCloser, error)) error {
		if written[name] {
			return nil
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(tw, rc)
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if n != size {
			return fmt.Errorf("writing %s: %d bytes, want %d", name, n, size)
		}
		return nil
	}
	for _, e := range entries {
		cfgName, err := e.img.ConfigName()
		if err != nil {
			return err
		}
		raw, err := e.img.RawConfigFile()
		if err != nil {
			return err
		}
		me := manifestEntry{Config: cfgName.Hex + ".json", RepoTags: []string{}}
		for _, t := range e.tags {
			me.RepoTags = append(me.RepoTags, t)
		}
		if err := add(me.Config, int64(len(raw)), func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(string(raw))), nil
		}); err != nil {
			return err
		}
		layers, err := e.img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			mt, err := l.MediaType()
			if err != nil {
				return err
			}
			ext := ".tar.gz"
			switch mt {
			case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
				ext = ".tar"
			case types.OCILayerZStd:
				ext = ".tar.zst"
			}
			name := d.Hex + ext
			if err := add(name, size, l.Compressed); err != nil {
				return err
			}
			me.Layers = append(me.Layers, name)
		}
		manifest = append(manifest, me)
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := add("manifest.json", int64(len(data)), func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(data))), nil
	}); err != nil {
		return err
	}
	return tw.Close()
}

// annotationsFor names an image in an OCI index: the full name for containerd and
// docker, the tag alone in the OCI ref.name (as buildkit and skopeo expect).
func annotationsFor(n string) map[string]string {
	a := map[string]string{"io.containerd.image.name": n}
	if r, err := name.NewTag(n); err == nil {
		a["org.opencontainers.image.ref.name"] = r.TagStr()
	}
	return a
}

func indexDescriptors(img v1.Image, names []string) ([]v1.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	h, err := img.Digest()
	if err != nil {
		return nil, err
	}
	sz, err := img.Size()
	if err != nil {
		return nil, err
	}
	base := v1.Descriptor{MediaType: mt, Digest: h, Size: sz}
	if len(names) == 0 {
		return []v1.Descriptor{base}, nil
	}
	var out []v1.Descriptor
	for _, n := range names {
		d := base
		d.Annotations = annotationsFor(n)
		out = append(out, d)
	}
	return out, nil
}

// writeLayoutDir writes an OCI layout directory beside dest, then puts it in
// place of dest (see writeDirDest).
func writeLayoutDir(img v1.Image, dest string, names []string) error {
	return writeDirDest(dest, isLayoutDir, fillLayout(names, func(p layout.Path, opts ...layout.Option) error {
		return p.AppendImage(img, opts...)
	}))
}

// isLayoutDir reports whether dir is an OCI layout (has an oci-layout file).
func isLayoutDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil
}

// fillLayout returns a function that writes a new OCI layout in a directory and
// adds what add adds to it once per name (annotated with it), or once unnamed.
func fillLayout(names []string, add func(p layout.Path, opts ...layout.Option) error) func(dir string) error {
	return func(dir string) error {
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return add(p)
		}
		for _, n := range names {
			if err := add(p, layout.WithAnnotations(annotationsFor(n))); err != nil {
				return err
			}
		}
		return nil
	}
}

// writeOCIArchive streams an OCI layout as a tar: oci-layout, index.json, then the
// blobs (config, manifest, layers streamed from img).
func writeOCIArchive(w io.Writer, img v1.Image, names []string) error {
	tw := tar.NewWriter(w)
	file := func(p string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	descs, err := indexDescriptors(img, names)
	if err != nil {
		return err
	}
	idx, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs})
	if err != nil {
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := file("index.json", idx); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	blob := func(h v1.Hash) string { return filepath.ToSlash(filepath.Join("blobs", h.Algorithm, h.Hex)) }
	written := map[v1.Hash]bool{}
	rawMan, err := img.RawManifest()
	if err != nil {
		return err
	}
	h, _ := img.Digest()
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	for _, b := range []struct {
		h v1.Hash
		b []byte
	}{{cfgName, rawCfg}, {h, rawMan}} {
		if err := file(blob(b.h), b.b); err != nil {
			return err
		}
		written[b.h] = true
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(m.Layers) {
		return fmt.Errorf("image has %d layers, manifest lists %d", len(layers), len(m.Layers))
	}
	for k, l := range layers {
		d := m.Layers[k]
		if written[d.Digest] || !d.MediaType.IsDistributable() {
			continue
		}
		written[d.Digest] = true
		if err := tw.WriteHeader(&tar.Header{Name: blob(d.Digest), Mode: 0o644, Size: d.Size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		if n != d.Size {
			return fmt.Errorf("layer %s: %d bytes, manifest says %d", d.Digest, n, d.Size)
		}
	}
	return tw.Close()
}
