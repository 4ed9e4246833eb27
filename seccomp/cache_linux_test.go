package seccomp

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCompileCached(t *testing.T) {
	dir := t.TempDir()
	p := mustResolve(t, "default", Options{})
	want, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CompileCached(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("first CompileCached differs from Compile")
	}
	path := filepath.Join(dir, Key(p)+".bpf")
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cache file not written: %v", err)
	}
	if !bytes.Equal(onDisk, want) {
		t.Fatal("cache file differs from Compile")
	}
	// A tampered program (keyctl allowed: the first instruction now returns
	// ALLOW) must be detected and replaced.
	bad := slices.Clone(want)
	copy(bad, encode([]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}))
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = CompileCached(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("CompileCached used a tampered cache file")
	}
	if onDisk, _ = os.ReadFile(path); !bytes.Equal(onDisk, want) {
		t.Error("tampered cache file was not replaced")
	}
	// Another profile gets another key.
	q := mustResolve(t, "default", Options{IOUring: true})
	if Key(p) == Key(q) {
		t.Error("profiles with different rules share a cache key")
	}
}

func BenchmarkCompileCached(b *testing.B) {
	dir := b.TempDir()
	p, err := Resolve("default", Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := CompileCached(p, dir); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := CompileCached(p, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRequestCache: the request key changes with the profile, the options
// and the binary; an entry reads back as written; Check accepts the program
// its profile compiles to and refuses a tampered one or one of another
// profile.
func TestRequestCache(t *testing.T) {
	dir := t.TempDir()
	k := RequestKey("default", Options{}, "bin-1")
	for _, other := range []string{
		RequestKey("strict", Options{}, "bin-1"),
		RequestKey("default", Options{Allow: []string{"ptrace"}}, "bin-1"),
		RequestKey("default", Options{}, "bin-2"),
	} {
		if other == k {
			t.Errorf("request keys collide: %s", k)
		}
	}
	p := mustResolve(t, "default", Options{})
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadRequest(dir, k); err == nil {
		t.Fatal("ReadRequest of a missing entry succeeded")
	}
	WriteRequest(dir, k, Key(p), prog)
	got, pk, err := ReadRequest(dir, k)
	if err != nil || !bytes.Equal(got, prog) || pk != Key(p) {
		t.Fatalf("ReadRequest = %d bytes, %q, %v; want the program and %q", len(got), pk, err, Key(p))
	}
	if err := Check(p, pk, got); err != nil {
		t.Errorf("Check of the true program: %v", err)
	}
	bad := slices.Clone(prog)
	copy(bad, encode([]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}))
	if err := Check(p, pk, bad); err == nil {
		t.Error("Check accepted a program that allows everything")
	}
	strict := mustResolve(t, "strict", Options{})
	if err := Check(strict, pk, prog); err == nil {
		t.Error("Check accepted the default program for the strict profile")
	}
	RemoveRequest(dir, k)
	if _, _, err := ReadRequest(dir, k); err == nil {
		t.Error("the entry is still there after RemoveRequest")
	}
}
