package image

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"
)

// scanner checks a layer's tar headers, in order, before the extractor
// sees them. The extractor on its own never writes outside the layer
// directory (it refuses to go through a symlink; umoci, which unpacked
// layers before it, clamped such entries into the layer), but we refuse a
// hostile layer as a whole, and first: an image built that way is not one
// to run, and "the layer tried to write /etc/passwd" is something the user
// must hear about.
type scanner struct {
	// symlinks are the paths (cleaned, relative) this layer has made
	// symlinks so far; an entry below one of them would be written
	// through it.
	symlinks map[string]bool
}

func newScanner() *scanner { return &scanner{symlinks: map[string]bool{}} }

// check returns skip for entries that are not unpacked (device nodes, pax
// global headers) and why for a hostile entry ("" if it is not).
func (s *scanner) check(h *tar.Header) (skip bool, why string) {
	name, why := s.checkPath(h.Name, "path")
	if why != "" {
		return false, why
	}
	dropPrivilegedXattrs(h)
	switch h.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		// mknod of a device needs CAP_MKNOD in the initial user namespace,
		// and the jail gets its own /dev.
		return true, ""
	case tar.TypeXGlobalHeader:
		return true, ""
	case tar.TypeSymlink:
		s.symlinks[name] = true
		return false, ""
	case tar.TypeLink:
		target, why := s.checkPath(h.Linkname, "hard link target")
		if why != "" {
			return false, why
		}
		// A hard link to a symlink is a symlink.
		if s.symlinks[target] {
			s.symlinks[name] = true
		} else {
			delete(s.symlinks, name)
		}
		return false, ""
	}
	base := path.Base(name)
	if w, ok := strings.CutPrefix(base, ".wh."); ok && (w == "" || w == "." || w == "..") {
		// ".wh.." would white out the directory itself, ".wh..." its
		// parent: outside the layer for a top-level entry.
		return false, fmt.Sprintf("has a whiteout %q of no file", h.Name)
	} else if ok && w != ".wh..opq" {
		delete(s.symlinks, path.Join(path.Dir(name), w)) // whited out
	} else if !ok {
		delete(s.symlinks, name) // replaced by a file, directory or fifo
	}
	return false, ""
}

// checkPath refuses absolute paths, ".." components, and paths whose
// parent goes through a symlink of this layer. It returns the cleaned
// relative path.
func (s *scanner) checkPath(p, what string) (string, string) {
	if p == "" {
		return "", "has an empty " + what
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Sprintf("has the absolute %s %q", what, p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Sprintf("has a %s with a \"..\" component (%q)", what, p)
		}
	}
	clean := path.Clean(p)
	for dir := path.Dir(clean); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if s.symlinks[dir] {
			return "", fmt.Sprintf("has a %s %q that goes through the symlink %q the layer created before it", what, p, dir)
		}
	}
	return clean, ""
}

// dropPrivilegedXattrs removes the security.* and trusted.* xattrs of an
// entry, so that a layer is the same whoever imports it: only root can set
// them (security.capability gives a file capabilities; trusted.overlay.*
// would steer an overlay mounted without userxattr). The extractor sets
// only user.* xattrs anyway; this keeps the headers honest for whatever
// else reads them.
func dropPrivilegedXattrs(h *tar.Header) {
	for _, ns := range []string{"security.", "trusted."} {
		for k := range h.Xattrs { //nolint:staticcheck // archive/tar fills both
			if strings.HasPrefix(k, ns) {
				delete(h.Xattrs, k) //nolint:staticcheck
			}
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr."+ns) {
				delete(h.PAXRecords, k)
			}
		}
	}
}
