package main

import (
	"bufio"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// TAP is what one validation program printed on stdout, counted.
//
// Only top-level lines (column 0) are test points. runtime-tools nests the
// output of runtimetest inside YAML blocks ("  ---" ... "  ...") when it
// runs it through a tap.T; those nested lines are not counted again.
type TAP struct {
	Pass    int // "ok N" without a directive
	Fail    int // "not ok N" without a TODO directive
	Skip    int // "ok N # SKIP ..." (or "not ok N # SKIP ...")
	Todo    int // any test point with a TODO directive
	Planned int // sum of the N of the "1..N" lines; -1 when a stream has no plan
	Points  int // number of test points seen
	// Streams counts "TAP version" headers: some tests (linux_cgroups_cpus)
	// print one TAP document per sub-test, one after the other.
	Streams      int
	EmptyStreams int    // streams with a plan of 1..0
	FirstNot     string // description of the first "not ok"
	FirstSkp     string // reason of the first SKIP
	// Diagnostics are the YAML blocks (tap-go writes them as JSON), decoded
	// when they are a JSON object, in order of appearance.
	Diagnostics []map[string]any
	// DiagAfterNot holds the diagnostic block that directly follows the
	// first "not ok", if any; CommentAfterNot the first "# " line after it.
	DiagAfterNot    map[string]any
	CommentAfterNot string
}

var (
	tapPoint = regexp.MustCompile(`^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(\S+)\s*(.*))?$`)
	tapPlan  = regexp.MustCompile(`^1\.\.(\d+)`)
	tapHead  = regexp.MustCompile(`^TAP version \d+`)
)

// ParseTAP reads TAP 13 as printed by runtime-tools' tests.
func ParseTAP(r io.Reader) TAP {
	t := TAP{}
	planned, unplanned := 0, false
	inStream, streamPlanned := false, false
	endStream := func() {
		if inStream && !streamPlanned {
			unplanned = true
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	var inYAML bool
	var yamlBuf []string
	lastWasFirstNot := false
	for sc.Scan() {
		line := sc.Text()
		if inYAML {
			if strings.TrimSpace(line) == "..." && strings.HasPrefix(line, "  ") {
				inYAML = false
				var m map[string]any
				if json.Unmarshal([]byte(strings.Join(yamlBuf, "\n")), &m) == nil {
					t.Diagnostics = append(t.Diagnostics, m)
					if lastWasFirstNot {
						t.DiagAfterNot = m
					}
				}
				lastWasFirstNot = false
				yamlBuf = yamlBuf[:0]
				continue
			}
			yamlBuf = append(yamlBuf, line)
			continue
		}
		if strings.HasPrefix(line, "  ---") {
			inYAML = true
			continue
		}
		if tapHead.MatchString(line) {
			endStream()
			t.Streams++
			inStream, streamPlanned = true, false
			continue
		}
		if m := tapPlan.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			planned += n
			if n == 0 {
				t.EmptyStreams++
			}
			if !inStream { // a plan without a header: a stream of its own
				t.Streams++
			}
			inStream, streamPlanned = true, true
			continue
		}
		if strings.HasPrefix(line, "#") {
			if lastWasFirstNot && t.CommentAfterNot == "" {
				t.CommentAfterNot = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			}
			continue
		}
		m := tapPoint.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		lastWasFirstNot = false
		t.Points++
		ok := m[1] == "ok"
		desc := strings.TrimSpace(m[3])
		directive := strings.ToUpper(m[4])
		reason := strings.TrimSpace(m[5])
		switch {
		case strings.HasPrefix(directive, "SKIP"):
			t.Skip++
			if t.FirstSkp == "" {
				t.FirstSkp = reason
			}
		case strings.HasPrefix(directive, "TODO"):
			t.Todo++
		case ok:
			t.Pass++
		default:
			t.Fail++
			if t.FirstNot == "" {
				t.FirstNot = desc
				if t.FirstNot == "" {
					t.FirstNot = "(no description)"
				}
				lastWasFirstNot = true
			}
		}
	}
	endStream()
	t.Planned = planned
	if unplanned || t.Streams == 0 {
		t.Planned = -1
	}
	return t
}
