// Package image is slimbuild's glue to go-containerregistry: it normalises image
// names, resolves base images (store first, then registry), imports root
// filesystems and archives into the store, pulls and pushes, and writes build
// outputs (docker-archive, OCI layout or archive, flattened rootfs tar).
//
// Names: NormalizeName follows docker: "busybox" is
// "docker.io/library/busybox:latest". Every name handed to the store is normalised.
//
// Streams: layers are never held in memory. Imports stream rootfs content through
// store.NewLayerWriter; pulls stream blobs from the registry into the store; outputs
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
// Errors name the reference, path or output spec they concern. The package is silent:
// progress goes through the logf callbacks the callers pass.
package image
