package fuse

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Options configure a Server.
type Options struct {
	// ReadOnly refuses every change with EROFS, as a read-only bind mount
	// would, and lets the kernel cache entries, attributes and file data
	// for long (see Timeout).
	ReadOnly bool

	// UIDMap and GIDMap are the jail's user namespace maps (inside id →
	// host id), so that the jail sees the files as owned by its own ids:
	// host owners the maps do not cover show as 65534 where the maps cover
	// 65534, else as the jail user's own (idMapper.uncovered), and chown to
	// an id they do not cover fails with EPERM. New files are owned by the
	// server's host user, whoever creates them in the jail. Empty maps
	// translate nothing (for a server in the mount's own namespace).
	UIDMap, GIDMap []IDMap

	// Timeout is how long the kernel may cache lookups (also of missing
	// names) and attributes without asking again. 0 means the default: an
	// hour when ReadOnly, a second otherwise; negative means no caching.
	// Cached answers are not seen, so they are not counted (the first
	// access of each path always is).
	Timeout time.Duration

	// DirPlus lets the kernel fetch every entry's attributes with a
	// directory listing (READDIRPLUS). Stat-heavy walks of a cold mount get
	// several times faster (find -printf %s over 3000 files: ~3x plain
	// instead of ~12x), but each entry of a listed directory is then
	// recorded as looked up (stat_only), stat'ed by the jail or not.
	DirPlus bool

	// Log receives go-fuse's own diagnostics (at warn level). Nil drops
	// them.
	Log *slog.Logger
}

// maxIO is the largest read and write request: 1 MiB, the kernel's limit
// (fs.fuse.max_pages_limit is 256 pages by default).
const maxIO = 1 << 20

// tree is what all nodes of one Server share.
type tree struct {
	rootfd  int // O_PATH|O_DIRECTORY of ROOT, for the server's life
	rootDev uint64
	ro      bool
	uids    idMapper
	gids    idMapper
	// uidUncovered, gidUncovered: what host ids the maps do not cover
	// show as (idMapper.uncovered).
	uidUncovered, gidUncovered uint32
	umask                      uint32
	hostRoot                   bool   // the server runs as host root: no set-id bits (perm)
	fileFlags                  uint32 // FOPEN_* for files
	dirFlags                   uint32 // FOPEN_* for directories
	rec                        *recorder
	closed                     atomic.Bool // Close was called: refuse all work
}

// refuse says why a change must not be made, if it must not.
func (t *tree) refuse() syscall.Errno {
	switch {
	case t.closed.Load():
		return syscall.ENOTCONN
	case t.ro:
		return syscall.EROFS
	}
	return 0
}

// refuseOpen is refuse for opens, which change nothing unless they write.
func (t *tree) refuseOpen(writes bool) syscall.Errno {
	if t.closed.Load() {
		return syscall.ENOTCONN
	}
	if t.ro && writes {
		return syscall.EROFS
	}
	return 0
}

// Server serves one FUSE connection: a mirror of a host directory that
// records what the jail does in it.
type Server struct {
	srv    *gofuse.Server
	t      *tree
	fuseFD int // the descriptor go-fuse reads (and closes at the end)
	poke   int // our own descriptor of the same connection, for Close
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// MountData is the data string for mount(2) of type "fuse" on the jail's
// side: fd is the /dev/fuse descriptor the jail's process opened, uid and gid
// are its ids inside the jail's user namespace. default_permissions makes
// the kernel check modes against the (translated) owners, as on a bind
// mount; allow_other lets every process of the jail's user namespace in (and
// nothing outside it: FUSE confines allow_other to the mount's namespace).
func MountData(fd int, uid, gid uint32) string {
	return fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions,allow_other,max_read=%d",
		fd, uid, gid, maxIO)
}

