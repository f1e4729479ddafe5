// Package image is slimbuild's glue to go-containerregistry: it normalises image
// names, resolves base images (store first, then registry), imports root
// filesystems and archives into the store, pulls and pushes, and writes build
// outputs (docker-archive, OCI layout or archive, flattened rootfs tar).
//
// Names: NormalizeName follows docker: "busybox" is
// "docker.io/library/busybox:latest". Every name handed to the store is normalised.
//
// Resolver is what a build uses: each name and platform resolved once per
// build (store first, the registry when allowed, or the registry again with
// Pull), so one build sees one image per name; Named does the same for an
// image or OCI layout named context.
//
// Layers in, unpacked: imports and pulls stream every layer through
// store.IngestLayer, which stores the blob as given and unpacks it in the same
// pass, checking its digest and the diffID the config declares (a mismatch is
// refused and leaves nothing). A rootfs tarball (plain, gzip, zstd, bzip2 or xz)
// becomes one uncompressed layer blob, the tar itself: no compression at import,
// none to undo at the first build. A docker-archive keeps its layer blobs as the
// archive holds them (plain or gzip), under an OCI manifest. Progress (each
// layer fetched and unpacked, with bytes and time) goes to the logger set with
// WithLogf.
//
// Layers out, compressed as asked: a push (Registry.Push, PushStored) and an
// OCI output (WriteOutputCompressed) ship every layer compressed as
// --compression says (default gzip), whatever the store holds: a layer stored
// otherwise is decompressed and compressed again with the store's one
// compressor at its fixed level, once (the result is kept in the store and
// remembered in its build cache), so the same image gives the same bytes
// however its layers were first stored (see Compressed). The manifest pushed
// then has its own digest, which Push returns. A docker-archive output writes
// layers as stored (docker load takes tar and gzip alike) and compresses
// nothing.
//
// Streams: layers are never held in memory. Pulls and imports stream blobs into
// the store (store.IngestLayer reads a few MiB ahead, no more); outputs
// stream blobs from the image into a uniquely named temporary file (or directory)
// beside dest, fsynced and renamed over dest when complete (a layout directory is
// swapped in with RENAME_EXCHANGE), so a failed write never leaves a truncated
// dest and a killed one leaves at most a hidden .NAME.tmp-* beside it. A dest of
// "-" is standard output; an existing device, fifo or symlink (/dev/stdout,
// /dev/null) is opened and written in place, never replaced. An existing
// directory is replaced only if it is empty or an OCI layout.
//
// Registries: Registry holds what every talk with a registry shares: plain http
// for loopback hosts and the --insecure-registry list, credentials from the docker
// config file and its credential helpers (SaveLogin and Logout write them), a
// response timeout, and retries: each request on its own on 408, 429, 5xx,
// timeouts and broken connections (its body sent again), and go-containerregistry's
// retries of whole operations on top. Errors about refused credentials wrap
// ErrUnauthorized and name the registry.
//
// Assembly: Assemble is the one image assembler (manifest + config + history),
// used by the engine, slim and rootfs imports: the same config and layers give
// the same bytes whoever assembles them, and nothing is written until
// StoreManifest (config and manifest; the layers must be in the store). Lazy is
// an image made on first use. LazyLayer is a layer a remote (a shared build
// cache) holds: its metadata is known, its blob is fetched into the store on
// the first read of its content, digest-checked and bounded by its recorded
// size.
//
// Named contexts: ParseNamedContext parses a --build-context value;
// LayoutImage reads the image an OCI layout names (for a platform, through
// nested indexes), size-checking index.json, manifests and configs before they
// are read, and writes it into the store.
//
// Errors name the reference, path or output spec they concern. The package is silent:
// progress goes through the logf callbacks the callers pass.
package image
