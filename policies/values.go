package policies

import (
	"fmt"
	"math"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// parseSize reads "512M", "2G", "1.5G" or "1048576" (bytes). Suffixes are
// powers of 1024: K M G T P, either case. "2GB" and "2GiB" are not sizes:
// one spelling keeps reviews simple.
func parseSize(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	mult := float64(1)
	num := s
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	case 'p', 'P':
		mult = 1 << 50
	}
	if mult != 1 {
		num = s[:len(s)-1]
	}
	if num == "" || num[0] < '0' || num[0] > '9' {
		return 0, false
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/int64(mult) {
			return 0, false
		}
		return n * int64(mult), true
	}
	for _, c := range num {
		if (c < '0' || c > '9') && c != '.' {
			return 0, false // no exponents, signs, underscores, hex
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult >= math.MaxInt64 {
		return 0, false
	}
	return int64(f * mult), true
}

// formatSize writes n with the largest suffix that divides it exactly.
func formatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"P", 1 << 50}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// cleanPath cleans an absolute path.
func cleanPath(p string) string { return path.Clean(p) }

// checkAbsPath validates a path after expansion: absolute, without ".."
// components (a ".." makes a reader resolve the path in their head; write
// the path it means instead).
func checkAbsPath(p string) (norm, msg, hint string) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Sprintf("%q is not an absolute path", p), `start it with "/" or a variable such as ${CWD} or ${HOME}`
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Sprintf("%q contains \"..\"", p), "write the path it means without \"..\""
		}
	}
	return cleanPath(p), "", ""
}

// ValidName reports whether s can be a policy name (looked up in ConfigDirs
// and the built-ins): letters, digits, "_", "-" and inner dots.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func checkPublish(s string) (string, string, string) {
	const hint = `write "[IP:]HOSTPORT:JAILPORT[/tcp|/udp]", e.g. "8080:80" or "127.0.0.1:8443:443/tcp"`
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto && proto != "tcp" && proto != "udp" {
		return "", fmt.Sprintf("%q has protocol %q", s, proto), hint
	}
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return "", fmt.Sprintf("%q is not a port mapping", s), hint
	}
	host, jail := spec[:i], spec[i+1:]
	hostPort := host
	if j := strings.LastIndex(host, ":"); j >= 0 {
		ip := strings.TrimSuffix(strings.TrimPrefix(host[:j], "["), "]")
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Sprintf("%q has a bad address %q", s, host[:j]), hint
		}
		hostPort = host[j+1:]
	}
	for _, p := range []string{hostPort, jail} {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", fmt.Sprintf("%q has a bad port %q", s, p), hint + "; ports are 1..65535"
		}
	}
	return s, "", ""
}

func checkGlob(s string) (string, string, string) {
	if s == "" || strings.ContainsAny(s, "=") {
		return "", fmt.Sprintf("%q is not a variable name or glob", s), `write a name such as "LANG" or a glob such as "LC_*"`
	}
	if _, err := path.Match(s, ""); err != nil {
		return "", fmt.Sprintf("%q is not a valid glob", s), `globs use * ? and [a-z] (path.Match)`
	}
	return s, "", ""
}

func checkEnvName(s string) (string, string) {
	if s == "" || strings.ContainsAny(s, "=\x00") {
		return fmt.Sprintf("%q is not a valid variable name", s), "names are non-empty and contain no \"=\" or NUL"
	}
	return "", ""
}

func checkHostname(s string) (string, string, string) {
	const hint = "use letters, digits and \"-\", dot-separated labels, at most 64 characters"
	if s == "" || len(s) > 64 {
		return "", fmt.Sprintf("%q is not a valid host name", s), hint
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Sprintf("%q is not a valid host name", s), hint
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Sprintf("%q is not a valid host name", s), hint
			}
		}
	}
	return s, "", ""
}

// capNames are the Linux capabilities by number (capability.h, up to
// CAP_CHECKPOINT_RESTORE = 40).
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
	"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
}

func checkCap(s string) (string, string, string) {
	n := strings.TrimPrefix(strings.ToUpper(s), "CAP_")
	for _, c := range capNames {
		if c == n {
			return "CAP_" + c, "", ""
		}
	}
	return "", fmt.Sprintf("%q is not a capability", s), `write e.g. "CAP_NET_BIND_SERVICE" or "net_bind_service" (capabilities(7))`
}

func checkSyscall(s string) (string, string, string) {
	// "?name" marks a name that may be unknown where the policy runs.
	name := strings.TrimPrefix(s, "?")
	ok := name != "" && len(name) <= 64 && (name[0] < '0' || name[0] > '9')
	for _, c := range name {
		ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_')
	}
	if !ok {
		return "", fmt.Sprintf("%q is not a syscall name", s), `write the name in lower case, e.g. "ptrace" or "io_uring_setup" (or "?name" for one this kernel may not know)`
	}
	return s, "", ""
}

func checkErrno(s string) (string, string, string) {
	u := strings.ToUpper(s)
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == u {
			return u, "", ""
		}
	}
	return "", fmt.Sprintf("%q is not an errno name", s), `write e.g. "EPERM", "EACCES" or "ENOSYS"`
}

func checkProfile(s string) (string, string, string) {
	switch s {
	case "default", "strict", "none":
		return s, "", ""
	}
	if strings.HasPrefix(s, "/") {
		return checkAbsPath(s)
	}
	return "", fmt.Sprintf("%q is neither a profile name nor an absolute path", s),
		`use "default", "strict", "none" or a path such as "${POLICY_DIR}/seccomp.json"`
}

func checkReport(s string) (string, string, string) {
	if s == "" {
		return s, "", ""
	}
	if n, ok := strings.CutPrefix(s, "fd:"); ok {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < 1 || strconv.Itoa(fd) != n {
			return "", fmt.Sprintf("%q is not a file descriptor", s), `write "fd:N" with N >= 1, e.g. "fd:3"`
		}
		return s, "", ""
	}
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Sprintf("%q is not an absolute path", s), `write e.g. "${PROJECT}/warden-report.json", or "fd:3"`
	}
	return checkAbsPath(s)
}

// checkString validates what every string must be once expanded.
func checkString(s string) (string, string) {
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte", "remove it"
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8", "policy values must be UTF-8"
	}
	return "", ""
}

// suggest returns a hint naming the closest of choices to s, or listing them.
func suggest(s string, choices []string) string {
	best, bestD := "", 3
	for _, c := range choices {
		if d := editDistance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "valid keys: " + strings.Join(choices, ", ")
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkCache accepts a cache mount "NAME:DST": NAME of letters, digits,
// '.', '_' and '-' (a directory name), DST an absolute path.
func checkCache(s string) (string, string, string) {
	const hint = `write "NAME:/path/in/jail", e.g. "go-build:/cache/go-build"`
	name, dst, ok := strings.Cut(s, ":")
	if !ok || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || name == "." || name == ".." {
		return "", fmt.Sprintf("%q is not a cache mount", s), hint
	}
	if !strings.HasPrefix(dst, "/") || path.Clean(dst) == "/" {
		return "", fmt.Sprintf("%q: the target must be an absolute path below /", s), hint
	}
	return name + ":" + path.Clean(dst), "", ""
}
