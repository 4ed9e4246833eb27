package policies

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// pos is a 1-based line and column in a file.
type pos struct{ line, col int }

// positions maps key paths ("limits.memory", "filesystem.mount[1].target",
// `process.env."A.B"`) to where their key and their value are written. The
// decoder works on the generic map that go-toml produced and looks positions
// up here, so that semantic errors name a place in the file too.
type positions struct {
	key, val map[string]pos
}

// child appends one key part to a path, quoting parts that are not bare keys
// so that the path stays unambiguous and reads as TOML.
func child(parent, part string) string {
	bare := part != ""
	for _, c := range part {
		bare = bare && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-')
	}
	if !bare {
		part = strconv.Quote(part)
	}
	if parent == "" {
		return part
	}
	return parent + "." + part
}

func index(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// indexPositions walks the document's expressions. It is called only on a
// document that go-toml already decoded, so it sees valid TOML.
func indexPositions(data []byte) *positions {
	ps := &positions{key: map[string]pos{}, val: map[string]pos{}}
	var p unstable.Parser
	p.Reset(data)
	at := func(r unstable.Range) pos {
		s := p.Shape(r)
		return pos{s.Start.Line, s.Start.Column}
	}
	arrays := map[string]int{} // array-of-tables path → count so far
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			// A table is placed at the start of its name: "[[filesystem.mount]]"
			// at "filesystem".
			cur, start := "", pos{}
			it := e.Key()
			for it.Next() {
				k := it.Node()
				if start == (pos{}) {
					start = at(k.Raw)
				}
				cur = child(cur, string(k.Data))
				if it.IsLast() && e.Kind == unstable.ArrayTable {
					n := arrays[cur]
					arrays[cur] = n + 1
					ps.key[cur] = start
					cur = index(cur, n)
				} else if n := arrays[cur]; n > 0 {
					cur = index(cur, n-1)
				}
				if it.IsLast() || ps.key[cur] == (pos{}) {
					ps.key[cur] = start
					ps.val[cur] = start
				}
			}
			table = cur
		case unstable.KeyValue:
			ps.keyValue(&p, e, table, at)
		}
	}
	return ps
}

// keyValue records a key = value expression under the table path prefix.
func (ps *positions) keyValue(p *unstable.Parser, e *unstable.Node, prefix string, at func(unstable.Range) pos) {
	cur := prefix
	var last *unstable.Node
	it := e.Key()
	for it.Next() {
		last = it.Node()
		cur = child(cur, string(last.Data))
		ps.key[cur] = at(last.Raw)
		if _, ok := ps.val[cur]; !ok {
			ps.val[cur] = at(last.Raw)
		}
	}
	// Arrays carry no range in go-toml's AST; their value starts after "=".
	off := int(last.Raw.Offset + last.Raw.Length)
	data := p.Data()
	skip := func() {
		for off < len(data) && (data[off] == ' ' || data[off] == '\t') {
			off++
		}
	}
	skip()
	if off < len(data) && data[off] == '=' {
		off++
	}
	skip()
	start := at(unstable.Range{Offset: uint32(off)})
	ps.value(e.Value(), cur, start, at)
}

func (ps *positions) value(n *unstable.Node, path string, fallback pos, at func(unstable.Range) pos) {
	here := fallback
	if n.Raw.Length > 0 {
		here = at(n.Raw)
	}
	ps.val[path] = here
	switch n.Kind {
	case unstable.Array:
		i := 0
		it := n.Children()
		for it.Next() {
			if c := it.Node(); c.Kind != unstable.Comment {
				ps.value(c, index(path, i), here, at)
				i++
			}
		}
	case unstable.InlineTable:
		it := n.Children()
		for it.Next() {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			cur := path
			var keyAt pos
			kit := kv.Key()
			for kit.Next() {
				cur = child(cur, string(kit.Node().Data))
				keyAt = at(kit.Node().Raw)
				ps.key[cur] = keyAt
			}
			ps.value(kv.Value(), cur, keyAt, at)
		}
	}
}

// keyAt returns the path whose key is written at p, if any.
func (ps *positions) keyAt(p pos) (string, bool) {
	for k, q := range ps.key {
		if q == p && !strings.HasSuffix(k, "]") {
			return k, true
		}
	}
	return "", false
}

// lookup returns the position of path's key (or value), else that of its
// nearest recorded ancestor, else 1:1: an error always has a place.
func (ps *positions) lookup(path string, value bool) pos {
	m := ps.key
	if value {
		m = ps.val
	}
	for k := path; ; {
		if p, ok := m[k]; ok {
			return p
		}
		if p, ok := ps.key[k]; ok {
			return p
		}
		i := strings.LastIndexAny(k, ".[")
		if i <= 0 {
			return pos{1, 1}
		}
		k = k[:i]
	}
}