// Serve serves root through devFuse, an open /dev/fuse whose mount the
// caller made (in the jail, by the process that opened it: the kernel
// requires that). Serve takes devFuse over and closes it. It returns once the
// kernel's INIT is answered, so the mount must exist by then; requests are
// served in the background until the mount goes away or Close.
func Serve(devFuse *os.File, root string, opts Options) (*Server, error) {
	fd, err := unix.FcntlInt(devFuse.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	devFuse.Close()
	if err != nil {
		return nil, fmt.Errorf("serve %s: dup /dev/fuse: %w", root, err)
	}
	s, err := serve(fd, root, opts)
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", root, err)
	}
	return s, nil
}

// serve owns fd: it closes it on error, or hands it to go-fuse.
func serve(fd int, root string, opts Options) (*Server, error) {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	var st unix.Statx_t
	err = statx(rootfd, "", &st)
	var poke int
	if err == nil {
		// go-fuse reads the device with blocking read(2) calls.
		err = unix.SetNonblock(fd, false)
	}
	if err == nil {
		poke, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	}
	if err != nil {
		unix.Close(fd)
		unix.Close(rootfd)
		return nil, err
	}
	t := &tree{
		rootfd:       rootfd,
		rootDev:      unix.Mkdev(st.Dev_major, st.Dev_minor),
		ro:           opts.ReadOnly,
		uids:         idMapper(opts.UIDMap),
		gids:         idMapper(opts.GIDMap),
		uidUncovered: idMapper(opts.UIDMap).uncovered(uint32(unix.Geteuid())),
		gidUncovered: idMapper(opts.GIDMap).uncovered(uint32(unix.Getegid())),
		umask:        procUmask(),
		hostRoot:     unix.Geteuid() == 0,
		rec:          newRecorder(),
	}
	if t.ro {
		// Nothing changes through the mount: keep file and directory
		// contents cached across opens.
		t.fileFlags = gofuse.FOPEN_KEEP_CACHE
		t.dirFlags = gofuse.FOPEN_KEEP_CACHE | gofuse.FOPEN_CACHE_DIR
	}
	rootNode := &node{t: t}
	// From here go-fuse owns fd (it closes it when NewServer fails, too).
	srv, err := gofuse.NewServer(gofs.NewNodeFS(rootNode, fsOptions(opts, &st, t)), "/dev/fd/"+strconv.Itoa(fd), mountOptions(opts))
	if err != nil {
		unix.Close(poke)
		unix.Close(rootfd)
		return nil, fmt.Errorf("fuse init: %w", err)
	}
	s := &Server{srv: srv, t: t, fuseFD: fd, poke: poke, done: make(chan struct{})}
	go func() {
		srv.Serve() // returns when no reader is left; go-fuse closed fuseFD
		unix.Close(rootfd)
		close(s.done)
	}()
	return s, nil
}

func fsOptions(opts Options, st *unix.Statx_t, t *tree) *gofs.Options {
	ttl := opts.Timeout
	switch {
	case ttl == 0 && opts.ReadOnly:
		ttl = time.Hour
	case ttl == 0:
		ttl = time.Second
	case ttl < 0:
		ttl = 0
	}
	return &gofs.Options{
		MountOptions:    *mountOptions(opts),
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		NullPermissions: true, // show modes as they are, 000 included
		Logger:          logger(opts.Log),
		RootStableAttr:  &gofs.StableAttr{Ino: t.ino(st), Gen: gen(st)},
	}
}

func mountOptions(opts Options) *gofuse.MountOptions {
	return &gofuse.MountOptions{
		MaxWrite:     maxIO,
		MaxReadAhead: maxIO, // go-fuse caps it at what the kernel offers
		// Plain READDIR unless asked: with READDIRPLUS the server looks
		// up every listed entry, whether the jail stats it or not.
		DisableReadDirPlus: !opts.DirPlus,
		// security.capability and POSIX ACLs answer "no data" without a
		// round trip to the host: the kernel asks for the first on every
		// write, and neither has a meaning in the jail's view.
		IgnoreSecurityLabels: true,
		EnableSymlinkCaching: opts.ReadOnly,
		Logger:               logger(opts.Log),
	}
}

