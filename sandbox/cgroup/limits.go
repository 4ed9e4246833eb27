package cgroup

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Limits are the resource limits of one jail. A value <= 0 means "not set"
// (no limit is written), except MemorySwap, see below.
type Limits struct {
	// Memory is memory.max in bytes. Setting it also sets memory.oom.group=1,
	// so that an OOM kill takes the whole jail, not one random process.
	Memory int64
	// MemorySwap is memory.swap.max in bytes. When Memory is set and
	// MemorySwap is not (<= 0), memory.swap.max is 0: a memory limit that lets
	// the jail page out to swap without bound is not a memory limit.
	MemorySwap int64
	// Pids is pids.max (tasks, so threads count too).
	Pids int64
	// CPUs is the bandwidth limit in CPUs: 0.5 is half of one CPU, written as
	// cpu.max "50000 100000".
	CPUs float64
	// CPUWeight is cpu.weight (1-10000, the kernel default is 100).
	CPUWeight int
	// IOWeight is io.weight "default N" (1-10000).
	IOWeight int
	// IOMax are io.max lines, "MAJ:MIN rbps=N wbps=N riops=N wiops=N" (any
	// subset of the keys, values may be "max").
	IOMax []string
}

// Mode says what to do with a limit that cannot be applied.
type Mode string

const (
	// Required refuses to run: Setup returns a *NotEnforcedError.
	Required Mode = "required"
	// BestEffort runs anyway and returns one Warning per limit not enforced.
	BestEffort Mode = "best-effort"
	// Off applies no limit and creates no cgroup.
	Off Mode = "off"
)

// ParseMode parses the --limits flag / policy value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Required, BestEffort, Off:
		return m, nil
	}
	return "", fmt.Errorf("parse limits mode %q: want required, best-effort or off", s)
}

// The names of the limits, as they appear in Applied, Warning.Limit and the
// run report.
const (
	LimitMemory     = "memory"
	LimitMemorySwap = "memory-swap"
	LimitPids       = "pids"
	LimitCPUs       = "cpus"
	LimitCPUWeight  = "cpu-weight"
	LimitIOWeight   = "io-weight"
	LimitIOMax      = "io-max"
)

// AllLimits lists every limit name in report order.
var AllLimits = []string{LimitMemory, LimitMemorySwap, LimitPids, LimitCPUs, LimitCPUWeight, LimitIOWeight, LimitIOMax}

// Values of Applied.
const (
	StateEnforced = "enforced"
	StateOff      = "off"
	// StateDegraded is followed by ": " and the reason.
	StateDegraded = "degraded"
)

// cpuPeriod is the cpu.max period in microseconds (the kernel's default).
const cpuPeriod = 100000

// minCPUQuota is the smallest cpu.max quota the kernel accepts (1 ms).
const minCPUQuota = 1000

// setting is one write into the jail leaf: a value for a file, on behalf of a
// limit, needing a controller.
type setting struct {
	limit, controller, file, value string
}

