package policies

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// origin is where a value was set: a place in a file, or a flag (line 0).
type origin struct {
	file      string
	line, col int
}

func (o origin) String() string {
	if o.line == 0 {
		return o.file
	}
	return fmt.Sprintf("%s:%d:%d", o.file, o.line, o.col)
}

// item is one decoded, expanded and checked value with its origin.
type item struct {
	v   any // string, bool, int64, float64, time.Duration, Rlimit or Mount
	key string
	at  origin
	// age counts the merges since the item's layer was on top: 0 for the
	// leaf file (or the flags), 1 for what it extends, and so on. A
	// contradiction is reported at the younger item, the one just written.
	age int
}

// where names the origin of it: "FILE:LINE:COL", or the flag that set it.
func (it item) where() string {
	if it.at.line == 0 {
		return it.key
	}
	return it.at.String()
}

// layer is what one file (or the command line) says, before merging.
type layer struct {
	source      string
	extends     *item
	description *item
	replace     []item // v: the key to replace
	scalars     map[string]item
	lists       map[string][]item
	maps        map[string]map[string]item // process.env, process.rlimits
}

func newLayer(source string) *layer {
	return &layer{source: source, scalars: map[string]item{}, lists: map[string][]item{}, maps: map[string]map[string]item{}}
}

// maxFileSize bounds a policy file; real ones are a few hundred bytes.
const maxFileSize = 1 << 20

// decoder turns one file's generic TOML map into a layer, collecting errors
// with positions.
type decoder struct {
	file string
	ps   *positions
	x    expander
	l    *layer
	errs []*PosError
	// flag, when set, is the command-line flag being decoded: values are
	// literal (no variables) and errors and origins name the flag.
	flag string
}

// decodeLayer parses one file. dir is the file's directory ("" for built-ins).
func decodeLayer(file, dir string, data []byte, env Env) (*layer, error) {
	if len(data) > maxFileSize {
		return nil, &PosError{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("file is over %d bytes", maxFileSize), Hint: "policy files are limited to 1 MiB"}
	}
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		return nil, tomlError(file, data, err)
	}
	d := &decoder{file: file, ps: indexPositions(data), x: expander{env: env, dir: dir}, l: newLayer(file)}
	for k, v := range m {
		d.top(k, v)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			if a.Col != b.Col {
				return a.Col < b.Col
			}
			return a.Key < b.Key
		})
		return nil, d.errs[0]
	}
	return d.l, nil
}

// tomlError turns go-toml's syntax, duplicate-key and type errors into a
// PosError.
func tomlError(file string, data []byte, err error) error {
	pe := &PosError{File: file, Line: 1, Col: 1, Msg: err.Error(), Hint: "fix the TOML syntax (https://toml.io)"}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		pe.Line, pe.Col = de.Position()
		pe.Line, pe.Col = max(pe.Line, 1), max(pe.Col, 1)
		pe.Key = strings.Join(de.Key(), ".")
		// go-toml names only the last part of a duplicate key; the index of
		// the (valid prefix of the) document knows the whole path.
		if k, ok := indexPositions(data).keyAt(pos{pe.Line, pe.Col}); ok {
			pe.Key = k
		}
		pe.Msg = strings.TrimPrefix(de.Error(), "toml: ")
	}
	return pe
}

func (d *decoder) fail(key string, value bool, msg, hint string) {
	if d.flag != "" {
		d.errs = append(d.errs, &PosError{File: d.file, Key: d.flag, Msg: msg, Hint: hint})
		return
	}
	p := d.ps.lookup(key, value)
	d.errs = append(d.errs, &PosError{File: d.file, Line: p.line, Col: p.col, Key: key, Msg: msg, Hint: hint})
}

func (d *decoder) origin(key string) origin {
	if d.flag != "" {
		return origin{file: d.file}
	}
	p := d.ps.lookup(key, true)
	return origin{d.file, p.line, p.col}
}

