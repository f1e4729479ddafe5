package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
)

// Kinds of import source, as detected by sourceKind.
const (
	kindRootfsDir   = "rootfs directory"
	kindRootfsTar   = "rootfs tarball"
	kindDocker      = "docker-archive"
	kindOCILayout   = "OCI layout"
	kindOCIArchive  = "OCI archive"
	maxArchiveEntry = 1 << 40
)

// sourceKind tells what path holds. Archives are recognised by their top-level
// oci-layout/index.json (OCI) or manifest.json (docker) entries; they must be plain
// (uncompressed) tars, as docker save and OCI tools write them. Anything else that
// is a tar, compressed or not, is a rootfs tarball.
func sourceKind(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(p, "oci-layout")); err == nil {
			return kindOCILayout, nil
		}
		return kindRootfsDir, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, err := layer.Decompress(f)
	if err != nil {
		return "", err
	}
	defer d.Close()
	br := bufio.NewReaderSize(d, 4096)
	head, _ := br.Peek(1024)
	if _, err := tar.NewReader(bytes.NewReader(head)).Next(); err != nil && err != io.EOF {
		return "", fmt.Errorf("not a directory or a tar archive: %w", err)
	}
	if !isPlainTarStart(f) {
		return kindRootfsTar, nil // compressed (or a pre-POSIX tar)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	// Plain tar: scan the headers (tar.Reader seeks over file bodies).
	tr := tar.NewReader(f)
	var sawManifest, sawLayout, sawIndex bool
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading tar: %w", err)
		}
		switch path.Clean(strings.TrimPrefix(hdr.Name, "./")) {
		case "manifest.json":
			sawManifest = true
		case "oci-layout":
			sawLayout = true
		case "index.json":
			sawIndex = true
		}
	}
	switch {
	case sawLayout && sawIndex:
		return kindOCIArchive, nil
	case sawManifest:
		return kindDocker, nil
	}
	return kindRootfsTar, nil
}

// isPlainTarStart reports whether f (positioned anywhere) starts with a ustar/gnu tar header.
func isPlainTarStart(f *os.File) bool {
	var hdr [512]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return false
	}
	return bytes.HasPrefix(hdr[257:], []byte("ustar")) // "ustar\x00" (POSIX) or "ustar  " (GNU)
}

// Import stores the image held by source and, when name is set, tags it. source is a
// root filesystem directory or tarball (plain, gzip, zstd, bzip2 or xz), which becomes
// a one-layer image with a config like docker import's (no Env, no Cmd); a
// docker-archive; an OCI layout directory; or an OCI archive. It returns the manifest digest.
func Import(ctx context.Context, st *store.Store, source, name string) (v1.Hash, error) {
	return importFor(ctx, st, source, name, nil)
}

// ImportFor is Import for platform p: a root filesystem becomes an image for p,
// an archive or layout gives its image for p (a single image must be for p),
// and the name becomes an index that keeps its images for other platforms
// (store.AddPlatform). It returns the image's manifest digest.
func ImportFor(ctx context.Context, st *store.Store, source, name string, p v1.Platform) (v1.Hash, error) {
	return importFor(ctx, st, source, name, &p)
}

func importFor(ctx context.Context, st *store.Store, source, name string, p *v1.Platform) (v1.Hash, error) {
	var norm string
	if name != "" {
		var err error
		if norm, err = NormalizeName(name); err != nil {
			return v1.Hash{}, fmt.Errorf("importing %q: %w", source, err)
		}
	}
	kind, err := sourceKind(source)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("importing %q: %w", source, err)
	}
	logf := logfFrom(ctx)
	var h v1.Hash
	switch kind {
	case kindRootfsDir, kindRootfsTar:
		want := Platform()
		if p != nil {
			want = *p
		}
		h, err = importRootfs(ctx, st, source, kind, want, logf)
	case kindDocker:
		h, err = importDockerArchive(ctx, st, source, logf)
		if err == nil && p != nil {
			_, err = st.ImageFor(h.String(), *p) // refused when the archive's image is for another platform
		}
	default:
		var img v1.Image
		var cleanup func()
		img, cleanup, err = openArchiveFor(st, source, kind, p)
		if err == nil {
			h, err = storeUnpacked(ctx, st, img, logf)
			cleanup()
		}
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("importing %s %q: %w", kind, source, err)
	}
	if norm != "" && p != nil {
		if _, err := st.AddPlatform(norm, h); err != nil {
			return v1.Hash{}, fmt.Errorf("importing %q: %w", source, err)
		}
	} else if norm != "" {
		if err := st.Tag(norm, h); err != nil {
			return v1.Hash{}, fmt.Errorf("importing %q: %w", source, err)
		}
	}
	return h, nil
}

