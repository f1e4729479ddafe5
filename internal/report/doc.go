// Package report analyses an image's size and attack surface from a plain v1.Image, compares
// two images, summarises a build, checks gates, and renders all of it as text, JSON or one
// self-contained HTML page.
//
// # Contracts
//
// Analyze reads each layer's Uncompressed stream exactly once, from start to end, and closes
// it; it never holds a layer, or a file, in memory: only per-path metadata and the first
// bytes of regular files (512 bytes; 64 KiB for files named like key containers: *.pem,
// *.key, id_*) are looked at. Memory grows with the number of paths in the image.
// Layers are applied with OCI whiteout semantics: ".wh.NAME" removes NAME from lower layers,
// ".wh..wh..opq" hides everything lower layers put in its directory; neither hides what the
// same layer adds. Symlinks in parent directories are followed within the image root.
//
// AnalyzeLayers and SummarizeBuild read an image's (or a stage's) files from LayerSources
// instead: one per layer, bottom first, each named by a stable ID (a diffID, or a snapshot's
// identity) and opened as an uncompressed tar. Each layer is scanned on its own into an
// analysis of its entries (path, type, mode, size, link target, whether it starts like an
// ELF file or a private key, whether it carries security.capability), its whiteouts and
// opaque markers, and its stream length; the analyses are then merged bottom first, applying
// the whiteouts, into exactly the Report that AnalyzeContext gives. With Options.Cache each
// analysis is kept under LayerKey(ID) (a sha256 of a versioned prefix and the ID) in a
// compact binary form (encode.go) whose size grows with the layer's entries, never with their
// contents, sealed by a CRC-32C: a layer whose entry is present and intact is not opened;
// an entry that is missing, truncated, altered or of another version is ignored and the
// layer read again. Only an image's manifest and config are read from the image itself.
//
// Sizes: compressed_size is the manifest plus the config plus every layer blob as stored;
// uncompressed_size is the sum of the layers' uncompressed tar streams; files_size is the
// sum of the regular files visible in the final filesystem. hidden_size counts every copy
// of a regular file that a later layer deleted or overwrote: only copies that are not
// visible, so a file written once and never touched again counts nothing.
//
// Attack surface is taken from the final filesystem (after whiteouts):
//
//   - compilers: gcc, cc, c++, g++, cpp, clang, ld, as, make, cmake, go, rustc, cargo, javac…
//     in any directory named bin or sbin, also with target prefixes and version suffixes
//     (x86_64-linux-gnu-gcc-12), and cc1, cc1plus, collect2, lto1 under /usr/lib/gcc or
//     /usr/libexec/gcc;
//   - headers: *.h, *.hh, *.hpp, *.hxx under /usr/include and /usr/local/include;
//   - package-managers: apt, apt-get, dpkg, apk, rpm, yum, dnf, pip, npm, gem… in bin
//     directories, and non-empty databases /var/lib/dpkg, /lib/apk/db, /var/lib/rpm,
//     /usr/lib/sysimage/rpm, /var/lib/pacman;
//   - shells: sh, bash, dash, ash, zsh, busybox, python*, perl*, ruby, node, php, lua… in bin
//     directories;
//   - setuid: regular files with the setuid or setgid bit;
//   - world-writable: regular files and directories with mode o+w and no sticky bit;
//   - capabilities: entries with the PAX record SCHILY.xattr.security.capability;
//   - root: the config's User is empty, "0", "root", or "0:…"/"root:…";
//   - secrets: files starting with a PEM "-----BEGIN … PRIVATE KEY" line (anywhere in the
//     first 64 KiB for *.pem, *.key, id_*), and files named id_rsa, id_dsa, id_ecdsa,
//     id_ed25519, .env, .env.* (but not .env.example and the like), .netrc, .git-credentials,
//     .pgpass.
//
// A program in a bin directory counts only if it is runnable: a regular file with an
// execute bit, or a symlink or hard link that resolves to one (so /bin/sh → busybox counts
// as a shell, and a dangling /usr/bin/cc does not). elf_executables counts regular files
// that start with \x7fELF and have an execute bit or live in a bin directory.
//
// # JSON
//
// WriteJSON emits the structures below with snake_case field names. The form is versioned
// by schema_version (SchemaVersion); within a version fields are only added. Arrays are
// never null; sizes are bytes; layer indexes count from 0 at the bottom.
//
//	Report {
//	  schema_version     int       // 1
//	  image              string    // the name the caller gave (omitted if none)
//	  digest             string    // manifest digest, "sha256:…"
//	  platform           string    // "os/arch[/variant]" (omitted if the config has none)
//	  user               string    // config User as written, "" when unset
//	  compressed_size    int       // manifest + config + layer blobs
//	  uncompressed_size  int       // sum of uncompressed layer tars
//	  manifest_size      int
//	  config_size        int
//	  files_size         int       // regular files visible in the final filesystem
//	  file_count         int       // regular files visible in the final filesystem
//	  hidden_size        int       // bytes of file copies deleted or overwritten later
//	  hidden_count       int       // number of such copies
//	  elf_executables    int
//	  layers             [Layer]   // bottom first
//	  directories        [DirSize] // top-level entries holding files, largest first
//	  largest_files      [File]    // largest first, at most Options.Top
//	  largest_hidden     [File]    // largest hidden copies, at most Options.Top
//	  attack_surface     [Finding] // one per category, always all, in the order above
//	}
//	Layer {
//	  index int; digest string; diff_id string; media_type string
//	  compressed_size int; uncompressed_size int
//	  files_size int   // regular file bytes the layer adds
//	  files int        // regular files in the layer
//	  entries int      // tar entries, whiteouts included
//	  whiteouts int    // whiteout and opaque markers
//	  hidden_size int  // bytes of this layer's files not visible in the final filesystem
//	  created_by string // from the config history entry that made the layer, "" if none
//	}
//	DirSize { path string; size int; files int }
//	File    { path string; size int; layer int }
//	Finding {
//	  category string  // compilers, headers, package-managers, shells, setuid,
//	                   // world-writable, capabilities, root, secrets
//	  count    int     // paths found; for root 1 or 0
//	  names    [string] // canonical program names (gcc, apt, python), database names
//	                    // ("dpkg database"), or file base names; sorted, unique
//	  paths    [string] // absolute paths in the final filesystem, sorted
//	  detail   string   // root only: "USER is not set" or "USER is …"
//	}
//	Comparison {
//	  schema_version int; a Report; b Report
//	  reduction_percent float            // 100*(a-b)/a of uncompressed_size
//	  compressed_reduction_percent float // the same of compressed_size
//	  sizes [{metric string; a int; b int; reduction_percent float}]
//	        // metrics: compressed, uncompressed, files_size, file_count, layers,
//	        //          hidden_size, elf_executables
//	  categories [{category string; a int; b int;
//	               status string // only_a, only_b, both, neither
//	               names_only_in_a [string]; names_only_in_b [string]}]
//	  only_in_a [string]; only_in_b [string] // categories present in one image only
//	}
//	Summary {
//	  image string; compressed_size int; uncompressed_size int; layers int
//	  elf_executables int; stages_built int; stages_discarded int
//	  left_behind [string] // "gcc", "1,284 headers", "apt": in discarded stages only
//	  remaining [string]   // attack surface of the final image, one item per category
//	}
//	Violation { category string; message string; paths [string] }
//
// # Gates
//
// Gate checks a Report against a maximum uncompressed size and forbidden categories;
// ParseForbid and Gate.Validate reject unknown names with ErrUnknownCategory, and Check
// reports an unknown name as a violation rather than passing. GateError carries the
// violations to the command line with exit status GateExitCode.
//
// The package is silent: it prints nothing; progress goes through Options.Progress.
package report
