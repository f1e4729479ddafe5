// Package dockerfile turns a Dockerfile into a typed build plan: the stages, their
// base (an image, a previous stage or scratch), the stages each depends on, and the
// stages a target needs in an order that respects those dependencies.
//
// Parsing is BuildKit's own (frontend/dockerfile/parser and instructions); this
// package adds what a builder needs on top: global ARG expansion in FROM and
// COPY --from, the stage graph, cycle and unknown-stage checks, and pruning to
// the target; and BuildKit's build checks (lint.go): the rules of its linter
// package under their names, reported as Plan.Warnings with file:line, with the
// `# check=skip=…;error=true` directive honoured, and a notice when `# syntax=`
// names a frontend other than docker/dockerfile (slimbuild parses every
// Dockerfile with its built-in parser). It is pure: no disk, no network. Every
// error names file:line.
package dockerfile
