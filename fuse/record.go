package fuse

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Report is what the jail did under the traced directory, by path relative
// to it. Each path is in at most one list, and each list is sorted.
//
// Precedence, for a path touched in several ways: deleted, created, written,
// read, stat_only. A path created and deleted again (a scratch file) is in
// none. The traced directory itself is "." and is never stat_only (every
// access walks through it). Paths are those of the time of access, except
// that what the jail created below a directory it then renamed is listed
// under the directory's new path. A rename is the source deleted (or, if the
// jail created it, nothing) and the target created (or written, if it
// replaced a file that existed before).
type Report struct {
	// Read: existed before, and was opened for reading, read, listed
	// (readdir) or readlink'ed, and not written.
	Read []string `json:"read"`
	// Written: existed before and still exists, and was opened for writing,
	// truncated, written, had its metadata changed (chmod, chown, utimes,
	// xattrs), or was replaced (renamed over, or deleted and created again).
	Written []string `json:"written"`
	// Created: did not exist before its first create (create, mkdir, mknod,
	// symlink, link, or the target of a rename) and exists at the end.
	Created []string `json:"created"`
	// Deleted: existed before and does not at the end (unlink, rmdir, or the
	// source of a rename).
	Deleted []string `json:"deleted"`
	// StatOnly: existed and was only looked up, stat'ed, access(2)'ed or had
	// its xattrs read.
	StatOnly []string `json:"stat_only"`
}

// Counts are the raw requests seen for one path. Lookups and stats that the
// kernel answered from its cache are not seen.
type Counts struct {
	Lookup     uint64 `json:"lookup,omitempty"`
	Missing    uint64 `json:"missing,omitempty"` // lookups that found nothing
	Getattr    uint64 `json:"getattr,omitempty"`
	Access     uint64 `json:"access,omitempty"`
	Getxattr   uint64 `json:"getxattr,omitempty"` // getxattr and listxattr
	Readlink   uint64 `json:"readlink,omitempty"`
	Readdir    uint64 `json:"readdir,omitempty"` // directory opens that were listed
	OpenRead   uint64 `json:"open_read,omitempty"`
	Read       uint64 `json:"read,omitempty"`
	OpenWrite  uint64 `json:"open_write,omitempty"` // O_WRONLY, O_RDWR or O_TRUNC
	Write      uint64 `json:"write,omitempty"`      // write and fallocate
	Setattr    uint64 `json:"setattr,omitempty"`    // chmod, chown, truncate, utimes
	Setxattr   uint64 `json:"setxattr,omitempty"`   // setxattr and removexattr
	Create     uint64 `json:"create,omitempty"`
	Mkdir      uint64 `json:"mkdir,omitempty"`
	Mknod      uint64 `json:"mknod,omitempty"`
	Symlink    uint64 `json:"symlink,omitempty"`
	Link       uint64 `json:"link,omitempty"`
	Unlink     uint64 `json:"unlink,omitempty"`
	Rmdir      uint64 `json:"rmdir,omitempty"`
	RenameFrom uint64 `json:"rename_from,omitempty"`
	RenameTo   uint64 `json:"rename_to,omitempty"`
}

type op uint8

const (
	opLookup op = iota
	opMissing
	opGetattr
	opAccess
	opGetxattr
	opReadlink
	opReaddir
	opOpenRead
	opRead
	opOpenWrite
	opWrite
	opSetattr
	opSetxattr
	opCreate
	opMkdir
	opMknod
	opSymlink
	opLink
	opUnlink
	opRmdir
	opRenameFrom
	opRenameTo
	nOps
)

// entry is one path's record. counts are atomic so that reads and writes
// through an open handle cost no lock; the rest is guarded by recorder.mu.
type entry struct {
	counts [nOps]atomic.Uint64

	existed  bool // the path existed before the first access we saw
	exists   bool // it exists now, as far as the requests tell
	replaced bool // an existing path was removed or renamed over, then came back
	read     bool
	wrote    bool
}

type recorder struct {
	mu sync.Mutex
	m  map[string]*entry
}

func newRecorder() *recorder { return &recorder{m: make(map[string]*entry)} }

// get returns the entry of path, creating it as first seen with the given
// prior existence. Must hold r.mu.
func (r *recorder) get(path string, existed bool) *entry {
	e := r.m[path]
	if e == nil {
		e = &entry{existed: existed, exists: existed}
		r.m[path] = e
	}
	return e
}

