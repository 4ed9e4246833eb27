package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
)

// LimitsFromResources translates an OCI linux.resources (config.json at
// create, runc's JSON for `update`) into cgroup limits, the ones `warden
// run --memory --pids --cpus` applies:
//   - memory.limit → memory.max (with memory.oom.group 1); memory.swap, the
//     runtime-spec's memory plus swap, → memory.swap.max = swap - limit
//     when it is larger than the limit, else 0 (as `warden run` does);
//   - pids.limit → pids.max;
//   - cpu.quota / cpu.period → cpu.max, rendered with warden's period of
//     100 ms (the same share of a CPU); a quota without a period takes the
//     kernel's default period, 100 ms.
//
// A value <= 0 (runc's -1 for "unlimited" among them) sets nothing. What
// else the resources ask for is not applied: ignored names each such key
// (for a warning, or update's refusal).
func LimitsFromResources(r *specs.LinuxResources) (l cgroup.Limits, ignored []string) {
	if r == nil {
		return l, nil
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil && *m.Limit > 0 {
			l.Memory = *m.Limit
			if m.Swap != nil && *m.Swap > *m.Limit {
				l.MemorySwap = *m.Swap - *m.Limit
			}
		}
		if m.Swap != nil && *m.Swap < 0 && l.Memory > 0 {
			ignored = append(ignored, "memory.swap -1 (unlimited swap: warden keeps memory.swap.max at 0 with a memory limit)")
		}
		if m.Reservation != nil && *m.Reservation > 0 {
			ignored = append(ignored, "memory.reservation")
		}
		if m.Kernel != nil && *m.Kernel > 0 || m.KernelTCP != nil && *m.KernelTCP > 0 {
			ignored = append(ignored, "memory.kernel")
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil && *p.Limit > 0 {
		l.Pids = *p.Limit
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && *c.Quota > 0 {
			period := uint64(100000)
			if c.Period != nil && *c.Period > 0 {
				period = *c.Period
			}
			l.CPUs = float64(*c.Quota) / float64(period)
		}
		if c.Shares != nil && *c.Shares > 0 {
			ignored = append(ignored, "cpu.shares")
		}
		if c.Cpus != "" || c.Mems != "" {
			ignored = append(ignored, "cpu.cpus/cpu.mems (cpuset)")
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime > 0 || c.RealtimePeriod != nil && *c.RealtimePeriod > 0 {
			ignored = append(ignored, "cpu.realtimeRuntime/realtimePeriod")
		}
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice)+len(b.ThrottleReadBpsDevice)+
		len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0) {
		ignored = append(ignored, "blockIO")
	}
	if len(r.HugepageLimits) > 0 {
		ignored = append(ignored, "hugepageLimits")
	}
	if r.Network != nil {
		ignored = append(ignored, "network")
	}
	if len(r.Rdma) > 0 {
		ignored = append(ignored, "rdma")
	}
	if len(r.Unified) > 0 {
		ignored = append(ignored, "unified")
	}
	return l, ignored
}

// ociResources sets p's limits from the config: with limits asked for, the
// mode is Required (a limit is enforced or the container is not created);
// with none but a cgroupsPath, for a rootless caller, BestEffort (a cgroup
// of its own is made when a delegated cgroup2 subtree allows it, for pause,
// resume, update and the accounting; without one the container runs, as
// with runc and crun under rootless cgroupfs, and the report says so); else
// Off.
func ociResources(l *specs.Linux, p *Plan) {
	lim, ignored := LimitsFromResources(l.Resources)
	p.Limits = lim
	switch {
	case len(lim.Requested()) > 0:
		p.LimitsMode = cgroup.Required
	case l.CgroupsPath != "" && !ociRootful():
		p.LimitsMode = cgroup.BestEffort
	case l.CgroupsPath != "":
		// Root's own cgroup is writable wherever it is (a daemon's service,
		// the hierarchy's root), and Setup would move every process of it
		// aside to enable controllers there: not for a container that asks
		// for no limit. A rootful engine (containerd names a cgroupsPath for
		// every container) expects the path itself, which warden does not
		// make (docs/oci.md).
		p.LimitsMode = cgroup.Off
		p.warnings = append(p.warnings, Warning{What: "linux.cgroupsPath " + l.CgroupsPath + " is not used",
			Reason: "as root, warden-oci makes a cgroup of the container's own only for limits in linux.resources; pause, resume and update need one"})
	default:
		p.LimitsMode = cgroup.Off
	}
	if len(ignored) > 0 {
		p.warnings = append(p.warnings, Warning{What: "linux.resources: " + strings.Join(ignored, ", "),
			Reason: "not applied: warden sets memory, swap, pids and cpu quota limits only"})
	}
}

// ociRootful: root in the initial user namespace (not rootless, as under
// rootless podman's user namespace); crun's rule. A variable for tests.
var ociRootful = func() bool {
	if os.Geteuid() != 0 {
		return false
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Join(strings.Fields(string(b)), " ") == "0 0 4294967295"
}

// OCICgroupName is the name of an OCI container's cgroup leaf: a
// container ID the kernel and systemd both accept, else a digest of it.
func OCICgroupName(id string) string {
	name := "warden-oci-" + id
	ok := len(name) <= 200
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			ok = false
		}
	}
	if ok {
		return name
	}
	sum := sha256.Sum256([]byte(id))
	return fmt.Sprintf("warden-oci-%s", hex.EncodeToString(sum[:12]))
}
