// Package runtime runs containers: RUN steps, `slimbuild run` and slim's verification runs.
//
// Spec is pure: it returns the same spec for the same input and touches no disk. Every
// container gets new pid, ipc, uts, mount and cgroup namespaces; a fresh read-only sysfs
// and a read-only cgroup mount of its own namespace (never the host's /sys); moby's
// default seccomp profile for its capabilities; docker's default capabilities, masked
// and read-only paths and devices; and a device cgroup that allows only those devices.
//
// Network is typed (ParseNetwork checks it at the edge): NetworkPrivate, the default,
// is a namespace of its own whose outbound traffic pasta (or slirp4netns) carries
// through the host's sockets, with DNS through the helper's forwarder and none of the
// host's own services in reach (no port forwarded, the gateway not mapped to the host);
// NetworkNone is loopback only; NetworkHost shares the host's namespace. NewNetNS
// makes one, Close releases it and kills its helper (reaped in the background: a
// killed pasta takes ~30 ms to exit), which also dies with this process
// (parent-death signal). StartNetNS returns before the helper is ready
// (pasta takes ~150 ms to start); RunContainer uses it so that the helper starts
// while runc creates the container, and a createRuntime hook (a shell reading a FIFO
// in the run's private directory) holds the process back until Ready: the process
// never runs in a namespace that is not configured, and a helper that fails fails
// the run before the process starts. A Runner with a NetPool takes its private
// networks from the pool and gives them back for the next container (a build's
// RUNs one after another share one helper; see NetPool for why that is safe).
//
// ResolveUser reads the image's /etc/passwd and /etc/group through securejoin, so
// symlinks in the image resolve inside rootfs and never reach the host's files.
//
// Runner.RunContainer resolves the user, makes the network, writes hosts (with the
// Process's ExtraHosts), hostname and resolv.conf into the run's private directory, and
// calls Runner.Run. Spec takes the Process's Rlimits in place of the defaults of the same
// type and its ShmSize as the size of /dev/shm. Run writes
// bundleDir/config.json, runs the container in the foreground with runc, streams its
// stdout and stderr to the given writers while it runs, and returns its exit status; a
// non-zero status is not an error. On return the container is always deleted from
// runc's state (--root StateDir), including when ctx is cancelled, in which case the
// container is killed with SIGKILL and Run returns ctx.Err(). Run does not close the
// Stdio writers.
//
// A killed process leaves no container running: runc gets a parent-death SIGKILL, and a
// small watchdog (a shell reading a pipe that only this process writes) runs
// `runc delete --force` when that pipe closes without Run having finished. runc makes
// a container's cgroups (below its own cgroup, in every hierarchy) before it writes
// the container's state, and `runc delete --force` of a container without state
// removes only its state directory: so before runc starts, Run records where those
// cgroups will be in a marker, MarkerDir(StateDir)/<id> (written to a temporary file
// and renamed), and removes it once runc has deleted the container; with no StateDir
// there is no marker. ReapStale kills and deletes whatever containers a state
// directory still records or a marker names (StaleIDs), and removes their cgroups
// (only empty ones, named after the container, on a cgroup filesystem) and markers;
// the store calls it (ReapContainer for each of StaleIDs) on the StateDirName
// directory of every stale temporary directory before removing them. Only a process
// that knows the markers' owner dead may reap them: a live runc's cgroup exists a
// moment before its process joins it.
package runtime
