package sandbox

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/schematest"
)

// validateReport validates a report document against the documented schema.
func validateReport(t *testing.T, doc []byte) {
	t.Helper()
	errs, err := schematest.Validate("../docs/report.schema.json", doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

func TestReportSchema(t *testing.T) {
	p, _, err := Resolve(Options{Argv: []string{"make"}, Timeout: time.Second}, fakeHost("/home/alice/src"))
	if err != nil {
		t.Fatal(err)
	}
	pol := PolicyRef{Name: "ci", Source: "builtin:ci", Hash: "sha256:00"}
	use := &Usage{UserUsec: 10, SystemUsec: 20, MaxRSSKiB: 3000}
	for _, tc := range []struct {
		name   string
		res    *Result
		err    error
		status int
		kind   string
	}{
		{"exit", &Result{Ending: EndExit, Code: 3, Usage: use, Wall: time.Second}, nil, 3, "exit"},
		{"signal", &Result{Ending: EndSignal, Signal: syscall.SIGKILL, Usage: use}, nil, 137, "signal"},
		{"timeout", &Result{Ending: EndTimeout, Signal: syscall.SIGTERM}, nil, 124, "timeout"},
		{"oom", &Result{Ending: EndOOM, Signal: syscall.SIGKILL, Limits: map[string]string{"memory": "enforced"},
			Cgroup: &cgroup.Stats{MemoryPeak: 64 << 20, OOM: 1, OOMKill: 1}}, nil, 137, "oom"},
		{"pids-limit", &Result{Ending: EndPidsLimit, Code: 1, Limits: map[string]string{"pids": "degraded: enforced as RLIMIT_NPROC"}}, nil, 1, "pids-limit"},
		{"seccomp-kill", &Result{Ending: EndSeccompKill, Signal: syscall.SIGSYS}, nil, 159, "seccomp-kill"},
		{"setup-error", &Result{Ending: EndSetupError}, &StageError{Step: "mount", Path: "/data", Errno: syscall.EPERM}, 125, "setup-error"},
		{"no-plan", nil, Usagef("--ro /x: no such file"), 125, "setup-error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := p
			if tc.name == "no-plan" {
				plan = nil
			}
			r := NewReport(plan, pol, tc.res, tc.err, tc.status, []Warning{{What: "limit memory", Reason: "not delegated"}})
			doc := r.JSON()
			validateReport(t, doc)
			var back Report
			if err := json.Unmarshal(doc, &back); err != nil {
				t.Fatal(err)
			}
			if back.Ending.Kind != tc.kind || back.Ending.ExitStatus != tc.status {
				t.Errorf("ending %+v, want kind %s status %d", back.Ending, tc.kind, tc.status)
			}
			if tc.kind == "setup-error" {
				if back.Error == nil || back.Error.Message == "" {
					t.Error("setup-error without an error message")
				}
				for _, pr := range back.Protections {
					if pr.State != StateOff {
						t.Errorf("after a setup error %s is %s, want off", pr.Name, pr.State)
					}
				}
			}
			if tc.kind == "exit" && (back.Ending.Code == nil || *back.Ending.Code != 3) {
				t.Errorf("exit code %v, want 3", back.Ending.Code)
			}
		})
	}
	// The validator itself must reject what the schema forbids.
	bad := []byte(`{"schema":1,"warden_version":"x","policy":{"name":"","source":"","hash":""},"argv":[],"protections":[{"name":"x","state":"maybe","detail":""}],"ending":{"kind":"exploded","exit_status":1},"usage":{"wall_ms":1,"user_usec":1,"system_usec":1,"max_rss_kib":1},"warnings":[],"extra":1}`)
	if errs, _ := schematest.Validate("../docs/report.schema.json", bad); len(errs) != 3 {
		t.Errorf("validator found %d errors in a bad report, want 3 (state, kind, extra): %v", len(errs), errs)
	}
}
