package policies

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Flag is one command-line setting laid over a policy by Apply.
type Flag struct {
	// Name is the flag as the user wrote it ("--memory"); errors and
	// Policy.Origin name it.
	Name string
	// Key is the policy key it sets: "limits.memory", "filesystem.ro",
	// "process.env" (Value "K=V"), "process.rlimits" (Value "nofile=4096" or
	// "nofile=1024:4096"), or "replace" (Value: a list or table key).
	Key string
	// Value is the value as typed: "2G", "/data", "30m", "true".
	Value string
}

// Apply lays flags over p as one more layer, under the merge rule of
// extends: scalars override, lists append, tables merge per entry, and
// Key "replace" drops what the policy said for a list or table first. Flag
// values are literal (no ${VAR}); relative paths are taken from env.CWD.
// The result is validated again, so a flag that contradicts the policy is
// an error (a *PosError with File "command line" and Key the flag's Name).
// p is not modified.
func Apply(p *Policy, env Env, flags []Flag) (*Policy, error) {
	d := &decoder{file: "command line", l: newLayer("command line")}
	for _, fl := range flags {
		d.flag = fl.Name
		if d.flag == "" {
			d.flag = fl.Key
		}
		d.applyFlag(fl, env)
		if len(d.errs) > 0 {
			return nil, d.errs[0]
		}
	}
	base := p.merged
	if base == nil {
		base = newLayer(p.Source)
	}
	d.l.description = base.description
	q, err := resolve(merge(base, d.l), env)
	if err != nil {
		return nil, err
	}
	q.Name, q.Source, q.Chain = p.Name, p.Source, append([]string{"command line"}, p.Chain...)
	return q, nil
}

func (d *decoder) applyFlag(fl Flag, env Env) {
	if fl.Key == "replace" {
		d.replace([]any{fl.Value})
		for i := range d.l.replace {
			d.l.replace[i].key = d.flag
		}
		return
	}
	f, ok := lookupField(fl.Key)
	if !ok {
		d.fail(fl.Key, true, fmt.Sprintf("sets unknown policy key %q", fl.Key), "BUG(warden): the flag table names a key that does not exist; please report")
		return
	}
	v := fl.Value
	switch f.kind {
	case kMounts:
		d.fail(fl.Key, true, "has no flag form", "write [[filesystem.mount]] in a policy file")
		return
	case kEnvMap:
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			d.fail(fl.Key, true, fmt.Sprintf("%q is not NAME=VALUE", v), "write e.g. TZ=UTC")
			return
		}
		d.field(f, fl.Key, map[string]any{k: val})
	case kRlimits:
		name, val, ok := strings.Cut(v, "=")
		if !ok {
			d.fail(fl.Key, true, fmt.Sprintf("%q is not NAME=LIMIT", v), "write e.g. nofile=4096 or nofile=1024:4096")
			return
		}
		var tv any = flagNumber(val)
		if soft, hard, ok := strings.Cut(val, ":"); ok {
			tv = map[string]any{"soft": flagNumber(soft), "hard": flagNumber(hard)}
		}
		d.field(f, fl.Key, map[string]any{name: tv})
	case kList:
		if f.elem == kPath && v != "" && !filepath.IsAbs(v) && filepath.IsAbs(env.CWD) {
			v = filepath.Join(env.CWD, v)
		}
		d.field(f, fl.Key, []any{v})
	case kPath:
		if v != "" && !filepath.IsAbs(v) && filepath.IsAbs(env.CWD) {
			v = filepath.Join(env.CWD, v)
		}
		d.field(f, fl.Key, v)
	case kBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			d.fail(fl.Key, true, fmt.Sprintf("%q is not a boolean", v), "write true or false")
			return
		}
		d.field(f, fl.Key, b)
	case kInt, kFloat:
		d.field(f, fl.Key, flagNumber(v))
	default:
		// --report FILE is a path on the command line (a policy must
		// write it absolute, with ${PROJECT} or the like); fd:N is not.
		if fl.Key == "report.file" && v != "" && !strings.HasPrefix(v, "fd:") && !filepath.IsAbs(v) && filepath.IsAbs(env.CWD) {
			v = filepath.Join(env.CWD, v)
		}
		// So is --seccomp FILE.json (a profile name has no "/" and no
		// .json suffix).
		if fl.Key == "seccomp.profile" && (strings.ContainsRune(v, '/') || strings.HasSuffix(v, ".json")) && !filepath.IsAbs(v) && filepath.IsAbs(env.CWD) {
			v = filepath.Join(env.CWD, v)
		}
		d.field(f, fl.Key, v)
	}
	// Items carry the flag's name, so that Origin and later contradiction
	// messages say "--memory" rather than a key path.
	for k, items := range d.l.lists {
		for i := range items {
			if strings.HasPrefix(items[i].key, fl.Key) {
				d.l.lists[k][i].key = d.flag
			}
		}
	}
	for k, it := range d.l.scalars {
		if k == fl.Key {
			it.key = d.flag
			d.l.scalars[k] = it
		}
	}
	for _, m := range d.l.maps {
		for n, it := range m {
			if strings.HasPrefix(it.key, fl.Key) {
				it.key = d.flag
				m[n] = it
			}
		}
	}
}

// flagNumber turns a flag value into the TOML value it would be in a file:
// an integer or float when it reads as one, else the string.
func flagNumber(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if strings.ContainsAny(s, ".eE") {
		if x, err := strconv.ParseFloat(s, 64); err == nil {
			return x
		}
	}
	return s
}
