package fuse

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkTrace compares a few thousand small files served through the
// tracing mount with the same directory plain: stat-all (find -printf %s)
// and read-all (find -exec cat). The work runs in a child of the test binary
// in a throwaway user namespace (where it may mount), as separate processes
// like a jail's; the server is in the child. Variants:
//
//	plain     the directory itself
//	rw-cold   Options{}, a fresh mount for every pass (every access reaches
//	          the server: the first touch of each file in a run)
//	ro-cold   Options{ReadOnly: true}, a fresh mount for every pass
//	plus-cold Options{ReadOnly: true, DirPlus: true}, a fresh mount each pass
//	ro-warm   Options{ReadOnly: true}, one mount, after one untimed pass (the
//	          kernel answers from its caches)
//
// The parent prints the child's results and reports each variant's time as
// a ratio to plain (metrics "<variant>/<work>-x").
func BenchmarkTrace(b *testing.B) {
	if dir := os.Getenv(envBench); dir != "" {
		benchInside(b, dir)
		return
	}
	benchOnce.Do(func() { benchRatios, benchErr = benchChild() })
	if benchErr != nil {
		b.Skip(benchErr)
	}
	for name, r := range benchRatios {
		b.ReportMetric(r, name+"-x")
	}
}

const (
	envBench   = "WARDEN_FUSEBENCH_DIR"
	benchDirs  = 30
	benchFiles = 100 // per directory
	benchSize  = 2048
)

var (
	benchOnce   sync.Once
	benchRatios map[string]float64
	benchErr    error
)

// benchChild makes the tree, runs the benchmark in a user namespace and
// returns the ratios to plain.
func benchChild() (map[string]float64, error) {
	dir, err := os.MkdirTemp("", "fusebench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	data := bytes.Repeat([]byte("x"), benchSize)
	for d := range benchDirs {
		sub := filepath.Join(dir, "tree", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
		for f := range benchFiles {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	args := []string{"-test.run=^$", "-test.bench=^BenchmarkTrace$"}
	if f := flag.Lookup("test.benchtime"); f != nil {
		args = append(args, "-test.benchtime="+f.Value.String())
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envBench+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	os.Stdout.Write(out)
	if err != nil {
		return nil, fmt.Errorf("benchmark in a user namespace: %v", err)
	}
	if m := regexp.MustCompile(`(?m)^\s*bench_test.go:\d+: (needs .*)$`).FindSubmatch(out); m != nil {
		return nil, fmt.Errorf("%s", m[1])
	}
	ns := map[string]float64{}
	line := regexp.MustCompile(`^BenchmarkTrace/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)
	for s := bufio.NewScanner(bytes.NewReader(out)); s.Scan(); {
		if m := line.FindStringSubmatch(s.Text()); m != nil {
			ns[m[1]], _ = strconv.ParseFloat(m[3], 64)
		}
	}
	ratios := map[string]float64{}
	for name, v := range ns {
		variant, work := filepath.Split(name)
		if base := ns["plain/"+work]; variant != "plain/" && base > 0 {
			ratios[name] = v / base
			fmt.Printf("fuse: %-14s %6.2fx plain\n", name, v/base)
		}
	}
	return ratios, nil
}

func benchInside(b *testing.B, dir string) {
	tree := filepath.Join(dir, "tree")
	mnt := filepath.Join(dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	works := []struct {
		name string
		args func(d string) []string
	}{
		{"stat", func(d string) []string { return []string{"find", d, "-printf", `%s\n`} }},
		{"read", func(d string) []string { return []string{"find", d, "-type", "f", "-exec", "cat", "{}", "+"} }},
	}
	for _, w := range works {
		b.Run("plain/"+w.name, func(b *testing.B) {
			for range b.N {
				runWork(b, w.args(tree))
			}
		})
		for _, v := range []struct {
			name string
			opts Options
		}{{"rw-cold", Options{}}, {"ro-cold", Options{ReadOnly: true}}, {"plus-cold", Options{ReadOnly: true, DirPlus: true}}} {
			b.Run(v.name+"/"+w.name, func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					stop := benchMount(b, tree, mnt, v.opts)
					b.StartTimer()
					runWork(b, w.args(mnt))
					b.StopTimer()
					stop()
					b.StartTimer()
				}
			})
		}
		b.Run("ro-warm/"+w.name, func(b *testing.B) {
			stop := benchMount(b, tree, mnt, Options{ReadOnly: true})
			defer stop()
			runWork(b, w.args(mnt))
			b.ResetTimer()
			for range b.N {
				runWork(b, w.args(mnt))
			}
			b.StopTimer()
		})
	}
}

func runWork(b *testing.B, args []string) {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		b.Fatalf("%v: %v: %.200s", args, err, out)
	}
}

// benchMount mounts tree at mnt through a server in this process.
func benchMount(b *testing.B, tree, mnt string, opts Options) (stop func()) {
	dev, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Skipf("needs /dev/fuse: %v", err)
	}
	if err := unix.Mount("bench", mnt, "fuse", unix.MS_NOSUID|unix.MS_NODEV, MountData(dev, 0, 0)); err != nil {
		unix.Close(dev)
		b.Skipf("needs fuse mounts in a user namespace: %v", err)
	}
	s, err := Serve(os.NewFile(uintptr(dev), "/dev/fuse"), tree, opts)
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			b.Fatal(err)
		}
		s.Wait()
	}
}
