// Package jails keeps the state of jails that outlive one command (`warden
// run -d`): a directory per jail under the caller's runtime directory, with
// the jail's state (state.json), the log of its supervisor and command
// (log), and a lock (lock) that serialises every change.
//
// It owns naming, the directory's safety (private to the caller) and
// liveness: a jail whose supervisor died is stale and never reported as
// running. It must never start, signal or enter a jail: that is package
// sandbox's and the CLI's.

package jails

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// States of a jail.
const (
	Running = "running"
	Paused  = "paused"
	Stopped = "stopped"
)

// State is state.json.
type State struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Pid is the jail's init (host pid), InitStart its start time in clock
	// ticks (/proc/PID/stat field 22): together they name the process.
	Pid       int    `json:"pid"`
	InitStart uint64 `json:"init_start"`
	// SupervisorPid is the host-side warden that runs the jail.
	SupervisorPid   int               `json:"supervisor_pid"`
	SupervisorStart uint64            `json:"supervisor_start"`
	Created         time.Time         `json:"created"`
	Command         []string          `json:"command"`
	Policy          string            `json:"policy"`
	Network         string            `json:"network"`
	Limits          map[string]string `json:"limits,omitempty"`
	// Exit is how the command ended, once stopped ("exit 0", "signal SIGTERM").
	Exit string `json:"exit,omitempty"`
	// Pause says how a paused jail is held: "cgroup.freeze", or "degraded:
	// SIGSTOP" where it has no cgroup of its own.
	Pause string `json:"pause,omitempty"`
	// Exec is what `warden exec` needs to run a command as the jail's own
	// runs (package sandbox's ExecInfo, opaque here); the namespaces come
	// from the supervisor's socket, ExecSocket in the jail's directory.
	Exec json.RawMessage `json:"exec,omitempty"`
}

// ExecSocket is the name of the supervisor's socket in a jail's directory.
const ExecSocket = "exec.sock"

// validName: 1 to 63 of [A-Za-z0-9_.-], the first a letter or digit. (Not a
// package-level regexp: its compilation would run at every start of warden,
// about 1 ms on a cold process.)
func validName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// CheckName says what is wrong with a jail name, "" if nothing.
func CheckName(name string) string {
	if !validName(name) {
		return fmt.Sprintf("%q is not a jail name: use letters, digits, '.', '_' and '-', at most 63, starting with a letter or digit", name)
	}
	return ""
}

// NewName generates a name: "jail-" and 6 hex digits.
func NewName() string {
	var b [3]byte
	f, err := os.Open("/dev/urandom")
	if err == nil {
		f.Read(b[:])
		f.Close()
	}
	return fmt.Sprintf("jail-%02x%02x%02x", b[0], b[1], b[2])
}

// Root is the directory of the caller's jails: $XDG_RUNTIME_DIR/warden/jails,
// else /tmp/warden-UID/jails. It is made private (0700) and must belong to
// the caller: a directory someone else could write would let them plant a
// state that `warden exec` enters.
func Root() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(base) {
		base = filepath.Join(os.TempDir(), "warden-"+strconv.Itoa(os.Getuid()))
		if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("jail state directory: %w", err)
		}
		if err := private(base); err != nil {
			return "", err
		}
	} else {
		base = filepath.Join(base, "warden")
	}
	root := filepath.Join(base, "jails")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("jail state directory: %w", err)
	}
	return root, private(root)
}

func private(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("jail state directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o077 != 0 {
		return fmt.Errorf("jail state directory %s: not a directory of yours with mode 0700; remove it", dir)
	}
	return nil
}

// Dir is the directory of jail name.
func Dir(root, name string) string { return filepath.Join(root, name) }

// Lock takes the jail's lock (flock on DIR/lock, made if missing) and
// returns its release.
func Lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Write stores st as DIR/state.json, atomically.
func Write(dir string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".state.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// Read loads DIR/state.json.
func Read(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &st, nil
}

// Alive reports whether the process pid is still the one that started at
// start (clock ticks since boot): a pid can be reused.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := StartTime(pid)
	return err == nil && got == start
}

// StartTime reads field 22 of /proc/PID/stat.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// fields from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("bad /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// List returns the state of every jail under root, by name. A jail whose
// supervisor is gone while it says running is stale: its directory is
// removed and it is not returned.
func List(root string) ([]*State, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() || CheckName(e.Name()) != "" {
			continue
		}
		dir := Dir(root, e.Name())
		st, err := Read(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // being created
			}
			return nil, err
		}
		if st.State != Stopped && !Alive(st.SupervisorPid, st.SupervisorStart) {
			Forget(dir)
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Forget removes a jail's directory, under its lock.
func Forget(dir string) error {
	unlock, err := Lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	return os.RemoveAll(dir)
}

// Kill sends sig to pid if it is still the process that started at start.
func Kill(pid int, start uint64, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// The pidfd pins the process: checked after it was opened, the start
	// time says it is the one recorded, not a reuse of its pid.
	if !Alive(pid, start) {
		return unix.ESRCH
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}
