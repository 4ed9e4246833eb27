package cgroup

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// fakeKernel is a cgroup2 hierarchy over a directory tree under t.TempDir()
// that follows the kernel rules Setup depends on: mkdir creates the interface
// files of the controllers the parent enables, "+c" in cgroup.subtree_control
// needs c in cgroup.controllers (ENOENT) and no processes in the cgroup
// (EBUSY), a cgroup whose subtree_control is not empty takes no processes,
// rmdir of a populated cgroup is EBUSY, cgroup.kill empties a subtree.
type fakeKernel struct {
	t        *testing.T
	root     string
	self     int
	procSelf string
	readOnly map[string]bool // paths (directories or files) not writable
	busy     int             // EBUSY answers to inject on subtree_control writes
	foreign  map[int]bool    // pids that cannot be moved (other users)
	noKill   bool            // no cgroup.kill (kernel < 5.14)
	noSwap   bool            // no memory.swap.max (no swap accounting)
	scopes   []string        // units started through the fake systemd
}

var fakeControllerFiles = map[string]map[string]string{
	"memory": {"memory.max": "max\n", "memory.swap.max": "max\n", "memory.oom.group": "0\n", "memory.peak": "0\n", "memory.current": "0\n",
		"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"},
	"pids": {"pids.max": "max\n", "pids.peak": "0\n", "pids.current": "0\n", "pids.events": "max 0\n"},
	"cpu":  {"cpu.max": "max 100000\n", "cpu.weight": "100\n"},
	"io":   {"io.weight": "default 100\n", "io.max": "", "io.stat": ""},
}

func newFakeKernel(t *testing.T, rootControllers ...string) *fakeKernel {
	t.Helper()
	dir := t.TempDir()
	k := &fakeKernel{t: t, root: filepath.Join(dir, "cgroup"), self: 1000001, procSelf: filepath.Join(dir, "proc-self-cgroup"),
		readOnly: map[string]bool{}, foreign: map[int]bool{}}
	if err := os.Mkdir(k.root, 0o755); err != nil {
		t.Fatal(err)
	}
	k.coreFiles(k.root, strings.Join(rootControllers, " "))
	k.put(k.root, "cgroup.procs", strconv.Itoa(k.self)+"\n")
	os.WriteFile(filepath.Join(dir, "proc-cgroups"), []byte("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t1\t1\nmemory\t0\t1\t1\npids\t0\t1\t1\nblkio\t0\t1\t1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "meminfo"), []byte("MemTotal: 1000 kB\nSwapTotal: 0 kB\n"), 0o644)
	return k
}

// host returns a host whose files are this fake.
func (k *fakeKernel) host(env map[string]string) *host {
	dir := filepath.Dir(k.root)
	return &host{
		ops: k, procSelfCgroup: k.procSelf,
		procCgroups: filepath.Join(dir, "proc-cgroups"), meminfo: filepath.Join(dir, "meminfo"),
		mounts: func() ([]*mountinfo.Info, error) {
			return []*mountinfo.Info{{FSType: "cgroup2", Mountpoint: k.root, Root: "/"}}, nil
		},
		getenv: func(s string) string { return env[s] },
		uid:    1001, pid: k.self,
		startScope: func(ctx context.Context, addr, unit string, pid int) error {
			return syscall.ECONNREFUSED
		},
	}
}

func (k *fakeKernel) put(dir, file, content string) {
	k.t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

func (k *fakeKernel) get(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func (k *fakeKernel) coreFiles(dir, controllers string) {
	k.put(dir, "cgroup.controllers", controllers+"\n")
	k.put(dir, "cgroup.subtree_control", "\n")
	k.put(dir, "cgroup.procs", "")
	k.put(dir, "cgroup.events", "populated 0\nfrozen 0\n")
	k.put(dir, "cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n")
	if !k.noKill {
		k.put(dir, "cgroup.kill", "")
	}
	for _, c := range strings.Fields(controllers) {
		for f, v := range fakeControllerFiles[c] {
			if f == "memory.swap.max" && k.noSwap {
				continue
			}
			k.put(dir, f, v)
		}
	}
}

// mk creates cgroups for a test's starting state: rel is relative to the root,
// with the given controllers enabled in each ancestor's subtree_control.
func (k *fakeKernel) mk(rel string) string {
	k.t.Helper()
	p := filepath.Join(k.root, rel)
	if err := k.Mkdir(p); err != nil {
		k.t.Fatal(err)
	}
	return p
}

// enable writes controllers into dir's subtree_control, as a test setup step.
func (k *fakeKernel) enable(dir string, controllers ...string) {
	k.t.Helper()
	for _, c := range controllers {
		if err := k.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+c); err != nil {
			k.t.Fatalf("enable %s in %s: %v", c, dir, err)
		}
	}
}

// place moves pid into dir, as a test setup step.
func (k *fakeKernel) place(dir string, pid int) {
	k.t.Helper()
	if err := k.WriteFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		k.t.Fatalf("place %d in %s: %v", pid, dir, err)
	}
}

func (k *fakeKernel) procsOf(dir string) []string {
	return strings.Fields(k.get(filepath.Join(dir, "cgroup.procs")))
}

// tree lists every cgroup directory below the root, for "nothing left behind".
func (k *fakeKernel) tree() []string {
	var out []string
	filepath.WalkDir(k.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != k.root {
			rel, _ := filepath.Rel(k.root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func perr(op, path string, errno syscall.Errno) error {
	return &os.PathError{Op: op, Path: path, Err: errno}
}

func (k *fakeKernel) ReadFile(path string) ([]byte, error) {
	if path == k.procSelf {
		var own string
		filepath.WalkDir(k.root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && slices.Contains(k.procsOf(p), strconv.Itoa(k.self)) {
				own = p
			}
			return nil
		})
		rel, _ := filepath.Rel(k.root, own)
		return []byte("0::" + filepath.Join("/", rel) + "\n"), nil
	}
	if filepath.Base(path) == "cgroup.events" {
		if _, err := os.Stat(filepath.Dir(path)); err != nil {
			return nil, perr("open", path, syscall.ENOENT)
		}
		// frozen follows cgroup.freeze at once (no task to stop here).
		frozen := "0"
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) == "1" {
			frozen = "1"
		}
		populated := 0
		filepath.WalkDir(filepath.Dir(path), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && len(k.procsOf(p)) > 0 {
				populated = 1
			}
			return nil
		})
		return []byte("populated " + strconv.Itoa(populated) + "\nfrozen " + frozen + "\n"), nil
	}
	return os.ReadFile(path)
}

func (k *fakeKernel) Writable(path string) bool {
	_, err := os.Stat(path)
	return err == nil && !k.readOnly[path]
}

func (k *fakeKernel) WriteFile(path, value string) error {
	if _, err := os.Stat(path); err != nil {
		return perr("open", path, syscall.ENOENT)
	}
	if k.readOnly[path] {
		return perr("open", path, syscall.EACCES)
	}
	dir, file := filepath.Dir(path), filepath.Base(path)
	switch file {
	case "cgroup.subtree_control":
		return k.writeSubtree(dir, value)
	case "cgroup.procs":
		return k.move(dir, value)
	case "cgroup.kill":
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				k.put(p, "cgroup.procs", "")
			}
			return nil
		})
		return nil
	}
	return os.WriteFile(path, []byte(value), 0o644)
}

