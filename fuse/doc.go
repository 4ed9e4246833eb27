// Package fuse serves FUSE file systems from outside a jail into a mount
// inside it. Its one file system so far is a tracing mirror: a host
// directory ROOT shown in the jail, which records by path what the jail
// read, wrote, created, deleted or only stat'ed: what `warden run --trace
// DIR` shows DIR through, and `warden policy learn` every host directory.
// Linking it costs every warden start about 1 ms (go-fuse's package
// initialisers), and one of those keeps a pipe at fd 3 for good, which is
// why warden takes only descriptors without close-on-exec for inherited
// ones (sandbox.Inherited).
//
// The split, and why: the jail's init (in the jail's user and mount
// namespaces) opens /dev/fuse, mounts it (MountData's options), and passes the
// descriptor out by SCM_RIGHTS once the mount exists (sandbox/jailprog:
// mounts_fuse.go); the kernel requires the mount to be made in the
// namespace that opened the device. Warden then calls Serve on it, on the
// host side, so the server keeps its host view (ROOT, the host ids) and its
// record out of the jail's reach. The connection ends when the mount goes
// away (the jail's mount namespace ends) or on Close.
//
// It owns: the go-fuse file system (node.go, attr.go, handle.go), confinement
// of every host-side access to ROOT (sys.go: openat2 RESOLVE_BENEATH with no
// symlinks for directories, *at calls with AT_SYMLINK_NOFOLLOW / O_NOFOLLOW
// on the final name), id translation between the jail's maps and the host,
// the access record and its Report (record.go), and the server's life
// (server.go).
//
// It must never: follow a symlink on the host (the kernel resolves them in
// the jail's view; the server only returns their text), serve a path outside
// ROOT, chown new files (they belong to the server's host user), log file
// contents, create namespaces, mount, or exit.
// Passthrough (root-only, and blind to reads and writes) is never used.
package fuse
