package jailprog

import (
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// TestListing: the listing names every call with its arguments, and an
// optional op's steps skip to its end on ENOENT.
func TestListing(t *testing.T) {
	b := NewBuilder()
	b.Mounts([]mount.Op{
		{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
		{Kind: mount.Symlink, Source: "usr/bin", Target: "/bin"},
		{Kind: mount.Tmpfs, Target: "/tmp", Data: "mode=1777"},
		{Kind: mount.Remount, Target: "/proc/sys", Optional: true},
	}, "/tmp", Dynamic{})
	p, err := b.Program()
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	for _, want := range []string{
		`r0 = open_tree(AT_FDCWD, "/usr", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE)`,
		`if r0: mount_setattr(r0, "", AT_EMPTY_PATH|AT_RECURSIVE, {set: MOUNT_ATTR_RDONLY|MOUNT_ATTR_NOSUID}, 32)`,
		`if r0: mkdirat(r2, "usr", 0755)`,
		`symlinkat("usr/bin", r2, "bin")  [EEXIST ok]`,
		`pivot_root(".", ".")`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("listing lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(got, "[ENOENT: goto") {
		t.Errorf("optional remount does not skip on ENOENT:\n%s", got)
	}
}

// keep the child code linked into the test binary for the nosplit check.
var _ = New

func TestPrintListing(t *testing.T) {
	b := NewBuilder()
	g := b.NewBuf(4096)
	l := b.Prologue(9, []int{5}, g)
	b.Mounts([]mount.Op{
		{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
		{Kind: mount.Symlink, Source: "usr/bin", Target: "/bin"},
		{Kind: mount.Tmpfs, Target: "/home/u", Data: "mode=0700"},
		{Kind: mount.Bind, Source: "/home/u/p", Target: "/home/u/p"},
		{Kind: mount.Hide, Target: "/home/u/p/.ssh", Optional: true},
		{Kind: mount.Proc, Target: "/proc"},
		{Kind: mount.Remount, Target: "/proc/sys", Optional: true},
		{Kind: mount.File, Source: "dns", Target: "/etc/resolv.conf", File: true},
	}, "/tmp", Dynamic{Source: "dns", Buf: g, Len: l})
	p, _ := b.Program()
	t.Log("\n" + p.String())
}
