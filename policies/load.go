package policies

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// maxChain bounds the extends chain.
const maxChain = 16

// source is one policy text and where it came from.
type source struct {
	id   string // the Source: a path or "builtin:NAME"
	dir  string // the file's directory; "" for built-ins
	data []byte
}

// IsPath reports whether a --policy value or an extends value names a file
// (it contains "/" or ends in ".toml") rather than a policy name.
func IsPath(ref string) bool {
	return strings.Contains(ref, "/") || strings.HasSuffix(ref, ".toml")
}

// Load finds a policy by name or path and resolves it. "" means "default".
// A path (see IsPath) is read as given, relative to env.CWD. A name is
// looked up as NAME.toml in each of env.ConfigDirs, then among the
// built-ins. The current directory is never searched for names: a
// repository could otherwise loosen its own sandbox. Every error is a
// *PosError.
func Load(nameOrPath string, env Env) (*Policy, error) {
	if nameOrPath == "" {
		nameOrPath = "default"
	}
	src, msg, hint := find(nameOrPath, env.CWD, "", env)
	if src == nil {
		return nil, &PosError{File: nameOrPath, Msg: msg, Hint: hint}
	}
	return parseSource(src, env)
}

// Parse resolves one policy file whose text is data. file names it in errors
// and is the base for its relative extends paths and ${POLICY_DIR}; a file
// "builtin:NAME" is treated as a built-in. Every error is a *PosError.
func Parse(file string, data []byte, env Env) (*Policy, error) {
	src := &source{id: file, data: data}
	if !strings.HasPrefix(file, "builtin:") {
		src.dir = absDir(file, env)
	}
	return parseSource(src, env)
}

func absDir(file string, env Env) string {
	dir := filepath.Dir(file)
	if !filepath.IsAbs(dir) && filepath.IsAbs(env.CWD) {
		dir = filepath.Join(env.CWD, dir)
	}
	return dir
}

func parseSource(src *source, env Env) (*Policy, error) {
	m, chain, err := parseChain(src, env, nil)
	if err != nil {
		return nil, err
	}
	p, err := resolve(m, env)
	if err != nil {
		return nil, err
	}
	p.Source = src.id
	p.Name = nameOf(src.id)
	p.Chain = chain
	return p, nil
}

func nameOf(id string) string {
	if n, ok := strings.CutPrefix(id, "builtin:"); ok {
		return n
	}
	return strings.TrimSuffix(filepath.Base(id), ".toml")
}

// parseChain decodes src and, recursively, what it extends; it returns the
// merged layer and the chain, leaf first. seen holds the files below src.
func parseChain(src *source, env Env, seen []string) (*layer, []string, error) {
	l, err := decodeLayer(src.id, src.dir, src.data, env)
	if err != nil {
		return nil, nil, err
	}
	seen = append(seen, src.id)
	base, chain := newLayer(""), []string(nil)
	if ext := l.extends; ext != nil {
		ref := ext.v.(string)
		if src.dir == "" && IsPath(ref) {
			return nil, nil, errAt(*ext, fmt.Sprintf("%q is a path", ref), "a built-in policy extends only names")
		}
		// A path names its file before it is read: a cycle back to a file
		// given to Parse as data is found too.
		if IsPath(ref) {
			p := ref
			if !filepath.IsAbs(p) {
				p = filepath.Join(src.dir, p)
			}
			if p = filepath.Clean(p); slices.Contains(seen, p) {
				return nil, nil, cycleError(*ext, seen, p)
			}
		}
		next, msg, hint := find(ref, src.dir, src.id, env)
		if next == nil {
			return nil, nil, errAt(*ext, msg, hint)
		}
		if slices.Contains(seen, next.id) {
			return nil, nil, cycleError(*ext, seen, next.id)
		}
		if len(seen) >= maxChain {
			return nil, nil, errAt(*ext, fmt.Sprintf("extends chain is longer than %d", maxChain), "flatten the chain")
		}
		if base, chain, err = parseChain(next, env, seen); err != nil {
			return nil, nil, err
		}
	} else if len(l.replace) > 0 {
		return nil, nil, errAt(l.replace[0], "replace without extends has nothing to replace", "add extends, or remove replace")
	}
	return merge(base, l), append([]string{src.id}, chain...), nil
}

func cycleError(ext item, seen []string, next string) error {
	cycle := strings.Join(append(slices.Clone(seen), next), " -> ")
	return errAt(ext, "extends cycle: "+cycle, "remove one of the extends")
}

// find locates ref (see Load). base is the directory relative paths start
// from. self is the file asking: a name lookup skips it, so that
// ~/.config/warden/policies/default.toml can say extends = "default" and get
// the next "default" on the search path. On failure it returns a message
// and a hint.
func find(ref, base, self string, env Env) (*source, string, string) {
	if IsPath(ref) {
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		p = filepath.Clean(p)
		data, err := env.readFile(p)
		if err != nil {
			return nil, fmt.Sprintf("read %s: %v", p, unwrapPath(err)), "check the path"
		}
		return &source{id: p, dir: filepath.Dir(p), data: data}, "", ""
	}
	if !ValidName(ref) {
		return nil, fmt.Sprintf("%q is not a policy name", ref), `names use letters, digits, ".", "_" and "-"; a path needs a "/" or ".toml"`
	}
	var searched []string
	for _, dir := range env.ConfigDirs {
		if !filepath.IsAbs(dir) {
			continue
		}
		cand := filepath.Join(dir, ref+".toml")
		searched = append(searched, dir)
		if cand == self {
			continue
		}
		data, err := env.readFile(cand)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Sprintf("read %s: %v", cand, unwrapPath(err)), "fix its permissions or remove it"
		}
		return &source{id: cand, dir: dir, data: data}, "", ""
	}
	if data, ok := BuiltinSource(ref); ok {
		return &source{id: "builtin:" + ref, data: data}, "", ""
	}
	searched = append(searched, "the built-ins ("+strings.Join(Builtins(), ", ")+")")
	return nil, fmt.Sprintf("policy %q not found", ref), "searched " + strings.Join(searched, ", ") + `; for a file in this directory write "./` + ref + `.toml"`
}

// ReadFile reads a policy file as Load does: a regular file of at most
// 1 MiB, opened so that a FIFO cannot hang the caller.
func ReadFile(path string) ([]byte, error) { return readPolicy(path) }

// readPolicy reads a regular file of at most maxFileSize bytes.
func readPolicy(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not hang warden; Stat then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// unwrapPath drops the path from an *fs.PathError, which the caller names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
