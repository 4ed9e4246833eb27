package sandbox

import (
	"sort"
	"strconv"
	"strings"
)

// capNames are the capability numbers by name (capabilities(7)).
var capNames = map[string]int{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
	"SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
	"NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
	"SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
	"SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
	"AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

// ParseCap accepts "CAP_CHOWN", "chown" or "cap_chown".
func ParseCap(s string) (int, bool) {
	n := strings.TrimPrefix(strings.ToUpper(s), "CAP_")
	c, ok := capNames[n]
	return c, ok
}

func resolveCaps(names []string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, n := range names {
		c, ok := ParseCap(n)
		if !ok {
			return nil, Usagef("--cap-add %s: unknown capability; use a name from capabilities(7), e.g. CAP_NET_BIND_SERVICE", n)
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Ints(out)
	return out, nil
}

// ParseCaps turns capability names into numbers (OCI process.capabilities).
func ParseCaps(names []string) ([]int, error) { return resolveCaps(names) }

// CapabilityNames lists the capabilities warden knows, without "CAP_",
// by number.
func CapabilityNames() []string {
	out := make([]string, 0, len(capNames))
	for c := 0; c < 64; c++ {
		for n, v := range capNames {
			if v == c {
				out = append(out, n)
			}
		}
	}
	return out
}

// capName names capability c ("CAP_CHOWN"), or its number.
func capName(c int) string {
	for n, v := range capNames {
		if v == c {
			return "CAP_" + n
		}
	}
	return strconv.Itoa(c)
}
