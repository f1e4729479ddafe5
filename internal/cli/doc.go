// Package cli is slimbuild's command line: one file per command, each parsing flags,
// calling one library function and printing. Digests and JSON go to stdout; progress,
// the build summary and logs go to the command's stderr, so output composes.
//
// NewRoot adds every command through its constructor (newBuildCmd, ...); nothing
// is registered at package init. Option values are typed and checked at this
// edge, when the command line is parsed and before any store is opened
// (flags.go: --compression, --network, --jobs, sizes; the gates' --max-size and
// --forbid before a build starts): a bad value is an error naming the flag and
// the value, whatever the build would have done.
//
// Every command that opens the store releases it (and its shared lock) when it
// returns, so that commands can also run one after another in one process, as the
// tests do. An error that carries an exit code (ExitCode() int), such as a failed gate
// or the status of `slimbuild run`, becomes the process's exit status in main.
package cli
