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
//	                           name (docker.io/library/busybox:latest); the
//	                           descriptor is an image manifest's, or an image
//	                           index's for a multi-platform name (platform.go)
//	ROOT/blobs/sha256/HEX      layer, config, manifest and index blobs
//	ROOT/layers/HEX/           a layer unpacked in overlay lower format; HEX is the
//	                           layer's diffID (sha256 of the uncompressed tar)
//	ROOT/snapshots/HEX/        a build step's committed tree that has no blob yet, in
//	                           overlay lower format; HEX names the commit, not the
//	                           content. Moved to layers/DIFFID once its blob is made
//	                           (see snapshot.go): blobs are made on demand
//	ROOT/cache/KK/KEY          build cache values (KEY is lowercase hex, KK its first two characters)
//	ROOT/tmp/                  temporary files and directories (same filesystem as the rest)
//	ROOT/lock                  flock guarding index.json rewrites
//	ROOT/inuse                 flock held shared by every open Store (see GC)
//	ROOT/gc                    flock held exclusively by GC, shared while a lease grows
//	ROOT/leases/ID             one per open Store: the digests it uses (see GC)
//	ROOT/treesums/HEX          digest of the writer's tar of a correct unpack of layer
//	                           HEX, when it differs from HEX (written by Fsck)
//
// The store does not normalise names; callers (package image) pass normalised names.
//
// # Layer blobs
//
// A stored image may have layers of any layer media type: tar, tar+gzip or
// tar+zstd. Build steps write theirs compressed as --compression says
// (NewLayerWriter, or WriteLayer around a layer.Writer with the source date
// epoch); a rootfs import stores the tar uncompressed, as given
// (digest = diffID), and docker-archive, OCI and registry images keep their
// blobs exactly as they came. Outputs that ship blobs compress what differs
// from the compression asked for (package image, Compressed), so how a layer
// was first stored never shows in a pushed or exported image.
//
// Snapshot layers (snaplayer.go): SnapshotLayers hands out committed snapshots
// as v1.Layers whose blobs are made on demand (tar → hash → compress → hash →
// temp file, one pass), once per SnapshotLayers however many layers name the
// snapshot, then kept in the caller's SnapshotRecord (a build step's
// StepRecord, the build cache's value: steprecord.go) and the tree promoted to layers/DIFFID. Tree reads a snapshot's files
// without making its blob; LowerDirs gives overlay lower dirs of any layers.
//
// IngestLayer stores a layer that arrives as a stream (an import, a pull) in
// one pass: the blob is written as read while it is hashed, decompressed,
// hashed again (diffID, checked against the declared one) and unpacked into a
// temporary directory; one syncfs(2), then the blob and the directory are
// renamed into place together. So an imported or pulled image is ready to
// run, and the first build on it unpacks nothing.
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
// # Atomicity and durability
//
// Everything visible outside tmp/ appears by rename(2): blobs and cache values are
// written to a temporary file under tmp/ and renamed into place; unpacked layers are
// unpacked into a temporary directory under tmp/ and renamed into place (if two
// processes race, the first rename wins and the loser discards its copy); index.json is
// rewritten to a temporary file and renamed while holding an exclusive flock on ROOT/lock,
// so concurrent slimbuild processes never lose each other's names. Readers take no lock.
//
// Before each rename the content is on disk (fsync of the file; for a layer
// directory one syncfs(2) of the store's filesystem, far cheaper than an fsync per
// file), and after it the directory holding the new name is fsynced. So a power
// loss leaves every name pointing at complete content; TestPublishedAfterSync
// checks each path.
//
// # Crashes
//
// A killed process can leave only reclaimable things: entries under tmp/ (among
// them its runc state directories, whose containers may still run, and the cgroup
// markers beside them, runtime.MarkerDir, which name containers whose runc died
// before writing their state), mounts below the root and its lease. Open, when no
// other process has the store open, kills and deletes those containers (runc kill +
// delete --force, which also removes their cgroups, and runtime.ReapContainer
// removes the cgroups the markers name), detaches the mounts and empties tmp/
// (stale.go). Fsck reports the same
// leftovers without reclaiming them first, and checks content: every name points
// to a complete manifest whose blobs match their digests, every blob and unpacked
// layer matches its digest, every cache record names a good layer blob. With
// Repair it removes what is corrupt (layer dirs are re-made from their blobs on
// demand).
//
// # Concurrency and garbage collection
//
// Open takes a read lock (an open file description lock, see lockInuse) on ROOT/inuse
// and keeps it until Close (or process exit),
// and starts a lease (lease.go): a file under ROOT/leases, flocked exclusively while
// the Store is open, listing every digest the Store was handed (Image, Layer,
// LayerDir, GetCache) or wrote (blobs, layers, adopted dirs). A digest enters the
// lease under a shared flock on ROOT/gc before the content is used or published.
//
// GC holds ROOT/gc exclusively while it marks and sweeps, so it may run while other
// processes build: it keeps every blob and layer directory reachable from a name in
// index.json, from the digests the caller marks through GCOptions.Roots, from every
// "sha256:HEX" string found in a build cache value, and from the live leases of other
// Stores (dead leases are removed). A marked digest that is a stored manifest keeps its
// config, layers and their unpacked directories; a marked diffID keeps its layer
// directory. tmp/ is emptied only when no other process has the store open. Within one
// process, the caller must not run GC concurrently with other use of the store (its
// own lease is not consulted).
//
// Prune is the eviction policy of `slimbuild prune` on top of GC: with All it drops
// the whole build cache; with KeepStorage it drops the least recently used cache
// entries (a tenth at a time, GC after each round) until the store is at most that
// size or the cache is empty. What names refer to is never dropped.

// # Ownership
//
// LayerWriter: the caller must call Commit or Abort (Abort after Commit is a no-op).
// Readers returned by Layer(...).Compressed/Uncompressed are closed by the caller.
// Directories returned by LayerDir must be treated as read-only.
package store
