package jailprog

import (
	"encoding/binary"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	}, "/tmp", Dynamic{}, nil)
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

// TestOptionalGroup: in an optional op, ENOENT of any step skips to the
// op's end, but a step that tolerates another errno (EEXIST of mkdirat)
// goes on at the next step.
func TestOptionalGroup(t *testing.T) {
	b := NewBuilder()
	b.BeginOptional()
	a := b.Call(1, "a")
	m := b.Call(2, "mkdirat")
	m.OkErrno = syscall.EEXIST
	c := b.Call(3, "c")
	b.EndOptional()
	end := b.Here()
	if a.Jump != end || c.Jump != end || a.OkErrno != syscall.ENOENT {
		t.Errorf("optional steps: jumps %d %d (errno %v), want %d on ENOENT", a.Jump, c.Jump, a.OkErrno, end)
	}
	if m.Jump != 0 || m.OkErrno != syscall.EEXIST {
		t.Errorf("mkdirat in the group: jump %d on %v, want the next step on EEXIST", m.Jump, m.OkErrno)
	}
}

// TestRegisters: registers are reused after a close, and a register closed
// twice is a compiler bug that Program reports.
func TestRegisters(t *testing.T) {
	b := NewBuilder()
	r0 := b.Reg()
	b.Close(r0)
	if r1 := b.Reg(); r1 != r0 {
		t.Errorf("register after close: r%d, want r%d again", r1, r0)
	}
	b.Close(r0)
	b.Close(r0)
	if _, err := b.Program(); err == nil || !strings.Contains(err.Error(), "closed twice") {
		t.Errorf("Program after a double close: %v", err)
	}
}

// TestPrologueFDs: the passed fds land at 3, 4, ... without the close-on-exec
// flag and the sync socket after them with it; every other fd is closed.
func TestPrologueFDs(t *testing.T) {
	b := NewBuilder()
	b.Prologue(4, []int{7, 3}, b.NewBuf(16), true)
	p, err := b.Program()
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	for _, want := range []string{
		"r0 = fcntl(7, F_DUPFD_CLOEXEC, 6)", "r1 = fcntl(3, F_DUPFD_CLOEXEC, 6)", "r2 = fcntl(sync, F_DUPFD_CLOEXEC, 6)",
		"dup3(r0, 3, 0)", "dup3(r1, 4, 0)", "dup3(r2, 5, O_CLOEXEC)", "close_range(6, ~0U, 0)", "read(sync, <go>, 16)  [0 fails]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("prologue lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "dup3(r0, 3, 0)") < strings.Index(got, "r2 = fcntl(sync") {
		t.Errorf("an fd is moved into 3... before every kept fd is above that range:\n%s", got)
	}
}

