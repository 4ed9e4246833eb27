package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// The Docker seccomp profile format: the OCI runtime spec's LinuxSeccomp
// plus Docker's archMap, name, comment, includes and excludes. One decoder
// reads both (an OCI profile is a Docker profile without the extras).
type jsonProfile struct {
	DefaultAction    string        `json:"defaultAction"`
	DefaultErrnoRet  *uint         `json:"defaultErrnoRet"`
	Architectures    []string      `json:"architectures"`
	ArchMap          []jsonArchMap `json:"archMap"`
	Flags            []string      `json:"flags"`
	ListenerPath     string        `json:"listenerPath"`
	ListenerMetadata string        `json:"listenerMetadata"`
	Syscalls         []jsonSyscall `json:"syscalls"`
}

type jsonArchMap struct {
	Architecture     string   `json:"architecture"`
	SubArchitectures []string `json:"subArchitectures"`
}

type jsonSyscall struct {
	Names    []string    `json:"names"`
	Name     string      `json:"name"`
	Action   string      `json:"action"`
	ErrnoRet *uint       `json:"errnoRet"`
	Args     []jsonArg   `json:"args"`
	Comment  string      `json:"comment"`
	Includes *jsonFilter `json:"includes"`
	Excludes *jsonFilter `json:"excludes"`
}

type jsonArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

type jsonFilter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

// LoadFile reads a Docker or OCI seccomp JSON profile. Errors name the file
// and, where the JSON decoder knows it, the line and column.
func LoadFile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: uname: %w", path, err)
	}
	p, err := ParseJSON(path, data, ImportEnv{Kernel: unix.ByteSliceToString(uts.Release[:]), Arch: runtime.GOARCH})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ImportEnv is what a Docker profile's includes/excludes are evaluated
// against. The payload's capabilities are always empty: warden's payload
// runs without capabilities, so rules that need one are left out.
type ImportEnv struct {
	Kernel string // uname -r, e.g. "6.18.4"
	Arch   string // Go's GOARCH
	// FirstRuleWins keeps, of two unconditional rules for one syscall
	// with different actions, the first, with a warning, as libseccomp
	// (and so runc and crun) silently does: engines' generated profiles
	// (podman's) rely on it. Otherwise such a pair is an error.
	FirstRuleWins bool
}

// dockerArch maps GOARCH to the names Docker's includes.arches use.
var dockerArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "x86", "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}

// nativeSCMP maps GOARCH to the SCMP_ARCH_* name of the native ABI.
var nativeSCMP = map[string]string{"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "riscv64": "SCMP_ARCH_RISCV64", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X"}

// ParseJSON converts a Docker/OCI profile. name is used in errors and as the
// profile's name.
func ParseJSON(name string, data []byte, env ImportEnv) (*Profile, error) {
	var jp jsonProfile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jp); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %s", name, jsonErr(data, dec, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("seccomp profile %s:%s: data after the profile object", name, position(data, dec.InputOffset()))
	}
	c := converter{name: name, env: env, p: &Profile{Name: name}}
	if err := c.convert(&jp); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", name, err)
	}
	return c.p, nil
}

func jsonErr(data []byte, dec *json.Decoder, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the offending byte as read.
		return position(data, se.Offset-1) + ": " + se.Error()
	case errors.As(err, &te):
		return position(data, te.Offset) + ": " + te.Field + ": want " + te.Type.String() + ", have " + te.Value
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	// "unknown field \"x\"": the decoder has no offset for it; point at the
	// first occurrence of the key.
	if q, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if i := bytes.Index(data, []byte(q)); i >= 0 {
			return position(data, int64(i)) + ": " + msg
		}
	}
	return position(data, dec.InputOffset()) + ": " + msg
}

func position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("%d:%d", line, col)
}

type converter struct {
	name string
	env  ImportEnv
	p    *Profile
}