// importRootfs stores a root filesystem as a one-layer image. Its layer blob
// is the uncompressed tar (a tarball's as given, once decompressed), written
// while the same stream is hashed and unpacked into the layer's directory, so
// the first build on the image unpacks nothing.
func importRootfs(ctx context.Context, st *store.Store, source, kind string, p v1.Platform, logf func(string, ...any)) (v1.Hash, error) {
	start := time.Now()
	var got store.Ingested
	if kind == kindRootfsDir {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			pw.CloseWithError(layer.Write(&ctxWriter{ctx: ctx, w: pw}, source, layer.WriteOptions{}))
		}()
		var err error
		got, err = st.IngestLayer(ctx, pr, store.IngestSpec{MediaType: types.OCIUncompressedLayer})
		pr.CloseWithError(errors.New("import ended"))
		<-done
		if err != nil {
			return v1.Hash{}, err
		}
	} else {
		f, err := os.Open(source)
		if err != nil {
			return v1.Hash{}, err
		}
		defer f.Close()
		if got, err = ingestTar(ctx, st, f); err != nil {
			return v1.Hash{}, err
		}
	}
	logf("unpacked layer %s: %s in %s", short(got.DiffID), report.HumanSize(got.TarBytes), since(start))
	// The image is dated by its source's modification time, so importing the
	// same rootfs again gives the same image, and build cache keys stay valid.
	fi, err := os.Stat(source)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := rootfsImage(st, got.LayerInfo, p, fi.ModTime(), "imported from "+filepath.Base(source))
	if err != nil {
		return v1.Hash{}, err
	}
	return st.WriteImage(img)
}

// rootfsImage is the one-layer image of a rootfs import: a config like docker
// import's (no Env, no Cmd) dated created, and the stored layer info.
func rootfsImage(st *store.Store, info store.LayerInfo, p v1.Platform, created time.Time, comment string) (v1.Image, error) {
	l, err := st.Layer(info)
	if err != nil {
		return nil, err
	}
	now := v1.Time{Time: created.UTC().Truncate(time.Second)}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      now,
		History:      []v1.History{{Created: now, CreatedBy: "slimbuild import", Comment: comment}},
	}
	return Assemble(cfg, []v1.Layer{l}, nil)
}

// ctxWriter stops a long copy when ctx is cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// openArchive opens an image from an OCI layout, OCI archive or docker-archive.
// cleanup releases temporaries once the image's blobs have been copied.
func openArchive(st *store.Store, source, kind string) (v1.Image, func(), error) {
	return openArchiveFor(st, source, kind, nil)
}

// openArchiveFor is openArchive for platform p (nil: the host's, or the only
// image); the image must be for p.
func openArchiveFor(st *store.Store, source, kind string, p *v1.Platform) (v1.Image, func(), error) {
	img, cleanup, err := openArchiveAny(st, source, kind, p)
	if err != nil || p == nil {
		return img, cleanup, err
	}
	cf, err := img.ConfigFile()
	if err == nil && cf.Architecture != "" && !(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}).Satisfies(*p) {
		err = fmt.Errorf("the image is for %s/%s, not %s", cf.OS, cf.Architecture, p.String())
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return img, cleanup, nil
}

func openArchiveAny(st *store.Store, source, kind string, p *v1.Platform) (v1.Image, func(), error) {
	nop := func() {}
	switch kind {
	case kindOCILayout:
		if err := checkLayout(source); err != nil {
			return nil, nil, err
		}
		idx, err := layout.ImageIndexFromPath(source)
		if err != nil {
			return nil, nil, err
		}
		img, err := pickImage(idx, p)
		return img, nop, err
	case kindOCIArchive:
		dir, err := st.TempDir("oci-archive-")
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := extractTar(source, dir); err != nil {
			cleanup()
			return nil, nil, err
		}
		if err := checkLayout(dir); err != nil {
			cleanup()
			return nil, nil, err
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		img, err := pickImage(idx, p)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		return img, cleanup, nil
	case kindDocker:
		if err := checkArchiveJSON(source); err != nil {
			return nil, nil, err
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(source) })
		if err != nil {
			return nil, nil, err
		}
		if len(m) != 1 {
			var tags []string
			for _, d := range m {
				tags = append(tags, d.RepoTags...)
			}
			return nil, nil, fmt.Errorf("archive holds %d images (%s); import needs exactly one", len(m), strings.Join(tags, ", "))
		}
		img, err := tarball.ImageFromPath(source, nil)
		return img, nop, err
	}
	return nil, nil, fmt.Errorf("%s is not an image archive", kind)
}

