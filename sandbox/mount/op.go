package mount

import (
	"fmt"
	"strings"
)

// Kind is what an Op does.
type Kind string

const (
	Bind    Kind = "bind"    // recursive bind of Source at Target (directory or file)
	DevBind Kind = "devbind" // bind of a host device node (keeps device access)
	Tmpfs   Kind = "tmpfs"   // new tmpfs at Target; Data holds "mode=...,size=..."
	Proc    Kind = "proc"    // new procfs of the jail's pid namespace
	Sysfs   Kind = "sysfs"   // new sysfs of the jail's network namespace (read-only)
	Devpts  Kind = "devpts"  // new devpts instance
	Mqueue  Kind = "mqueue"  // new mqueue of the jail's ipc namespace
	Symlink Kind = "symlink" // symlink at Target pointing to Source
	Mkdir   Kind = "mkdir"   // directory at Target (mode in Data, octal)
	Hide    Kind = "hide"    // make Target unreadable: empty read-only tmpfs, or /dev/null over a file
	Remount Kind = "remount" // make Target (already mounted) read-only, recursively
	File    Kind = "file"    // a read-only file with content Data at Target (e.g. resolv.conf)
	// Overlay is kernel overlayfs at Target over the host directories
	// Lowers (newest first), with its upper and work directories on a new
	// tmpfs of the jail's (Data: "size=..."): the jail writes, the lowers
	// never change. Target "/" makes it the jail's root.
	Overlay Kind = "overlay"
	// Trace shows the host directory Source at Target through warden's
	// tracing FUSE file system (package fuse, served by warden outside the
	// jail), read-only when ReadOnly. Data holds the FUSE mount's
	// "user_id=N,group_id=N": the ids of the jail's init inside.
	Trace Kind = "trace"
)

// Op is one step of a mount plan. Targets are absolute paths inside the jail;
// Sources are absolute host paths (for Bind, DevBind), the link text (for
// Symlink), or the name a new file system shows as its source in mountinfo
// (Tmpfs, Proc, Sysfs, Devpts, Mqueue; "" for none).
type Op struct {
	Kind     Kind   `json:"kind"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"ro,omitempty"`
	// Optional skips the op when its source does not exist, instead of
	// failing the run (used for host paths that differ between distros).
	Optional bool `json:"optional,omitempty"`
	// File says the target is a regular file mount point, not a directory.
	File bool   `json:"file,omitempty"`
	Data string `json:"data,omitempty"`
	// Lowers are an Overlay's lower directories, host paths, newest first.
	Lowers []string `json:"lowers,omitempty"`
}

// String renders one op on one line, the format of golden plan files:
//
//	bind ro /usr -> /usr
//	tmpfs /tmp [mode=1777]
func (o Op) String() string {
	var b strings.Builder
	b.WriteString(string(o.Kind))
	if o.ReadOnly && o.Kind != Hide && o.Kind != Remount {
		b.WriteString(" ro")
	} else if o.Kind == Bind || o.Kind == Trace {
		b.WriteString(" rw")
	}
	if o.Optional {
		b.WriteString(" optional")
	}
	switch o.Kind {
	case Bind, DevBind, Trace:
		fmt.Fprintf(&b, " %s -> %s", o.Source, o.Target)
	case Symlink:
		fmt.Fprintf(&b, " %s -> %s", o.Target, o.Source)
	case Overlay:
		fmt.Fprintf(&b, " %s -> %s", strings.Join(o.Lowers, ":"), o.Target)
	default:
		fmt.Fprintf(&b, " %s", o.Target)
	}
	if o.File && o.Kind != DevBind && o.Kind != File {
		b.WriteString(" (file)")
	}
	if o.Kind == File {
		fmt.Fprintf(&b, " [%s]", o.Source)
	} else if o.Data != "" {
		fmt.Fprintf(&b, " [%s]", o.Data)
	}
	return b.String()
}

// Render prints a plan, one op per line.
func Render(ops []Op) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}
