package netns

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    Port
		wantErr string
	}{
		{in: "8080:80", want: Port{HostIP: "127.0.0.1", HostPort: 8080, JailPort: 80, Proto: "tcp"}},
		{in: "8080:80/udp", want: Port{HostIP: "127.0.0.1", HostPort: 8080, JailPort: 80, Proto: "udp"}},
		{in: "0.0.0.0:8080:80/tcp", want: Port{HostIP: "0.0.0.0", HostPort: 8080, JailPort: 80, Proto: "tcp"}},
		{in: "10.1.2.3:1:65535", want: Port{HostIP: "10.1.2.3", HostPort: 1, JailPort: 65535, Proto: "tcp"}},
		{in: "[::1]:8080:80", want: Port{HostIP: "::1", HostPort: 8080, JailPort: 80, Proto: "tcp"}},
		{in: "[fd00::2]:53:53/udp", want: Port{HostIP: "fd00::2", HostPort: 53, JailPort: 53, Proto: "udp"}},
		{in: "8080", wantErr: "want [HOSTIP:]HOSTPORT:JAILPORT"},
		{in: "1:2:3:4", wantErr: "want [HOSTIP:]HOSTPORT:JAILPORT"},
		{in: "8080:80/sctp", wantErr: `protocol "sctp"`},
		{in: "0:80", wantErr: "host port"},
		{in: "8080:65536", wantErr: "jail port"},
		{in: "8080:-1", wantErr: "jail port"},
		{in: "localhost:8080:80", wantErr: "not an IP address"},
		{in: "::1:8080:80", wantErr: "want [HOSTIP:]HOSTPORT:JAILPORT"},
		{in: "[::1:8080:80", wantErr: "unterminated"},
		{in: "[1.2.3.4]:8080:80", wantErr: "IPv6 addresses only"},
		{in: "[fe80::1%eth0]:8080:80", wantErr: "zones"},
		{in: "", wantErr: "want [HOSTIP:]HOSTPORT:JAILPORT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePort(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePort(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePort(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePort(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			// String renders what ParsePort reads.
			again, err := ParsePort(got.String())
			if err != nil || again != got {
				t.Errorf("ParsePort(%q.String() = %q) = %v, %v; want %v", tt.in, got.String(), again, err, got)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	p := Port{HostIP: "127.0.0.1", HostPort: 8080, JailPort: 80, Proto: "tcp"}
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{name: "zero value is none", o: Options{}},
		{name: "pasta publish", o: Options{Mode: ModePasta, Publish: []Port{p}}},
		{name: "auto loopback", o: Options{Mode: ModeAuto, AllowHostLoopback: true, MTU: 1500}},
		{name: "bad mode", o: Options{Mode: "bridge"}, wantErr: `network mode "bridge"`},
		{name: "publish without helper", o: Options{Publish: []Port{p}}, wantErr: "not none"},
		{name: "publish host", o: Options{Mode: ModeHost, Publish: []Port{p}}, wantErr: "not host"},
		{name: "loopback none", o: Options{AllowHostLoopback: true}, wantErr: "allow_host_loopback"},
		{name: "duplicate", o: Options{Mode: ModeSlirp, Publish: []Port{p, p}}, wantErr: "given twice"},
		{name: "same port other proto", o: Options{Mode: ModeSlirp, Publish: []Port{p, {HostIP: "127.0.0.1", HostPort: 8080, JailPort: 80, Proto: "udp"}}}},
		{name: "bad port", o: Options{Mode: ModeSlirp, Publish: []Port{{HostIP: "x", HostPort: 1, JailPort: 1, Proto: "tcp"}}}, wantErr: "not an IP"},
		{name: "mtu", o: Options{Mode: ModePasta, MTU: 100}, wantErr: "mtu 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v; want error containing %q", err, tt.wantErr)
			}
		})
	}
}
