package userns

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSubIDs(t *testing.T) {
	const file = "# comment\nalice:100000:65536\nbob:165536:65536\n1001:300000:10\n\nalice:500000:5\n"
	for _, tc := range []struct {
		name string
		id   int
		want []IDMap
	}{
		{"alice", 1000, []IDMap{{Host: 100000, Count: 65536}, {Host: 500000, Count: 5}}},
		{"bob", 1002, []IDMap{{Host: 165536, Count: 65536}}},
		{"carol", 1001, []IDMap{{Host: 300000, Count: 10}}},
		{"dave", 1003, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSubIDs(strings.NewReader(file), tc.name, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ParseSubIDs(%s) (-want +got):\n%s", tc.name, d)
			}
		})
	}
	if _, err := ParseSubIDs(strings.NewReader("alice:x:1\n"), "alice", 1); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: got %v, want an error naming line 1", err)
	}
}

func TestCompute(t *testing.T) {
	sub := []IDMap{{Host: 100000, Count: 65536}}
	for _, tc := range []struct {
		name   string
		asRoot bool
		sub    []IDMap
		want   Maps
	}{
		{"single self", false, nil, Maps{
			UID: []IDMap{{1000, 1000, 1}}, GID: []IDMap{{1000, 1000, 1}}, InsideUID: 1000, InsideGID: 1000}},
		{"single root", true, nil, Maps{
			UID: []IDMap{{0, 1000, 1}}, GID: []IDMap{{0, 1000, 1}}}},
		{"range self", false, sub, Maps{Ranges: true, InsideUID: 1000, InsideGID: 1000,
			UID: []IDMap{{0, 100000, 1000}, {1000, 1000, 1}, {1001, 101000, 64536}},
			GID: []IDMap{{0, 100000, 1000}, {1000, 1000, 1}, {1001, 101000, 64536}}}},
		{"range root", true, sub, Maps{Ranges: true,
			UID: []IDMap{{0, 1000, 1}, {1, 100000, 65536}},
			GID: []IDMap{{0, 1000, 1}, {1, 100000, 65536}}}},
		{"two small ranges around self", false, []IDMap{{Host: 5000, Count: 600}, {Host: 9000, Count: 600}}, Maps{
			Ranges: true, InsideUID: 1000, InsideGID: 1000,
			UID: []IDMap{{0, 5000, 600}, {600, 9000, 400}, {1000, 1000, 1}, {1001, 9400, 200}},
			GID: []IDMap{{0, 5000, 600}, {600, 9000, 400}, {1000, 1000, 1}, {1001, 9400, 200}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(1000, 1000, tc.asRoot, tc.sub, tc.sub)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Compute (-want +got):\n%s", d)
			}
		})
	}
}

func TestHelperArgs(t *testing.T) {
	got := HelperArgs([]IDMap{{0, 1000, 1}, {1, 100000, 65536}})
	want := []string{"0", "1000", "1", "1", "100000", "65536"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("HelperArgs (-want +got):\n%s", d)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"auto", "single", "subuid"} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q) = %v", s, err)
		}
	}
	if _, err := ParseMode("full"); err == nil {
		t.Error(`ParseMode("full") succeeded`)
	}
}
