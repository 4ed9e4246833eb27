package seccomp

import "testing"

func BenchmarkCompile(b *testing.B) {
	for _, name := range []string{"default", "strict"} {
		b.Run(name, func(b *testing.B) {
			p, err := Resolve(name, Options{})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Compile(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("resolve+compile default", func(b *testing.B) {
		for b.Loop() {
			p, err := Resolve("default", Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Compile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
