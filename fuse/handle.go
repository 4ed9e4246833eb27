package fuse

import (
	"context"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// handle is an open regular file: the host fd, and the record of the path
// it was opened by, so that each read and write costs one atomic add.
//
// It implements only what a plain file needs. Not implementing
// PassthroughFd keeps every read and write coming to the server (and
// passthrough is root-only anyway); not implementing Ioctl keeps the jail's
// ioctls off host fds.
type handle struct {
	fd   int
	e    *entry
	path string
}

var (
	_ gofs.FileReader    = (*handle)(nil)
	_ gofs.FileWriter    = (*handle)(nil)
	_ gofs.FileWritever  = (*handle)(nil)
	_ gofs.FileReleaser  = (*handle)(nil)
	_ gofs.FileFsyncer   = (*handle)(nil)
	_ gofs.FileLseeker   = (*handle)(nil)
	_ gofs.FileAllocater = (*handle)(nil)
)

// newHandle checks what fd (opened with the host flags fl for the jail's
// flags) is: a regular file, as the kernel only opens those through the
// server. Anything else means the name changed under us: refuse it rather
// than serve a device or FIFO. The O_NONBLOCK the server opened with (so as
// never to hang on a FIFO) is dropped unless the jail asked for it.
func (t *tree) newHandle(fd, fl int, flags uint32, path string) (*handle, *unix.Statx_t, syscall.Errno) {
	st := new(unix.Statx_t)
	if err := statx(fd, "", st); err != nil {
		unix.Close(fd)
		return nil, nil, errno(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil, nil, syscall.EISDIR
		}
		return nil, nil, syscall.ENXIO
	}
	if flags&unix.O_NONBLOCK == 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK); err != nil {
			unix.Close(fd)
			return nil, nil, errno(err)
		}
	}
	return &handle{fd: fd, path: path}, st, 0
}

func (h *handle) Read(ctx context.Context, buf []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	h.e.add(opRead)
	return gofuse.ReadResultFd(uintptr(h.fd), off, len(buf)), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.e.add(opWrite)
	k, err := unix.Pwrite(h.fd, data, off)
	return uint32(max(k, 0)), errno(err)
}

func (h *handle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	h.e.add(opWrite)
	k, err := unix.Pwritev(h.fd, data, off)
	return uint32(max(k, 0)), errno(err)
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	return errno(unix.Close(h.fd))
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if flags&1 != 0 { // FUSE_FSYNC_FDATASYNC
		return errno(unix.Fdatasync(h.fd))
	}
	return errno(unix.Fsync(h.fd))
}

func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	k, err := unix.Seek(h.fd, int64(off), int(whence))
	return uint64(k), errno(err)
}

func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	h.e.add(opWrite)
	return errno(unix.Fallocate(h.fd, mode, int64(off), int64(size)))
}

// dirHandle is an open directory. The listing is recorded once, when the
// jail first reads it (an opened but unlisted directory, e.g. a dirfd for
// *at calls, is not a read).
type dirHandle struct {
	ds     gofs.DirStream
	t      *tree
	path   string
	listed atomic.Bool
}

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileReleasedirer = (*dirHandle)(nil)
	_ gofs.FileFsyncdirer   = (*dirHandle)(nil)
)

func newDirHandle(ds gofs.DirStream, t *tree, path string) *dirHandle {
	return &dirHandle{ds: ds, t: t, path: path}
}

func (d *dirHandle) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	if d.listed.CompareAndSwap(false, true) {
		d.t.rec.note(d.path, opReaddir)
	}
	if r, ok := d.ds.(gofs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	if !d.ds.HasNext() {
		return nil, 0
	}
	de, e := d.ds.Next()
	return &de, e
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.ds.(gofs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.ds.Close()
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if s, ok := d.ds.(gofs.FileFsyncdirer); ok {
		return s.Fsyncdir(ctx, flags)
	}
	return 0
}
