package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzFiles are the only files a fuzzed policy can extend.
var fuzzFiles = memFS{
	"/fuzz/base.toml": "extends = \"default\"\n[limits]\npids = 10\n",
	"/fuzz/loop.toml": "extends = \"./f.toml\"\n",
}

// checkParse is the body of FuzzParse: Parse never panics; every error is a
// *PosError with a position; a policy survives Format → Parse with the same
// Hash and the same settings.
func checkParse(t *testing.T, data []byte) {
	env := testEnv(fuzzFiles)
	p, err := Parse("/fuzz/f.toml", data, env)
	if err != nil {
		var pe *PosError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse() error %v is a %T; want *PosError", err, err)
		}
		if pe.Line < 1 || pe.Col < 1 || pe.File == "" || pe.Msg == "" {
			t.Fatalf("Parse() error %q has no position: %#v", pe, pe)
		}
		return
	}
	text := Format(p)
	q, err := Parse("/fuzz/f.toml", text, env)
	if err != nil {
		t.Fatalf("Parse(Format(p)) = %v\ninput:\n%s\nformatted:\n%s", err, data, text)
	}
	if q.Hash != p.Hash {
		t.Fatalf("Parse(Format(p)).Hash = %s; want %s\n%s", q.Hash, p.Hash, text)
	}
	if diff := cmp.Diff(p, q, policyCmp); diff != "" {
		t.Fatalf("Parse(Format(p)) mismatch (-want +got):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range Builtins() {
		src, _ := BuiltinSource(n)
		f.Add(src)
	}
	paths, _ := filepath.Glob("testdata/*.toml")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(checkParse)
}

// TestParseCorpus runs the fuzz body over the stored corpus in
// testdata/fuzz/FuzzParse, the built-ins and testdata/*.toml, so that the
// seeds run in every `go test` and show up by name.
func TestParseCorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/fuzz/FuzzParse/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus in testdata/fuzz/FuzzParse: %v", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data, err := decodeCorpusFile(string(b))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			checkParse(t, data)
		})
	}
	for _, n := range Builtins() {
		t.Run("builtin-"+n, func(t *testing.T) {
			src, _ := BuiltinSource(n)
			checkParse(t, src)
		})
	}
}

// decodeCorpusFile reads the "go test fuzz v1" format with one []byte value.
func decodeCorpusFile(s string) ([]byte, error) {
	body, ok := strings.CutPrefix(s, "go test fuzz v1\n")
	if !ok {
		return nil, errors.New("not a go test fuzz v1 file")
	}
	body = strings.TrimSpace(body)
	inner, ok := strings.CutPrefix(body, "[]byte(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return nil, errors.New("want one []byte(...) value")
	}
	q, err := strconv.Unquote(strings.TrimSuffix(inner, ")"))
	if err != nil {
		return nil, err
	}
	return []byte(q), nil
}
