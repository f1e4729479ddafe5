// Package runmount turns a RUN's --mount instructions into OCI mounts for its
// container, and takes back, after the RUN, the mount points they left.
//
// A Mounter serves one build. Key gives the part of a RUN's cache key that a
// --mount makes; Resolve gives the container's mounts and the environment they
// add. Both first refuse (Check) every option slimbuild does not honour for
// the mount's type, with an error naming it: nothing is silently ignored.
// What a mount reads of the build (the context, a stage, an image, a named
// context) comes through the Sources interface, which the engine implements
// with DirTree (a context directory) and LayersTree (a stage's or an image's
// layers) over the Views its snapshots give; runmount mounts nothing itself
// and imports nothing of the engine.
//
// Contracts:
//   - Secrets: a secret's value never enters a cache key. The RUN sees a copy
//     in the step's files directory (made with O_EXCL, root and 0400 unless
//     uid, gid, mode say otherwise), bound read-only; secrets larger than
//     500 KiB are refused, so memory is bounded whatever the file.
//   - Cache mounts live in Config.CacheDir (0700), one directory per id,
//     owner, mode and seed, each with a lock file opened without following
//     links. sharing=shared takes a shared lock, locked an exclusive one
//     (waited for until ctx ends), private the first free instance. A new
//     cache is made under a temporary name and renamed into place, seeded
//     first when from= is given.
//   - Bind mounts of a local directory are read-only for files and for ro=;
//     a writable directory, and anything from layers, is a throwaway view:
//     writes never reach the source. Paths are resolved inside their tree
//     (the context's .dockerignore-aware Resolve, securejoin in a view), for
//     binds and for cache seeds alike.
//   - SSH mounts serve a read-only agent (no adding, removing or locking
//     keys) of the --ssh keys or forwarded socket, on a socket in the step's
//     files directory, with at most 16 connections at once.
//   - Resolve holds nothing when it fails; otherwise the caller calls
//     Run.Release once the RUN is over.
//   - Points: RecordPoints notes what a RUN's root held at its mount points
//     before it ran; Points.Remove deletes from the RUN's upper directory
//     only what exists there because something was mounted, resolving every
//     path beneath the upper directory without following its symlinks.
package runmount
