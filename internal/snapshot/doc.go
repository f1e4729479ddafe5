// Package snapshot describes overlayfs (and bind) mounts of layer stacks, in the manner of
// containerd's overlay snapshotter: Overlay and ReadOnly are pure and only return Mount
// descriptions; MountAll and Unmount perform them (root is required for those two).
//
// Layer stacks are given topmost-first, as directories on one host. Writable overlays
// always carry the options index=off, redirect_dir=off and metacopy=off whatever the
// overlay module's defaults are, because the upper directory is later turned into an OCI
// layer by walking it and is then reused as a lower under different stacks:
//
//   - redirect_dir=on records a directory rename as a "trusted.overlay.redirect" xattr
//     instead of copying the directory up, so the upper would not contain its contents;
//   - metacopy=on copies up only metadata on chmod/chown, leaving data-less files in upper;
//   - index=on stamps the upper with the lowers' file handles and refuses to mount it again
//     over another stack (or after the lowers were copied).
//
// With these off, an upper directory holds exactly the changed files, deletions as 0:0
// character devices (whiteouts) and replaced directories marked trusted.overlay.opaque=y.
//
// Writable overlays are also volatile (Linux 5.10 and later; Prepare mounts without it
// on older kernels): the overlay never syncs its upper filesystem, neither at unmount
// nor for syncfs or the fsyncs of the step's processes. Without it every unmount is a
// syncfs(2) of the whole host filesystem, which waits for whatever any other process
// left dirty there (0.05 to 0.6 s on a busy machine), and a RUN that fsyncs each file
// it writes (dpkg does) pays a journal commit per file. Durability is the committer's
// job: what keeps an upper directory makes it durable before it publishes it (the
// store syncs the filesystem before the rename, see store.CommitSnapshot). A volatile
// overlay cut short by a crash is never mounted again: every Prepare makes fresh
// upper and work directories, and the dead ones go with their temporary directory.
//
// Mount data is limited to one page. When the lowerdir list of an overlay is longer,
// MountAll mounts it from a thread whose working directory is the lowers' common parent
// (unshare(CLONE_FS) on a locked OS thread, so the process's working directory never
// changes) using relative paths, as containerd does. Paths must not contain ',' or ':'.
package snapshot