func (d *decoder) top(k string, v any) {
	switch k {
	case "extends":
		if s, ok := d.str(k, v, true); ok {
			if s == "" {
				d.fail(k, true, "is empty", `name a built-in such as "default", or a path`)
				return
			}
			d.l.extends = &item{v: s, key: k, at: d.origin(k)}
		}
	case "description":
		if s, ok := d.str(k, v, false); ok {
			d.l.description = &item{v: s, key: k, at: d.origin(k)}
		}
	case "replace":
		d.replace(v)
	case "identity", "filesystem", "network", "process", "limits", "seccomp", "report":
		t, ok := v.(map[string]any)
		if !ok {
			d.fail(k, true, fmt.Sprintf("is a %s, not a table", typeName(v)), fmt.Sprintf("write [%s] and its keys below it", k))
			return
		}
		for sk, sv := range t {
			key := child(k, sk)
			f, ok := lookupField(k + "." + sk)
			if !ok {
				d.fail(key, false, "unknown key", suggest(sk, sectionKeys(k)))
				continue
			}
			d.field(f, key, sv)
		}
	default:
		d.fail(child("", k), false, "unknown key", suggest(k, topKeys))
	}
}

func (d *decoder) replace(v any) {
	arr, ok := v.([]any)
	if !ok {
		d.fail("replace", true, fmt.Sprintf("is a %s, not an array", typeName(v)), `write e.g. replace = ["filesystem.rw"]`)
		return
	}
	for i, e := range arr {
		key := index("replace", i)
		s, ok := e.(string)
		if !ok {
			d.fail(key, true, fmt.Sprintf("is a %s, not a string", typeName(e)), `name a list or table key such as "filesystem.rw"`)
			continue
		}
		f, ok := lookupField(s)
		if !ok || f.kind != kList && f.kind != kEnvMap && f.kind != kRlimits && f.kind != kMounts {
			var names []string
			for _, f := range schema {
				if f.kind == kList || f.kind == kEnvMap || f.kind == kRlimits || f.kind == kMounts {
					names = append(names, f.key)
				}
			}
			hint := "only lists and tables are replaced (scalars always override): " + strings.Join(names, ", ")
			if !ok {
				if h := suggest(s, names); strings.HasPrefix(h, "did") {
					hint = h
				}
			}
			d.fail(key, true, fmt.Sprintf("%q is not a list or table key", s), hint)
			continue
		}
		d.l.replace = append(d.l.replace, item{v: s, key: key, at: d.origin(key)})
	}
}

func (d *decoder) field(f field, key string, v any) {
	switch f.kind {
	case kList:
		arr, ok := v.([]any)
		if !ok {
			d.fail(key, true, fmt.Sprintf("is a %s, not an array", typeName(v)), fmt.Sprintf(`write %s = ["..."]`, key[strings.LastIndex(key, ".")+1:]))
			return
		}
		if d.l.lists[f.key] == nil {
			d.l.lists[f.key] = []item{}
		}
		for i, e := range arr {
			ek := index(key, i)
			if s, ok := d.scalar(field{key: f.key, kind: f.elem, check: f.check}, ek, e); ok {
				d.l.lists[f.key] = append(d.l.lists[f.key], item{v: s, key: ek, at: d.origin(ek)})
			}
		}
	case kEnvMap, kRlimits:
		t, ok := v.(map[string]any)
		if !ok {
			d.fail(key, true, fmt.Sprintf("is a %s, not a table", typeName(v)), `write e.g. { NAME = "value" }`)
			return
		}
		if d.l.maps[f.key] == nil {
			d.l.maps[f.key] = map[string]item{}
		}
		for name, e := range t {
			ek := child(key, name)
			var val any
			var ok bool
			if f.kind == kEnvMap {
				if msg, hint := checkEnvName(name); msg != "" {
					d.fail(ek, false, msg, hint)
					continue
				}
				val, ok = d.str(ek, e, true)
			} else {
				val, ok = d.rlimit(ek, name, e)
			}
			if ok {
				d.l.maps[f.key][name] = item{v: val, key: ek, at: d.origin(ek)}
			}
		}
	case kMounts:
		arr, ok := v.([]any)
		if !ok {
			d.fail(key, true, fmt.Sprintf("is a %s, not an array of tables", typeName(v)), "write [[filesystem.mount]] tables")
			return
		}
		if d.l.lists[f.key] == nil {
			d.l.lists[f.key] = []item{}
		}
		for i, e := range arr {
			ek := index(key, i)
			if m, ok := d.mount(ek, e); ok {
				d.l.lists[f.key] = append(d.l.lists[f.key], item{v: m, key: ek, at: d.origin(ek)})
			}
		}
	default:
		if val, ok := d.scalar(f, key, v); ok {
			d.l.scalars[f.key] = item{v: val, key: key, at: d.origin(key)}
		}
	}
}

