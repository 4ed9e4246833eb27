package seccomp

import (
	"fmt"
	"strings"
)

// Render shows p for `warden seccomp show`: the fixed verdicts first, then
// each group with its reason and one rule per line.
func Render(p *Profile) string {
	if p == nil {
		return "seccomp: off\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s\n", p.Name)
	fmt.Fprintf(&b, "  other ABIs (i386, x32)        kill-process\n")
	fmt.Fprintf(&b, "  syscalls newer than profile   errno(ENOSYS)\n")
	fmt.Fprintf(&b, "  known syscalls not listed     %s\n", p.DefaultAction)
	switch {
	case p.Audit:
		fmt.Fprintf(&b, "  audit                         notify (denials reported by warden)\n")
	case p.LogDenials:
		fmt.Fprintf(&b, "  audit                         kernel log (SECCOMP_FILTER_FLAG_LOG)\n")
	}
	byGroup := map[string][]Rule{}
	for _, r := range p.Rules {
		byGroup[r.Group] = append(byGroup[r.Group], r)
	}
	printed := map[string]bool{}
	show := func(name, reason string) {
		rs := byGroup[name]
		if printed[name] || len(rs) == 0 {
			return
		}
		printed[name] = true
		if reason != "" {
			fmt.Fprintf(&b, "\n[%s] %s\n", name, reason)
		} else {
			fmt.Fprintf(&b, "\n[%s]\n", name)
		}
		for _, r := range rs {
			fmt.Fprintf(&b, "  %-14s %s", r.Action, r.Syscall)
			for i, c := range r.Args {
				if i == 0 {
					b.WriteString(" if ")
				} else {
					b.WriteString(" && ")
				}
				b.WriteString(c.String())
			}
			if r.Comment != "" {
				fmt.Fprintf(&b, "  (%s)", r.Comment)
			}
			b.WriteByte('\n')
		}
	}
	for _, g := range p.Groups {
		show(g.Name, g.Reason)
	}
	for _, r := range p.Rules {
		show(r.Group, "")
	}
	return b.String()
}
