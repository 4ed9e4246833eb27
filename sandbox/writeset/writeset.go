package writeset

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind says what happened to a path.
type Kind string

// The kinds of change.
const (
	Created  Kind = "created"
	Modified Kind = "modified"
	Deleted  Kind = "deleted"
)

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeOther   = "other" // fifo, socket, device
)

// Modification details.
const (
	DetailContent     = "content"
	DetailMode        = "mode"
	DetailContentMode = "content+mode"
	DetailType        = "type"
)

// Entry is one changed path.
type Entry struct {
	// Path is relative to the overlay root, "/a/b". It holds the name's
	// bytes as they are (not necessarily UTF-8).
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Type is the new type for created and modified entries, the type
	// that was removed for deleted ones: TypeFile, TypeDir, TypeSymlink
	// or TypeOther.
	Type string `json:"type"`
	// Size is, for created and modified files, the new size; for a
	// deleted file the size removed, for a deleted directory the total
	// size of the files that were visible below it. It is 0 otherwise.
	Size int64 `json:"size"`
	// Detail says what changed in a modified entry: DetailContent,
	// DetailMode (permission bits), DetailContentMode or DetailType
	// (a file became a directory, and so on).
	Detail string `json:"detail,omitempty"`
}

// Set is a write-set. Each list is sorted by Path; a path is in at most
// one list.
type Set struct {
	Created  []Entry `json:"created"`
	Modified []Entry `json:"modified"`
	Deleted  []Entry `json:"deleted"`
}

// ErrLimit is wrapped by the error of Diff or Keep when a tree is deeper
// than MaxDepth or, for Diff, when the set would hold more than
// MaxEntries entries. Diff then returns what it found so far.
var ErrLimit = errors.New("write-set limit reached")

// Limits on the work done for one upper. Variables so that tests can
// lower them.
var (
	// MaxDepth is the deepest directory level walked below a root.
	MaxDepth = 4096
	// MaxEntries is the most entries a Set holds.
	MaxEntries = 1 << 20
)

// Written is the number of bytes written by the jail as the set sees it:
// the sizes of created files and of modified files whose content or type
// changed (a mode change writes no data).
func (s Set) Written() int64 {
	var n int64
	for _, e := range s.Created {
		if e.Type == TypeFile {
			n += e.Size
		}
	}
	for _, e := range s.Modified {
		if e.Type == TypeFile && e.Detail != DetailMode {
			n += e.Size
		}
	}
	return n
}

// Summary is one line: "3 created, 1 modified, 1 deleted (12.0 KiB written)".
func (s Set) Summary() string {
	return fmt.Sprintf("%d created, %d modified, %d deleted (%s written)",
		len(s.Created), len(s.Modified), len(s.Deleted), humanSize(s.Written()))
}

// Write writes the human listing of s to w, one line per entry, in path
// order, each path prefixed with root (the overlay's place in the jail;
// "" or "/" for none):
//
//   - /a/new.txt (12 B)
//   - /a/newdir (dir)
//     ~ /a/changed (content, 4.0 KiB)
//     ~ /a/d (mode, dir)
//     ~ /a/x (type, symlink)
//   - /a/gone (file, 3 B)
//   - /a/tree (dir, 1.2 MiB)
//
// A path that is not valid UTF-8 or holds a non-printable character (a
// newline, an escape, a bidi control) is written as a Go-quoted string.
// Write errors are ignored: w is the caller's terminal or buffer.
func (s Set) Write(w io.Writer, root string) {
	root = strings.TrimRight(root, "/")
	c, m, d := s.Created, s.Modified, s.Deleted
	for len(c)+len(m)+len(d) > 0 {
		// Take the smallest path of the three heads.
		var e Entry
		switch {
		case len(c) > 0 && (len(m) == 0 || c[0].Path <= m[0].Path) && (len(d) == 0 || c[0].Path <= d[0].Path):
			e, c = c[0], c[1:]
		case len(m) > 0 && (len(d) == 0 || m[0].Path <= d[0].Path):
			e, m = m[0], m[1:]
		default:
			e, d = d[0], d[1:]
		}
		fmt.Fprintln(w, line(e, root))
	}
}

func line(e Entry, root string) string {
	p := displayPath(root + e.Path)
	switch e.Kind {
	case Created:
		if e.Type == TypeFile {
			return fmt.Sprintf("+ %s (%s)", p, humanSize(e.Size))
		}
		return fmt.Sprintf("+ %s (%s)", p, e.Type)
	case Modified:
		if e.Type == TypeFile {
			return fmt.Sprintf("~ %s (%s, %s)", p, e.Detail, humanSize(e.Size))
		}
		return fmt.Sprintf("~ %s (%s, %s)", p, e.Detail, e.Type)
	default:
		if e.Size > 0 || e.Type == TypeFile {
			return fmt.Sprintf("- %s (%s, %s)", p, e.Type, humanSize(e.Size))
		}
		return fmt.Sprintf("- %s (%s)", p, e.Type)
	}
}

// displayPath quotes p when printing it raw could mislead a reader or a
// terminal: invalid UTF-8, control characters (a newline would fake a
// second entry), format characters such as bidi overrides.
func displayPath(p string) string {
	if !utf8.ValidString(p) {
		return strconv.Quote(p)
	}
	for _, r := range p {
		if !strconv.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}

// humanSize formats n bytes: "12 B", "4.0 KiB", "1.5 MiB".
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	const units = "KMGTPE"
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}
