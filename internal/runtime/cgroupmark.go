package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// runc makes a container's cgroups (one per hierarchy, named after the container,
// below runc's own cgroup) before it writes the container's state.json. A runc
// killed in between leaves cgroups that its state directory cannot name: `runc
// delete --force` of a container without state.json removes only the container's
// directory. So before runc starts, Run records the directories those cgroups
// will have in a marker, MarkerDirName(stateDir)/<id>, and removes it once the
// container is deleted; ReapContainer removes what a marker names.

// markerSuffix makes the marker directory's name from the state directory's.
const markerSuffix = ".cgroups"

// MarkerDir is the directory beside the runc state directory stateDir where Run
// records, for each container it starts, the cgroups runc will make for it.
func MarkerDir(stateDir string) string { return stateDir + markerSuffix }

// StaleIDs lists the containers the runc state directory stateDir records and
// those only a marker names (runc was killed before it wrote their state), sorted.
// Missing directories hold none.
func StaleIDs(stateDir string) []string {
	var ids []string
	for _, d := range []string{stateDir, MarkerDir(stateDir)} {
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			// State dirs are directories, markers files; anything else (a
			// marker's temporary file) names no container.
			if (d == stateDir) == e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				ids = append(ids, e.Name())
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// markCgroups records the cgroups runc will make for container id (see above).
// The marker is written to a temporary file and renamed, so a marker is whole or
// absent. It is not fsynced: it describes kernel objects, which a reboot removes
// with it, and a killed process's writes survive in the page cache.
func markCgroups(stateDir, id string) error {
	parents, err := ownCgroups()
	if err != nil {
		return fmt.Errorf("finding this process's cgroups: %w", err)
	}
	dir := MarkerDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording the cgroups of container %q: %w", id, err)
	}
	var b strings.Builder
	for _, p := range parents {
		b.WriteString(filepath.Join(p, id) + "\n")
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("recording the cgroups of container %q: %w", id, err)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, id))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("recording the cgroups of container %q: %w", id, err)
	}
	return nil
}

// unmark removes container id's marker.
func unmark(stateDir, id string) {
	os.Remove(filepath.Join(MarkerDir(stateDir), id))
}

// markedCgroups returns the cgroup directories container id's marker names; only
// lines that are clean absolute paths whose last element is id count.
func markedCgroups(stateDir, id string) []string {
	b, err := os.ReadFile(filepath.Join(MarkerDir(stateDir), id))
	if err != nil {
		return nil
	}
	var dirs []string
	for _, l := range strings.Split(string(b), "\n") {
		if filepath.IsAbs(l) && filepath.Clean(l) == l && filepath.Base(l) == id {
			dirs = append(dirs, l)
		}
	}
	return dirs
}

// removeCgroup removes the empty cgroup dir, retrying while its killed processes
// exit. It touches only directories of a cgroup filesystem; a missing one is gone.
func removeCgroup(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("removing cgroup %q: %w", dir, err)
	}
	if st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("removing cgroup %q: not on a cgroup filesystem", dir)
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %q: %w", dir, err)
}

// ownCgroups returns this process's cgroup directory in every mounted cgroup
// hierarchy: where runc, started by this process, makes its containers' cgroups.
var ownCgroups = sync.OnceValues(func() ([]string, error) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer mi.Close()
	mounts, err := cgroupMounts(mi)
	if err != nil {
		return nil, err
	}
	return cgroupDirs(string(cg), mounts), nil
})

// cgroupMount is a mount of a cgroup hierarchy: where, which part of it (root),
// and its controllers (nil for cgroup2).
type cgroupMount struct {
	point, root string
	opts        []string
	v2          bool
}

// cgroupMounts reads the cgroup and cgroup2 mounts of a mountinfo table.
func cgroupMounts(r io.Reader) ([]cgroupMount, error) {
	infos, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	var out []cgroupMount
	for _, i := range infos {
		m := cgroupMount{point: i.Mountpoint, root: i.Root, v2: i.FSType == "cgroup2"}
		if !m.v2 {
			m.opts = strings.Split(i.VFSOptions, ",")
		}
		out = append(out, m)
	}
	return out, nil
}

// cgroupDirs maps the lines of /proc/PID/cgroup ("ID:controllers:path") to
// directories through the cgroup mounts: for each hierarchy the first mount of
// it whose root holds the path.
func cgroupDirs(procCgroup string, mounts []cgroupMount) []string {
	var dirs []string
	for _, line := range strings.Split(procCgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		v2 := f[0] == "0" && f[1] == ""
		var ctrls []string
		if !v2 {
			ctrls = strings.Split(f[1], ",")
		}
		for _, m := range mounts {
			if m.v2 != v2 || !containsAll(m.opts, ctrls) {
				continue
			}
			rel := f[2]
			if m.root != "/" {
				if rel != m.root && !strings.HasPrefix(rel, m.root+"/") {
					continue
				}
				rel = strings.TrimPrefix(rel, m.root)
			}
			dirs = append(dirs, filepath.Join(m.point, rel))
			break
		}
	}
	return dirs
}

func containsAll(set, items []string) bool {
	for _, it := range items {
		if !slices.Contains(set, it) {
			return false
		}
	}
	return true
}