// expand expands variables in file values; flag values are literal.
func (d *decoder) expand(s string) (string, string, string) {
	if d.flag != "" {
		return s, "", ""
	}
	return d.x.expand(s)
}

// str reads a string, expanding variables when expand is set.
func (d *decoder) str(key string, v any, expand bool) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.fail(key, true, fmt.Sprintf("is a %s, not a string", typeName(v)), "quote it")
		return "", false
	}
	if expand {
		var msg, hint string
		if s, msg, hint = d.expand(s); msg != "" {
			d.fail(key, true, msg, hint)
			return "", false
		}
	}
	if msg, hint := checkString(s); msg != "" {
		d.fail(key, true, msg, hint)
		return "", false
	}
	return s, true
}

// scalar decodes one value of kind f.kind.
func (d *decoder) scalar(f field, key string, v any) (any, bool) {
	switch f.kind {
	case kBool:
		b, ok := v.(bool)
		if !ok {
			d.fail(key, true, fmt.Sprintf("is a %s, not a boolean", typeName(v)), "write true or false")
		}
		return b, ok
	case kInt:
		n, ok := v.(int64)
		if !ok || n < f.min || n > f.max {
			d.fail(key, true, fmt.Sprintf("%s is not an integer in %d..%d", show(v), f.min, f.max), fmt.Sprintf("write e.g. %s = %d", short(key), f.min))
			return nil, false
		}
		return n, true
	case kFloat:
		x, ok := v.(float64)
		if n, isInt := v.(int64); isInt {
			x, ok = float64(n), true
		}
		// cgroup v2 cpu.max cannot go below 1ms per 100ms period: 0.01 CPUs.
		if !ok || math.IsNaN(x) || x < 0.01 || x > float64(f.max) {
			d.fail(key, true, fmt.Sprintf("%s is not a number in 0.01..%d", show(v), f.max), fmt.Sprintf("write e.g. %s = 1.5", short(key)))
			return nil, false
		}
		return x, true
	case kSize:
		if n, ok := v.(int64); ok && n >= 0 {
			return n, true
		}
		if s, ok := v.(string); ok {
			s, msg, hint := d.expand(s)
			if msg != "" {
				d.fail(key, true, msg, hint)
				return nil, false
			}
			if n, ok := parseSize(s); ok {
				return n, true
			}
		}
		d.fail(key, true, fmt.Sprintf("%s is not a size", show(v)), `use e.g. "2G" or "512M" (powers of 1024), or bytes`)
		return nil, false
	case kDuration:
		s, ok := v.(string)
		if !ok {
			d.fail(key, true, fmt.Sprintf("%s is not a duration", show(v)), `write a string such as "30m", "90s" or "1h30m"`)
			return nil, false
		}
		s, msg, hint := d.expand(s)
		if msg != "" {
			d.fail(key, true, msg, hint)
			return nil, false
		}
		t, err := time.ParseDuration(s)
		if err != nil || t < 0 {
			d.fail(key, true, fmt.Sprintf("%q is not a duration", s), `write e.g. "30m", "90s" or "1h30m" ("0s" for none)`)
			return nil, false
		}
		return t, true
	}
	s, ok := d.str(key, v, true)
	if !ok {
		return nil, false
	}
	msg, hint := "", ""
	switch f.kind {
	case kEnum:
		for _, e := range f.enum {
			if s == e {
				return s, true
			}
		}
		msg, hint = fmt.Sprintf("%q is not one of the choices", s), `use one of "`+strings.Join(f.enum, `", "`)+`"`
	case kPath:
		s, msg, hint = checkAbsPath(s)
	case kString:
		if f.check != nil {
			s, msg, hint = f.check(s)
		}
	}
	if msg != "" {
		d.fail(key, true, msg, hint)
		return nil, false
	}
	return s, true
}

