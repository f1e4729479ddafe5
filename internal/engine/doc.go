// Package engine walks a dockerfile.Plan: it runs each needed stage (concurrently
// where the stage graph allows), keys and caches every step, and assembles the
// target's image in the store with package image's one assembler.
//
// A stage's state is its filesystem (layers, keyed by a cache chain key) and its
// dockerfile.Scope (the config and variables, changed by the instructions that
// touch no file). Every filesystem step (RUN, COPY, ADD, WORKDIR) has a key
// (package cachekey) over exactly what can change its result: the parent's key,
// the instruction after ARG/ENV expansion, the environment it sees, the content
// and metadata of the files it reads, and the source date epoch (epoch.go). A
// hit reuses the step's store.StepRecord without touching the filesystem; a
// miss prepares a snapshot over the parent's layers, runs the step in it and
// commits what changed. A step's result is a snapshot; its blob is made by the
// store (store.SnapshotLayers) only when something ships or exports it, once
// per build, and kept in the step's record. Snapshots and temporary
// directories are released on every path, errors and cancellation included.
//
// The engine reaches the layer directories, the overlays and runc only through
// the Unpacker, Snapshotter and Runner interfaces (interfaces.go), and sets
// file owners only through a source.Chowner, so that its planning, keys and
// scoping, and what COPY, ADD and WORKDIR write, are tested with fakes,
// without root.
//
// What COPY and ADD read and how they place it is package source; the engine
// keys the step and picks the path: a layer planned straight from the sources,
// a copy onto the step's snapshot, or onto an empty root for --link. RUN's
// --mount flags are package runmount's, given the trees they read
// (mounttree.go); what RUN executes is dockerfile.RunArgs.
//
// Shared caches (Options.CacheFrom, a registry's through package regcache) are
// consulted when the store's cache misses; a hit there is lazy (image.LazyLayer):
// the blob comes over only when its bytes are needed. Result.CacheSteps lists
// every filesystem step for a cache export.
//
// Options.Platform is the build's target platform; a stage for another
// architecture runs RUN through binfmt_misc (runtime.Emulators). BuildPlatforms
// builds several platforms into one OCI image index (platforms.go). Named
// contexts (Options.NamedContexts, buildx --build-context) replace, by name, a
// FROM base, a stage and a --from, as in BuildKit (namedctx.go); a local
// directory cannot be a FROM base yet.
//
// The engine is silent: progress goes to Options.Progress. (One exception:
// golang.org/x/crypto's agent server logs the requests it refuses.)
package engine
