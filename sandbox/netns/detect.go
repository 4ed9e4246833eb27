package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Features is what a helper binary said about itself, probed once per path
// per process: its --version line and the long options its --help lists. We
// probe instead of comparing versions because distributions patch, and
// because pasta builds from Debian say "pasta unknown version".
type Features struct {
	Binary  string          `json:"binary"`
	Version string          `json:"version"`
	Flags   map[string]bool `json:"-"` // long options, "--no-map-gw"
}

// Has reports whether the helper's --help lists the long option flag.
func (f Features) Has(flag string) bool { return f.Flags[flag] }

// FlagList returns the probed options, sorted (for tests and debugging).
func (f Features) FlagList() []string {
	out := make([]string, 0, len(f.Flags))
	for k := range f.Flags {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// installHint names the package that provides each helper.
var installHint = map[Mode]string{
	ModePasta: "install passt, which provides pasta: apt install passt (Debian, Ubuntu), dnf install passt (Fedora)",
	ModeSlirp: "install slirp4netns: apt install slirp4netns (Debian, Ubuntu), dnf install slirp4netns (Fedora)",
	ModeAuto:  "install a network helper: apt install passt (preferred) or apt install slirp4netns",
}

var probeCache struct {
	sync.Mutex
	m map[string]Features
}

// probeTimeout bounds one --help or --version run of a helper.
const probeTimeout = 5 * time.Second

// Detect resolves mode ("auto" becomes pasta if installed, else slirp4netns)
// and probes the helper binary found in $PATH. A missing binary is an *Error
// wrapping ErrHelperNotFound, with the package to install as its Hint. none
// and host need no binary and return empty Features.
func Detect(mode Mode) (Mode, Features, error) {
	switch mode {
	case "", ModeNone:
		return ModeNone, Features{}, nil
	case ModeHost:
		return ModeHost, Features{}, nil
	case ModePasta, ModeSlirp:
		f, err := probe(mode)
		return mode, f, err
	case ModeAuto:
		f, err := probe(ModePasta)
		if err == nil {
			return ModePasta, f, nil
		}
		if !errors.Is(err, ErrHelperNotFound) {
			return "", Features{}, err
		}
		f, err = probe(ModeSlirp)
		if err == nil {
			return ModeSlirp, f, nil
		}
		if errors.Is(err, ErrHelperNotFound) {
			return "", Features{}, &Error{Op: "find network helper",
				Err:  fmt.Errorf("%w: neither pasta nor slirp4netns is in $PATH", ErrHelperNotFound),
				Hint: installHint[ModeAuto]}
		}
		return "", Features{}, err
	}
	return "", Features{}, fmt.Errorf("detect network mode %q: unknown mode", mode)
}

func probe(mode Mode) (Features, error) {
	name := string(mode)
	path, err := exec.LookPath(name)
	if err != nil {
		return Features{}, &Error{Op: "find " + name, Err: fmt.Errorf("%w: %w", ErrHelperNotFound, err),
			Hint: installHint[mode]}
	}
	probeCache.Lock()
	defer probeCache.Unlock()
	if f, ok := probeCache.m[path]; ok {
		return f, nil
	}
	f, err := probeBinary(mode, path)
	if err != nil {
		return Features{}, err
	}
	if probeCache.m == nil {
		probeCache.m = map[string]Features{}
	}
	probeCache.m[path] = f
	return f, nil
}

// probeBinary runs "path --version" and "path --help". Their exit status is
// ignored (pasta --help exits 1); the output must look like the helper's.
func probeBinary(mode Mode, path string) (Features, error) {
	ver, err := runProbe(path, "--version")
	if err != nil {
		return Features{}, err
	}
	help, err := runProbe(path, "--help")
	if err != nil {
		return Features{}, err
	}
	f := Features{Binary: path, Version: parseVersion(mode, ver), Flags: parseFlags(help)}
	var need []string
	switch mode {
	case ModePasta:
		need = []string{"--config-net", "--tcp-ports", "--udp-ports", "--tcp-ns", "--udp-ns", "--foreground"}
	case ModeSlirp:
		need = []string{"--configure", "--ready-fd", "--exit-fd", "--mtu"}
	}
	for _, flag := range need {
		if !f.Has(flag) {
			return Features{}, &Error{Op: "probe " + path,
				Err:  fmt.Errorf("%s --help does not list %s", string(mode), flag),
				Hint: fmt.Sprintf("%s at %s is too old or not %s; %s", mode, path, mode, installHint[mode])}
		}
	}
	return f, nil
}

func runProbe(path, arg string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, arg)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("probe %s %s: %w", path, arg, ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return nil, fmt.Errorf("probe %s %s: %w", path, arg, err)
	}
	return dropSyslogNoise(out), nil
}

// dropSyslogNoise removes pasta's "Failed to send N bytes to syslog" lines,
// printed when no syslog socket is reachable.
func dropSyslogNoise(out []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("Failed to send ")) && bytes.Contains(line, []byte("syslog")) {
			continue
		}
		b.Write(line)
	}
	return b.Bytes()
}

// longFlag is compiled on first use: every warden start pays for package
// initialisation, and most runs never probe a helper.
var longFlag = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:^|[\s,\[])(--[a-z0-9][a-z0-9-]*)`)
})

func parseFlags(help []byte) map[string]bool {
	flags := map[string]bool{}
	for _, m := range longFlag().FindAllSubmatch(help, -1) {
		flags[string(m[1])] = true
	}
	return flags
}

// parseVersion takes the version word from the first line:
// "pasta 2024_06_24.1ee2eca", "pasta unknown version", "slirp4netns version 1.2.0".
func parseVersion(mode Mode, out []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(line)
	if len(fields) < 2 || fields[0] != string(mode) {
		return "unknown"
	}
	if fields[1] == "version" && len(fields) > 2 {
		return fields[2]
	}
	return fields[1]
}
