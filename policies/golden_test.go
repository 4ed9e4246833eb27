package policies

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGolden resolves each testdata/*.toml and compares Format's output (and
// the origin of every set key), or the error, with testdata/NAME.golden.
// Files are served as /policies/NAME.toml so that relative extends work.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	files := memFS{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files["/policies/"+filepath.Base(p)] = string(b)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".toml")
		t.Run(name, func(t *testing.T) {
			env := testEnv(files)
			file := "/policies/" + name + ".toml"
			var got string
			pol, err := Parse(file, []byte(files[file]), env)
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				got = string(Format(pol)) + "\n# origins\n# " + strings.ReplaceAll(origins(pol), "\n", "\n# ") + "\n"
				assertRoundTrip(t, pol, env)
			}
			if strings.HasPrefix(name, "bad-") != (err != nil) {
				t.Errorf("Parse(%s) error = %v; files named bad-* must fail, others must not", file, err)
			}
			golden := strings.TrimSuffix(p, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
		})
	}
}
