package seccomp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/warden-sandbox/warden/seccomp/internal/bpfeval"
	"golang.org/x/sys/unix"
)

// cacheFormat changes whenever Compile's output for the same profile may
// change (prologue layout, name tables).
const cacheFormat = "warden-seccomp-bpf-v1"

// Key is the cache key of p: a hash of everything that determines the
// compiled program (not the name, groups or comments), the architecture and
// the libseccomp version.
func Key(p *Profile) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%v\x00%v\x00", cacheFormat, runtime.GOARCH, libVersion(), p.DefaultAction, p.Audit)
	for _, r := range p.Rules {
		fmt.Fprintf(h, "%s\x00%v\x00%v\x00", r.Syscall, r.Action, r.Args)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DefaultCacheDir is $XDG_CACHE_HOME/warden/seccomp (or ~/.cache/...).
func DefaultCacheDir() (string, error) {
	d, err := cacheHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "warden", "seccomp"), nil
}

// CompileCached is Compile with an on-disk cache in cacheDir ("" means
// DefaultCacheDir): Compile costs a few milliseconds (libseccomp's
// binary-tree generation), a cache hit about a tenth of that.
//
// A cached program is checked before use: every syscall number up to the
// profile's highest plus the x32, foreign-arch and argument-edge cases are
// evaluated and must agree with Decide; on any disagreement the program is
// recompiled and the file replaced. That catches corruption and stale
// formats, not a crafted program that differs only for rare arguments, so
// the cache directory must never be writable from inside a jail (warden
// must hide it; see docs/seccomp.md). Cache write failures are not errors:
// the compiled program is returned, because a read-only cache must not stop
// a run.
func CompileCached(p *Profile, cacheDir string) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return Compile(p)
		}
		cacheDir = d
	}
	path := filepath.Join(cacheDir, Key(p)+".bpf")
	if prog, err := readCache(path); err == nil {
		if verify(p, prog) == nil {
			return prog, nil
		}
	}
	prog, err := Compile(p)
	if err != nil {
		return nil, err
	}
	_ = writeCache(cacheDir, path, prog)
	return prog, nil
}

func readCache(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 8*maxInsns+1))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b)%8 != 0 || len(b) > 8*maxInsns {
		return nil, errors.New("not a program")
	}
	return b, nil
}

func writeCache(dir, path string, prog []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(prog); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// verify checks prog against p's Go evaluation on the cases that matter.
func verify(p *Profile, prog []byte) error {
	t, err := p.resolve()
	if err != nil {
		return err
	}
	ins, err := Decode(prog)
	if err != nil {
		return err
	}
	check := func(d Data) error {
		r, err := bpfeval.Run(ins, bpfeval.Data{Nr: d.Nr, Arch: d.Arch, Args: d.Args})
		if err != nil {
			return err
		}
		want := p.Effective(p.decide(d, &t))
		if got := ActionFromRet(r); got != want {
			return fmt.Errorf("syscall %d %v: program says %s, profile says %s", d.Nr, d.Args, got, want)
		}
		return nil
	}
	native := t.arch.audit
	edge := []Data{{Arch: native ^ 0x1, Nr: 0}, {Arch: native, Nr: x32Bit}, {Arch: native, Nr: -1}, {Arch: native, Nr: t.knownMax + 1}}
	for _, d := range edge {
		if err := check(d); err != nil {
			return err
		}
	}
	for nr := int32(0); nr <= t.knownMax; nr++ {
		if err := check(Data{Arch: native, Nr: nr}); err != nil {
			return err
		}
	}
	for _, r := range p.Rules {
		nr, ok := t.nrs[r.Syscall]
		if !ok || len(r.Args) == 0 {
			continue
		}
		d := Data{Arch: native, Nr: nr}
		for _, c := range r.Args {
			d.Args[c.Index] = c.Value
			if c.Op == OpMaskedEq {
				d.Args[c.Index] = c.ValueTwo & c.Value
			}
		}
		if err := check(d); err != nil {
			return err
		}
	}
	return nil
}

// The request cache: a built-in profile with given options and a given
// warden binary always yields the same program, so the program can be
// found from the request alone, without building the profile (about 1.5 ms
// of a cold start on a slow machine). Each entry also names the profile's
// Key, so that Check can confirm it, off the critical path, before the
// jail is let go.

// RequestKey is the request cache key of built-in profile name with o, for
// the warden binary identified by binary.
func RequestKey(name string, o Options, binary string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00request\x00%s\x00%s\x00%s\x00%#v\x00", cacheFormat, runtime.GOARCH, binary, name, o)
	return hex.EncodeToString(h.Sum(nil))
}

// ReadRequest returns the program cached under request key and the
// profile Key it was compiled from.
func ReadRequest(dir, key string) (prog []byte, profileKey string, err error) {
	b, err := readCache(filepath.Join(dir, key+".req"))
	if err != nil {
		return nil, "", err
	}
	// 64 hex digits and 8 bytes of padding, then the program.
	if len(b) < 72+8 || b[64] != '\n' {
		return nil, "", errors.New("not a request cache entry")
	}
	return b[72:], string(b[:64]), nil
}

// WriteRequest stores prog, compiled from a profile whose Key is
// profileKey, under request key. Failures are not errors (see
// CompileCached).
func WriteRequest(dir, key, profileKey string, prog []byte) {
	if len(profileKey) != 64 {
		return
	}
	entry := append([]byte(profileKey+"\n       "), prog...)
	_ = writeCache(dir, filepath.Join(dir, key+".req"), entry)
}

// RemoveRequest deletes a request cache entry that failed Check.
func RemoveRequest(dir, key string) { os.Remove(filepath.Join(dir, key+".req")) }

// Check confirms that prog is what p compiles to, as CompileCached checks
// a cached program: p's Key must be profileKey and prog must agree with
// p's evaluation on every syscall number and the argument edges.
func Check(p *Profile, profileKey string, prog []byte) error {
	if k := Key(p); k != profileKey {
		return fmt.Errorf("compiled from another profile (key %.12s, want %.12s)", profileKey, k)
	}
	return verify(p, prog)
}
