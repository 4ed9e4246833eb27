//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/seccomp"
)

const seccompUsage = `Usage:
  warden seccomp show PROFILE [ADJUSTMENTS]
      print the resolved rule list: the fixed verdicts, then each group with
      its reason, one rule per line
  warden seccomp export PROFILE --format bpf|pfc [-o FILE] [ADJUSTMENTS]
      write the compiled filter: bpf is the raw struct sock_filter array
      (native endian, as bwrap --seccomp FD and seccomp(2) take it), pfc is
      libseccomp's pseudo filter code after warden's prologue

PROFILE is default, strict, none, or a Docker/OCI JSON file (a path with a
"/" or ending in .json). The adjustments are the policy's [seccomp] keys:
`

// seccompArgs are the parsed arguments of `warden seccomp show|export`.
type seccompArgs struct {
	verb    string // "show" or "export"
	profile string
	opts    seccomp.Options
	format  string // export: "bpf" or "pfc"
	output  string // export: file, "" or "-" for stdout
}

func seccompFlags(a *seccompArgs) *pflag.FlagSet {
	fs := pflag.NewFlagSet("seccomp", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringSliceVar(&a.opts.Allow, "allow", nil, "allow `SYSCALL` unconditionally (repeatable, or comma-separated)")
	fs.StringSliceVar(&a.opts.Deny, "deny", nil, "deny `SYSCALL` with the denied action (repeatable, or comma-separated)")
	fs.StringVar(&a.opts.Errno, "errno", "", "`ERRNO` of the denied set: a name such as EACCES, or a number 1-4095 (default EPERM)")
	fs.StringVar(&a.opts.Action, "action", "", "`ACTION` of the denied set: errno (default), kill or log")
	fs.BoolVar(&a.opts.NestedUserns, "nested-userns", false, "allow unshare, setns, clone with CLONE_NEW* flags, and clone3")
	fs.BoolVar(&a.opts.IOUring, "io-uring", false, "allow io_uring_setup, io_uring_enter and io_uring_register")
	fs.BoolVar(&a.opts.Ptrace, "ptrace", false, "allow ptrace, process_vm_readv/writev, kcmp, pidfd_getfd, process_madvise")
	if a.verb == "export" {
		fs.StringVar(&a.format, "format", "", "output `FORMAT`: bpf or pfc (required)")
		fs.StringVarP(&a.output, "output", "o", "", "write to `FILE` instead of standard output")
	}
	return fs
}

// parseSeccompArgs parses args after "seccomp". A nil result with a nil
// error means help was asked for.
func parseSeccompArgs(args []string) (*seccompArgs, error) {
	if len(args) == 0 {
		return nil, errors.New("seccomp: missing subcommand: want show or export")
	}
	a := &seccompArgs{verb: args[0]}
	switch a.verb {
	case "show", "export":
	case "help", "-h", "--help":
		return nil, nil
	default:
		return nil, fmt.Errorf("seccomp: unknown subcommand %q: want show or export", a.verb)
	}
	fs := seccompFlags(a)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil
		}
		return nil, fmt.Errorf("seccomp %s: %w", a.verb, err)
	}
	switch pos := fs.Args(); len(pos) {
	case 0:
		return nil, fmt.Errorf("seccomp %s: missing PROFILE (default, strict, none or a JSON file)", a.verb)
	case 1:
		a.profile = pos[0]
	default:
		return nil, fmt.Errorf("seccomp %s: want one PROFILE, got %d arguments: %s", a.verb, len(pos), strings.Join(pos, " "))
	}
	if a.verb == "export" {
		switch a.format {
		case "bpf", "pfc":
		case "":
			return nil, errors.New("seccomp export: missing --format: want bpf or pfc")
		default:
			return nil, fmt.Errorf("seccomp export: --format %q: want bpf or pfc", a.format)
		}
	}
	return a, nil
}

func cmdSeccomp(args []string, stdout, stderr io.Writer) int {
	a, err := parseSeccompArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "warden: error: %v\n", err)
		return exitWarden
	}
	if a == nil {
		fmt.Fprint(stdout, seccompUsage)
		fmt.Fprint(stdout, seccompFlags(&seccompArgs{verb: "export"}).FlagUsages())
		return 0
	}
	prof, err := seccomp.Resolve(a.profile, a.opts)
	if err != nil {
		fmt.Fprintf(stderr, "warden: error: %v\n", err)
		return exitWarden
	}
	if prof != nil {
		for _, w := range prof.Warnings {
			fmt.Fprintf(stderr, "warden: warning: %s\n", w)
		}
	}
	if a.verb == "show" {
		fmt.Fprint(stdout, seccomp.Render(prof))
		return 0
	}
	if err := exportSeccomp(a, prof, stdout); err != nil {
		fmt.Fprintf(stderr, "warden: error: %v\n", err)
		return exitWarden
	}
	return 0
}

// exportSeccomp compiles prof and writes it as a.format to a.output.
func exportSeccomp(a *seccompArgs, prof *seccomp.Profile, stdout io.Writer) error {
	var out []byte
	switch a.format {
	case "bpf":
		// An empty file is no filter to bwrap either, but a caller who
		// asked for a filter and silently got none would run unconfined.
		if prof == nil {
			return fmt.Errorf("seccomp export %s: the profile has no filter, so there is no BPF to write", a.profile)
		}
		prog, err := seccomp.Compile(prof)
		if err != nil {
			return err
		}
		if a.output == "" || a.output == "-" {
			if isTerminal(stdout) {
				return errors.New("seccomp export: refusing to write binary BPF to a terminal; use -o FILE or redirect standard output")
			}
		}
		out = prog
	case "pfc":
		pfc, err := seccomp.ExportPFC(prof)
		if err != nil {
			return err
		}
		out = []byte(pfc)
	}
	if a.output == "" || a.output == "-" {
		if _, err := stdout.Write(out); err != nil {
			return fmt.Errorf("seccomp export: write standard output: %w", err)
		}
		return nil
	}
	if err := os.WriteFile(a.output, out, 0o644); err != nil {
		return fmt.Errorf("seccomp export: %w", err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