func (d *decoder) rlimit(key, name string, v any) (Rlimit, bool) {
	bytes, known := rlimitNames[name]
	if !known {
		d.fail(key, false, fmt.Sprintf("unknown rlimit %q", name), "use one of as, core, cpu, data, fsize, memlock, nofile, nproc, stack")
		return Rlimit{}, false
	}
	one := func(k string, v any) (uint64, bool) {
		switch x := v.(type) {
		case int64:
			if x >= 0 {
				return uint64(x), true
			}
		case string:
			if x == "unlimited" {
				return RlimInfinity, true
			}
			if n, ok := parseSize(x); ok && bytes {
				return uint64(n), true
			}
		}
		hint := `write a number >= 0 or "unlimited"`
		if bytes {
			hint = `write bytes, a size such as "64M", or "unlimited"`
		}
		d.fail(k, true, fmt.Sprintf("%s is not a limit", show(v)), hint+`, or { soft = N, hard = M }`)
		return 0, false
	}
	t, isTable := v.(map[string]any)
	if !isTable {
		n, ok := one(key, v)
		return Rlimit{n, n}, ok
	}
	var r Rlimit
	var okS, okH bool
	for k, e := range t {
		switch k {
		case "soft":
			r.Soft, okS = one(child(key, k), e)
		case "hard":
			r.Hard, okH = one(child(key, k), e)
		default:
			d.fail(child(key, k), false, "unknown key", `an rlimit table has "soft" and "hard"`)
			return r, false
		}
	}
	if _, has := t["soft"]; !has {
		d.fail(key, true, "has no soft value", "write { soft = N, hard = M }")
		return r, false
	}
	if _, has := t["hard"]; !has {
		d.fail(key, true, "has no hard value", "write { soft = N, hard = M }")
		return r, false
	}
	if okS && okH && r.Soft > r.Hard {
		d.fail(child(key, "soft"), true, "soft is above hard", "the kernel requires soft <= hard (setrlimit(2))")
		return r, false
	}
	return r, okS && okH
}

func (d *decoder) mount(key string, v any) (Mount, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		d.fail(key, true, fmt.Sprintf("is a %s, not a table", typeName(v)), "write [[filesystem.mount]] with type, source and target")
		return Mount{}, false
	}
	var m Mount
	good := true
	for k, e := range t {
		ek := child(key, k)
		var ok bool
		switch k {
		case "type":
			var s any
			s, ok = d.scalar(field{kind: kEnum, enum: []string{"bind", "tmpfs"}}, ek, e)
			m.Type, _ = s.(string)
		case "source", "target":
			var s any
			s, ok = d.scalar(field{kind: kPath}, ek, e)
			if k == "source" {
				m.Source, _ = s.(string)
			} else {
				m.Target, _ = s.(string)
			}
		case "readonly", "optional":
			var b any
			b, ok = d.scalar(field{kind: kBool}, ek, e)
			if k == "readonly" {
				m.ReadOnly, _ = b.(bool)
			} else {
				m.Optional, _ = b.(bool)
			}
		case "size":
			var n any
			n, ok = d.scalar(field{kind: kSize}, ek, e)
			m.Size, _ = n.(int64)
		default:
			d.fail(ek, false, "unknown key", suggest(k, mountKeys))
		}
		good = good && ok
	}
	if !good {
		return m, false
	}
	return m, d.checkMount(key, t, m)
}

// checkMount checks the keys of one mount against each other.
func (d *decoder) checkMount(key string, t map[string]any, m Mount) bool {
	has := func(k string) bool { _, ok := t[k]; return ok }
	switch {
	case m.Type == "":
		d.fail(key, true, "has no type", `add type = "bind" or type = "tmpfs"`)
	case m.Target == "":
		d.fail(key, true, "has no target", `add target = "/path/in/jail"`)
	case m.Type == "bind" && m.Source == "":
		d.fail(key, true, "bind mount has no source", `add source = "/host/path"`)
	case m.Type == "bind" && has("size"):
		d.fail(child(key, "size"), false, "size applies to tmpfs mounts only", "remove it")
	case m.Type == "tmpfs" && has("source"):
		d.fail(child(key, "source"), false, "a tmpfs mount has no source", "remove it, or use type = \"bind\"")
	case m.Type == "tmpfs" && has("optional"):
		d.fail(child(key, "optional"), false, "optional applies to bind mounts only", "remove it")
	case m.Target == "/":
		d.fail(child(key, "target"), true, "a mount cannot replace the jail root", "mount below /")
	default:
		return true
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return "date/time"
}

// show renders a decoded TOML value for a message.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case int64, float64, bool:
		return fmt.Sprint(x)
	}
	return "a " + typeName(v)
}

func short(key string) string { return key[strings.LastIndex(key, ".")+1:] }
