package jailprog

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestHookRun runs a hook's steps for real, in the test process (they need
// no namespace): the hook reads the state on stdin and sees EOF after it;
// a status other than 0, a path that does not exist and a hook that
// outlives its timeout each fail their step, with the wait status where
// there is one.
func TestHookRun(t *testing.T) {
	sh, err := os.Stat("/bin/sh")
	if err != nil || sh.IsDir() {
		t.Skip("needs /bin/sh")
	}
	out := filepath.Join(t.TempDir(), "got")
	for _, tc := range []struct {
		name    string
		path    string
		script  string
		timeout time.Duration
		// want: the failed step's kind (OpSpawn, OpWait), 0 for none.
		want       uintptr
		wantErrno  syscall.Errno
		wantStatus int32
	}{
		{"reads-state", "/bin/sh", `read s; echo "$s" > ` + out + `; read t && exit 9; exit 0`, time.Second, 0, 0, 0},
		{"status", "/bin/sh", "exit 3", 0, OpWait, ErrStatus, 3 << 8},
		{"signal", "/bin/sh", "kill -TERM $$", 0, OpWait, ErrStatus, int32(syscall.SIGTERM)},
		{"missing", "/nonexistent/hook", "", 0, OpSpawn, syscall.ENOENT, 0},
		{"timeout", "/bin/sh", "exec sleep 5", 200 * time.Millisecond, OpWait, syscall.ETIMEDOUT, int32(syscall.SIGKILL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder()
			state := `{"id":"c1","status":"creating"}`
			n := b.Reg()
			b.Hook("hook", tc.path, []string{"sh", "-c", tc.script}, []string{"PATH=/usr/bin:/bin"}, tc.timeout, b.Bytes([]byte(state), "<state>"), n)
			p, err := b.Program()
			if err != nil {
				t.Fatal(err)
			}
			im := link(p)
			im.regs[n] = uintptr(len(state))
			t0 := time.Now()
			// Not between the runtime's fork hooks: they block every
			// signal, and the hook would inherit that mask (init
			// unblocks them all in its prologue).
			runtime.LockOSThread()
			i, e := im.run()
			runtime.UnlockOSThread()
			if tc.want == 0 {
				if e != 0 {
					t.Fatalf("step %d failed: %v\n%s", i, e, p)
				}
				if got, _ := os.ReadFile(out); string(got) != state+"\n" {
					t.Errorf("the hook read %q, want the state", got)
				}
				return
			}
			if i < 0 || p.Steps[i].Nr != tc.want || e != tc.wantErrno || im.status != tc.wantStatus {
				t.Errorf("failed at step %d (%v) with %v, status %#x; want the %v step, %v, status %#x\n%s", i, p.Steps[max(i, 0)].Name, e, im.status, tc.want, tc.wantErrno, tc.wantStatus, p)
			}
			if tc.timeout > 0 && time.Since(t0) > 3*time.Second {
				t.Errorf("the hook ran %v with a timeout of %v", time.Since(t0), tc.timeout)
			}
		})
	}
}
