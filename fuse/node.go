package fuse

import (
	"context"
	"slices"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is one file or directory of the mirror. It holds no host fd: every
// request resolves its path from the server's tree of looked-up names, fd by
// fd beneath ROOT (openDir), and acts on the final name with *at calls that
// do not follow symlinks. The kernel resolves symlinks in the jail's view;
// the server only ever returns them (Readlink).
//
// Deliberately not implemented (go-fuse then answers ENOSYS or the kernel
// falls back): statx (the kernel uses getattr), copy_file_range (read and
// write), O_TMPFILE, ioctl, file locks (the kernel keeps them locally), and
// passthrough (root-only; it would also hide reads and writes).
type node struct {
	gofs.Inode
	t *tree
}

var (
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeAccesser       = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeMknoder        = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeLinker         = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
	_ gofs.NodeGetxattrer     = (*node)(nil)
	_ gofs.NodeSetxattrer     = (*node)(nil)
	_ gofs.NodeRemovexattrer  = (*node)(nil)
	_ gofs.NodeListxattrer    = (*node)(nil)
	_ gofs.NodeFlusher        = (*node)(nil)
)

// rel returns n's path below ROOT ("" for ROOT itself); ok is false once n
// is no longer linked into the tree (unlinked while open).
func (n *node) rel() (string, bool) {
	var segs []string
	for p := n.EmbeddedInode(); !p.IsRoot(); {
		name, parent := p.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		p = parent
	}
	slices.Reverse(segs)
	return strings.Join(segs, "/"), true
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// self is where a node is, for calls on the node itself: a name in its
// parent directory ("." in ROOT for ROOT).
type self struct {
	d    dir
	name string
	path string // for the record: relative to ROOT, "." for ROOT
}

func (n *node) self() (self, syscall.Errno) {
	rel, ok := n.rel()
	if !ok {
		return self{}, syscall.ENOENT
	}
	if rel == "" {
		return self{d: dir{fd: n.t.rootfd}, name: ".", path: "."}, 0
	}
	parent, name := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		parent, name = rel[:i], rel[i+1:]
	}
	d, e := n.t.openDir(parent)
	if e != 0 {
		return self{}, e
	}
	return self{d: d, name: name, path: rel}, 0
}

// child opens n as the directory of a request on its entry name.
func (n *node) child(name string) (d dir, rel string, e syscall.Errno) {
	if !validName(name) {
		return dir{}, "", syscall.EINVAL
	}
	rel, ok := n.rel()
	if !ok {
		return dir{}, "", syscall.ENOENT
	}
	d, e = n.t.openDir(rel)
	return d, join(rel, name), e
}

// newChild makes the inode for a name just looked up or created.
func (n *node) newChild(ctx context.Context, st *unix.Statx_t, out *gofuse.EntryOut) *gofs.Inode {
	n.t.fill(&out.Attr, st)
	id := gofs.StableAttr{Mode: uint32(st.Mode) & syscall.S_IFMT, Ino: n.t.ino(st), Gen: gen(st)}
	return n.NewInode(ctx, &node{t: n.t}, id)
}

func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d, p, e := n.child(name)
	if e != 0 {
		return nil, e
	}
	defer d.close()
	var st unix.Statx_t
	if err := statx(d.fd, name, &st); err != nil {
		if e := errno(err); e != syscall.ENOENT {
			return nil, e
		}
		n.t.rec.note(p, opMissing)
		return nil, syscall.ENOENT
	}
	n.t.rec.note(p, opLookup)
	return n.newChild(ctx, &st, out), 0
}

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	var st unix.Statx_t
	if h, ok := f.(*handle); ok {
		// An open file, maybe unlinked since: stat the fd itself.
		if err := statx(h.fd, "", &st); err != nil {
			return errno(err)
		}
		h.e.add(opGetattr)
	} else {
		s, e := n.self()
		if e != 0 {
			return e
		}
		defer s.d.close()
		if err := statx(s.d.fd, s.name, &st); err != nil {
			return errno(err)
		}
		n.t.rec.note(s.path, opGetattr)
	}
	n.t.fill(&out.Attr, &st)
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s, e := n.self()
	if e != 0 {
		return nil, e
	}
	defer s.d.close()
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		k, err := unix.Readlinkat(s.d.fd, s.name, buf)
		if err != nil {
			return nil, errno(err)
		}
		if k < size {
			n.t.rec.note(s.path, opReadlink)
			return buf[:k], 0
		}
	}
}

