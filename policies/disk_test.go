package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadFromDisk uses the real file system (Env.ReadFile nil): a name on
// ConfigDirs, a path, and files that must be refused.
func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(conf, "web.toml"), "extends = \"net\"\n[network]\npublish = [\"8080:80\"]\n")
	write(filepath.Join(dir, "big.toml"), "# "+strings.Repeat("x", maxFileSize)+"\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := testEnv(nil)
	env.ReadFile, env.ConfigDirs, env.CWD = nil, []string{conf}, dir

	p, err := Load("web", env)
	if err != nil {
		t.Fatalf("Load(web) = %v", err)
	}
	if p.Source != filepath.Join(conf, "web.toml") || p.Network.Mode != "auto" || len(p.Network.Publish) != 1 {
		t.Errorf("Load(web) = source %q mode %q publish %v", p.Source, p.Network.Mode, p.Network.Publish)
	}
	if !p.IsSet("network.publish") || !p.IsSet("network.mode") || p.IsSet("limits.memory") || !p.IsSet("network") {
		t.Errorf("IsSet: publish %v mode %v memory %v network %v; want true true false true",
			p.IsSet("network.publish"), p.IsSet("network.mode"), p.IsSet("limits.memory"), p.IsSet("network"))
	}
	if _, err := Load("conf/web.toml", env); err != nil {
		t.Errorf("Load(conf/web.toml) relative to CWD = %v", err)
	}
	for _, tc := range []struct{ ref, msg string }{
		{"fifo.toml", "not a regular file"},
		{"big.toml", "is over 1048576 bytes"},
		{"missing.toml", "no such file or directory"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := Load(tc.ref, env)
			var pe *PosError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("Load(%s) = %v; want a *PosError containing %q", tc.ref, err, tc.msg)
			}
		})
	}
}
