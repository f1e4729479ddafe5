// Package engine is the engine: it walks a dockerfile.Plan, runs each needed stage
// (concurrently where the stage graph allows), and assembles the final image in the
// store (with package image's one assembler, image.Assemble). A step's result is
// a snapshot; its blob is made by the store (store.SnapshotLayers) only when
// something ships or exports it, once per build, and kept in the step's cache
// record (snapshots.go).
//
// Every step has a cache key that covers exactly what can change its result: the
// parent state's key, the instruction after ARG/ENV expansion, the environment it
// sees and, for COPY/ADD, the content and metadata of the files it selects. A hit
// reuses the stored layer without touching the filesystem. With a source date
// epoch (Options.SourceDateEpoch, or the SOURCE_DATE_EPOCH build arg), layer times
// are clamped to it, the config and the history the build adds are dated by it, and
// it is part of every filesystem step's key (epoch.go).
//
// Filesystem steps (RUN, COPY, ADD, WORKDIR) mount an overlay of the parent's
// unpacked layers with a fresh upper directory; the upper directory, once the step
// is done and unmounted, is both the new layer's tar source and its unpacked form.
// Mounts and temporary directories are released on every path, including errors
// and cancellation.
//
// The engine reaches the layer directories, the overlays and runc only through
// the Unpacker, Snapshotter and Runner interfaces (interfaces.go), and sets
// file owners only through a source.Chowner, so that its planning, keys and
// scoping, and what COPY, ADD and WORKDIR write, are tested with fakes,
// without root.
//
// Shared caches (Options.CacheFrom, a registry's through package regcache) are
// consulted when the store's cache misses. A hit there is lazy (image.LazyLayer): the step is
// CACHED with the layer's descriptor, and the blob comes over only when its bytes
// are needed (a later step mounts it, or the final image is assembled), after
// which the store's cache records the step too. Result.CacheSteps lists every
// filesystem step for a cache export; a layer still only in a shared cache is
// handed out as that cache's blob, so an export can mount it instead of copying it.
//
// Options.Platform is the build's target platform (default the host's): the
// TARGET* ARGs, the image FROM and --from pick, the result's config and every
// step's key follow it; a stage for another architecture runs RUN through
// binfmt_misc (runtime.Emulators). BuildPlatforms builds several platforms,
// one after the other, into one OCI image index (platforms.go).
//
// What a COPY or ADD reads and how it is placed (the build context and its
// .dockerignore, source matching, --chown/--chmod, downloads, git sources, the
// copier and ADD's archive extraction) is package source; the engine keys the
// step, orders the work and picks the path: a layer planned straight from the
// sources, a copy onto the step's snapshot, or onto an empty root for --link.
// An ADD of a git repository is resolved when the step's key is made, so the
// key holds the commit and an unchanged remote is a hit without a fetch.
//
// Named contexts (Options.NamedContexts, buildx --build-context, parsed by
// image.ParseNamedContext) replace, by
// name, a FROM base, a stage of that name and a --from (COPY, RUN --mount) as in
// BuildKit (namedctx.go): an image (docker-image://, or oci-layout:// read into
// the store by image.LayoutImage; both resolved once per platform by the build's
// image.Resolver, as every FROM and --from image is) is used like any image; a local directory is read like the main
// context, with its own .dockerignore, keyed by content, and cannot be a FROM
// base yet. RUN --mount flags are resolved by package runmount (secrets, cache,
// tmpfs, bind and ssh mounts); the engine gives it the trees they read
// (mounttree.go: runmount.DirTree and LayersTree over its snapshot views) and
// keeps the RUN's orchestration (run.go): what it executes is
// dockerfile.RunArgs, its output is read by runtime.LineWriter.
//
// The engine is silent: progress goes to Options.Progress. (One exception:
// golang.org/x/crypto's agent server logs the requests it refuses.)
package engine