func logger(l *slog.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(l.Handler(), slog.LevelWarn)
}

// Wait blocks until the server has stopped: the mount went away (unmounted,
// or the jail's mount namespace ended), or Close.
func (s *Server) Wait() { <-s.done }

// Accesses returns what the jail did so far, as a Report.
func (s *Server) Accesses() Report { return s.t.rec.report() }

// Counts returns the raw request counts so far, by path.
func (s *Server) Counts() map[string]Counts { return s.t.rec.counts() }

// Close stops serving, whether or not the mount still exists. If it does,
// the server refuses all work from then on, and the jail's requests fail
// with ENOTCONN (or ECONNABORTED for one in flight). On Linux 6.9 and later
// the server's goroutines end at the jail's next request to the mount; on
// older kernels they keep answering ENOTCONN until the mount goes away.
// Close does not wait for them: Wait does. Close is safe to call more than
// once, and after the mount went away.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// shutdown ends go-fuse's readers from outside. They block in read(2) on the
// device, which returns only with a request or when the connection is
// aborted; close(2) does neither, and the server can neither abort the
// connection itself (fusectl is not mounted, nor mountable, in a user
// namespace) nor make the kernel send it a request (NOTIFY_RETRIEVE wants a
// regular file's inode the kernel holds). So:
//
//  1. Swap the descriptor go-fuse reads for a dead one: a reader that
//     returns from its read fails its next one and exits.
//  2. Each request the jail sends then wakes one reader, which cannot send
//     its reply (the descriptor is dead) and exits; the request stays in the
//     kernel's processing queue. drain puts it back in the input queue
//     (NOTIFY_RESEND, Linux 6.9) for the next reader, until none is left.
//     The handlers refuse all work meanwhile (tree.closed), so resending
//     repeats nothing.
//  3. With the readers gone, closing our own descriptor releases the
//     device: the kernel aborts the connection, and the pending request and
//     all later ones fail.
//
// Without NOTIFY_RESEND, step 2 would leave the jail's request unanswered
// until the jail ends; the server then keeps serving, refusing all work.
func (s *Server) shutdown() error {
	s.t.closed.Store(true)
	if s.stopped() || !alive(s.poke) {
		// The connection is gone: the readers end by themselves, and
		// go-fuse may have closed its descriptor already, whose number
		// must then not be touched.
		unix.Close(s.poke)
		return nil
	}
	if err := resend(s.poke); err != nil {
		unix.Close(s.poke)
		return nil
	}
	dead, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err == nil {
		// go-fuse closes its descriptor only after its last reader exited,
		// which needs the connection gone (checked just above) or this
		// swap: its number cannot have been reused meanwhile.
		err = unix.Dup3(dead, s.fuseFD, unix.O_CLOEXEC)
		unix.Close(dead)
	}
	if err != nil {
		unix.Close(s.poke)
		return fmt.Errorf("fuse close: %w", err)
	}
	go s.drain()
	return nil
}

// alive reports whether the connection of fd is still up (fuse_dev_poll
// says EPOLLERR once it is aborted).
func alive(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(p, 0); err != nil {
		return false
	}
	return p[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) == 0
}

func (s *Server) drain() {
	defer unix.Close(s.poke)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resend(s.poke)
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

// resend writes FUSE_NOTIFY_RESEND: the kernel moves the requests that
// readers took but did not answer back to its input queue, waking a reader.
// Kernels before 6.9 do not know it (EINVAL).
func resend(fd int) error {
	const notifyResend = 7 // FUSE_NOTIFY_RESEND, Linux 6.9
	var b [16]byte         // fuse_out_header: len, error (the notify code), unique 0
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint32(b[4:], notifyResend)
	_, err := unix.Write(fd, b[:])
	return err
}