func (c *converter) convert(jp *jsonProfile) error {
	if jp.DefaultAction == "" {
		// moby's loader returns "no profile" here; a typo must not switch
		// the filter off.
		return errors.New("defaultAction: missing")
	}
	def, err := c.action("defaultAction", jp.DefaultAction, jp.DefaultErrnoRet)
	if err != nil {
		return err
	}
	c.p.DefaultAction = def
	if jp.ListenerPath != "" || jp.ListenerMetadata != "" {
		return errors.New("listenerPath: seccomp notify agents are not supported (warden's own audit uses notify)")
	}
	if len(jp.Architectures) > 0 && len(jp.ArchMap) > 0 {
		return errors.New("architectures and archMap: use one of them")
	}
	c.arches(jp)
	for _, f := range jp.Flags {
		switch f {
		case "SECCOMP_FILTER_FLAG_LOG":
			c.p.LogDenials = true
		case "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW":
			c.warn("flags: %s ignored (warden filters one thread and keeps speculation mitigations)", f)
		default:
			return fmt.Errorf("flags: unknown flag %q", f)
		}
	}
	unknown := []string{}
	for i, s := range jp.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		if s.Name != "" {
			if len(s.Names) > 0 {
				return fmt.Errorf("%s: both name and names", where)
			}
			s.Names = []string{s.Name}
		}
		if len(s.Names) == 0 {
			return fmt.Errorf("%s: names: empty", where)
		}
		if s.Action == "" {
			return fmt.Errorf("%s: action: missing", where)
		}
		ok, err := c.applies(where, s)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		a, err := c.action(where+".action", s.Action, s.ErrnoRet)
		if err != nil {
			return err
		}
		condSets, err := c.args(where, s.Args)
		if err != nil {
			return err
		}
		group := fmt.Sprintf("syscalls[%d]", i)
		c.p.Groups = append(c.p.Groups, Group{Name: group, Reason: s.Comment})
		for _, n := range s.Names {
			if _, kind := syscallNr(n); kind != nameNative {
				if kind == nameUnknown && !slices.Contains(unknown, n) {
					unknown = append(unknown, n)
				}
				continue
			}
			for _, conds := range condSets {
				if err := c.add(where, Rule{Syscall: n, Action: a, Args: conds, Group: group}); err != nil {
					return err
				}
			}
		}
	}
	if len(unknown) > 0 {
		c.warn("%d syscall names unknown to libseccomp %s and warden were skipped: %s", len(unknown), libVersion(), strings.Join(unknown, " "))
	}
	return nil
}

func (c *converter) warn(format string, args ...any) {
	c.p.Warnings = append(c.p.Warnings, Warning{Msg: fmt.Sprintf("seccomp profile %s: ", c.name) + fmt.Sprintf(format, args...)})
}

// arches warns when the profile asks for ABIs warden refuses.
func (c *converter) arches(jp *jsonProfile) {
	native := nativeSCMP[c.env.Arch]
	var extra []string
	for _, a := range jp.Architectures {
		if a != native {
			extra = append(extra, a)
		}
	}
	for _, m := range jp.ArchMap {
		if m.Architecture == native {
			extra = append(extra, m.SubArchitectures...)
		}
	}
	if len(extra) > 0 {
		c.warn("architectures %s ignored: warden kills every ABI but the native one", strings.Join(extra, ", "))
	}
}

// add appends r, refusing a second unconditional rule with another action.
func (c *converter) add(where string, r Rule) error {
	if len(r.Args) == 0 {
		for _, x := range c.p.Rules {
			if x.Syscall == r.Syscall && len(x.Args) == 0 {
				if x.Action != r.Action {
					if c.env.FirstRuleWins {
						c.warn("%s: %s: action %s ignored: %s says %s first (libseccomp keeps the first rule)", where, r.Syscall, r.Action, x.Group, x.Action)
						return nil
					}
					return fmt.Errorf("%s: %s: action %s conflicts with %s from %s", where, r.Syscall, r.Action, x.Action, x.Group)
				}
				return nil
			}
		}
	}
	c.p.Rules = append(c.p.Rules, r)
	return nil
}

// applies evaluates includes and excludes (all listed conditions must hold).
func (c *converter) applies(where string, s jsonSyscall) (bool, error) {
	arch := dockerArch[c.env.Arch]
	if f := s.Includes; f != nil {
		if len(f.Arches) > 0 && !slices.Contains(f.Arches, arch) {
			return false, nil
		}
		// The payload has no capabilities.
		if len(f.Caps) > 0 {
			return false, nil
		}
		if f.MinKernel != "" {
			ge, err := kernelAtLeast(c.env.Kernel, f.MinKernel)
			if err != nil {
				return false, fmt.Errorf("%s.includes.minKernel: %w", where, err)
			}
			if !ge {
				return false, nil
			}
		}
	}
	if f := s.Excludes; f != nil {
		if slices.Contains(f.Arches, arch) {
			return false, nil
		}
		if f.MinKernel != "" {
			ge, err := kernelAtLeast(c.env.Kernel, f.MinKernel)
			if err != nil {
				return false, fmt.Errorf("%s.excludes.minKernel: %w", where, err)
			}
			if ge {
				return false, nil
			}
		}
	}
	return true, nil
}

