package cgroup

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReopenAcrossProcesses: a leaf made by Setup, closed and recorded as
// JSON (what `warden oci create` leaves in the container's state), is found
// again by Reopen; Update, Procs, Frozen and Remove act on it, and Remove
// undoes the evacuation the first process made.
func TestReopenAcrossProcesses(t *testing.T) {
	k, del := delegatedFake(t)
	h := k.host(nil)
	leaf, _, err := h.setup(Limits{Memory: 64 << 20}, Required, "warden-oci-c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.FD(); err != nil {
		t.Fatal(err)
	}
	rec := leaf.Record()
	want := Record{Dir: filepath.Join(del, "warden-oci-c1"), Base: del, Evac: filepath.Join(del, evacName), Enabled: []string{"memory", "cpu", "pids"}}
	if diff := cmp.Diff(want, rec); diff != "" {
		t.Errorf("Record() mismatch (-want +got):\n%s", diff)
	}
	leaf.Close()
	if err := leaf.Remove(); err != nil {
		t.Fatalf("Remove after Close = %v", err)
	}
	if !contains(k.tree(), "user/del/warden-oci-c1") {
		t.Fatalf("Close removed the leaf: %v", k.tree())
	}

	data, _ := json.Marshal(rec)
	var back Record
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, err := h.reopen(back)
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	k.place(again.Path(), 777)
	if got, err := again.Procs(); err != nil || !cmp.Equal(got, []int{777}) {
		t.Errorf("Procs() = %v, %v; want [777]", got, err)
	}
	if err := again.Update(Limits{Memory: 32 << 20, Pids: 10}); err != nil {
		t.Fatalf("Update = %v", err)
	}
	for f, v := range map[string]string{"memory.max": "33554432", "memory.swap.max": "0", "pids.max": "10", "cpu.max": "max 100000"} {
		if got := strings.TrimSpace(k.get(filepath.Join(again.Path(), f))); got != v {
			t.Errorf("after Update %s = %q; want %q", f, got, v)
		}
	}
	if again.Frozen() {
		t.Errorf("Frozen() before freezing")
	}
	k.put(again.Path(), "cgroup.freeze", "1\n")
	if !again.Frozen() {
		t.Errorf("Frozen() = false with frozen 1")
	}
	if err := again.Remove(); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	if got := k.tree(); !cmp.Equal(got, []string{"user", "user/del"}) {
		t.Errorf("after Remove the tree is %v; want only user, user/del", got)
	}
	if got := k.procsOf(del); !cmp.Equal(got, []string{"1000001", "4242"}) {
		t.Errorf("after Remove %s holds %v; want the caller and 4242 back", del, got)
	}
	// The leaf is gone: Reopen still works, Remove has nothing to do.
	gone, err := h.reopen(back)
	if err != nil || gone.Path() != "" {
		t.Fatalf("reopen of a removed leaf = %v, %v; want a Leaf without a path", gone.Path(), err)
	}
	if err := gone.Remove(); err != nil {
		t.Errorf("Remove of a removed leaf = %v", err)
	}
	if err := gone.Update(Limits{Pids: 1}); !errors.Is(err, ErrNoLeaf) {
		t.Errorf("Update without a leaf = %v; want ErrNoLeaf", err)
	}
}

// TestUpdateFailure: a limit whose controller the leaf lacks fails with a
// *NotEnforcedError naming the file.
func TestUpdateFailure(t *testing.T) {
	k := newFakeKernel(t, "memory")
	k.enable(k.root, "memory")
	del := k.mk("del")
	h := k.host(nil)
	k.place(del, k.self)
	leaf, _, err := h.setup(Limits{Memory: 1 << 20}, Required, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	err = leaf.Update(Limits{Pids: 5})
	var ne *NotEnforcedError
	if !errors.As(err, &ne) || len(ne.Failures) != 1 || ne.Failures[0].Limit != LimitPids || !strings.Contains(err.Error(), "pids.max does not exist") {
		t.Errorf("Update(pids) = %v; want a NotEnforcedError for pids.max", err)
	}
}

// TestReopenRefusesForeignPaths: a record that does not describe a leaf of
// a cgroup2 hierarchy is refused, so that Remove cannot be aimed at
// another directory.
func TestReopenRefusesForeignPaths(t *testing.T) {
	k, del := delegatedFake(t)
	h := k.host(nil)
	for _, r := range []Record{
		{Dir: "/tmp/x/leaf", Base: "/tmp/x"},
		{Dir: filepath.Join(del, "a/b"), Base: del},
		{Dir: del + "/../del/x", Base: del},
		{Dir: del, Base: filepath.Dir(del)[:len(filepath.Dir(del))-1]},
		{Dir: filepath.Join(del, "x"), Base: del, Evac: filepath.Join(del, "other")},
		{Dir: filepath.Join(del, "x y"), Base: del},
		{Dir: "leaf", Base: "."},
	} {
		if _, err := h.reopen(r); err == nil {
			t.Errorf("reopen(%+v) succeeded; want a refusal", r)
		}
	}
	if _, err := h.reopen(Record{Dir: filepath.Join(del, "x"), Base: del}); err != nil {
		t.Errorf("reopen of a good record = %v", err)
	}
}
