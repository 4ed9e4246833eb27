// Package mount describes a jail's file system view as a list of operations
// (Op values), in the order they are applied.
//
// It owns the Op type and its text rendering (golden-tested plans). It does
// not mount anything: package jailprog compiles the ops into the system
// calls of the jail's init (open_tree, fsopen/fsmount, move_mount,
// mount_setattr, openat2 without symlinks, pivot_root), which runs them in
// the jail's own mount namespace.
package mount