// openMask are the open flags the server drops from the jail's: the kernel
// keeps the file position and page cache (O_APPEND, O_DIRECT), creates go
// through Create, and FMODE_EXEC is kernel-internal.
const openMask = unix.O_APPEND | unix.O_DIRECT | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | gofuse.FMODE_EXEC

func writes(flags uint32) bool {
	return flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.t.refuseOpen(writes(flags)); e != 0 {
		return nil, 0, e
	}
	s, e := n.self()
	if e != 0 {
		return nil, 0, e
	}
	defer s.d.close()
	fl := int(flags)&^openMask | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	fd, err := unix.Openat(s.d.fd, s.name, fl, 0)
	if err != nil {
		return nil, 0, errno(err)
	}
	h, _, e := n.t.newHandle(fd, fl, flags, s.path)
	if e != 0 {
		return nil, 0, e
	}
	o := opOpenRead
	if writes(flags) {
		o = opOpenWrite
	}
	h.e = n.t.rec.note(s.path, o)
	return h, n.t.fileFlags, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *gofuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.t.refuse(); e != 0 {
		return nil, nil, 0, e
	}
	d, p, e := n.child(name)
	if e != 0 {
		return nil, nil, 0, e
	}
	defer d.close()
	fl := int(flags)&^openMask | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	// O_EXCL first, so that "created" means the name was free.
	mode = n.t.perm(mode, false)
	fd, err := unix.Openat(d.fd, name, fl|unix.O_CREAT|unix.O_EXCL, mode)
	created := err == nil
	if err == unix.EEXIST && flags&unix.O_EXCL == 0 {
		fd, err = unix.Openat(d.fd, name, fl, 0)
	}
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	h, st, e := n.t.newHandle(fd, fl, flags, p)
	if e != 0 {
		if created {
			unix.Unlinkat(d.fd, name, 0)
		}
		return nil, nil, 0, e
	}
	o := opCreate
	if !created {
		o = opOpenRead
		if writes(flags) {
			o = opOpenWrite
		}
	} else if err := n.t.unmask(h.fd, "", st, mode); err != nil {
		h.Release(ctx)
		unix.Unlinkat(d.fd, name, 0)
		return nil, nil, 0, errno(err)
	}
	h.e = n.t.rec.note(p, o)
	return n.newChild(ctx, st, out), h, n.t.fileFlags, 0
}

// perm is the permission part of a mode from the jail. A server running as
// host root must not make set-id files for the jail, which is less
// privileged than it (its root is mapped to some other host id): the bits
// are dropped, except set-group-id on directories (group inheritance).
func (t *tree) perm(mode uint32, dir bool) uint32 {
	mode &= 0o7777
	if t.hostRoot {
		mode &^= unix.S_ISUID
		if !dir {
			mode &^= unix.S_ISGID
		}
	}
	return mode
}

// unmask gives a new file the permission bits the jail asked for: the
// kernel applied the jail's umask already, and the server's own umask must
// not apply on top. fd is the file, or a directory with name in it.
func (t *tree) unmask(fd int, name string, st *unix.Statx_t, mode uint32) error {
	lost := mode & t.umask & 0o777
	if lost == 0 || uint32(st.Mode)&lost == lost {
		return nil
	}
	want := uint32(st.Mode)&0o7777 | lost
	var err error
	if name == "" {
		err = unix.Fchmod(fd, want)
	} else {
		err = chmodAt(fd, name, want)
	}
	if err == nil {
		st.Mode = st.Mode&^0o7777 | uint16(want)
	}
	return err
}

