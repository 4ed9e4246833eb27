package netns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeHelper writes an executable named name into dir that prints the
// captured --version and --help output of a real helper (the latter to
// stderr with exit status 1, as pasta does).
func fakeHelper(t *testing.T, dir, name, version, help string) {
	t.Helper()
	script := "#!/bin/sh\ncase \"$1\" in\n" +
		"--version) cat '" + version + "' ;;\n" +
		"--help) cat '" + help + "' >&2; exit 1 ;;\n" +
		"*) exit 2 ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDetect(t *testing.T) {
	pastaVer, pastaHelp := testdata(t, "pasta-2023_03_09.version"), testdata(t, "pasta-2023_03_09.help")
	slirpVer, slirpHelp := testdata(t, "slirp4netns-1.2.0.version"), testdata(t, "slirp4netns-1.2.0.help")
	newVer := filepath.Join(t.TempDir(), "new.version")
	if err := os.WriteFile(newVer, []byte("pasta 2024_06_24.1ee2eca\nCopyright Red Hat\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldHelp := filepath.Join(t.TempDir(), "old.help")
	if err := os.WriteFile(oldHelp, []byte("Usage: pasta [OPTION]... PID\n  -t, --tcp-ports SPEC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type bin struct{ name, version, help string }
	tests := []struct {
		name        string
		bins        []bin
		mode        Mode
		wantMode    Mode
		wantVersion string
		wantFlags   []string // a few that must be present
		wantErr     string
		wantHint    string
		wantMissing bool
	}{
		{name: "none needs nothing", mode: ModeNone, wantMode: ModeNone},
		{name: "empty is none", mode: "", wantMode: ModeNone},
		{name: "host needs nothing", mode: ModeHost, wantMode: ModeHost},
		{name: "pasta", bins: []bin{{"pasta", pastaVer, pastaHelp}}, mode: ModePasta, wantMode: ModePasta,
			wantVersion: "unknown", wantFlags: []string{"--no-map-gw", "--dns-forward", "--runas", "--tcp-ns", "--config-net"}},
		{name: "newer pasta version line", bins: []bin{{"pasta", newVer, pastaHelp}}, mode: ModePasta, wantMode: ModePasta,
			wantVersion: "2024_06_24.1ee2eca"},
		{name: "slirp4netns", bins: []bin{{"slirp4netns", slirpVer, slirpHelp}}, mode: ModeSlirp, wantMode: ModeSlirp,
			wantVersion: "1.2.0", wantFlags: []string{"--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", "--api-socket"}},
		{name: "auto prefers pasta", bins: []bin{{"pasta", pastaVer, pastaHelp}, {"slirp4netns", slirpVer, slirpHelp}},
			mode: ModeAuto, wantMode: ModePasta, wantVersion: "unknown"},
		{name: "auto falls back to slirp4netns", bins: []bin{{"slirp4netns", slirpVer, slirpHelp}},
			mode: ModeAuto, wantMode: ModeSlirp, wantVersion: "1.2.0"},
		{name: "auto with nothing", mode: ModeAuto, wantErr: "neither pasta nor slirp4netns",
			wantHint: "apt install passt", wantMissing: true},
		{name: "pasta missing", bins: []bin{{"slirp4netns", slirpVer, slirpHelp}}, mode: ModePasta,
			wantErr: "find pasta", wantHint: "apt install passt", wantMissing: true},
		{name: "slirp4netns missing", bins: []bin{{"pasta", pastaVer, pastaHelp}}, mode: ModeSlirp,
			wantErr: "find slirp4netns", wantHint: "apt install slirp4netns", wantMissing: true},
		{name: "pasta too old", bins: []bin{{"pasta", pastaVer, oldHelp}}, mode: ModePasta,
			wantErr: "does not list --config-net", wantHint: "too old"},
		{name: "unknown mode", mode: "vpnkit", wantErr: `unknown mode`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, b := range tt.bins {
				fakeHelper(t, dir, b.name, b.version, b.help)
			}
			t.Setenv("PATH", dir)
			mode, f, err := Detect(tt.mode)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect(%q) = %q, %v; want error containing %q", tt.mode, mode, err, tt.wantErr)
				}
				if got := errors.Is(err, ErrHelperNotFound); got != tt.wantMissing {
					t.Errorf("errors.Is(err, ErrHelperNotFound) = %v; want %v", got, tt.wantMissing)
				}
				var e *Error
				if tt.wantHint != "" && (!errors.As(err, &e) || !strings.Contains(e.Hint, tt.wantHint)) {
					t.Errorf("Detect(%q) error %v has hint %q; want one containing %q", tt.mode, err, hintOf(err), tt.wantHint)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect(%q): %v", tt.mode, err)
			}
			if mode != tt.wantMode || f.Version != tt.wantVersion {
				t.Errorf("Detect(%q) = %q, version %q; want %q, %q", tt.mode, mode, f.Version, tt.wantMode, tt.wantVersion)
			}
			if len(tt.bins) > 0 && f.Binary != filepath.Join(dir, string(tt.wantMode)) {
				t.Errorf("Binary = %q; want the one in %s", f.Binary, dir)
			}
			for _, flag := range tt.wantFlags {
				if !f.Has(flag) {
					t.Errorf("Features lack %s; have %v", flag, f.FlagList())
				}
			}
			if f.Has("--syslog") || f.Has("--send") {
				t.Errorf("flags parsed from syslog noise: %v", f.FlagList())
			}
		})
	}
}

func hintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		mode Mode
		in   string
		want string
	}{
		{ModePasta, "pasta unknown version\nCopyright Red Hat\n", "unknown"},
		{ModePasta, "pasta 2024_06_24.1ee2eca\n", "2024_06_24.1ee2eca"},
		{ModeSlirp, "slirp4netns version 1.2.0\ncommit: 656041d\n", "1.2.0"},
		{ModeSlirp, "something else\n", "unknown"},
		{ModePasta, "", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseVersion(tt.mode, []byte(tt.in)); got != tt.want {
				t.Errorf("parseVersion(%q, %q) = %q; want %q", tt.mode, tt.in, got, tt.want)
			}
		})
	}
}

func TestParseFlagsSlirpHelp(t *testing.T) {
	data, err := os.ReadFile(testdata(t, "slirp4netns-1.2.0.help"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--api-socket", "--cidr", "--configure", "--disable-dns", "--disable-host-loopback",
		"--enable-ipv6", "--enable-sandbox", "--enable-seccomp", "--exit-fd", "--help", "--macaddress", "--mtu",
		"--netns-type", "--outbound-addr", "--outbound-addr6", "--ready-fd", "--target-type", "--userns-path", "--version"}
	got := Features{Flags: parseFlags(data)}.FlagList()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseFlags(slirp4netns --help) mismatch (-want +got):\n%s", diff)
	}
}
