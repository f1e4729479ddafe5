package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/store"
)

// stdinInputs makes what `-f -` and the context `-` read from standard input
// real files in a new directory under the store's tmp/ (private, reclaimed if
// the process dies), as buildx does: with `-f -` the input is the Dockerfile;
// with the context `-` it is a tar (plain or compressed) of the context, or else
// a Dockerfile with an empty context. It returns the context and Dockerfile to
// build with (unchanged when neither is "-") and the directory to remove.
func stdinInputs(st *store.Store, stdin io.Reader, contextDir, dockerfile string) (string, string, func(), error) {
	if contextDir != "-" && dockerfile != "-" {
		return contextDir, dockerfile, func() {}, nil
	}
	if contextDir == "-" && dockerfile == "-" {
		return "", "", nil, fmt.Errorf("standard input cannot be both the build context and the Dockerfile (-f - with the context -)")
	}
	tmp, err := st.TempDir("stdin-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	fail := func(err error) (string, string, func(), error) {
		cleanup()
		return "", "", nil, err
	}
	if dockerfile == "-" {
		df := filepath.Join(tmp, "Dockerfile")
		if err := writeLimited(df, stdin); err != nil {
			return fail(fmt.Errorf("-f -: %w", err))
		}
		return contextDir, df, cleanup, nil
	}
	ctxDir := filepath.Join(tmp, "context")
	br := bufio.NewReaderSize(stdin, 64<<10)
	dec, err := layer.Decompress(br)
	if err != nil {
		return fail(fmt.Errorf("build context from standard input: %w", err))
	}
	defer dec.Close()
	dr := bufio.NewReaderSize(dec, 1024)
	head, _ := dr.Peek(512)
	if !isTar(head) {
		// Not a tar: the input is a Dockerfile, the context is empty.
		if err := os.Mkdir(ctxDir, 0o700); err != nil {
			return fail(err)
		}
		df := filepath.Join(tmp, "Dockerfile")
		if err := writeLimited(df, dr); err != nil {
			return fail(fmt.Errorf("Dockerfile from standard input: %w", err))
		}
		if dockerfile == "" {
			dockerfile = df
		}
		return ctxDir, dockerfile, cleanup, nil
	}
	// layer.Unpack resolves every name through securejoin inside ctxDir.
	if err := layer.Unpack(dr, ctxDir); err != nil {
		return fail(fmt.Errorf("build context from standard input: %w", err))
	}
	if dockerfile == "" || !filepath.IsAbs(dockerfile) {
		// As in buildx, -f names a file of the context; resolved inside it, so
		// that a symlink in the tar cannot make it a file of the host.
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if dockerfile, err = securejoin.SecureJoin(ctxDir, dockerfile); err != nil {
			return fail(fmt.Errorf("Dockerfile in the context from standard input: %w", err))
		}
	}
	return ctxDir, dockerfile, cleanup, nil
}

// isTar reports whether head starts a tar archive.
func isTar(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	if !bytes.Equal(head[257:262], []byte("ustar")) && !bytes.Equal(head[257:263], []byte("ustar\x00")) {
		// Old V7 tars have no magic: let the tar reader judge the header's checksum.
		_, err := tar.NewReader(bytes.NewReader(head)).Next()
		return err == nil
	}
	return true
}

// writeLimited copies r to a new file name, refusing more than dockerfile.MaxSize bytes.
func writeLimited(name string, r io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, dockerfile.MaxSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > dockerfile.MaxSize {
		err = fmt.Errorf("larger than %d bytes", dockerfile.MaxSize)
	}
	return err
}