// made finishes a mkdir, mknod, symlink or link of name in d: stat it, fix
// its mode, record it and make its inode.
func (n *node) made(ctx context.Context, d dir, name, p string, mode uint32, o op, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	var st unix.Statx_t
	if err := statx(d.fd, name, &st); err != nil {
		return nil, errno(err)
	}
	if o == opMkdir || o == opMknod {
		if err := n.t.unmask(d.fd, name, &st, mode); err != nil {
			return nil, errno(err)
		}
	}
	n.t.rec.note(p, o)
	return n.newChild(ctx, &st, out), 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.t.refuse(); e != 0 {
		return nil, e
	}
	d, p, e := n.child(name)
	if e != 0 {
		return nil, e
	}
	defer d.close()
	mode = n.t.perm(mode, true)
	if err := unix.Mkdirat(d.fd, name, mode); err != nil {
		return nil, errno(err)
	}
	return n.made(ctx, d, name, p, mode, opMkdir, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.t.refuse(); e != 0 {
		return nil, e
	}
	d, p, e := n.child(name)
	if e != 0 {
		return nil, e
	}
	defer d.close()
	// FIFOs, sockets and empty files only. A device node would fail for an
	// unprivileged server (EPERM) and must not be made on the host by a
	// privileged one: the jail cannot use it (FUSE mounts are nodev), but the
	// host could.
	switch mode & unix.S_IFMT {
	case 0, unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK:
	default:
		return nil, syscall.EPERM
	}
	mode = mode&unix.S_IFMT | n.t.perm(mode, false)
	if err := unix.Mknodat(d.fd, name, mode, 0); err != nil {
		return nil, errno(err)
	}
	return n.made(ctx, d, name, p, mode, opMknod, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.t.refuse(); e != 0 {
		return nil, e
	}
	d, p, e := n.child(name)
	if e != 0 {
		return nil, e
	}
	defer d.close()
	// The target is only stored: the kernel resolves it, in the jail.
	if err := unix.Symlinkat(target, d.fd, name); err != nil {
		return nil, errno(err)
	}
	return n.made(ctx, d, name, p, 0, opSymlink, out)
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.t.refuse(); e != 0 {
		return nil, e
	}
	tn, ok := target.(*node)
	if !ok || tn.t != n.t {
		return nil, syscall.EXDEV
	}
	ts, e := tn.self()
	if e != 0 {
		return nil, e
	}
	defer ts.d.close()
	d, p, e := n.child(name)
	if e != 0 {
		return nil, e
	}
	defer d.close()
	if err := unix.Linkat(ts.d.fd, ts.name, d.fd, name, 0); err != nil {
		return nil, errno(err)
	}
	return n.made(ctx, d, name, p, 0, opLink, out)
}

func (n *node) remove(name string, flags int, o op) syscall.Errno {
	if e := n.t.refuse(); e != 0 {
		return e
	}
	d, p, e := n.child(name)
	if e != 0 {
		return e
	}
	defer d.close()
	if err := unix.Unlinkat(d.fd, name, flags); err != nil {
		return errno(err)
	}
	n.t.rec.note(p, o)
	return 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, 0, opUnlink)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, unix.AT_REMOVEDIR, opRmdir)
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.t.refuse(); e != 0 {
		return e
	}
	np, ok := newParent.(*node)
	if !ok || np.t != n.t {
		return syscall.EXDEV
	}
	d1, from, e := n.child(name)
	if e != 0 {
		return e
	}
	defer d1.close()
	d2, to, e := np.child(newName)
	if e != 0 {
		return e
	}
	defer d2.close()
	exchange := flags&unix.RENAME_EXCHANGE != 0
	existed := false
	if !exchange && !n.t.rec.known(to) {
		// Usually the kernel looked the target up first; if not, find out
		// whether the rename replaces something.
		var st unix.Statx_t
		existed = statx(d2.fd, newName, &st) == nil
	}
	moved := n.GetChild(name)
	if err := unix.Renameat2(d1.fd, name, d2.fd, newName, uint(flags)); err != nil {
		return errno(err)
	}
	if exchange {
		n.t.rec.noteExchange(from, to)
	} else {
		n.t.rec.note(from, opRenameFrom)
		n.t.rec.noteRenameTo(to, existed)
		if moved != nil && moved.IsDir() {
			n.t.rec.moveCreated(from, to)
		}
	}
	return 0
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.t.refuseOpen(false); e != 0 {
		return nil, 0, e
	}
	s, e := n.self()
	if e != 0 {
		return nil, 0, e
	}
	defer s.d.close()
	fd, err := unix.Openat(s.d.fd, s.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, errno(err)
	}
	ds, e := gofs.NewLoopbackDirStreamFd(fd)
	if e != 0 {
		unix.Close(fd)
		return nil, 0, e
	}
	return newDirHandle(ds, n.t, s.path), n.t.dirFlags, 0
}

// Flush (sent at every close(2) of a file) has nothing to do: writes go
// straight to the host fd and locks stay in the kernel. ENOSYS makes the
// kernel stop sending it, which saves a round trip per close.
func (n *node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	return syscall.ENOSYS
}

func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(n.t.rootfd, &st); err != nil {
		return errno(err)
	}
	out.FromStatfsT(&st)
	return 0
}
