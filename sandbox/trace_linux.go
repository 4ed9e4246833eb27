package sandbox

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/fuse"
	"github.com/warden-sandbox/warden/sandbox/jailprog"
	"github.com/warden-sandbox/warden/userns"
)

// Accesses are what a command did in one traced directory, by path
// relative to it.
type Accesses = fuse.Report

// TraceResult is what the command did in one traced directory.
type TraceResult struct {
	Target, Source string
	ReadOnly       bool
	Accesses       Accesses
	// Changes counts the requests that changed something (writes,
	// creates, deletes, renames, metadata), those of files the command
	// created and removed again too, which Accesses does not list.
	Changes uint64
	Err     error
}

// traceServers are the FUSE servers of a run's traced directories, by
// trace index.
type traceServers struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	servers map[int]*fuse.Server
	errs    map[int]error
}

// preflightTraces refuses, before anything is created, traced directories
// this host cannot mount: /dev/fuse missing or not readable and writable by
// the caller, or a descriptor limit below the fixed numbers the jail's init
// moves /dev/fuse to (jailprog.TraceFD).
func preflightTraces(p *Plan) error {
	if len(p.Traces) == 0 {
		return nil
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return &HintError{Msg: fmt.Sprintf("--trace %s: cannot open /dev/fuse: %v", p.Traces[0].Target, err),
			Hint: []string{"tracing needs FUSE: /dev/fuse must exist and be mode 0666 (Debian's fuse3 package does both: sudo apt install fuse3); `warden check` says what this host has"}}
	}
	unix.Close(fd)
	var lim unix.Rlimit
	highest := uint64(jailprog.TraceFD + len(p.Traces) - 1)
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur <= highest {
		return &HintError{Msg: fmt.Sprintf("--trace %s: the jail's init needs descriptor number %d, and the limit of open files is %d", p.Traces[0].Target, highest, lim.Cur),
			Hint: []string{fmt.Sprintf("raise it where warden starts (ulimit -n %d) and run again", max(highest+1, 1024))}}
	}
	return nil
}

// serveTrace serves traced directory i on fd, the /dev/fuse of its mount
// that init sent (NotifyTrace+i). The kernel has queued the mount's INIT;
// Serve answers it, on its own goroutine so that supervise goes on taking
// init's messages.
func (l *launch) serveTrace(i, fd int) {
	t := &l.traces
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.servers == nil {
		t.servers, t.errs = map[int]*fuse.Server{}, map[int]error{}
	}
	_, dup := t.servers[i]
	if _, failed := t.errs[i]; dup || failed || i < 0 || i >= len(l.p.Traces) {
		unix.Close(fd)
		return
	}
	tp, maps := l.p.Traces[i], l.p.Maps
	opts := fuse.Options{ReadOnly: tp.ReadOnly, UIDMap: fuseMap(maps.UID), GIDMap: fuseMap(maps.GID)}
	t.servers[i] = nil // taken
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		s, err := fuse.Serve(os.NewFile(uintptr(fd), "/dev/fuse"), tp.Source, opts)
		t.mu.Lock()
		defer t.mu.Unlock()
		if err != nil {
			delete(t.servers, i)
			t.errs[i] = err
			return
		}
		t.servers[i] = s
	}()
}

func fuseMap(m []userns.IDMap) []fuse.IDMap {
	out := make([]fuse.IDMap, len(m))
	for i, e := range m {
		out[i] = fuse.IDMap{Inside: uint32(e.Inside), Host: uint32(e.Host), Size: uint32(e.Count)}
	}
	return out
}

// traceWait is how long the servers get to see their mounts go once the
// jail is gone (the kernel ends the connection when the jail's mount
// namespace is freed) before they are stopped.
const traceWait = 2 * time.Second

// traceResults collects what the command did in each traced directory,
// after the jail is gone, and stops every server: none outlives the run.
func (l *launch) traceResults(res *Result) {
	if len(l.p.Traces) == 0 {
		return
	}
	t := &l.traces
	t.wg.Wait() // every Serve has returned
	deadline := time.Now().Add(traceWait)
	for i, tp := range l.p.Traces {
		r := TraceResult{Target: tp.Target, Source: tp.Source, ReadOnly: tp.ReadOnly}
		s := t.servers[i]
		switch {
		case t.errs[i] != nil:
			r.Err = fmt.Errorf("serve the traced directory: %w", t.errs[i])
		case s == nil:
			r.Err = fmt.Errorf("the jail's init did not hand over the FUSE mount")
		default:
			if !waitOrDeadline(s, deadline) {
				s.Close()
			}
			r.Accesses = s.Accesses()
			for _, c := range s.Counts() {
				r.Changes += c.OpenWrite + c.Write + c.Setattr + c.Setxattr + c.Create + c.Mkdir + c.Mknod +
					c.Symlink + c.Link + c.Unlink + c.Rmdir + c.RenameFrom + c.RenameTo
			}
		}
		if res != nil {
			res.Traces = append(res.Traces, r)
		}
	}
}

// waitOrDeadline waits for s to end, until deadline (then false).
func waitOrDeadline(s *fuse.Server, deadline time.Time) bool {
	done := make(chan struct{})
	go func() { s.Wait(); close(done) }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}
