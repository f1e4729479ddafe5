// Package layer converts between directories and uncompressed OCI layer
// tars, and compresses and decompresses layer blobs.
//
// Write (and the Writer behind it) turns a directory, typically an overlayfs
// upper dir, into a layer tar: entries depth-first, each directory's
// entries sorted by the name written, parents before children, names
// relative without "./" (directories end in "/"), PAX format, mtimes
// truncated to seconds (and, with a source date epoch, clamped to it), atime,
// ctime and user/group names never written, so the same tree gives the same
// bytes wherever it lies.
// Modes (with setuid/setgid/sticky), owners, symlinks, devices and fifos are
// kept; hard links inside the tree become tar links; user.* and
// security.capability xattrs become SCHILY.xattr.* records (trusted.* and
// user.overlay.* never travel). With AddOptions.Overlay (always on for
// Write) a 0:0 character device NAME becomes an empty .wh.NAME and an opaque
// directory (trusted.overlay.opaque=y) is followed by DIR/.wh..wh..opq.
// Sockets are skipped. A real file or directory whose name starts with
// ".wh." is refused with ErrReservedName (naming its image path): in a layer
// it would be a whiteout. File bodies are streamed through one pooled 1 MiB
// buffer; nothing is held in memory whole.
//
// ClampTimes applies a source date epoch to a directory in place, so that a
// directory kept as the unpacked form of a clamped layer matches it.
//
// Unpack does the reverse into an empty directory in overlay lower-dir
// format, so the result can be a lowerdir as is: .wh.NAME becomes a 0:0
// character device, .wh..wh..opq sets trusted.overlay.opaque=y, other
// .wh..wh.* names are ignored. Every path goes through securejoin, so ".."
// and symlinks (absolute or relative) cannot lead outside dir; hard link
// targets must be inside dir. Later entries replace earlier ones (a
// directory is kept and updated when a directory replaces it); a whiteout
// for a path this layer created keeps the path, and marks a directory
// opaque. Directory times are set last, each directory resolved again from
// the root with OpenBeneath (no symlink followed anywhere), so a later entry
// that put a symlink in place of a parent cannot redirect them. Unpack writes
// each entry sequentially through the path SecureJoin gave it, which nothing
// else can change meanwhile (the target lives in the private store). Unpack
// needs root (mknod, chown, trusted.* xattrs).
//
// OpenArchive and Archive.Merge are the same extractor for ADD's archives
// (plain or compressed, told apart from other files by ErrNotArchive before
// anything is written), with ADD's rules: it merges into an existing
// directory, keeps that directory's own metadata, takes ".wh." names for
// ordinary files, marks nothing opaque, sets no xattrs, skips device nodes
// and fifos, and can give every entry one owner (--chown).
//
// Contracts on streams: Write and Writer.Close write the tar trailer but
// never close the io.Writer they were given. Unpack reads to the end of the
// tar and never closes its reader. Compress returns a WriteCloser whose
// Close flushes the compressed stream but not the underlying writer;
// Decompress returns a ReadCloser whose Close frees the decompressor but
// leaves the underlying reader open. Nothing is atomic: on error, the
// caller discards the partial tar or directory.
package layer
