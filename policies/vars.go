package policies

import (
	"fmt"
	"strconv"
	"strings"
)

// varNames are the variables a policy may use besides ${env:NAME}.
var varNames = []string{"CWD", "HOME", "USER", "UID", "GID", "TMPDIR", "PROJECT", "POLICY_DIR"}

// expander expands ${VAR} in the strings of one file.
type expander struct {
	env Env
	// dir is the directory of the file, for ${POLICY_DIR}; "" for built-ins.
	dir string
}

func (x expander) lookup(name string) (string, string, string) {
	var v string
	switch name {
	case "CWD":
		v = x.env.CWD
	case "HOME":
		v = x.env.Home
	case "USER":
		v = x.env.User
	case "UID":
		return strconv.Itoa(x.env.UID), "", ""
	case "GID":
		return strconv.Itoa(x.env.GID), "", ""
	case "TMPDIR":
		v = x.env.TmpDir
	case "PROJECT":
		v = x.env.Project
	case "POLICY_DIR":
		if x.dir == "" {
			return "", "${POLICY_DIR} has no meaning in a built-in policy", "use it in policy files only"
		}
		v = x.dir
	default:
		if n, ok := strings.CutPrefix(name, "env:"); ok {
			return x.getenv(n)
		}
		return "", fmt.Sprintf("unknown variable ${%s}", name),
			"known: ${" + strings.Join(varNames, "} ${") + "} ${env:NAME}; write $$ for a literal $"
	}
	if v == "" {
		// An empty ${HOME} would turn hide = ["${HOME}/.ssh"] into "/.ssh"
		// and silently hide nothing: refuse instead.
		return "", fmt.Sprintf("${%s} is empty in this environment", name), "set it, or do not use it in this policy"
	}
	return v, "", ""
}

func (x expander) getenv(n string) (string, string, string) {
	if !validEnvName(n) {
		return "", fmt.Sprintf("${env:%s}: %q is not a variable name", n, n), "write ${env:NAME} with letters, digits and _"
	}
	if x.env.Getenv == nil {
		return "", fmt.Sprintf("${env:%s} cannot be read here", n), "this caller gives policies no environment"
	}
	v, ok := x.env.Getenv(n)
	if !ok {
		return "", fmt.Sprintf("${env:%s}: %s is not set", n, n), "set it in the environment, or do not use it in this policy"
	}
	return v, "", ""
}

func validEnvName(n string) bool {
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return n != ""
}

// expand replaces ${NAME} by its value and $$ by $. Any other $ is an error,
// so that a typo cannot slip through as a literal path.
func (x expander) expand(s string) (string, string, string) {
	if !strings.Contains(s, "$") {
		return s, "", ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i++
		case i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Sprintf("%q has an unclosed ${", s), "close it with }, or write $$ for a literal $"
			}
			v, msg, hint := x.lookup(s[i+2 : i+2+end])
			if msg != "" {
				return "", msg, hint
			}
			b.WriteString(v)
			i += 2 + end
		default:
			return "", fmt.Sprintf("%q has a $ that starts no variable", s), "write ${NAME} for a variable or $$ for a literal $"
		}
	}
	return b.String(), "", ""
}

// escapeDollars is the inverse of expand for literal text: Format writes
// resolved values, which must read back as themselves.
func escapeDollars(s string) string { return strings.ReplaceAll(s, "$", "$$") }
