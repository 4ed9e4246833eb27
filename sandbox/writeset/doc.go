// Package writeset reports what a jail wrote through an overlay mount
// (the write-set: created, modified and deleted paths) and saves the
// overlay's upper layer so that it can later serve as a lower layer.
//
// It owns the reading of an overlay upper directory (whiteouts, opaque
// directories, the user.overlay.* xattrs of a "userxattr" mount), the
// overlay lookup rules over a stack of lower directories, and the copy of
// an upper tree into a layer directory (Keep).
//
// The upper was written by the jail's payload, which is hostile. So this
// package:
//   - never follows a symbolic link found in the upper or below a lower
//     root: every name is resolved one component at a time, from a
//     directory fd, with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
//     RESOLVE_NO_XDEV or fstatat AT_SYMLINK_NOFOLLOW; a symlink in a lower
//     path makes the path absent from that lower;
//   - never reads outside the given roots and never crosses a mount point
//     below them;
//   - never opens anything but regular files and directories (a fifo, a
//     socket or a device is only ever stat'ed), and checks with fstat that
//     what it opened is what it stat'ed;
//   - never loads a whole file in memory (contents are compared and copied
//     in fixed-size chunks; holes of sparse files are skipped by Keep) and
//     never recurses on the Go stack: the walks keep an explicit stack,
//     bounded by MaxDepth, and hold one upper directory fd at a time;
//   - never changes ownership, and never copies xattrs other than user.*
//     ones (no security.capability, no trusted.*, no ACLs) nor any
//     user.overlay.* xattr but the opaque mark and whiteouts.
//
// It writes nothing in the upper, with one exception: an entry owned by
// the caller that the caller cannot read (a payload's chmod 000) gets
// owner read (and, for a directory, search) permission while it is read,
// and its mode is put back afterwards.
package writeset
