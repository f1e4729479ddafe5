package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

const (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// ErrUnknownUser is wrapped by ResolveUser when a user or group name is not in the image.
var ErrUnknownUser = errors.New("unknown user or group")

// ResolveUser resolves "name", "uid", "name:group", "uid:gid" against rootfs/etc/passwd
// and rootfs/etc/group (resolved inside rootfs, see readColonFile). Empty means root.
//
// Like docker: a numeric uid not in passwd gets gid 0; a user found in passwd gets its
// primary gid and, unless a group is given, the supplementary groups that list its name
// in /etc/group.
func ResolveUser(rootfs, user string) (User, error) {
	if user == "" {
		return User{}, nil
	}
	userArg, groupArg, hasGroup := strings.Cut(user, ":")
	if userArg == "" || (hasGroup && groupArg == "") {
		return User{}, fmt.Errorf("resolving user %q: malformed, want user[:group]", user)
	}

	var u User
	var name string // the passwd name matched, for supplementary groups
	uid, numeric := parseID(userArg)
	entries, err := readColonFile(rootfs, passwdFile)
	if err != nil && !(numeric && errors.Is(err, fs.ErrNotExist)) {
		return User{}, fmt.Errorf("resolving user %q: %w", user, err)
	}
	found := false
	for _, e := range entries {
		if len(e) < 4 {
			continue
		}
		if numeric {
			if id, ok := parseID(e[2]); !ok || id != uid {
				continue
			}
		} else if e[0] != userArg {
			continue
		}
		id, ok1 := parseID(e[2])
		gid, ok2 := parseID(e[3])
		if !ok1 || !ok2 {
			return User{}, fmt.Errorf("resolving user %q: bad entry for %q in %s", user, e[0], passwdFile)
		}
		u, name, found = User{UID: id, GID: gid}, e[0], true
		break
	}
	if !found {
		if !numeric {
			return User{}, fmt.Errorf("resolving user %q: no user %q in %s: %w", user, userArg, passwdFile, ErrUnknownUser)
		}
		u = User{UID: uid, GID: 0}
	}

	if hasGroup {
		gid, ok := parseID(groupArg)
		if !ok {
			groups, err := readColonFile(rootfs, groupFile)
			if err != nil {
				return User{}, fmt.Errorf("resolving group of user %q: %w", user, err)
			}
			for _, g := range groups {
				if len(g) >= 3 && g[0] == groupArg {
					gid, ok = parseID(g[2])
					break
				}
			}
			if !ok {
				return User{}, fmt.Errorf("resolving user %q: no group %q in %s: %w", user, groupArg, groupFile, ErrUnknownUser)
			}
		}
		u.GID = gid
		return u, nil
	}

	if found {
		groups, err := readColonFile(rootfs, groupFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return User{}, fmt.Errorf("resolving groups of user %q: %w", user, err)
		}
		seen := map[uint32]bool{}
		for _, g := range groups {
			if len(g) < 4 {
				continue
			}
			gid, ok := parseID(g[2])
			if !ok || seen[gid] {
				continue
			}
			for _, member := range strings.Split(g[3], ",") {
				if strings.TrimSpace(member) == name {
					u.AddGIDs = append(u.AddGIDs, gid)
					seen[gid] = true
					break
				}
			}
		}
	}
	return u, nil
}

// parseID parses a decimal uid or gid.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// maxColonFile bounds what readColonFile reads of an image's passwd or group
// file; real ones are a few KiB.
const maxColonFile = 16 << 20

// readColonFile reads a passwd/group style file of the image at rootfs, skipping blank
// lines and comments, through OpenInRoot: symlinks resolve inside rootfs, and
// only a regular file of at most maxColonFile bytes is read.
func readColonFile(rootfs, name string) ([][]string, error) {
	f, err := OpenInRoot(rootfs, name, maxColonFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s of image: %w", name, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, maxColonFile))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s of image: %w", name, err)
	}
	return out, nil
}
