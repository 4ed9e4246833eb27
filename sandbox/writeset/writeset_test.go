package writeset

import (
	"encoding/json"
	"strings"
	"testing"
)

var sample = Set{
	Created: []Entry{
		{Path: "/a/new\ndir", Kind: Created, Type: TypeDir},
		{Path: "/a/new.txt", Kind: Created, Type: TypeFile, Size: 12},
		{Path: "/a/z\u202etxt.exe", Kind: Created, Type: TypeFile, Size: 12 << 10},
	},
	Modified: []Entry{
		{Path: "/a/changed", Kind: Modified, Type: TypeFile, Size: 4096, Detail: DetailContent},
		{Path: "/a/d", Kind: Modified, Type: TypeDir, Detail: DetailMode},
		{Path: "/a/m", Kind: Modified, Type: TypeFile, Size: 1 << 30, Detail: DetailMode},
		{Path: "/b", Kind: Modified, Type: TypeSymlink, Detail: DetailType},
	},
	Deleted: []Entry{
		{Path: "/a/gone", Kind: Deleted, Type: TypeFile, Size: 3},
		{Path: "/a/tree", Kind: Deleted, Type: TypeDir, Size: 1536 << 10},
		{Path: "/a/x\xff", Kind: Deleted, Type: TypeSymlink},
	},
}

func TestSummary(t *testing.T) {
	// Written: created files and content changes, not mode changes.
	if got, want := sample.Summary(), "3 created, 4 modified, 3 deleted (16.0 KiB written)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if got, want := (Set{}).Summary(), "0 created, 0 modified, 0 deleted (0 B written)"; got != want {
		t.Errorf("empty Summary() = %q, want %q", got, want)
	}
}

func TestWrite(t *testing.T) {
	var b strings.Builder
	sample.Write(&b, "/src/")
	want := `~ /src/a/changed (content, 4.0 KiB)
~ /src/a/d (mode, dir)
- /src/a/gone (file, 3 B)
~ /src/a/m (mode, 1.0 GiB)
+ "/src/a/new\ndir" (dir)
+ /src/a/new.txt (12 B)
- /src/a/tree (dir, 1.5 MiB)
- "/src/a/x\xff" (symlink)
+ "/src/a/z\u202etxt.exe" (12.0 KiB)
~ /src/b (type, symlink)
`
	if got := b.String(); got != want {
		t.Errorf("Write:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	(Set{Created: []Entry{{Path: "/x", Kind: Created, Type: TypeOther}}}).Write(&b, "")
	if got := b.String(); got != "+ /x (other)\n" {
		t.Errorf("Write with no root: %q", got)
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Set{Created: []Entry{{Path: "/a", Kind: Created, Type: TypeFile, Size: 1}}, Modified: []Entry{}, Deleted: []Entry{}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"created":[{"path":"/a","kind":"created","type":"file","size":1}],"modified":[],"deleted":[]}`
	if string(b) != want {
		t.Errorf("JSON %s\nwant %s", b, want)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 1 << 40: "1.0 TiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
