// Package runtime turns a RUN step into an OCI runtime spec and runs it with runc.
//
// Spec is pure: it returns the same spec for the same input and touches no disk. The
// container gets new pid, ipc, uts and mount namespaces, and a new network namespace
// (loopback only, and down) unless Process.Network is "host". Capabilities, masked and
// read-only paths, devices and mounts follow the defaults of docker and BuildKit; there
// is no seccomp profile and no cgroup limit other than the device allow list.
//
// ResolveUser reads the image's /etc/passwd and /etc/group through securejoin, so
// symlinks in the image resolve inside rootfs and never reach the host's files.
//
// Runner.Run writes bundleDir/config.json, runs the container in the foreground with
// runc, streams its stdout and stderr to the given writers while it runs, and returns its
// exit status; a non-zero status is not an error. On return the container is always
// deleted from runc's state (--root StateDir), including when ctx is cancelled, in which
// case the container is killed with SIGKILL and Run returns ctx.Err(). Run does not close
// the Stdio writers.
package runtime
