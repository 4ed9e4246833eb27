package jailprog

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestChildCallsOnlyNosplit: the code that runs in the child (no Go
// runtime: no allocation, no stack growth, no scheduler) calls nothing but
// itself, the raw system call and the runtime's copy helpers. A call to
// anything else (a panic for an index out of range, a fmt call, a map)
// would crash the child or corrupt warden, so it fails here, at build
// time, not in a jail.
//
// It disassembles WARDEN_SYMBIN, a warden binary with its symbol table
// (scripts/test.sh builds one; test binaries and bin/warden are stripped).
func TestChildCallsOnlyNosplit(t *testing.T) {
	bin := os.Getenv("WARDEN_SYMBIN")
	if bin == "" {
		t.Skip("WARDEN_SYMBIN is not set (scripts/test.sh sets it to a warden binary with symbols)")
	}
	gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gotool); err != nil {
		t.Fatalf("the go tool is needed to disassemble the child's code: %v", err)
	}
	child := []string{`jailprog\.\(\*image\)\.run`, `jailprog\.\(\*image\)\.spawn`, `jailprog\.\(\*image\)\.wait`, `jailprog\.\(\*image\)\.report`, `jailprog\.\(\*Child\)\.main`, `jailprog\.\(\*Child\)\.send`,
		`jailprog\.\(\*Child\)\.forkPayload`, `jailprog\.execSearch`, `jailprog\.clone`, `jailprog\.exit`, `jailprog\.initMain`,
		`jailprog\.cloneVM`, `jailprog\.vforkClone3`}
	out, err := exec.Command(gotool, "tool", "objdump", "-s", strings.Join(child, "|"), bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	allowed := regexp.MustCompile(`^(syscall\.RawSyscall6|internal/runtime/syscall/linux\.Syscall6|runtime\.duffcopy|runtime\.duffzero|runtime\.memmove|github\.com/warden-sandbox/warden/sandbox/jailprog\.(\(\*image\)\.(run|spawn|wait|report)|\(\*Child\)\.(main|send|forkPayload)|execSearch|clone|exit|initMain|cloneVM|vforkClone3))(\.abi0)?\(SB\)$`)
	funcs, calls := 0, 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "TEXT ") {
			funcs++
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[len(f)-2] != "CALL" {
			continue
		}
		calls++
		if target := f[len(f)-1]; !allowed.MatchString(target) {
			t.Errorf("child code calls %s:\n%s", target, line)
		}
	}
	if funcs < 6 || calls < 5 {
		t.Fatalf("disassembled %d functions with %d calls; the child's code was not found:\n%.2000s", funcs, calls, out)
	}
}
