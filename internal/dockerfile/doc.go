// Package dockerfile turns a Dockerfile into a typed build plan: the stages, their
// base (an image, a previous stage or scratch), the stages each depends on, and the
// stages a target needs in an order that respects those dependencies.
//
// Parsing is BuildKit's own (frontend/dockerfile/parser and instructions); this
// package adds what a builder needs on top: global ARG expansion in FROM and
// COPY --from, the stage graph, cycle and unknown-stage checks, and pruning to
// the target. It is pure: no disk, no network. Every error names file:line.
package dockerfile
