package bpfeval

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestRun(t *testing.T) {
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	d := Data{Nr: 39, Arch: 0xc000003e, Args: [6]uint64{0x1_0000_0002}}
	tests := []struct {
		name    string
		prog    []unix.SockFilter
		want    uint32
		wantErr bool
	}{
		{"nr equal", []unix.SockFilter{ld(0), jeq(39, 0, 1), ret(1), ret(2)}, 1, false},
		{"nr differs", []unix.SockFilter{ld(0), jeq(40, 0, 1), ret(1), ret(2)}, 2, false},
		{"arch", []unix.SockFilter{ld(4), jeq(0xc000003e, 0, 1), ret(1), ret(2)}, 1, false},
		{"arg0 low word (native endian)", []unix.SockFilter{ld(16), jeq(2, 0, 1), ret(1), ret(2)}, 1, false},
		{"arg0 high word", []unix.SockFilter{ld(20), jeq(1, 0, 1), ret(1), ret(2)}, 1, false},
		{"and mask", []unix.SockFilter{ld(16), {Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0xfe}, jeq(2, 0, 1), ret(1), ret(2)}, 1, false},
		{"ja", []unix.SockFilter{{Code: unix.BPF_JMP | unix.BPF_JA, K: 1}, ret(1), ret(2)}, 2, false},
		{"ret A", []unix.SockFilter{ld(0), {Code: unix.BPF_RET | unix.BPF_A}}, 39, false},
		{"load out of bounds", []unix.SockFilter{ld(64), ret(1)}, 0, true},
		{"unaligned load", []unix.SockFilter{ld(2), ret(1)}, 0, true},
		{"jump past end", []unix.SockFilter{ld(0), jeq(39, 5, 0), ret(1)}, 0, true},
		{"no return", []unix.SockFilter{ld(0)}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Run(tc.prog, d)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Run error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("Run = %d, want %d", got, tc.want)
			}
		})
	}
}
