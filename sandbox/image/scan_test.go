package image

import (
	"archive/tar"
	"strings"
	"testing"
)

func TestScanner(t *testing.T) {
	type entry struct {
		name, link string
		typ        byte
	}
	reg := func(n string) entry { return entry{name: n, typ: tar.TypeReg} }
	sym := func(n, l string) entry { return entry{name: n, link: l, typ: tar.TypeSymlink} }
	hard := func(n, l string) entry { return entry{name: n, link: l, typ: tar.TypeLink} }
	cases := []struct {
		name    string
		entries []entry
		want    string // in the refusal of the last entry; "" = all accepted
	}{
		{"plain", []entry{{name: "./", typ: tar.TypeDir}, reg("./etc/passwd"), reg("a/b/c"), sym("bin", "/usr/bin"), hard("x", "a/b/c")}, ""},
		{"absolute symlink target is fine", []entry{sym("lib", "/usr/lib"), sym("up", "../..")}, ""},
		{"dots in names are fine", []entry{reg("a/..b"), reg("...")}, ""},
		{"symlink replaced by a dir", []entry{sym("d", "/etc"), {name: "d", typ: tar.TypeDir}, reg("d/x")}, ""},
		{"symlink whited out, then a dir", []entry{sym("d", "/etc"), reg(".wh.d"), {name: "d", typ: tar.TypeDir}, reg("d/x")}, ""},
		{"absolute", []entry{reg("/etc/passwd")}, "absolute path"},
		{"dotdot", []entry{reg("../x")}, `".." component`},
		{"dotdot inside", []entry{reg("a/../../x")}, `".." component`},
		{"trailing dotdot", []entry{{name: "a/..", typ: tar.TypeDir}}, `".." component`},
		{"hard link absolute", []entry{hard("x", "/etc/shadow")}, "absolute hard link target"},
		{"hard link dotdot", []entry{hard("x", "a/../../y")}, `hard link target with a ".." component`},
		{"hard link through symlink", []entry{sym("s", "/etc"), hard("x", "s/shadow")}, `hard link target "s/shadow" that goes through the symlink "s"`},
		{"symlink then write", []entry{sym("s", "/etc"), reg("s/passwd")}, `goes through the symlink "s"`},
		{"symlink then deep write", []entry{reg("a/f"), sym("a/s", "/"), reg("a/s/b/c")}, `goes through the symlink "a/s"`},
		{"symlink spelled differently", []entry{sym("./s", "/"), reg("s//x")}, `goes through the symlink "s"`},
		{"hard link to symlink then write", []entry{sym("s", "/"), hard("h", "s"), reg("h/x")}, `goes through the symlink "h"`},
		{"symlink then opaque", []entry{sym("s", "/"), reg("s/.wh..wh..opq")}, `goes through the symlink "s"`},
		{"empty name", []entry{reg("")}, "empty path"},
		{"whiteout of the parent", []entry{reg("a/.wh...")}, "whiteout"},
		{"whiteout of the top's parent", []entry{reg(".wh...")}, "whiteout"},
		{"whiteout of the directory itself", []entry{reg("a/.wh..")}, "whiteout"},
		{"whiteout of nothing", []entry{reg("a/.wh.")}, "whiteout"},
		{"opaque whiteout is fine", []entry{reg("a/.wh..wh..opq"), reg(".wh..wh..opq"), reg("a/.wh..x")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := newScanner()
			for i, e := range c.entries {
				_, why := sc.check(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ})
				last := i == len(c.entries)-1
				switch {
				case why != "" && !last:
					t.Fatalf("entry %d (%q) refused: %s", i, e.name, why)
				case last && c.want == "" && why != "":
					t.Fatalf("entry %q refused: %s; want it accepted", e.name, why)
				case last && c.want != "" && !strings.Contains(why, c.want):
					t.Fatalf("entry %q: refusal %q; want one saying %q", e.name, why, c.want)
				}
			}
		})
	}
}

func TestScannerSkipsDevices(t *testing.T) {
	sc := newScanner()
	for _, typ := range []byte{tar.TypeChar, tar.TypeBlock, tar.TypeXGlobalHeader} {
		if skip, why := sc.check(&tar.Header{Name: "dev/x", Typeflag: typ}); !skip || why != "" {
			t.Errorf("type %q: skip %v, %q; want skipped", typ, skip, why)
		}
	}
	if skip, _ := sc.check(&tar.Header{Name: "dev/fifo", Typeflag: tar.TypeFifo}); skip {
		t.Errorf("a fifo is skipped; want it unpacked")
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                          "busybox:latest",
		"busybox:1.36":                     "busybox:1.36",
		"docker.io/library/busybox:latest": "busybox:latest",
		"docker.io/me/tool":                "me/tool:latest",
		"localhost/mine:2":                 "mine:2",
		"registry:5000/team/app":           "registry:5000/team/app:latest",
		"quay.io/a/b@sha256:" + hex64("1"): "quay.io/a/b@sha256:" + hex64("1"),
		"example.org/two:1":                "example.org/two:1",
		"index.docker.io/library/alpine:3": "alpine:3",
	} {
		if got, err := normalizeName(in); err != nil || got != want {
			t.Errorf("normalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "./x", "/x", "sha256:" + hex64("a"), hex64("b")} {
		if got, err := normalizeName(bad); err == nil {
			t.Errorf("normalizeName(%q) = %q; want an error", bad, got)
		}
	}
}

func hex64(c string) string { return strings.Repeat(c, 64) }

func TestErrorIsOneLine(t *testing.T) {
	err := errorf("./x.tar", BadFormat, "what\nis wrong", "do this", errorString("cause\r\nline 2"))
	want := "image ./x.tar: what is wrong: cause line 2; do this"
	if err.Error() != want {
		t.Errorf("Error() = %q; want %q", err.Error(), want)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
