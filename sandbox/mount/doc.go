// Package mount describes a jail's file system view as a list of operations
// (Op values) and applies them inside stage-2's mount namespace.
//
// It owns: the Op type and its text rendering (golden-tested plans), and
// Apply, which builds the new root on a fresh tmpfs with fd-based mounts
// (open_tree, fsopen/fsmount, move_mount, mount_setattr), refusing symlinks
// in targets, and then switches root with pivot_root(".", ".").
//
// It must never touch the caller's mount namespace: Apply is only called by
// stage-2 after CLONE_NEWNS, and it makes "/" a recursive slave first so that
// nothing propagates back to the host. It does not log.
package mount
