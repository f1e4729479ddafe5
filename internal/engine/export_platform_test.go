package engine

// SetBinfmtDir makes the build look for binfmt_misc handlers in dir (tests).
func SetBinfmtDir(o *Options, dir string) { o.binfmtDir = dir }
