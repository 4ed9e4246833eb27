package netns

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/argv/*.golden")

func realFeatures(t *testing.T, mode Mode) Features {
	t.Helper()
	name := map[Mode]string{ModePasta: "pasta-2023_03_09", ModeSlirp: "slirp4netns-1.2.0"}[mode]
	help, err := os.ReadFile(testdata(t, name+".help"))
	if err != nil {
		t.Fatal(err)
	}
	return Features{Binary: "/usr/bin/" + string(mode), Version: "test", Flags: parseFlags(dropSyslogNoise(help))}
}

func without(f Features, flags ...string) Features {
	g := Features{Binary: f.Binary, Version: f.Version, Flags: map[string]bool{}}
	for k := range f.Flags {
		g.Flags[k] = true
	}
	for _, k := range flags {
		delete(g.Flags, k)
	}
	return g
}

// TestHelperArgv checks the command line built for each helper against
// golden files (one argument per line; go test -update rewrites them).
func TestHelperArgv(t *testing.T) {
	pasta, slirp := realFeatures(t, ModePasta), realFeatures(t, ModeSlirp)
	web := Port{HostIP: "127.0.0.1", HostPort: 8080, JailPort: 80, Proto: "tcp"}
	dns := Port{HostIP: "0.0.0.0", HostPort: 53, JailPort: 53, Proto: "udp"}
	dnsRemap := Port{HostIP: "0.0.0.0", HostPort: 5353, JailPort: 53, Proto: "udp"}
	v6 := Port{HostIP: "::1", HostPort: 8443, JailPort: 443, Proto: "tcp"}
	const pid, sock = 4242, "/run/user/1000/warden/j1/slirp4netns.sock"
	tests := []struct {
		name         string
		mode         Mode
		f            Features
		o            Options
		euid         int
		wantErr      string
		wantWarnings int
	}{
		{name: "pasta-default", mode: ModePasta, f: pasta, euid: 1000},
		{name: "pasta-root", mode: ModePasta, f: pasta, euid: 0},
		{name: "pasta-publish-loopback", mode: ModePasta, f: pasta, euid: 1000,
			o: Options{Publish: []Port{web, dns, v6}, AllowHostLoopback: true, MTU: 1500}},
		{name: "pasta-no-map-gw-missing", mode: ModePasta, f: without(pasta, "--no-map-gw"), euid: 1000,
			wantErr: "does not support --no-map-gw"},
		{name: "pasta-no-map-gw-missing-but-allowed", mode: ModePasta, f: without(pasta, "--no-map-gw"), euid: 1000,
			o: Options{AllowHostLoopback: true}},
		{name: "pasta-root-no-runas", mode: ModePasta, f: without(pasta, "--runas"), euid: 0,
			wantErr: "does not support --runas"},
		{name: "pasta-udp-remap-old", mode: ModePasta, f: pasta, euid: 1000, o: Options{Publish: []Port{dnsRemap}},
			wantErr: "loses the replies"},
		{name: "pasta-udp-remap-new", mode: ModePasta, f: Features{Binary: pasta.Binary, Version: "2024_06_24.1ee2eca", Flags: pasta.Flags},
			euid: 1000, o: Options{Publish: []Port{dnsRemap}}},
		{name: "slirp4netns-default", mode: ModeSlirp, f: slirp},
		{name: "slirp4netns-udp-blocked-loopback", mode: ModeSlirp, f: slirp, o: Options{Publish: []Port{dns}},
			wantErr: "cannot answer published UDP"},
		{name: "slirp4netns-publish-loopback", mode: ModeSlirp, f: slirp,
			o: Options{Publish: []Port{web, dns}, AllowHostLoopback: true, MTU: 1500}},
		{name: "slirp4netns-no-sandbox", mode: ModeSlirp, f: without(slirp, "--enable-sandbox", "--enable-seccomp"),
			wantWarnings: 1},
		{name: "slirp4netns-ipv6-publish", mode: ModeSlirp, f: slirp, o: Options{Publish: []Port{v6}},
			wantErr: "only IPv4"},
		{name: "slirp4netns-no-disable-host-loopback", mode: ModeSlirp, f: without(slirp, "--disable-host-loopback"),
			wantErr: "does not support --disable-host-loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p plan
			var err error
			if tt.mode == ModePasta {
				p, err = pastaPlan(tt.f, pid, tt.o, tt.euid, tt.euid)
			} else {
				p, err = slirpPlan(tt.f, pid, tt.o, sock)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("plan = %q, %v; want error containing %q", p.argv, err, tt.wantErr)
				}
				if hintOf(err) == "" {
					t.Errorf("error %v has no hint", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.warnings) != tt.wantWarnings {
				t.Errorf("warnings = %v; want %d", p.warnings, tt.wantWarnings)
			}
			got := strings.Join(p.argv, "\n") + "\n"
			golden := filepath.Join("testdata", "argv", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("argv mismatch (-%s +got):\n%s", golden, diff)
			}
		})
	}
}

// TestHostLoopbackFlags states the safety rule independently of the golden
// files: unless allowed, pasta gets --no-map-gw and -T/-U none, and
// slirp4netns --disable-host-loopback.
func TestHostLoopbackFlags(t *testing.T) {
	pasta, slirp := realFeatures(t, ModePasta), realFeatures(t, ModeSlirp)
	for _, allow := range []bool{false, true} {
		o := Options{AllowHostLoopback: allow}
		p, err := pastaPlan(pasta, 1, o, 1000, 1000)
		if err != nil {
			t.Fatal(err)
		}
		argv := strings.Join(p.argv, " ")
		if got := strings.Contains(argv, "--no-map-gw"); got == allow {
			t.Errorf("allow=%v: pasta argv %q has --no-map-gw = %v", allow, argv, got)
		}
		if !strings.Contains(argv, "-T none -U none") {
			t.Errorf("allow=%v: pasta argv %q lacks -T none -U none", allow, argv)
		}
		if !strings.Contains(argv, "-t none -u none") {
			t.Errorf("allow=%v: pasta argv %q publishes by default", allow, argv)
		}
		s, err := slirpPlan(slirp, 1, o, "/x.sock")
		if err != nil {
			t.Fatal(err)
		}
		argv = strings.Join(s.argv, " ")
		if got := strings.Contains(argv, "--disable-host-loopback"); got == allow {
			t.Errorf("allow=%v: slirp4netns argv %q has --disable-host-loopback = %v", allow, argv, got)
		}
	}
}
