// Package source is what a COPY or ADD reads and how it is placed: the build
// context, the sources a step names, and the copier that writes them into a
// root.
//
// A Context is a context directory (the main one or a local named context):
// its .dockerignore (NAME.dockerignore beside the Dockerfile wins) and a stat
// cache kept through a StatCache (the store) by the directory's name, so an
// unchanged file (size, mtime, ctime, device, inode, mode) keeps its digest
// without being read again. Save writes the cache back, atomically through
// the StatCache, only when it changed; a cache that cannot be read or saved
// only costs reading. The cache is indexed when it is loaded (an entry is
// decoded when it is looked up) and a malformed one is ignored whole; a
// context is examined (one lstat per entry, and a read of what changed) by a
// few goroutines per core while the walk goes on.
//
// A Matcher finds a COPY's sources under a root: plain paths (which must
// exist), globs (one path element at a time) and COPY --parents pivots and
// patterns, with --exclude as a filter on directories. Every path is resolved
// inside its root with securejoin, so "..", absolute symlinks and relative
// ones cannot lead outside the context or a mounted image; naming a source
// .dockerignore removes is an error. InContext also hashes what the items
// select (path, type, mode, size, content or link target, after .dockerignore
// and the filter) for the step's cache key.
//
// Matcher.Collect gathers a COPY or ADD's sources that are not read --from
// (context paths, and for ADD git refs and URLs) with what they add to the
// step's cache key.
//
// Remote sources: Download streams an ADD URL into the caller's temp dir,
// hashing while it writes (checksum checked, nothing left on a mismatch);
// ParseGitSource, GitSource.Resolve and FetchGit resolve a git URL with `git
// ls-remote` (the key holds the commit) and fetch it shallowly, with git run
// without a shell, prompts, the machine's configuration or local transports;
// CleanGit removes the checkouts. FetchGitContext does the same for a git URL
// build context.
//
// A Copier writes items into a root (a mounted snapshot or an empty
// directory), resolving the destination inside it through the image's own
// symlinks: context files become root's (or --chown's, resolved against the
// root's /etc/passwd and /etc/group by ResolveChown), --chmod (octal or
// symbolic, ParseChmod) applies to what is copied, directories made for the
// destination are 0755. ADD's archives are unpacked by package layer's one
// extractor (layer.Archive.Merge); the source package reads no tar itself.
// PlanDirect maps a COPY onto a layer tar without writing files, or says the
// copy must take the copier's path; DirectPlan.Write streams it.
// Every owner the copier, its archives and MkdirAllOwned set goes through
// the caller's Chowner (os.Lchown when nil), given the path already resolved
// inside the root, so that a caller without root can record owners instead.
//
// Nothing here mounts, runs containers or touches the store's layers. A
// Copier is not safe for concurrent use; items and a Context are (the stat
// cache is locked).
package source
