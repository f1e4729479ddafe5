package layer

import "io/fs"

// UnixMode is m's Unix permission and special bits (07777), as a tar header
// and chmod(2) carry them: fs.ModeSetuid becomes 04000, fs.ModeSetgid 02000,
// fs.ModeSticky 01000. The file type is left out.
func UnixMode(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// FileMode is the reverse of UnixMode: the fs.FileMode (permissions and
// setuid, setgid, sticky) of the Unix mode bits in bits. Anything above 07777
// (a tar header's file type bits) is left out.
func FileMode(bits int64) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
