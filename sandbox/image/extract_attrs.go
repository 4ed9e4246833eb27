package image

import (
	"archive/tar"
	"encoding/binary"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Owners, xattrs and whiteouts of the extracted entries.

// rootlessXattr is the xattr that keeps an entry's owner, umoci's (from
// github.com/rootless-containers/proto): the protobuf message
//
//	message Resource { uint32 uid = 1; uint32 gid = 2; }
//
// with 0 (root) written as noopID, and no xattr for 0:0. As neither field
// is ever 0, the encoding is always both fields, each a tag byte (field
// number << 3 | wire type 0, varint) then the value as a varint: 0x08
// varint(uid) 0x10 varint(gid). It is encoded here by hand, without the
// protobuf runtime (whose initialization every warden command would pay).
const rootlessXattr = "user.rootlesscontainers"

// noopID is rootlesscontainers.NoopID: "no owner recorded" (uint32(-1)).
const noopID = ^uint32(0)

// rootlessValue is the value of rootlessXattr for an image owner uid:gid;
// nil for 0:0.
func rootlessValue(uid, gid int) []byte {
	if uid == 0 && gid == 0 {
		return nil
	}
	u, g := uint32(uid), uint32(gid)
	if uid == 0 {
		u = noopID
	}
	if gid == 0 {
		g = noopID
	}
	b := binary.AppendUvarint([]byte{0x08}, uint64(u))
	b = append(b, 0x10)
	return binary.AppendUvarint(b, uint64(g))
}

// setXattrs sets the xattrs of h that a layer keeps on the file or
// directory fd: its user.* PAX xattrs (user.overlay.* escaped), and the
// owner in rootlessXattr. A file system without user xattrs loses them
// (umoci warned and went on).
func setXattrs(fd int, h *tar.Header) error {
	set := func(name string, value []byte) error {
		err := unix.Fsetxattr(fd, name, value, 0)
		if err == unix.ENOTSUP {
			return nil
		}
		return err
	}
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !strings.HasPrefix(name, "user.") || name == rootlessXattr {
			continue // security.*, trusted.*, system.* (ACLs) are not kept
		}
		if sub, ok := strings.CutPrefix(name, "user.overlay."); ok {
			name = "user.overlay.overlay." + sub
		}
		if err := set(name, []byte(v)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if v := rootlessValue(h.Uid, h.Gid); v != nil {
		if err := set(rootlessXattr, v); err != nil {
			return fmt.Errorf("%s: %w", rootlessXattr, err)
		}
	}
	return nil
}

// whiteout makes ".wh.w" in dir: w is removed and, unless an opaque dir
// of this layer holds it, a whiteout made in its place.
func (e *extractor) whiteout(dir, w string) error {
	pfd, err := e.parent(dir)
	if err != nil {
		return err
	}
	p := path.Join(dir, w)
	if err := e.removeEntry(pfd, p, w); err != nil {
		return err
	}
	for q := dir; ; q = path.Dir(q) {
		if e.opaque[q] {
			return nil // the opaque dir hides it already
		}
		if q == "." {
			break
		}
	}
	if err := unix.Mknodat(pfd, w, unix.S_IFCHR, 0); err != nil {
		return &pathError{"make the whiteout", p, err}
	}
	e.whiteouts[p] = true
	return nil
}

// makeOpaque marks dir opaque (".wh..wh..opq"), making it if need be, and
// removes the whiteouts this layer made in it: overlayfs lists those in an
// opaque dir but will not open them.
func (e *extractor) makeOpaque(dir string) error {
	fd := e.root
	if dir != "." {
		pfd, err := e.parent(path.Dir(dir))
		if err != nil {
			return err
		}
		base := path.Base(dir)
		if fd, err = e.childDir(pfd, dir, base, true); err != nil {
			return err
		}
		defer unix.Close(fd)
	}
	if err := unix.Fsetxattr(fd, "user.overlay.opaque", []byte("y"), 0); err != nil {
		return &pathError{"mark opaque", dir, err}
	}
	e.opaque[dir] = true
	for w := range e.whiteouts {
		if dir == "." || strings.HasPrefix(w, dir+"/") {
			wfd, err := e.lookup(path.Dir(w))
			if err != nil {
				return err
			}
			err = unix.Unlinkat(wfd, path.Base(w), 0)
			if wfd != e.root {
				unix.Close(wfd)
			}
			if err != nil && err != unix.ENOENT {
				return &pathError{"remove the whiteout", w, err}
			}
			delete(e.whiteouts, w)
		}
	}
	return nil
}