// TestTraceListing: a traced directory's FUSE mount is made from a
// /dev/fuse moved to a fixed number (the mount takes it as "fd=N"), and the
// device goes to warden only after FSCONFIG_CMD_CREATE has connected it;
// init keeps no copy.
func TestTraceListing(t *testing.T) {
	b := NewBuilder()
	b.Mounts([]mount.Op{
		{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
		{Kind: mount.Trace, Source: "/home/u/proj", Target: "/home/u/proj", Data: "user_id=1000,group_id=1000"},
	}, "/tmp", Dynamic{}, nil)
	p, err := b.Program()
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	fd := strconv.Itoa(TraceFD)
	order := []string{
		`openat(AT_FDCWD, "/dev/fuse", O_RDWR|O_CLOEXEC, 0)`,
		`dup3(r`,
		`fsopen("fuse", FSOPEN_CLOEXEC)`,
		`"fd", "` + fd + `"`,
		`"user_id", "1000"`,
		`FSCONFIG_CMD_CREATE`,
		`fsmount(`,
		`close(` + fd + `)`,
		`sendmsg(sync, {notify trace 0 /dev/fuse}, SCM_RIGHTS r1)`,
		`close(r1)`,
		`move_mount(`,
	}
	at := 0
	for _, want := range order {
		i := strings.Index(got[at:], want)
		if i < 0 {
			t.Fatalf("listing lacks %q after position %d:\n%s", want, at, got)
		}
		at += i + len(want)
	}
	if !strings.Contains(got, `"default_permissions"`) || !strings.Contains(got, `"allow_other"`) {
		t.Errorf("the FUSE mount lacks default_permissions or allow_other:\n%s", got)
	}
}

// TestHookListing: a hook's run is a pipe that gets the state and is
// closed for writing before the hook exists, the hook spawned with the
// read end as its stdin, then the wait with its timeout; every register
// is closed again.
func TestHookListing(t *testing.T) {
	b := NewBuilder()
	state := b.Bytes([]byte(`{"id":"c1"}`), "<state>")
	n := b.Reg()
	b.Hook("createContainer hook 0 (/bin/hook)", "/bin/hook", []string{"hook", "-v"}, []string{"A=1"}, 5*time.Second, state, n)
	p, err := b.Program()
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	order := []string{
		`r1, r2 = pipe2(O_CLOEXEC)`,
		`write(r2, <state>, r0)`,
		`close(r2)`,
		`r2 = clone3({CLONE_VM|CLONE_VFORK|CLONE_PIDFD})  [child: dup3(r1, 0, 0), close_range(3, ~0U, 0), execve("/bin/hook", ["hook" "-v"], <1 variables>), else exit 127]`,
		`close(r1)`,
		`ppoll({r2, POLLIN}, 1, {5s}) → 0: pidfd_send_signal(r2, SIGKILL), fail ETIMEDOUT; waitid(P_PIDFD, r2, WEXITED)  [status ≠ 0 fails]`,
		`close(r2)`,
	}
	at := 0
	for _, want := range order {
		i := strings.Index(got[at:], want)
		if i < 0 {
			t.Fatalf("listing lacks %q after position %d:\n%s", want, at, got)
		}
		at += i + len(want)
	}
	for i := range p.Steps {
		if stage, _, _ := p.Describe(i); stage != "createContainer hook 0 (/bin/hook)" {
			t.Errorf("step %d is described as %q", i, stage)
		}
	}
	b = NewBuilder()
	b.Hook("h", "/bin/hook", nil, nil, 0, state, n)
	p, _ = b.Program()
	if got := p.String(); strings.Contains(got, "ppoll") {
		t.Errorf("a hook without a timeout polls:\n%s", got)
	}
}

// TestMountsBeforePivot: the steps before pivot_root run in the new root
// (after its fchdir), once every mount is made.
func TestMountsBeforePivot(t *testing.T) {
	b := NewBuilder()
	b.Mounts([]mount.Op{{Kind: mount.Tmpfs, Target: "/tmp"}}, "/scratch", Dynamic{}, func() { b.Call(1, "hook-here") })
	p, err := b.Program()
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	fsmount, fchdir, hook, pivot := strings.LastIndex(got, "move_mount("), strings.Index(got, "fchdir("), strings.Index(got, "hook-here()"), strings.Index(got, "pivot_root(")
	if !(fsmount < fchdir && fchdir < hook && hook < pivot) {
		t.Errorf("want the last mount, fchdir into the root, the hook's steps, pivot_root in that order:\n%s", got)
	}
}

// TestReport: the report a payload writes for a failed hook step reads
// back as the hook and how it ended.
func TestReport(t *testing.T) {
	b := NewBuilder()
	b.Hook("startContainer hook 1 (/bin/x)", "/bin/x", nil, nil, 2*time.Second, b.Bytes([]byte("{}"), "<state>"), b.Reg())
	p, _ := b.Program()
	for _, tc := range []struct {
		nr     uintptr
		errno  syscall.Errno
		status int32
		want   string
	}{
		{OpWait, ErrStatus, 4 << 8, "startContainer hook 1 (/bin/x): exit status 4"},
		{OpWait, ErrStatus, 9, "startContainer hook 1 (/bin/x): killed by SIGKILL"},
		{OpWait, syscall.ETIMEDOUT, 9, "startContainer hook 1 (/bin/x): timed out after 2s (killed)"},
		{OpSpawn, syscall.ENOENT, 0, "startContainer hook 1 (/bin/x): execve: no such file or directory"},
	} {
		var step Step
		for _, s := range p.Steps {
			if s.Nr == tc.nr {
				step = s
			}
		}
		if !step.Reported {
			t.Fatalf("the hook's %s step is not reported", step.Name)
		}
		rec := reportRecord(step)
		binary.NativeEndian.PutUint32(rec, uint32(tc.errno))
		binary.NativeEndian.PutUint32(rec[4:], uint32(tc.status))
		r, err := ParseReport(rec)
		if err != nil || r.Error() != tc.want {
			t.Errorf("report %q, %v; want %q", r.Error(), err, tc.want)
		}
	}
}
