// Package store is slimbuild's local content store: blobs, image names, unpacked
// layer directories and the build cache, all under one root directory.
//
// # Layout
//
// The root is an OCI image layout, so go-containerregistry's layout.Path(root),
// skopeo ("oci:ROOT:NAME") and other OCI tools can read it:
//
//	ROOT/oci-layout            {"imageLayoutVersion": "1.0.0"}
//	ROOT/index.json            one manifest descriptor per name, annotated with
//	                           org.opencontainers.image.ref.name = the normalised
//	                           name (docker.io/library/busybox:latest)
//	ROOT/blobs/sha256/HEX      layer, config and manifest blobs
//	ROOT/layers/HEX/           a layer unpacked in overlay lower format; HEX is the
//	                           layer's diffID (sha256 of the uncompressed tar)
//	ROOT/cache/KK/KEY          build cache values (KEY is lowercase hex, KK its first two characters)
//	ROOT/tmp/                  temporary files and directories (same filesystem as the rest)
//	ROOT/lock                  flock guarding index.json rewrites
//	ROOT/inuse                 flock held shared by every open Store (see GC)
//
// The store does not normalise names; callers (package image) pass normalised names.
//
// # Permissions
//
// The store is private to the user that owns it: Open makes the root and every
// directory directly below it 0700 (blobs/sha256/ too), creating them so or
// correcting a store left 0755 by earlier versions, and refuses a root owned by
// another user or a store directory that is a symlink. Files inside keep
// ordinary modes (blobs 0644; unpacked layers the modes of their tars, setuid
// files and device nodes included): the closed root is what keeps other users
// from reading them, running them or planting anything a later build would ship.
//
// # Atomicity
//
// Everything visible outside tmp/ appears by rename(2): blobs and cache values are
// written to a temporary file under tmp/ and renamed into place; unpacked layers are
// unpacked into a temporary directory under tmp/ and renamed into place (if two
// processes race, the first rename wins and the loser discards its copy); index.json is
// rewritten to a temporary file and renamed while holding an exclusive flock on ROOT/lock,
// so concurrent slimbuild processes never lose each other's names. Readers take no lock.
// A killed process can leave garbage only under tmp/. There is no fsync: a power loss
// may lose recent writes, but never leaves a name pointing at a partially renamed file
// in a journaling filesystem's usual ordered mode.
//
// # Concurrency and garbage collection
//
// Open takes a shared flock on ROOT/inuse and keeps it until Close (or process exit).
// When Open finds no other process holding it, it first empties tmp/ (leftovers of
// killed processes). GC needs the lock exclusively and returns ErrBusy while another
// process has the store open, so it never deletes a blob that a running build is about
// to reference. Within one process, the caller must not run GC concurrently with other
// use of the store.
//
// GC keeps every blob and layer directory reachable from a name in index.json, from
// the digests the caller marks through GCOptions.Roots, and from every "sha256:HEX"
// string found in a build cache value. A marked digest that is a stored manifest keeps
// its config, layers and their unpacked directories; a marked diffID keeps its layer
// directory.
//
// # Ownership
//
// LayerWriter: the caller must call Commit or Abort (Abort after Commit is a no-op).
// Readers returned by Layer(...).Compressed/Uncompressed are closed by the caller.
// Directories returned by LayerDir must be treated as read-only.
package store
