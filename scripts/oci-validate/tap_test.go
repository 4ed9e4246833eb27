package main

import (
	"strings"
	"testing"
)

func TestParseTAP(t *testing.T) {
	in := `TAP version 13
ok 1 - has expected hostname
  ---
  {
    "actual": "x",
    "expected": "x"
  }
  ...
not ok 2 - mounts
  ---
  {
    "error": "boom"
  }
  ...
ok 3 # SKIP linux.uidMappings not set
not ok 4 # TODO later
ok 5 - nested runtimetest output follows
  ---
  {
    "stdout": "TAP version 13\nnot ok 1 - inner\n1..1\n"
  }
  ...
1..5
`
	got := ParseTAP(strings.NewReader(in))
	if got.Pass != 2 || got.Fail != 1 || got.Skip != 1 || got.Todo != 1 || got.Planned != 5 || got.Points != 5 {
		t.Fatalf("counts: %+v", got)
	}
	if got.FirstNot != "mounts" || got.FirstSkp != "linux.uidMappings not set" {
		t.Fatalf("texts: %q %q", got.FirstNot, got.FirstSkp)
	}
	if got.DiagAfterNot["error"] != "boom" {
		t.Fatalf("diag after not ok: %v", got.DiagAfterNot)
	}
}

func TestJudgeEmptyPlan(t *testing.T) {
	// what prestart.t prints when its check fails
	in := "TAP version 13\n  ---\n  {\n    \"error\": \"Pre-start hooks MUST be called after the start operation\"\n  }\n  ...\n1..0\n"
	var r Result
	judge(&r, ParseTAP(strings.NewReader(in)), nil)
	if r.Status != "FAIL" || !strings.Contains(r.Reason, "Pre-start hooks") {
		t.Fatalf("%+v", r)
	}
	// ... and when it passes
	r = Result{}
	judge(&r, ParseTAP(strings.NewReader("TAP version 13\n1..0\n")), nil)
	if r.Status != "PASS" {
		t.Fatalf("%+v", r)
	}
	// aborted (util.Fatal) before printing anything
	r = Result{ExitCode: 1}
	judge(&r, ParseTAP(strings.NewReader("")), []byte("failed to create the container\nboom\nexit status 1\n"))
	if r.Status != "ERROR" || r.Reason != "exit status 1: boom" {
		t.Fatalf("%+v", r)
	}
}

func TestJudgeAllSkipped(t *testing.T) {
	in := "TAP version 13\n1..1\nok 1 # SKIP cgroupv2 is not supported yet\n"
	var r Result
	judge(&r, ParseTAP(strings.NewReader(in)), nil)
	if r.Status != "SKIP" {
		t.Fatalf("%+v", r)
	}
}

func TestTwoStreams(t *testing.T) {
	// linux_cgroups_cpus: one TAP document per sub-test
	in := "TAP version 13\nok 1 - a\nok 2 - b\n1..2\nTAP version 13\n1..0\n"
	got := ParseTAP(strings.NewReader(in))
	if got.Planned != 2 || got.Points != 2 || got.Streams != 2 || got.EmptyStreams != 1 {
		t.Fatalf("%+v", got)
	}
	var r Result
	judge(&r, got, nil)
	if r.Status != "PASS" {
		t.Fatalf("%+v", r)
	}
	if p := ParseTAP(strings.NewReader("TAP version 13\nok 1 - a\n")).Planned; p != -1 {
		t.Fatalf("no plan: %d", p)
	}
}
