package fuse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests mirror warden's split. A child of the test binary runs in a new
// user and mount namespace (root inside, mapped to the test's own uid and
// gid), opens /dev/fuse, mounts it and passes the descriptor out over a
// socketpair, as the jail's init does; the test serves it from outside with
// the jail's id maps, then lets the child run shell steps in the mount.

const (
	envChild   = "WARDEN_FUSETEST_CHILD" // child mode: the JSON of a childSpec
	childSkip  = "skip:"
	childError = "error:"
)

type childSpec struct {
	Mnt     string   // where to mount
	Hide    []string // directories to cover with an empty tmpfs first
	Steps   []string // shell scripts, run in Mnt one per "go" from the parent
	Unmount bool     // unmount after the last step (else just exit)
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChild); spec != "" {
		os.Exit(jailChild(spec))
	}
	os.Exit(m.Run())
}

// jailChild is the jail side. Messages to the parent: the /dev/fuse fd (by
// SCM_RIGHTS) or "skip:why" / "error:why"; then each step's output.
func jailChild(specJSON string) int {
	sock := os.NewFile(3, "sock")
	fail := func(kind string, err error) int {
		sock.Write([]byte(kind + err.Error()))
		return 1
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fail(childError, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(childError, fmt.Errorf("make / private: %w", err))
	}
	for _, d := range spec.Hide {
		if err := unix.Mount("hide", d, "tmpfs", 0, ""); err != nil {
			return fail(childError, fmt.Errorf("hide %s: %w", d, err))
		}
	}
	dev, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(childSkip, fmt.Errorf("needs /dev/fuse (readable and writable by the test user): %w", err))
	}
	if err := unix.Mount("warden-trace", spec.Mnt, "fuse", unix.MS_NOSUID|unix.MS_NODEV, MountData(dev, 0, 0)); err != nil {
		return fail(childSkip, fmt.Errorf("mount fuse in a user namespace: %w", err))
	}
	if err := unix.Sendmsg(3, []byte("fd"), unix.UnixRights(dev), nil, 0); err != nil {
		return fail(childError, err)
	}
	unix.Close(dev)
	buf := make([]byte, 16)
	for _, step := range spec.Steps {
		if _, err := sock.Read(buf); err != nil {
			return 1
		}
		cmd := exec.Command("/bin/sh", "-c", step)
		cmd.Dir = spec.Mnt
		out, err := cmd.CombinedOutput()
		if err != nil {
			out = append(out, fmt.Sprintf("[step: %v]\n", err)...)
		}
		// A prefix, since an empty SOCK_SEQPACKET message reads as EOF.
		if _, err := sock.Write(append([]byte(">"), out...)); err != nil {
			return 1
		}
	}
	if spec.Unmount {
		if err := unix.Unmount(spec.Mnt, 0); err != nil {
			return fail(childError, fmt.Errorf("unmount: %w", err))
		}
	}
	return 0
}

// jail is the test's handle on a child.
type jail struct {
	t      *testing.T
	cmd    *exec.Cmd
	sock   *os.File
	stderr bytes.Buffer
}

// startJail starts a child with spec and returns it with the /dev/fuse it
// mounted. It skips the test when FUSE or user namespaces are unavailable.
func startJail(t *testing.T, spec childSpec) (*jail, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	specJSON, _ := json.Marshal(spec)
	j := &jail{t: t, sock: mine}
	j.cmd = exec.Command(os.Args[0], "-test.run=^$")
	j.cmd.Env = append(os.Environ(), envChild+"="+string(specJSON))
	j.cmd.ExtraFiles = []*os.File{theirs}
	j.cmd.Stderr = &j.stderr
	j.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := j.cmd.Start(); err != nil {
		theirs.Close()
		mine.Close()
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSPC) {
			t.Skipf("needs unprivileged user namespaces: %v", err)
		}
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		j.cmd.Process.Kill()
		j.wait()
		mine.Close()
	})
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(mine.Fd()), buf, oob, 0)
	if err != nil || n == 0 {
		j.wait()
		t.Fatalf("jail child: %v (stderr: %s)", err, j.stderr.String())
	}
	msg := string(buf[:n])
	if rest, ok := strings.CutPrefix(msg, childSkip); ok {
		t.Skip(rest)
	}
	if rest, ok := strings.CutPrefix(msg, childError); ok {
		t.Fatalf("jail child: %s", rest)
	}
	scms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(scms) != 1 {
		t.Fatalf("jail child sent no fd: %v", err)
	}
	got, err := unix.ParseUnixRights(&scms[0])
	if err != nil || len(got) != 1 {
		t.Fatalf("jail child sent no fd: %v", err)
	}
	return j, os.NewFile(uintptr(got[0]), "/dev/fuse")
}

// step lets the child run its next step and returns its output.
func (j *jail) step() string {
	j.t.Helper()
	if _, err := j.sock.Write([]byte("go")); err != nil {
		j.t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	n, err := j.sock.Read(buf)
	if err != nil {
		j.t.Fatalf("jail step: %v (stderr: %s)", err, j.stderr.String())
	}
	out := string(buf[:n])
	if rest, ok := strings.CutPrefix(out, childError); ok {
		j.t.Fatalf("jail child: %s", rest)
	}
	return strings.TrimPrefix(out, ">")
}

// wait waits for the child to exit (the end of its mount namespace).
func (j *jail) wait() error {
	if j.cmd.ProcessState != nil {
		return nil
	}
	return j.cmd.Wait()
}

// serveJail serves what the child mounted, with the child's id maps.
func serveJail(t *testing.T, devFuse *os.File, root string, opts Options) *Server {
	t.Helper()
	opts.UIDMap = []IDMap{{Inside: 0, Host: uint32(os.Getuid()), Size: 1}}
	opts.GIDMap = []IDMap{{Inside: 0, Host: uint32(os.Getgid()), Size: 1}}
	s, err := Serve(devFuse, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitServer waits for the server to stop, or fails the test.
func waitServer(t *testing.T, s *Server) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop when its mount went away")
	}
}

// settle waits for the goroutine count to come back to base.
func settle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
