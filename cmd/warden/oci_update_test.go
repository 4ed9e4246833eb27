//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
)

// TestUpdateParse: runc's --resources JSON, from a file or stdin, with the
// flags on top, becomes the limits warden writes.
func TestUpdateParse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.json")
	os.WriteFile(file, []byte(`{"memory":{"limit":67108864},"pids":{"limit":20},"cpu":{"quota":50000,"period":100000}}`), 0o644)
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  cgroup.Limits
	}{
		{"file", []string{"--resources", file}, "", cgroup.Limits{Memory: 64 << 20, Pids: 20, CPUs: 0.5}},
		{"stdin", []string{"-r", "-"}, `{"pids":{"limit":7}}`, cgroup.Limits{Pids: 7}},
		{"flags over file", []string{"--resources", file, "--pids-limit", "99", "--memory", "32M"}, "", cgroup.Limits{Memory: 32 << 20, Pids: 99, CPUs: 0.5}},
		{"memory-swap", []string{"--memory", "64m", "--memory-swap", "96M"}, "", cgroup.Limits{Memory: 64 << 20, MemorySwap: 32 << 20}},
		{"cpu", []string{"--cpu-quota", "25000", "--cpu-period", "50000"}, "", cgroup.Limits{CPUs: 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, id, err := parseUpdateFlags(append(tc.args, "c1"))
			if err != nil || id != "c1" {
				t.Fatalf("parseUpdateFlags = %q, %v", id, err)
			}
			r, err := u.parse(strings.NewReader(tc.stdin))
			if err != nil {
				t.Fatal(err)
			}
			got, ignored := sandbox.LimitsFromResources(r)
			if diff := cmp.Diff(tc.want, got); diff != "" || len(ignored) > 0 {
				t.Errorf("limits mismatch (-want +got):\n%s ignored %v", diff, ignored)
			}
		})
	}
	for _, args := range [][]string{{"c1", "c2"}, {}, {"--cpu-share", "2", "c1"}} {
		var ue *sandbox.UsageError
		if _, _, err := parseUpdateFlags(args); !errors.As(err, &ue) {
			t.Errorf("parseUpdateFlags(%v) = %v; want a usage error", args, err)
		}
	}
}

// TestUpdateRefusals: what warden cannot set is refused as a usage error,
// before the container is looked at; a bad JSON names the file.
func TestUpdateRefusals(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"memory":`), 0o644)
	shares := filepath.Join(dir, "shares.json")
	os.WriteFile(shares, []byte(`{"cpu":{"shares":1024}}`), 0o644)
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"--resources", bad}, "", "update: --resources " + bad},
		{[]string{"--resources", filepath.Join(dir, "none")}, "", "no such file"},
		{[]string{"--resources", shares}, "", "does not apply cpu.shares"},
		{[]string{"--pids-limit", "-1"}, "", "no limit to set"},
		{[]string{"-r", "-"}, `{}`, "no limit to set"},
		{[]string{"--memory", "lots"}, "", "--memory: parse size"},
		{[]string{"--cpu-quota", "5"}, "", "below the kernel minimum"},
	} {
		c := &ociCtx{root: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
		u, id, err := parseUpdateFlags(append(tc.args, "c1"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.updateID(id, u, strings.NewReader(tc.stdin))
		var ue *sandbox.UsageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("update %v = %v; want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// TestOCIStateKeepsCgroup: the leaf's record survives state.json, and a
// container whose init is gone is stopped with its record intact (delete
// needs it to remove the leaf).
func TestOCIStateKeepsCgroup(t *testing.T) {
	c := &ociCtx{root: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	rec := &cgroup.Record{Dir: "/sys/fs/cgroup/u/warden-oci-c1", Base: "/sys/fs/cgroup/u", Evac: "/sys/fs/cgroup/u/warden-supervisor", Enabled: []string{"memory", "pids"}}
	st := ociState{State: specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 1 << 30}, Cgroup: rec}
	data, _ := json.Marshal(&st)
	if !strings.Contains(string(data), `"cgroup":{"dir":"/sys/fs/cgroup/u/warden-oci-c1","base":"/sys/fs/cgroup/u","evac":"/sys/fs/cgroup/u/warden-supervisor","enabled":["memory","pids"]}`) {
		t.Errorf("state.json: %s", data)
	}
	os.MkdirAll(filepath.Join(c.root, "c1"), 0o700)
	os.WriteFile(filepath.Join(c.root, "c1", "state.json"), data, 0o600)
	got, _, err := c.load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != specs.StateStopped || got.Pid != 0 {
		t.Errorf("status %s pid %d; want stopped, 0", got.Status, got.Pid)
	}
	if diff := cmp.Diff(rec, got.Cgroup); diff != "" {
		t.Errorf("cgroup record mismatch (-want +got):\n%s", diff)
	}
	// Without a record: no leaf, and pause says so.
	st.Cgroup = nil
	data, _ = json.Marshal(&st)
	os.WriteFile(filepath.Join(c.root, "c1", "state.json"), data, 0o600)
	if leaf, err := st.leaf(); leaf != nil || err != nil {
		t.Errorf("leaf() without a record = %v, %v", leaf, err)
	}
}