func (k *fakeKernel) writeSubtree(dir, value string) error {
	have := strings.Fields(k.get(filepath.Join(dir, "cgroup.subtree_control")))
	avail := strings.Fields(k.get(filepath.Join(dir, "cgroup.controllers")))
	for _, tok := range strings.Fields(value) {
		c := tok[1:]
		if tok[0] == '+' {
			if !slices.Contains(avail, c) {
				return perr("write", dir, syscall.ENOENT)
			}
			if k.busy > 0 {
				k.busy--
				return perr("write", dir, syscall.EBUSY)
			}
			if dir != k.root && len(k.procsOf(dir)) > 0 {
				return perr("write", dir, syscall.EBUSY)
			}
			if !slices.Contains(have, c) {
				have = append(have, c)
			}
		} else {
			have = slices.DeleteFunc(have, func(x string) bool { return x == c })
		}
	}
	k.put(dir, "cgroup.subtree_control", strings.Join(have, " ")+"\n")
	subs, _ := k.Subdirs(dir)
	for _, s := range subs {
		child := filepath.Join(dir, s)
		k.put(child, "cgroup.controllers", strings.Join(have, " ")+"\n")
		for c, files := range fakeControllerFiles {
			for f, v := range files {
				p := filepath.Join(child, f)
				_, err := os.Stat(p)
				switch {
				case slices.Contains(have, c) && err != nil && !(f == "memory.swap.max" && k.noSwap):
					k.put(child, f, v)
				case !slices.Contains(have, c) && err == nil:
					os.Remove(p)
				}
			}
		}
	}
	return nil
}

func (k *fakeKernel) move(dir, value string) error {
	pid, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		return perr("write", dir, syscall.EINVAL)
	}
	if pid == 0 {
		pid = k.self
	}
	if k.foreign[pid] {
		return perr("write", dir, syscall.EACCES)
	}
	if dir != k.root && strings.TrimSpace(k.get(filepath.Join(dir, "cgroup.subtree_control"))) != "" {
		return perr("write", dir, syscall.EBUSY)
	}
	ps := strconv.Itoa(pid)
	filepath.WalkDir(k.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if procs := k.procsOf(p); slices.Contains(procs, ps) {
				k.put(p, "cgroup.procs", strings.Join(slices.DeleteFunc(procs, func(x string) bool { return x == ps }), "\n"))
			}
		}
		return nil
	})
	k.put(dir, "cgroup.procs", strings.Join(append(k.procsOf(dir), ps), "\n"))
	return nil
}

func (k *fakeKernel) Mkdir(path string) error {
	parent := filepath.Dir(path)
	if k.readOnly[parent] {
		return perr("mkdir", path, syscall.EACCES)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	k.coreFiles(path, strings.TrimSpace(k.get(filepath.Join(parent, "cgroup.subtree_control"))))
	return nil
}

func (k *fakeKernel) Rmdir(path string) error {
	if _, err := os.Stat(path); err != nil {
		return perr("rmdir", path, syscall.ENOENT)
	}
	subs, _ := k.Subdirs(path)
	if len(subs) > 0 || len(k.procsOf(path)) > 0 {
		return perr("rmdir", path, syscall.EBUSY)
	}
	return os.RemoveAll(path)
}

func (k *fakeKernel) Subdirs(dir string) ([]string, error) { return realOps{}.Subdirs(dir) }
