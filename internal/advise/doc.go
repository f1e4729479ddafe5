// Package advise turns a single-stage Dockerfile into an equivalent multistage
// one whose runtime stage holds only what the program needs.
//
// Advise builds the Dockerfile with the engine (internal/engine), slims the
// result with internal/slim (static closure, scripts, runtime expectations and
// what the probes were seen opening), and Rewrite writes the new Dockerfile:
//
//   - the original text, byte for byte, except that the last stage's FROM gets
//     "AS build" when it has no name (a named stage keeps its name; global
//     ARGs and parser directives stay where they are);
//   - when the closure holds symlinks or directories that COPY cannot make
//     (an empty directory, a mode other than 0755, an owner other than root,
//     e.g. /tmp 1777), a "skeleton" stage FROM the builder that makes exactly
//     those with one exec-form RUN of /bin/sh (mkdir, chmod, chown, ln); its
//     tree is copied first, and a directory's contents keep their links,
//     modes and owners under COPY;
//   - a runtime stage FROM scratch (or Options.Base) that copies the closure's
//     regular files from the builder grouped by directory (COPY from a stage
//     keeps modes and owners; a named source that is a symlink would be
//     followed, which is why links come from the skeleton), then repeats the
//     image's runtime config (ENTRYPOINT and CMD in exec form, ENV, WORKDIR,
//     USER, EXPOSE, LABEL, STOPSIGNAL, HEALTHCHECK) with every value escaped
//     so that the Dockerfile's own expansion gives it back unchanged.
//
// Rewrite is pure and deterministic: the same inputs give the same bytes
// (everything is sorted). What it cannot carry over (a config field without a
// Dockerfile instruction, a path COPY cannot name literally, extended
// attributes) becomes a note; notes head the Dockerfile as comments and are
// returned to the caller, never dropped silently.
//
// Advise then builds the new Dockerfile and runs the original and the advised
// image with the same probes as slim's verification. When they differ the
// file is still written, with a first comment saying that verification
// failed, and Advise returns an error wrapping slim.ErrVerify: the file is the
// starting point to fix, not a result to ship.
package advise
