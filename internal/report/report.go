package report

// SchemaVersion is the version of the JSON form of Report and Comparison. It changes only
// when a field is removed or changes meaning; new fields may be added within a version.
const SchemaVersion = 1

// Category names an attack-surface category. The names are those accepted by --forbid.
type Category string

// The attack-surface categories, in the order reports list them.
const (
	Compilers       Category = "compilers"        // compilers, linkers, assemblers, build tools
	Headers         Category = "headers"          // C/C++ headers under /usr/include, /usr/local/include
	PackageManagers Category = "package-managers" // apt, dpkg, apk, rpm, pip, npm… and their databases
	Shells          Category = "shells"           // shells and interpreters, busybox
	Setuid          Category = "setuid"           // setuid or setgid regular files
	WorldWritable   Category = "world-writable"   // files and directories writable by all, without sticky bit
	Capabilities    Category = "capabilities"     // files carrying security.capability
	Root            Category = "root"             // the image runs as root
	Secrets         Category = "secrets"          // private keys, id_rsa, .env and similar
)

// Categories lists every category in report order.
var Categories = []Category{Compilers, Headers, PackageManagers, Shells, Setuid, WorldWritable, Capabilities, Root, Secrets}

// Report is the analysis of one image. Its JSON form is documented in doc.go.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	Image         string `json:"image,omitempty"`
	Digest        string `json:"digest"`
	Platform      string `json:"platform,omitempty"`
	User          string `json:"user"`

	CompressedSize   int64 `json:"compressed_size"`
	UncompressedSize int64 `json:"uncompressed_size"`
	ManifestSize     int64 `json:"manifest_size"`
	ConfigSize       int64 `json:"config_size"`
	FilesSize        int64 `json:"files_size"`
	FileCount        int   `json:"file_count"`
	HiddenSize       int64 `json:"hidden_size"`
	HiddenCount      int   `json:"hidden_count"`
	ELFExecutables   int   `json:"elf_executables"`

	Layers        []Layer   `json:"layers"`
	Directories   []DirSize `json:"directories"`
	LargestFiles  []File    `json:"largest_files"`
	LargestHidden []File    `json:"largest_hidden"`
	Surface       []Finding `json:"attack_surface"`
}

// Layer is one layer of the image, bottom first.
type Layer struct {
	Index            int    `json:"index"`
	Digest           string `json:"digest"`
	DiffID           string `json:"diff_id"`
	MediaType        string `json:"media_type"`
	CompressedSize   int64  `json:"compressed_size"`
	UncompressedSize int64  `json:"uncompressed_size"`
	FilesSize        int64  `json:"files_size"`
	Files            int    `json:"files"`
	Entries          int    `json:"entries"`
	Whiteouts        int    `json:"whiteouts"`
	HiddenSize       int64  `json:"hidden_size"`
	CreatedBy        string `json:"created_by"`
}

// DirSize is the content of one top-level entry of the final filesystem.
type DirSize struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Files int    `json:"files"`
}

// File is one regular file: Layer is the index of the layer that holds this copy.
type File struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Layer int    `json:"layer"`
}

// Finding is what one attack-surface category found in the final filesystem.
type Finding struct {
	Category Category `json:"category"`
	Count    int      `json:"count"`
	Names    []string `json:"names"`
	Paths    []string `json:"paths"`
	Detail   string   `json:"detail,omitempty"`
}

// Present reports whether the category found anything.
func (f Finding) Present() bool { return f.Count > 0 }

// Finding returns the finding for category c (a zero Finding if the report has none).
func (r *Report) Finding(c Category) Finding {
	for _, f := range r.Surface {
		if f.Category == c {
			return f
		}
	}
	return Finding{Category: c, Names: []string{}, Paths: []string{}}
}
