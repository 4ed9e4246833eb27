package fuse

import (
	"encoding/json"
	"testing"
)

func TestRecordRules(t *testing.T) {
	r := newRecorder()
	// read, then stat: read
	r.note("a", opLookup)
	r.note("a", opOpenRead)
	r.note("a", opGetattr)
	// only stat'ed
	r.note("s", opLookup)
	r.note("s", opGetxattr)
	// the root is never stat_only, but is read when listed
	r.note(".", opGetattr)
	r.note("d", opLookup)
	r.note("d", opReaddir)
	// looked up missing, then created; created and deleted: neither
	r.note("new", opMissing)
	r.note("new", opCreate)
	r.note("tmp", opMissing)
	r.note("tmp", opCreate)
	r.note("tmp", opUnlink)
	// missing only: nothing
	r.note("nope", opMissing)
	// write via a temporary renamed over an existing file
	r.note("out", opLookup)
	r.note("out.tmp", opCreate)
	r.note("out.tmp", opRenameFrom)
	r.noteRenameTo("out", true)
	// moved away: source deleted, fresh target created
	r.note("old", opRenameFrom)
	r.noteRenameTo("moved", false)
	// deleted and created again: written
	r.note("again", opUnlink)
	r.note("again", opCreate)
	// opened for writing, or metadata changed: written
	r.note("w", opOpenWrite)
	r.note("m", opSetattr)
	// read, then deleted: deleted
	r.note("gone", opOpenRead)
	r.note("gone", opRmdir)
	// exchanged: both written
	r.noteExchange("x1", "x2")
	// a created file that is written and read stays created
	r.note("c", opMkdir)
	r.note("c", opOpenWrite)
	r.note("c", opReaddir)

	// a directory made, filled, renamed: its files are created where they
	// end up; an existing one moved keeps its old path for what was read
	r.note("md", opMkdir)
	r.note("md/f", opCreate)
	r.note("md/tmp", opCreate)
	r.note("md/tmp", opUnlink)
	r.note("md", opRenameFrom)
	r.noteRenameTo("md2", false)
	r.moveCreated("md", "md2")
	r.note("ed/r", opOpenRead)
	r.note("ed/n", opCreate)
	r.note("ed", opRenameFrom)
	r.noteRenameTo("ed2", false)
	r.moveCreated("ed", "ed2")

	want := Report{
		Read:     []string{"a", "d", "ed/r"},
		Written:  []string{"again", "m", "out", "w", "x1", "x2"},
		Created:  []string{"c", "ed2", "ed2/n", "md2", "md2/f", "moved", "new"},
		Deleted:  []string{"ed", "gone", "old"},
		StatOnly: []string{"s"},
	}
	sameReport(t, r.report(), want)

	c := r.counts()
	if c["out"].RenameTo != 1 || c["out.tmp"].RenameFrom != 1 || c["a"].Lookup != 1 || c["nope"].Missing != 1 {
		t.Errorf("counts: %+v", c)
	}
	b, _ := json.Marshal(r.report())
	if got := string(b); got != `{"read":["a","d","ed/r"],"written":["again","m","out","w","x1","x2"],"created":["c","ed2","ed2/n","md2","md2/f","moved","new"],"deleted":["ed","gone","old"],"stat_only":["s"]}` {
		t.Errorf("json: %s", got)
	}
	b, _ = json.Marshal(newRecorder().report())
	if got := string(b); got != `{"read":[],"written":[],"created":[],"deleted":[],"stat_only":[]}` {
		t.Errorf("empty json: %s", got)
	}
}

func TestIDMap(t *testing.T) {
	m := idMapper{{Inside: 0, Host: 1000, Size: 1}, {Inside: 1, Host: 100000, Size: 65536}}
	for host, inside := range map[uint32]uint32{1000: 0, 100000: 1, 100009: 10, 0: overflowID, 999: overflowID, 165536: overflowID} {
		if got := m.toInside(host, m.uncovered(1000)); got != inside {
			t.Errorf("toInside(%d) = %d, want %d", host, got, inside)
		}
	}
	for inside, host := range map[uint32]uint32{0: 1000, 1: 100000, 10: 100009} {
		if got, ok := m.toHost(inside); !ok || got != host {
			t.Errorf("toHost(%d) = %d %v, want %d", inside, got, ok, host)
		}
	}
	if _, ok := m.toHost(65537); ok {
		t.Error("toHost(65537) mapped")
	}
	if got := (idMapper{}).toInside(1234, overflowID); got != 1234 {
		t.Errorf("empty map: %d", got)
	}
	// A one-id map does not cover 65534, which the kernel then could not
	// map: ids it does not cover show as the jail user's own.
	one := idMapper{{Inside: 1001, Host: 1001, Size: 1}}
	if got := one.uncovered(1001); got != 1001 {
		t.Errorf("one-id map: uncovered = %d, want 1001", got)
	}
	if got := one.toInside(0, one.uncovered(1001)); got != 1001 {
		t.Errorf("one-id map: toInside(0) = %d, want 1001", got)
	}
	if got := m.uncovered(1000); got != overflowID {
		t.Errorf("range map: uncovered = %d, want %d", got, overflowID)
	}
}
