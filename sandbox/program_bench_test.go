package sandbox

import "testing"

func BenchmarkPrograms(b *testing.B) {
	h := fakeHost("/home/alice/src")
	p, _, err := Resolve(Options{Argv: []string{"make"}}, h)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Programs(p, 9); err != nil {
			b.Fatal(err)
		}
	}
}
