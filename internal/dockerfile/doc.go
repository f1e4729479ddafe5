// Package dockerfile turns a Dockerfile into a typed build plan, in two visible
// steps:
//
//   - Parse reads the file into a File: BuildKit's parser and typed instructions
//     (frontend/dockerfile/parser and instructions), the stages and the global
//     ARGs as written, the escape token, and the build checks that need no
//     options (casing, stage names, FROM lines).
//   - File.Plan plans it for one target: global ARG expansion (with --build-arg)
//     in FROM and COPY --from, each stage's base (an image, a previous stage or
//     scratch), the stage graph with its cycle and unknown-stage checks, and the
//     stages the target needs in an order that respects their dependencies. A
//     File may be planned more than once; it is not changed by planning.
//
// BuildKit's build checks (lint.go) are the rules of its linter package under
// their names, reported as Plan.Warnings with file:line, with the
// `# check=skip=…;error=true` directive honoured, and a notice when `# syntax=`
// names a frontend other than docker/dockerfile (slimbuild parses every
// Dockerfile with its built-in parser). ParsePlatform and
// ParseSourceDateEpoch read the values of --platform and of the
// SOURCE_DATE_EPOCH build arg; Plan.SourceDateEpoch is the epoch a plan
// gives a build that was handed none, Plan.UnusedBuildArgs the --build-arg
// values nothing asked for. command.go holds the meaning of single
// instructions: ParseTriggers (a base image's ONBUILD), CommandText, and
// RunArgs (what a RUN executes with the stage's shell, heredocs included).
// The package is pure: no disk, no network. Every error names file:line.
package dockerfile