// note records a successful request o on path and returns its entry.
func (r *recorder) note(path string, o op) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var e *entry
	switch o {
	case opMissing:
		e = r.get(path, false)
	case opCreate, opMkdir, opMknod, opSymlink, opLink:
		e = r.get(path, false)
		e.appear()
	case opUnlink, opRmdir, opRenameFrom:
		e = r.get(path, true)
		e.exists = false
	default:
		e = r.get(path, true)
		if !e.exists {
			// Seen again although we saw it go: something outside the
			// jail put it back.
			e.appear()
		}
		switch o {
		case opReadlink, opReaddir, opOpenRead, opRead:
			e.read = true
		case opOpenWrite, opWrite, opSetattr, opSetxattr:
			e.wrote = true
		}
	}
	e.counts[o].Add(1)
	return e
}

// noteRenameTo records path as the target of a rename; targetExisted says
// whether something was there before (it was then replaced).
func (r *recorder) noteRenameTo(path string, targetExisted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.get(path, targetExisted)
	if e.existed {
		e.replaced = true // what was there before is gone, whatever came in
	}
	e.exists = true
	e.counts[opRenameTo].Add(1)
}

// moveCreated re-keys what was created below a directory renamed from
// "from" to "to", so that Created names where those files are at the end.
// Paths that existed before keep the path they had when accessed.
func (r *recorder) moveCreated(from, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, e := range r.m {
		rest, ok := strings.CutPrefix(p, from+"/")
		if !ok || e.existed {
			continue
		}
		delete(r.m, p)
		if !e.exists {
			continue // created and removed again: nothing to carry
		}
		np := to + "/" + rest
		if old := r.m[np]; old != nil {
			// Something was recorded there before: it is replaced.
			old.replaced = old.replaced || old.existed
			old.exists = true
			continue
		}
		r.m[np] = e
	}
}

// noteExchange records a RENAME_EXCHANGE of two existing paths: both stay,
// each with the other's content.
func (r *recorder) noteExchange(a, b string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range []string{a, b} {
		e := r.get(p, true)
		e.exists = true
		e.replaced = e.existed
		e.counts[opRenameFrom].Add(1)
		e.counts[opRenameTo].Add(1)
	}
}

// known reports whether path has been seen (so its prior existence is known).
func (r *recorder) known(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[path] != nil
}

// appear marks the path as existing (again). Must hold recorder.mu.
func (e *entry) appear() {
	if e.existed && !e.exists {
		e.replaced = true // it existed, went, and is back: not the same file
	}
	e.exists = true
}

// add bumps a counter without a state change (reads and writes through a
// handle whose open was recorded already).
func (e *entry) add(o op) { e.counts[o].Add(1) }

func (r *recorder) report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{Read: []string{}, Written: []string{}, Created: []string{}, Deleted: []string{}, StatOnly: []string{}}
	for p, e := range r.m {
		switch {
		case e.existed && !e.exists:
			rep.Deleted = append(rep.Deleted, p)
		case !e.existed && e.exists:
			rep.Created = append(rep.Created, p)
		case !e.existed:
			// created and removed again, or only looked up missing
		case e.replaced || e.wrote:
			rep.Written = append(rep.Written, p)
		case e.read:
			rep.Read = append(rep.Read, p)
		case p != ".":
			rep.StatOnly = append(rep.StatOnly, p)
		}
	}
	for _, l := range [][]string{rep.Read, rep.Written, rep.Created, rep.Deleted, rep.StatOnly} {
		sort.Strings(l)
	}
	return rep
}

func (r *recorder) counts() map[string]Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Counts, len(r.m))
	for p, e := range r.m {
		var c [nOps]uint64
		for i := range c {
			c[i] = e.counts[i].Load()
		}
		out[p] = Counts{
			Lookup: c[opLookup], Missing: c[opMissing], Getattr: c[opGetattr], Access: c[opAccess],
			Getxattr: c[opGetxattr], Readlink: c[opReadlink], Readdir: c[opReaddir],
			OpenRead: c[opOpenRead], Read: c[opRead], OpenWrite: c[opOpenWrite], Write: c[opWrite],
			Setattr: c[opSetattr], Setxattr: c[opSetxattr], Create: c[opCreate], Mkdir: c[opMkdir],
			Mknod: c[opMknod], Symlink: c[opSymlink], Link: c[opLink], Unlink: c[opUnlink],
			Rmdir: c[opRmdir], RenameFrom: c[opRenameFrom], RenameTo: c[opRenameTo],
		}
	}
	return out
}