// kernelAtLeast compares "major.minor" of release with want ("4.8").
func kernelAtLeast(release, want string) (bool, error) {
	var wk, wm, rk, rm int
	if n, err := fmt.Sscanf(want, "%d.%d", &wk, &wm); n != 2 || err != nil || strings.Count(want, ".") != 1 {
		return false, fmt.Errorf("%q: want <kernel>.<major>, such as 4.8", want)
	}
	if n, _ := fmt.Sscanf(release, "%d.%d", &rk, &rm); n != 2 {
		return false, fmt.Errorf("kernel release %q: not <kernel>.<major>...", release)
	}
	return rk > wk || rk == wk && rm >= wm, nil
}

func (c *converter) action(where, s string, errnoRet *uint) (Action, error) {
	errno := func() (Action, error) {
		e := uint(unix.EPERM)
		if errnoRet != nil {
			e = *errnoRet
		}
		if e == 0 || e > 4095 {
			return Action{}, fmt.Errorf("%s: errnoRet %d out of range 1-4095", where, e)
		}
		return Errno(unix.Errno(e)), nil
	}
	switch s {
	case "SCMP_ACT_ALLOW":
		return Allow, nil
	case "SCMP_ACT_ERRNO":
		return errno()
	case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS":
		// Killing one thread of a multi-threaded process can leave the
		// others deadlocked; warden kills the whole process.
		if s != "SCMP_ACT_KILL_PROCESS" {
			c.warn("%s: %s runs as SCMP_ACT_KILL_PROCESS", where, s)
		}
		return KillProcess, nil
	case "SCMP_ACT_TRAP":
		return Action{Kind: ActTrap}, nil
	case "SCMP_ACT_LOG":
		return Action{Kind: ActLog}, nil
	case "SCMP_ACT_TRACE":
		a, err := errno()
		return Action{Kind: ActTrace, Errno: a.Errno}, err
	case "SCMP_ACT_NOTIFY":
		return Action{}, fmt.Errorf("%s: SCMP_ACT_NOTIFY is not supported (use [seccomp] audit = true)", where)
	}
	return Action{}, fmt.Errorf("%s: unknown action %q", where, s)
}

var jsonOps = map[string]Op{
	"SCMP_CMP_NE": OpNe, "SCMP_CMP_LT": OpLt, "SCMP_CMP_LE": OpLe, "SCMP_CMP_EQ": OpEq,
	"SCMP_CMP_GE": OpGe, "SCMP_CMP_GT": OpGt, "SCMP_CMP_MASKED_EQ": OpMaskedEq,
}

// args converts a rule's conditions. As in runc, conditions on distinct
// arguments are ANDed; when an argument index repeats, each condition
// becomes a rule of its own (ORed), which is how Docker profiles use it.
func (c *converter) args(where string, in []jsonArg) ([][]Arg, error) {
	out := make([]Arg, 0, len(in))
	repeat := false
	var seen [6]bool
	for j, a := range in {
		op, ok := jsonOps[a.Op]
		if !ok {
			return nil, fmt.Errorf("%s.args[%d].op: unknown operator %q", where, j, a.Op)
		}
		if a.Index > 5 {
			return nil, fmt.Errorf("%s.args[%d].index: %d out of range 0-5", where, j, a.Index)
		}
		repeat = repeat || seen[a.Index]
		seen[a.Index] = true
		out = append(out, Arg{Index: uint8(a.Index), Op: op, Value: a.Value, ValueTwo: a.ValueTwo})
	}
	if len(out) == 0 {
		return [][]Arg{nil}, nil
	}
	if !repeat {
		return [][]Arg{out}, nil
	}
	sets := make([][]Arg, len(out))
	for i, a := range out {
		sets[i] = []Arg{a}
	}
	return sets, nil
}