// checkLayout refuses an OCI layout that go-containerregistry should not read:
// an index.json over the manifest size limit, or an index.json, blobs directory
// or blob that is not a regular file or directory of its own (a symlink, which
// would be followed out of the layout, a FIFO, on which a read would wait for
// ever, a device, which would never end). go-containerregistry opens them with
// plain opens, so they are checked here, before it does; the layout is a
// directory its user named, so what changes under it after the check is theirs.
func checkLayout(dir string) error {
	index := filepath.Join(dir, "index.json")
	fi, err := os.Lstat(index)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", index, fi.Mode().Type())
	}
	if fi.Size() > store.MaxManifestSize {
		return fmt.Errorf("index.json of %d bytes: %w of %d bytes", fi.Size(), store.ErrTooLarge, store.MaxManifestSize)
	}
	blobs := filepath.Join(dir, "blobs")
	if fi, err := os.Lstat(blobs); errors.Is(err, os.ErrNotExist) {
		return nil // nothing to read: go-containerregistry says what is missing
	} else if err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory (%s)", blobs, fi.Mode().Type())
	}
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return err
	}
	for _, alg := range algs {
		algDir := filepath.Join(blobs, alg.Name())
		if !alg.IsDir() {
			return fmt.Errorf("%s: not a directory (%s)", algDir, alg.Type())
		}
		entries, err := os.ReadDir(algDir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if t := e.Type(); !t.IsRegular() {
				return fmt.Errorf("%s: not a regular file (%s)", filepath.Join(algDir, e.Name()), t)
			}
		}
	}
	return nil
}

// checkArchiveJSON refuses a docker-archive whose manifest.json is over the
// manifest size limit, or whose other JSON entries (configs) are over the
// config size limit, before go-containerregistry reads them whole.
func checkArchiveJSON(src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		limit := int64(store.MaxConfigSize)
		if name == "manifest.json" {
			limit = store.MaxManifestSize
		} else if !strings.HasSuffix(name, ".json") {
			continue
		}
		if hdr.Size > limit {
			return fmt.Errorf("%s of %d bytes: %w of %d bytes", hdr.Name, hdr.Size, store.ErrTooLarge, limit)
		}
	}
}

// pickImage chooses the image in idx: the only one, or the one for Platform().
func pickImage(idx v1.ImageIndex, p *v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	want := Platform()
	if p != nil {
		want = *p
	}
	// Several names may point at one manifest: count manifests, not descriptors.
	var uniq []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			uniq = append(uniq, d)
		}
	}
	var match []v1.Descriptor
	for _, d := range uniq {
		if len(uniq) == 1 || (d.Platform != nil && d.Platform.Satisfies(want)) {
			match = append(match, d)
		}
	}
	if len(match) != 1 {
		return nil, fmt.Errorf("index holds %d manifests, %d for %s/%s; want exactly one", len(uniq), len(match), want.OS, want.Architecture)
	}
	d := match[0]
	switch {
	case d.MediaType.IsImage():
		return idx.Image(d.Digest)
	case d.MediaType.IsIndex():
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		return pickImage(child, p)
	}
	return nil, fmt.Errorf("manifest %s has unsupported media type %s", d.Digest, d.MediaType)
}

// extractTar unpacks the regular files and directories of the plain tar src into dir.
// Names that would leave dir are refused; links and devices are skipped (an OCI
// layout needs neither).
func extractTar(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %q: %w", src, err)
		}
		rel := filepath.FromSlash(path.Clean(strings.TrimPrefix(hdr.Name, "/")))
		if rel == "." {
			continue
		}
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("reading %q: entry %q leaves the archive", src, hdr.Name)
		}
		dst := filepath.Join(dir, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size > maxArchiveEntry {
				return fmt.Errorf("reading %q: entry %q too large", src, hdr.Name)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		}
	}
}

// openPath opens the image archive or layout at p. OCI archives and
// docker-archives are copied into st (unnamed) so the returned image does not
// depend on temporaries.
func openPath(st *store.Store, p string) (v1.Image, error) {
	kind, err := sourceKind(p)
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindOCILayout:
		img, _, err := openArchive(st, p, kind)
		return img, err
	case kindDocker:
		// Stored (and checked) layer by layer: an archive may mix plain and
		// gzip layers, as docker load allows and go-containerregistry does not.
		h, err := importDockerArchive(context.Background(), st, p, nopLog)
		if err != nil {
			return nil, err
		}
		return st.Image(h.String())
	case kindOCIArchive:
		img, cleanup, err := openArchive(st, p, kind)
		if err != nil {
			return nil, err
		}
		h, err := st.WriteImage(img)
		cleanup()
		if err != nil {
			return nil, err
		}
		return st.Image(h.String())
	}
	return nil, fmt.Errorf("%q is a %s, not an image (use slimbuild import)", p, kind)
}
