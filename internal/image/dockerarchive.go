package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
)

// importDockerArchive stores the one image of a docker-archive (docker save's
// format, old or new) with its layer blobs as the archive holds them: each
// layer entry is streamed once, stored as given, hashed and unpacked, and must
// hash to the diffID its config declares (the image is refused otherwise, and
// nothing of that layer stays). The stored manifest is an OCI manifest listing
// those blobs with the media type their content shows (tar, tar+gzip or
// tar+zstd) and the config as the archive has it.
func importDockerArchive(ctx context.Context, st *store.Store, source string, logf func(string, ...any)) (v1.Hash, error) {
	if err := checkArchiveJSON(source); err != nil {
		return v1.Hash{}, err
	}
	ms, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(source) })
	if err != nil {
		return v1.Hash{}, err
	}
	if len(ms) != 1 {
		var tags []string
		for _, d := range ms {
			tags = append(tags, d.RepoTags...)
		}
		return v1.Hash{}, fmt.Errorf("archive holds %d images (%s); import needs exactly one", len(ms), strings.Join(tags, ", "))
	}
	desc := ms[0]
	f, err := os.Open(source)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	cr, _, err := archiveEntry(f, desc.Config)
	if err != nil {
		return v1.Hash{}, err
	}
	rawCfg, err := io.ReadAll(io.LimitReader(cr, store.MaxConfigSize+1))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading %s: %w", desc.Config, err)
	}
	if len(rawCfg) > store.MaxConfigSize {
		return v1.Hash{}, fmt.Errorf("%s: %w of %d bytes", desc.Config, store.ErrTooLarge, store.MaxConfigSize)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parsing %s: %w", desc.Config, err)
	}
	if len(cf.RootFS.DiffIDs) != len(desc.Layers) {
		return v1.Hash{}, fmt.Errorf("%s lists %d diffIDs for %d layers", desc.Config, len(cf.RootFS.DiffIDs), len(desc.Layers))
	}
	var layers []v1.Layer
	for k, p := range desc.Layers {
		lr, size, err := archiveEntry(f, p)
		if err != nil {
			return v1.Hash{}, err
		}
		br := bufio.NewReaderSize(lr, 64<<10)
		head, _ := br.Peek(4)
		mt := types.OCIUncompressedLayer
		switch {
		case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
			mt = types.OCILayer
		case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			mt = types.OCILayerZStd
		}
		spec := store.IngestSpec{MediaType: mt, Size: size, DiffID: cf.RootFS.DiffIDs[k]}
		if h, err := v1.NewHash(strings.Replace(strings.TrimPrefix(path.Clean(p), "blobs/"), "/", ":", 1)); err == nil {
			spec.Digest = h // the new format names blobs by digest
		}
		start := time.Now()
		got, err := st.IngestLayer(ctx, br, spec)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer %s: %w", p, err)
		}
		if got.Unpacked {
			logf("unpacked layer %s: %s in %s", short(got.DiffID), report.HumanSize(got.TarBytes), since(start))
		}
		l, err := st.Layer(got.LayerInfo)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer %s: %w", p, err)
		}
		layers = append(layers, l)
	}
	img, err := AssembleConfig(rawCfg, layers)
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := StoreManifest(st, img)
	return h, err
}

// archiveEntry returns a reader of the entry p of the plain tar f and its
// size, following symlinks between entries (old docker save links layers
// shared by images) a few times at most.
func archiveEntry(f *os.File, p string) (io.Reader, int64, error) {
	want := path.Clean(strings.TrimPrefix(p, "./"))
	for hops := 0; hops < 8; hops++ {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, 0, err
		}
		tr := tar.NewReader(f)
		var hdr *tar.Header
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil, 0, fmt.Errorf("archive has no entry %q", p)
			}
			if err != nil {
				return nil, 0, fmt.Errorf("reading tar: %w", err)
			}
			if path.Clean(strings.TrimPrefix(h.Name, "./")) == want {
				hdr = h
				break
			}
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			return tr, hdr.Size, nil
		case tar.TypeSymlink:
			want = path.Clean(path.Join(path.Dir(want), hdr.Linkname))
		case tar.TypeLink:
			want = path.Clean(strings.TrimPrefix(hdr.Linkname, "./"))
		default:
			return nil, 0, fmt.Errorf("archive entry %q is not a file", p)
		}
		if strings.HasPrefix(want, "../") || want == ".." || strings.HasPrefix(want, "/") {
			return nil, 0, fmt.Errorf("archive entry %q links outside the archive", p)
		}
	}
	return nil, 0, fmt.Errorf("archive entry %q: too many links", p)
}
