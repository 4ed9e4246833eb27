package seccomp

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// byteSource turns fuzz input into choices; it yields zeros when exhausted.
type byteSource struct{ b []byte }

func (s *byteSource) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *byteSource) u64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = s.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

var (
	fuzzSyscalls = []string{"read", "write", "ioctl", "socket", "clone", "personality", "keyctl", "mseal"}
	fuzzValues   = []uint64{0, 1, 8, 40, unix.TIOCSTI, 0xffffffff, 1 << 32, 1<<32 | unix.TIOCSTI, ^uint64(0), nsFlags, 0x8000000000000000}
	fuzzActions  = []Action{Allow, eperm, Errno(unix.EACCES), Errno(unix.ENOSYS), KillProcess, {Kind: ActLog}, {Kind: ActTrap}}
)

func (s *byteSource) value() uint64 {
	c := s.byte()
	if int(c) < len(fuzzValues)*2 {
		return fuzzValues[int(c)%len(fuzzValues)]
	}
	return s.u64()
}

// fuzzProfile builds a profile from fuzz input.
func fuzzProfile(s *byteSource) *Profile {
	p := &Profile{Name: "fuzz", DefaultAction: fuzzActions[int(s.byte())%len(fuzzActions)], Audit: s.byte()%4 == 0}
	n := int(s.byte() % 12)
	for range n {
		r := Rule{Syscall: fuzzSyscalls[int(s.byte())%len(fuzzSyscalls)], Action: fuzzActions[int(s.byte())%len(fuzzActions)]}
		for range int(s.byte() % 4) {
			c := Arg{Index: s.byte() % 6, Op: Op(1 + s.byte()%7), Value: s.value()}
			if c.Op == OpMaskedEq {
				c.ValueTwo = s.value()
				if s.byte()%2 == 0 {
					c.ValueTwo &= c.Value // usually satisfiable
				}
			}
			r.Args = append(r.Args, c)
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// probesFor returns syscall data that exercise the edges of p's conditions.
func probesFor(t testing.TB, p *Profile, s *byteSource) []Data {
	native, err := NativeArch()
	if err != nil {
		t.Skip(err)
	}
	var out []Data
	for _, r := range p.Rules {
		nr, kind := syscallNr(r.Syscall)
		if kind != nameNative {
			continue
		}
		base := Data{Arch: native, Nr: nr}
		out = append(out, base)
		var all Data = base
		for _, c := range r.Args {
			for _, v := range []uint64{c.Value, c.Value + 1, c.Value - 1, c.ValueTwo, c.ValueTwo | ^c.Value, c.Value ^ 1<<32, c.ValueTwo ^ 1<<32} {
				d := base
				d.Args[c.Index] = v
				out = append(out, d)
			}
			all.Args[c.Index] = c.Value
			if c.Op == OpMaskedEq {
				all.Args[c.Index] = c.ValueTwo
			}
		}
		out = append(out, all)
		d := base
		for i := range d.Args {
			d.Args[i] = s.value()
		}
		out = append(out, d)
	}
	out = append(out,
		Data{Arch: native, Nr: 1000},
		Data{Arch: native, Nr: -1},
		Data{Arch: native, Nr: x32Bit},
		Data{Arch: native ^ 1, Nr: 0},
		Data{Arch: native, Nr: 39}, // getpid: not in the pool, below the highest
	)
	return out
}

// checkCompile is the body of FuzzCompile: the compiled program must give
// the same verdict as the Go evaluation of the profile (Decide+Effective).
func checkCompile(t *testing.T, data []byte) {
	requireAMD64(t)
	s := &byteSource{b: data}
	p := fuzzProfile(s)
	prog, err := Compile(p)
	if err != nil {
		if strings.Contains(err.Error(), "two unconditional rules") {
			return // a documented refusal
		}
		t.Fatalf("Compile(%+v): %v", p, err)
	}
	for _, d := range probesFor(t, p, s) {
		want, err := p.Decide(d)
		if err != nil {
			t.Fatal(err)
		}
		want = p.Effective(want)
		if got := runProg(t, prog, d); got != want {
			pfc, _ := ExportPFC(p)
			t.Fatalf("profile %+v\ndata %+v: BPF says %s, Decide says %s\n%s", p, d, got, want, pfc)
		}
	}
}

func FuzzCompile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 3, 2, 1, 1, 1, 6, 4, 2, 0, 0, 0, 0})                            // ioctl override of an allow
	f.Add([]byte{0, 0, 4, 4, 0, 1, 0, 7, 18, 0, 4, 1, 0, 0, 4, 2, 2, 0, 1, 0, 0})      // clone masks, several rules
	f.Add([]byte{3, 1, 6, 5, 1, 2, 0, 3, 2, 0, 4, 3, 5, 5, 5, 1, 2, 5, 4, 9, 6, 2, 3}) // personality ranges, audit
	f.Add([]byte{2, 2, 11, 7, 2, 0, 3, 0, 2, 1, 1, 5, 4, 0, 2, 3, 3, 3, 7, 8, 9, 10})
	f.Fuzz(checkCompile)
}

// TestCompileRandomProfiles runs the differential check over many random
// profiles in every `go test` (the fuzzer explores further with -fuzz).
func TestCompileRandomProfiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		data := make([]byte, 96)
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		t.Run("", func(t *testing.T) {
			_ = i
			checkCompile(t, data)
		})
	}
}
