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
// Mount data is limited to one page. When the lowerdir list of an overlay is longer,
// MountAll mounts it from a thread whose working directory is the lowers' common parent
// (unshare(CLONE_FS) on a locked OS thread, so the process's working directory never
// changes) using relative paths, as containerd does. Paths must not contain ',' or ':'.
package snapshot