// ioMaxRE is compiled on first use (package initialisation is paid by
// every warden start; few runs set io.max).
var ioMaxRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9]+:[0-9]+( (rbps|wbps|riops|wiops)=([0-9]+|max))+$`)
})

// Validate reports values the kernel would refuse, before anything is created.
func (l Limits) Validate() error {
	var errs []error
	if math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0) {
		errs = append(errs, fmt.Errorf("cpus %v: not a number of CPUs", l.CPUs))
	} else if l.CPUs > 0 && math.Round(l.CPUs*cpuPeriod) < minCPUQuota {
		errs = append(errs, fmt.Errorf("cpus %v: below the kernel minimum of %.2f", l.CPUs, float64(minCPUQuota)/cpuPeriod))
	}
	if l.CPUWeight != 0 && (l.CPUWeight < 1 || l.CPUWeight > 10000) {
		errs = append(errs, fmt.Errorf("cpu_weight %d: want 1-10000", l.CPUWeight))
	}
	if l.IOWeight != 0 && (l.IOWeight < 1 || l.IOWeight > 10000) {
		errs = append(errs, fmt.Errorf("io_weight %d: want 1-10000", l.IOWeight))
	}
	for _, line := range l.IOMax {
		if !ioMaxRE().MatchString(line) {
			errs = append(errs, fmt.Errorf("io_max %q: want \"MAJ:MIN rbps=N wbps=N riops=N wiops=N\"", line))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("validate limits: %w", err)
	}
	return nil
}

// Requested lists the names of the limits that are set, in report order.
func (l Limits) Requested() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range l.settings() {
		if !seen[s.limit] {
			seen[s.limit] = true
			out = append(out, s.limit)
		}
	}
	return out
}

// Controllers lists the cgroup v2 controllers the set limits need, sorted.
func (l Limits) Controllers() []string {
	seen := map[string]bool{}
	for _, s := range l.settings() {
		seen[s.controller] = true
	}
	var out []string
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		if seen[c] {
			out = append(out, c)
		}
	}
	return out
}

// settings renders the limits into the writes that apply them, in the order
// they are written. Limits must have passed Validate.
func (l Limits) settings() []setting {
	var out []setting
	if l.Memory > 0 {
		out = append(out,
			setting{LimitMemory, "memory", "memory.max", strconv.FormatInt(l.Memory, 10)},
			// We set memory.oom.group because the kernel otherwise kills one
			// process on OOM and leaves the rest of the jail running in a
			// state its author never tested; the run must end as "oom".
			setting{LimitMemory, "memory", "memory.oom.group", "1"})
	}
	if l.Memory > 0 || l.MemorySwap > 0 {
		out = append(out, setting{LimitMemorySwap, "memory", "memory.swap.max", strconv.FormatInt(max(l.MemorySwap, 0), 10)})
	}
	if l.Pids > 0 {
		out = append(out, setting{LimitPids, "pids", "pids.max", strconv.FormatInt(l.Pids, 10)})
	}
	if l.CPUs > 0 {
		out = append(out, setting{LimitCPUs, "cpu", "cpu.max", CPUMax(l.CPUs)})
	}
	if l.CPUWeight > 0 {
		out = append(out, setting{LimitCPUWeight, "cpu", "cpu.weight", strconv.Itoa(l.CPUWeight)})
	}
	if l.IOWeight > 0 {
		out = append(out, setting{LimitIOWeight, "io", "io.weight", "default " + strconv.Itoa(l.IOWeight)})
	}
	for _, line := range l.IOMax {
		out = append(out, setting{LimitIOMax, "io", "io.max", line})
	}
	return out
}

// CPUMax renders a CPU count as a cpu.max value: "QUOTA PERIOD" in
// microseconds, or "max PERIOD" for cpus <= 0.
func CPUMax(cpus float64) string {
	if cpus <= 0 {
		return fmt.Sprintf("max %d", cpuPeriod)
	}
	quota := max(int64(math.Round(cpus*cpuPeriod)), minCPUQuota)
	return fmt.Sprintf("%d %d", quota, cpuPeriod)
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}}

// ParseSize parses a memory size: plain bytes, or a number with K, M, G or T
// (binary units; "KiB", "MB" and lower case are accepted as the same), or
// "max" (returned as -1).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "MAX" {
		return -1, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, shift = strings.TrimSuffix(t, u.suffix), u.shift
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("parse size %q: want a number of bytes with an optional K, M, G or T suffix", s)
	}
	v := f * float64(uint64(1)<<shift)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("parse size %q: too large", s)
	}
	return int64(v), nil
}

// FormatSize renders bytes for people: "64 MiB", "1.5 GiB", "4096 B".
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		unit := int64(1) << u.shift
		if n >= unit {
			v := float64(n) / float64(unit)
			if n%unit == 0 {
				return fmt.Sprintf("%d %siB", n/unit, u.suffix)
			}
			return fmt.Sprintf("%.1f %siB", v, u.suffix)
		}
	}
	return fmt.Sprintf("%d B", n)
}
