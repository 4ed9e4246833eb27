package policies

import (
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"io/fs"
	"sort"
	"strings"
)

// memFS is an in-memory file system for Env.ReadFile: path → content.
type memFS map[string]string

func (m memFS) read(p string) ([]byte, error) {
	if s, ok := m[p]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

// testEnv is a fake host: user u (1000) in /home/u/src/proj/sub, a git
// project at /home/u/src/proj, two config dirs, and files from m only.
func testEnv(m memFS) Env {
	vars := map[string]string{"CI_DIR": "/builds/x", "EMPTY": "", "DOLLAR": "a$b"}
	return Env{
		CWD: "/home/u/src/proj/sub", Home: "/home/u", User: "u", TmpDir: "/tmp/u",
		Project: "/home/u/src/proj", UID: 1000, GID: 1000,
		Getenv:     func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		ConfigDirs: []string{"/home/u/.config/warden/policies", "/etc/warden/policies"},
		ReadFile:   m.read,
	}
}

// origins renders p.Origin sorted, one "key <- where" per line.
func origins(p *Policy) string {
	var lines []string
	for k, v := range p.Origin {
		lines = append(lines, k+" <- "+v)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// policyCmp compares what a policy does, not where it came from.
var policyCmp = cmp.Options{
	cmpopts.IgnoreUnexported(Policy{}),
	cmpopts.IgnoreFields(Policy{}, "Name", "Source", "Chain", "Origin"),
}
