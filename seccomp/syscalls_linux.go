package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// arch describes the native ABI, the only one a warden filter lets through.
type arch struct {
	audit  uint32 // AUDIT_ARCH_* in seccomp_data.arch
	x86_64 bool   // has the x32 ABI to refuse
}

// The AUDIT_ARCH_* values from <linux/audit.h>.
var arches = map[string]arch{
	"amd64":   {audit: 0xc000003e, x86_64: true},
	"arm64":   {audit: 0xc00000b7},
	"riscv64": {audit: 0xc00000f3},
	"ppc64le": {audit: 0xc0000015},
	"s390x":   {audit: 0x80000016},
}

func nativeArch() (arch, error) {
	a, ok := arches[runtime.GOARCH]
	if !ok {
		return arch{}, fmt.Errorf("seccomp: architecture %s is not supported", runtime.GOARCH)
	}
	return a, nil
}

// newerAMD64 lists x86_64 syscalls that Debian 12's libseccomp 2.5.4 does
// not know by name (numbers from the kernel's syscall_64.tbl, as in x/sys
// zsysnum_linux_amd64.go). Without them a profile could not name these
// calls, and allow = ["mseal"] would be an error.
var newerAMD64 = map[string]int32{
	"uretprobe":         335,
	"uprobe":            336,
	"statmount":         457,
	"listmount":         458,
	"lsm_get_self_attr": 459,
	"lsm_set_self_attr": 460,
	"lsm_list_modules":  461,
	"mseal":             462,
	"setxattrat":        463,
	"getxattrat":        464,
	"listxattrat":       465,
	"removexattrat":     466,
	"open_tree_attr":    467,
	"file_getattr":      468,
	"file_setattr":      469,
	"listns":            470,
	"rseq_slice_yield":  471,
}

// nameKind says where a syscall name exists.
type nameKind uint8

const (
	nameUnknown   nameKind = iota // not a syscall on any architecture libseccomp knows
	nameNative                    // a syscall of the native ABI
	nameOtherArch                 // a syscall of some other ABI only (chown32, socketcall)
)

type lookup struct {
	nr   int32
	kind nameKind
}

var nameCache sync.Map // string -> lookup

// syscallNr resolves a syscall name for the native ABI.
func syscallNr(name string) (int32, nameKind) {
	if v, ok := nameCache.Load(name); ok {
		l := v.(lookup)
		return l.nr, l.kind
	}
	l := lookupUncached(name)
	nameCache.Store(name, l)
	return l.nr, l.kind
}

func lookupUncached(name string) lookup {
	if runtime.GOARCH == "amd64" {
		if nr, ok := newerAMD64[name]; ok {
			return lookup{nr: nr, kind: nameNative}
		}
	}
	sc, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return lookup{kind: nameUnknown}
	}
	// libseccomp returns negative pseudo numbers (__PNR_*) for syscalls that
	// exist on other ABIs only.
	if sc < 0 {
		return lookup{kind: nameOtherArch}
	}
	return lookup{nr: int32(sc), kind: nameNative}
}

// SyscallName names native syscall nr, or returns "syscall_NR".
func SyscallName(nr int32) string {
	if runtime.GOARCH == "amd64" {
		for n, v := range newerAMD64 {
			if v == nr {
				return n
			}
		}
	}
	if n, err := libseccomp.ScmpSyscall(nr).GetName(); err == nil && n != "" {
		return n
	}
	return fmt.Sprintf("syscall_%d", nr)
}

// errUnknownSyscall is wrapped by every "no such syscall" error.
var errUnknownSyscall = errors.New("unknown syscall")

// checkName returns an error naming name if it is no syscall at all.
func checkName(name string) error {
	if _, kind := syscallNr(name); kind == nameUnknown {
		return fmt.Errorf("syscall %q: %w (not known to libseccomp %s or warden)", name, errUnknownSyscall, libVersion())
	}
	return nil
}

func libVersion() string {
	a, b, c := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", a, b, c)
}

// table is a profile's name -> native nr map and its highest known number.
type table struct {
	arch     arch
	nrs      map[string]int32
	byNr     map[int32][]int // rule indexes per syscall number, in profile order
	knownMax int32
}

// resolve resolves the syscall names of p. Names of other ABIs are left out
// (they can never match); unknown names are an error.
func (p *Profile) resolve() (table, error) {
	a, err := nativeArch()
	if err != nil {
		return table{}, err
	}
	t := table{arch: a, nrs: make(map[string]int32, len(p.Rules)), byNr: make(map[int32][]int, len(p.Rules))}
	for i, r := range p.Rules {
		nr, kind := syscallNr(r.Syscall)
		switch kind {
		case nameUnknown:
			return table{}, fmt.Errorf("profile %s: %w", p.Name, checkName(r.Syscall))
		case nameNative:
			t.nrs[r.Syscall] = nr
			t.byNr[nr] = append(t.byNr[nr], i)
			t.knownMax = max(t.knownMax, nr)
		}
	}
	return t, nil
}

// Decide evaluates p in Go for d: the policy action (before the audit
// transformation, see Effective). The Auditor uses it to find the errno a
// notified syscall must fail with.
func (p *Profile) Decide(d Data) (Action, error) {
	t, err := p.resolve()
	if err != nil {
		return Action{}, err
	}
	return p.decide(d, &t), nil
}

// NativeArch is the AUDIT_ARCH_* value of the native ABI.
func NativeArch() (uint32, error) {
	a, err := nativeArch()
	return a.audit, err
}
