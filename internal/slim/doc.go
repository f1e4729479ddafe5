// Package slim computes the static file closure of an image's entrypoint and
// makes the minimal image it implies.
//
// Closure walks a directory holding an image's final filesystem: from the
// entrypoint (ENTRYPOINT+CMD's first word, or Options.Entrypoint, looked up in
// the image's PATH when it has no slash) it follows symlinks (each link is kept
// with its target), a script's "#!" interpreter (and the program of
// "#!/usr/bin/env prog"), an ELF object's PT_INTERP and its DT_NEEDED
// libraries, searched as the glibc loader does: DT_RPATH (when there is no
// DT_RUNPATH), the image's LD_LIBRARY_PATH, DT_RUNPATH ($ORIGIN, $LIB and
// $PLATFORM expanded), the directories of the image's /etc/ld.so.conf and its
// includes, then /lib, /usr/lib, /lib64, /usr/lib64 and every multiarch
// directory present; candidates of another ELF class or machine are skipped.
// Options.Include adds files or whole directories; a USER given by name adds
// /etc/passwd and /etc/group; the working directory is kept.
//
// A shell script (by "#!" or as the shell's operand or -c string) is parsed
// with mvdan.cc/sh: the commands it calls (literal names, found in the image's
// PATH), the literal absolute paths it names and the scripts it sources join,
// recursively. Then what programs open by convention, read from the image: NSS
// modules and files of /etc/nsswitch.conf (when glibc is in), gconv modules of
// charsets named by a program importing iconv_open, CA certificates when a TLS
// library is in, the timezone, CPython's prefix landmark, /tmp. Options.Observed
// adds what a probe was seen opening. Every Entry says why and by whom it is
// kept; Result.Chain renders the chain.
//
// Contracts: Closure only reads below its root; every path is resolved
// component by component inside it (absolute links restart at root, ".." stops
// at root), never on the host. It cannot see what a program opens at run time
// (dlopen, NSS and gconv modules, data files): verification catches those, and
// Include adds them. Unresolved libraries are all collected and reported in one
// error wrapping ErrUnresolved, naming each library and who needs it.
//
// Build mounts the image's final filesystem read-only (an overlay of the store's
// unpacked layers) under the store's tmp/, unmounted and removed on every path
// out; writes one layer with the closure's paths and their parents
// (original owners, modes, times, xattrs), streamed and hashed into the store;
// writes the config (the original's, history entry "slimbuild slim" added) and
// manifest. Before the closure, the original runs once per Probe under fanotify
// (FAN_MARK_FILESYSTEM on its overlay root, from the host; an HTTP probe dials
// into the container's network namespace) and what it opened joins the
// closure; runProbe is the one place containers are started. Then, unless told
// not to, it runs the original and the slim image in
// runc with network none and the same arguments and requires the same exit
// status, stdout and stderr (a *VerifyError, wrapping ErrVerify, shows both
// otherwise). Only a verified (or unverified by request) image is tagged; an
// image that failed verification stays in the store untagged until GC.
package slim
