//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
)

const policyUsage = `Usage:
  warden policy list                         built-in policies and those on the search path
  warden policy show NAME|FILE               the policy file as written
  warden policy explain [NAME|FILE] [--program] [run flags] [-- CMD [ARGS...]]
                                             the plan warden run would build, without running it;
                                             --program: the system calls that build the jail
  warden policy check FILE...                validate policy files; exit 0 if all are valid, else 125
  warden policy learn [--out FILE] [run flags] -- CMD [ARGS...]
                                             run CMD traced and write a policy that shows only
                                             what it used (docs/trace.md)

A NAME is looked up in $XDG_CONFIG_HOME/warden/policies, /etc/warden/policies,
then among the built-ins; a value with a "/" or ending in ".toml" is a file.
See docs/policy.md.
`

// policyCmd runs `warden policy ...`. host describes the machine; tests
// pass a fake.
type policyCmd struct {
	host func() (*sandbox.Host, error)
	// probe tells explain which cgroup controllers the host lacks.
	probe          func() cgroup.Report
	stdout, stderr io.Writer
}

func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	return policyCmd{host: sandbox.RealHost, probe: cgroup.Probe, stdout: stdout, stderr: stderr}.run(args)
}

func (c policyCmd) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, policyUsage)
		return exitWarden
	}
	switch args[0] {
	case "list":
		return c.list(args[1:])
	case "show":
		return c.show(args[1:])
	case "explain":
		return c.explain(args[1:])
	case "check":
		return c.check(args[1:])
	case "learn":
		return cmdPolicyLearn(args[1:], c.stdout, c.stderr)
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, policyUsage)
		return 0
	}
	return fail(c.stderr, sandbox.Usagef("policy: unknown subcommand %q", args[0]), "run `warden policy help`")
}

func (c policyCmd) env() (policies.Env, *sandbox.Host, error) {
	h, err := c.host()
	if err != nil {
		return policies.Env{}, nil, fmt.Errorf("inspect host: %w", err)
	}
	return policyEnv(h), h, nil
}

// listEntry is one line of `warden policy list`.
type listEntry struct {
	name, source, desc string
}

// list prints every policy a name can reach, in lookup order; a policy that
// an earlier one of the same name shadows says so, because `--policy NAME`
// will never get it.
func (c policyCmd) list(args []string) int {
	if len(args) > 0 {
		return fail(c.stderr, sandbox.Usagef("policy list: takes no arguments (got %q)", args[0]))
	}
	env, _, err := c.env()
	if err != nil {
		return fail(c.stderr, err)
	}
	var entries []listEntry
	winner := map[string]string{}
	add := func(name, source string, load func() (*policies.Policy, error)) {
		desc := ""
		var pe *policies.PosError
		if p, err := load(); errors.As(err, &pe) && pe.Here {
			desc = "not from this directory: " + pe.Msg
		} else if err != nil {
			desc = "INVALID: " + err.Error()
		} else {
			desc = p.Description
		}
		if w, ok := winner[name]; ok {
			desc = "(shadowed by " + w + ") " + desc
		} else {
			winner[name] = source
		}
		entries = append(entries, listEntry{name, source, desc})
	}
	for _, dir := range env.ConfigDirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(c.stderr, "warden: warning: policy list: %v\n", err)
			}
			continue
		}
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), ".toml")
			if !ok || e.IsDir() || !policies.ValidName(name) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			add(name, path, func() (*policies.Policy, error) { return policies.Load(path, env) })
		}
	}
	for _, name := range policies.Builtins() {
		add(name, "builtin:"+name, func() (*policies.Policy, error) {
			src, _ := policies.BuiltinSource(name)
			return policies.Parse("builtin:"+name, src, env)
		})
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.name, e.source, e.desc)
	}
	if err := tw.Flush(); err != nil {
		return fail(c.stderr, fmt.Errorf("policy list: %w", err))
	}
	return 0
}

// show prints the policy file that `--policy REF` would read first, as
// written, even when it does not parse: that is when one wants to see it.
func (c policyCmd) show(args []string) int {
	if len(args) != 1 {
		return fail(c.stderr, sandbox.Usagef("policy show: want one NAME or FILE"), "run `warden policy list` for the names")
	}
	env, h, err := c.env()
	if err != nil {
		return fail(c.stderr, err)
	}
	data, _, err := findPolicy(args[0], h.Cwd, env.ConfigDirs)
	if err != nil {
		return fail(c.stderr, err)
	}
	if _, err := c.stdout.Write(data); err != nil {
		return fail(c.stderr, fmt.Errorf("policy show: %w", err))
	}
	return 0
}

// findPolicy finds what policies.Load reads first for ref (see Load's
// lookup rule, docs/policy.md "Lookup"): a path as given (relative to cwd),
// a name as NAME.toml on the search path, then a built-in. It returns the
// text and its source.
func findPolicy(ref, cwd string, dirs []string) ([]byte, string, error) {
	if policies.IsPath(ref) {
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		data, err := policies.ReadFile(p)
		if err != nil {
			return nil, "", fmt.Errorf("policy %s: %w", ref, err)
		}
		return data, p, nil
	}
	if !policies.ValidName(ref) {
		return nil, "", sandbox.Usagef("policy %q: not a policy name; names use letters, digits, \".\", \"_\" and \"-\"; a file needs a \"/\" or \".toml\"", ref)
	}
	for _, dir := range dirs {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, ref+".toml")
		data, err := policies.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("policy %s: %w", ref, err)
		}
		return data, p, nil
	}
	if data, ok := policies.BuiltinSource(ref); ok {
		return data, "builtin:" + ref, nil
	}
	return nil, "", sandbox.Usagef("policy %q not found: searched %s and the built-ins (%s)", ref,
		strings.Join(dirs, ", "), strings.Join(policies.Builtins(), ", "))
}

