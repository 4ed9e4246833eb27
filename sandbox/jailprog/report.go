package jailprog

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
)

// A payload whose program has a ReportFD writes a report there when one of
// its Reported steps (a hook's) fails, in one write: errno (int32),
// wait status (int32), 1 if the step was the hook's wait else 0 (int32),
// 4 bytes unused, then the step's stage, a NUL, the call's name, a NUL and
// the wait's timeout as the listing shows it ("{5s}"). Native byte order.
// The records are made when the program is linked; the payload fills in
// the first 8 bytes.
const reportHeader = 16

// reportRecord is step s's report with the errno and status left 0.
func reportRecord(s Step) []byte {
	call := s.Name
	if s.Nr == OpSpawn {
		call = "execve"
	}
	timeout := ""
	wait := uint32(0)
	if s.Nr == OpWait {
		timeout, wait = s.Args[1].Show, 1
	}
	b := make([]byte, reportHeader, reportHeader+len(s.Stage)+len(call)+len(timeout)+2)
	binary.NativeEndian.PutUint32(b[8:], wait)
	return append(append(append(append(append(b, s.Stage...), 0), call...), 0), timeout...)
}

// Report is a failed hook step of a payload, as it wrote it to its
// ReportFD.
type Report struct {
	Stage  string // "startContainer hook 0 (/bin/sh)"
	Detail string // "exit status 3", "execve: no such file or directory"
}

func (r Report) Error() string { return r.Stage + ": " + r.Detail }

// ParseReport reads a report.
func ParseReport(b []byte) (Report, error) {
	if len(b) < reportHeader {
		return Report{}, errors.New("short report from the container's process")
	}
	errno := syscall.Errno(binary.NativeEndian.Uint32(b))
	status := int32(binary.NativeEndian.Uint32(b[4:]))
	f := strings.SplitN(string(b[reportHeader:]), "\x00", 3)
	if len(f) != 3 {
		return Report{}, errors.New("bad report from the container's process")
	}
	r := Report{Stage: f[0]}
	if binary.NativeEndian.Uint32(b[8:]) == 1 {
		r.Detail = HookEnding(errno, status, f[2])
	} else {
		r.Detail = f[1] + ": " + errno.Error()
	}
	return r, nil
}
