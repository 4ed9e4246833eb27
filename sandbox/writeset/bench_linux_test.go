package writeset

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkDiff: an upper of 10k files in 100 directories, over a lower
// that has none of them (created), or all of them with the same 4 KiB
// content (copied up without change: every file is read on both sides).
func BenchmarkDiff(b *testing.B) {
	for _, copyUps := range []bool{false, true} {
		name := map[bool]string{false: "created-10k", true: "copied-up-10k-4KiB"}[copyUps]
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			L, U := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
			mkdir(b, L, ".", 0o755)
			mkdir(b, U, ".", 0o755)
			content := strings.Repeat("x", 4096)
			for d := 0; d < 100; d++ {
				for f := 0; f < 100; f++ {
					rel := fmt.Sprintf("d%02d/f%02d", d, f)
					mkfile(b, U, rel, content, 0o644)
					if copyUps {
						mkfile(b, L, rel, content, 0o644)
					}
				}
				mkdir(b, U, fmt.Sprintf("d%02d", d), 0o755)
				if copyUps {
					mkdir(b, L, fmt.Sprintf("d%02d", d), 0o755)
				}
			}
			mkfile(b, L, "other/file", "x", 0o644)
			fd := openDir(b, U)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := Diff(fd, []string{L})
				if err != nil {
					b.Fatal(err)
				}
				want := 10100
				if copyUps {
					want = 0
				}
				if n := len(s.Created) + len(s.Modified) + len(s.Deleted); n != want {
					b.Fatalf("%d entries, want %d", n, want)
				}
			}
		})
	}
}