// explain resolves exactly as `warden run` does (the same flags, the same
// loadPolicy and buildOptions, the same sandbox.Resolve) and prints the plan
// instead of running it.
func (c policyCmd) explain(args []string) int {
	fs, o := runFlags()
	o.explaining = true
	fs.SetOutput(io.Discard)
	asTOML := fs.Bool("toml", false, "print the resolved policy as canonical TOML (values of process.env not shown) instead of the plan")
	asProgram := fs.Bool("program", false, "print the jail program instead of the plan: every system call the jail's init and the command's process make before the command runs, one a line")
	var ref string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		ref, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(c.stdout, "Usage: warden policy explain [NAME|FILE] [run flags] [-- CMD [ARGS...]]\n\nFlags (as for warden run):\n%s", fs.FlagUsages())
			return 0
		}
		return fail(c.stderr, sandbox.Usagef("policy explain: %v", err), "run `warden help run` for the flags")
	}
	if ref != "" {
		if fs.Changed("policy") && o.policy != ref {
			return fail(c.stderr, sandbox.Usagef("policy explain: policy given twice (%q and --policy %q)", ref, o.policy))
		}
		o.policy = ref
	}
	argv, noCmd := fs.Args(), false
	if len(argv) == 0 {
		// Resolve needs a command; the plan does not depend on which.
		argv, noCmd = []string{"CMD"}, true
	}
	h, err := c.host()
	if err != nil {
		return fail(c.stderr, fmt.Errorf("inspect host: %w", err))
	}
	// loadPolicy is run again inside buildOptions; here it only supplies
	// the extends chain, which the options do not carry.
	pol, _, err := loadPolicy(o, h)
	if err != nil {
		return fail(c.stderr, err)
	}
	if *asTOML {
		_, err := c.stdout.Write(redactedTOML(pol))
		if err != nil {
			return fail(c.stderr, fmt.Errorf("policy explain: %w", err))
		}
		return 0
	}
	opts, err := buildOptions(o, argv, h)
	if err != nil {
		return fail(c.stderr, err)
	}
	// Explaining changes nothing: no seccomp cache is read or written.
	opts.SeccompCache = ""
	plan, warns, err := sandbox.Resolve(opts, h)
	if err != nil {
		return fail(c.stderr, err)
	}
	if *asProgram {
		out, err := sandbox.ExplainProgram(plan)
		if err != nil {
			return fail(c.stderr, fmt.Errorf("policy explain: %w", err))
		}
		fmt.Fprint(c.stdout, out)
		return 0
	}
	info := sandbox.ExplainInfo{Chain: pol.Chain, NoCommand: noCmd, Seccomp: opts.SeccompOpts, Report: o.report, Warnings: warns}
	if plan.LimitsMode != cgroup.Off && len(plan.Limits.Requested()) > 0 {
		info.LimitsHost = limitsHost(c.probe())
	}
	fmt.Fprint(c.stdout, sandbox.Explain(plan, info))
	return 0
}

// redactedTOML is the canonical form of pol with the values of process.env
// replaced: a value may come from ${env:NAME}, and explain output ends up in
// logs. The hash in its header is the policy's own.
func redactedTOML(pol *policies.Policy) []byte {
	q := *pol
	q.Process.Env = make(map[string]string, len(pol.Process.Env))
	for k := range pol.Process.Env {
		q.Process.Env[k] = "(value not shown)"
	}
	return policies.Format(&q)
}

// limitsHost turns a cgroup probe into what explain says about the host.
// Probe only reads cgroupfs and the environment; it creates nothing.
func limitsHost(r cgroup.Report) *sandbox.LimitsHost {
	h := &sandbox.LimitsHost{Missing: map[string]string{}}
	for c, why := range r.Missing {
		h.Missing[c] = why
	}
	if r.Delegated {
		return h
	}
	if r.UserBus != "" {
		h.Note = "no delegated cgroup yet; run asks the systemd user manager for a delegated scope first"
		return h
	}
	// Not delegated and nobody to ask: no controller is available.
	why := r.Problem
	if why == "" {
		why = "no delegated cgroup and no systemd user manager"
	}
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		if _, ok := h.Missing[c]; !ok {
			h.Missing[c] = why
		}
	}
	return h
}

// check validates each file as `warden run --policy FILE` would before
// creating anything, plus the seccomp profile and syscall names, which run
// checks only when it compiles the filter. The host's paths are not
// checked: a policy is written for many hosts.
func (c policyCmd) check(args []string) int {
	if len(args) == 0 {
		return fail(c.stderr, sandbox.Usagef("policy check: want one or more FILEs"))
	}
	env, _, err := c.env()
	if err != nil {
		return fail(c.stderr, err)
	}
	status := 0
	for _, file := range args {
		ref := file
		if !policies.IsPath(ref) {
			// check takes files: "mypolicy" is ./mypolicy, never a name.
			ref = "./" + ref
		}
		if err := checkPolicy(ref, env); err != nil {
			fmt.Fprintf(c.stderr, "warden: error: %v\n", err)
			status = exitWarden
			continue
		}
		fmt.Fprintf(c.stdout, "ok %s\n", file)
	}
	return status
}

func checkPolicy(ref string, env policies.Env) error {
	pol, err := policies.Load(ref, env)
	if err != nil {
		return err
	}
	opts, err := sandbox.OptionsFromPolicy(pol, []string{"true"})
	if err != nil {
		return fmt.Errorf("policy %s: %w", pol.Source, err)
	}
	return sandbox.CheckSeccomp(opts)
}
