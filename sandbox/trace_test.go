package sandbox

import (
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

func TestApplyTraces(t *testing.T) {
	h := fakeHost("/home/alice/src")
	base := []mount.Op{
		{Kind: mount.Tmpfs, Target: "/tmp"},
		{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
		{Kind: mount.Tmpfs, Target: "/home/alice"},
		{Kind: mount.Bind, Source: "/srv/data", Target: "/home/alice/src"},
		{Kind: mount.Hide, Target: "/home/alice/src/.ssh"},
		{Kind: mount.Bind, Source: "/home/alice/.netrc", Target: "/home/alice/n", File: true},
	}
	clone := func() []mount.Op { return append([]mount.Op(nil), base...) }

	// A bind of exactly the directory becomes a trace op, source and mode
	// kept, in its place.
	ops, plans, err := applyTraces(clone(), []string{"/usr"}, h, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if ops[1].String() != "trace ro /usr -> /usr [user_id=1000,group_id=1000]" {
		t.Errorf("trace of /usr: %v", ops[1])
	}
	if len(plans) != 1 || plans[0] != (TracePlan{Target: "/usr", Source: "/usr", ReadOnly: true}) {
		t.Errorf("plans: %+v", plans)
	}

	// Below a bind: a trace op of its own, after the bind, before the ops
	// inside it, with the bind's source and mode.
	ops, plans, err = applyTraces(clone(), []string{"/home/alice/src"}, h, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := mount.Render(ops); !strings.Contains(got, "trace rw /srv/data -> /home/alice/src") {
		t.Errorf("trace replaces the project bind:\n%s", got)
	}
	// Order: the hide inside the traced directory comes after it.
	ti, hi := -1, -1
	for i, o := range ops {
		switch {
		case o.Kind == mount.Trace:
			ti = i
		case o.Kind == mount.Hide:
			hi = i
		}
	}
	if ti < 0 || hi < ti {
		t.Errorf("the hide inside the traced directory must come after it:\n%s", mount.Render(ops))
	}
	if len(plans) != 1 || plans[0].Source != "/srv/data" || plans[0].ReadOnly {
		t.Errorf("plans: %+v", plans)
	}

	// Plans follow the ops' order (init numbers the mounts so), not the
	// order of the flags.
	_, plans, err = applyTraces(clone(), []string{"/home/alice/src", "/usr"}, h, 1000, 1000)
	if err != nil || len(plans) != 2 || plans[0].Target != "/usr" || plans[1].Target != "/home/alice/src" {
		t.Errorf("plans in op order: %+v %v", plans, err)
	}

	for _, c := range []struct{ trace, want string }{
		{"/", "the jail's root"},
		{"/tmp", "not shown from the host"},
		{"/home/alice", "not shown from the host"},
		{"/home/alice/src/.ssh", "hidden"},
		{"/home/alice/n", "a file"},
		{"/usr/nothere", "no such directory"},
		{"relative", "absolute"},
	} {
		if _, _, err := applyTraces(clone(), []string{c.trace}, h, 1000, 1000); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--trace %s: %v, want %q", c.trace, err, c.want)
		}
	}
	// The same directory twice is traced once.
	if _, plans, err := applyTraces(clone(), []string{"/usr", "/usr/"}, h, 1000, 1000); err != nil || len(plans) != 1 {
		t.Errorf("twice: %+v %v", plans, err)
	}
}

func TestInsertTraceMovesInnerOps(t *testing.T) {
	// The hide inside the traced directory comes before the last op that
	// covers it: it must move after the trace, or the FUSE mount would
	// cover it. Ops elsewhere keep their places.
	ops := []mount.Op{
		{Kind: mount.Bind, Source: "/p", Target: "/p"},
		{Kind: mount.Hide, Target: "/p/a/x/secret"},
		{Kind: mount.Tmpfs, Target: "/q"},
		{Kind: mount.Bind, Source: "/s", Target: "/p/a"},
		{Kind: mount.Bind, Source: "/r", Target: "/p/a/x/b"},
	}
	got := mount.Render(insertTrace(ops, 3, mount.Op{Kind: mount.Trace, Source: "/s/x", Target: "/p/a/x"}))
	want := "bind rw /p -> /p\ntmpfs /q\nbind rw /s -> /p/a\ntrace rw /s/x -> /p/a/x\nhide /p/a/x/secret\nbind rw /r -> /p/a/x/b\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
