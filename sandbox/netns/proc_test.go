package netns

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNetDev(t *testing.T) {
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	tests := []struct {
		name           string
		in             string
		wantRx, wantTx uint64
		wantErr        string
	}{
		{name: "lo only", in: header + "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"},
		{name: "tap and lo", in: header +
			"    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n" +
			"  tap0: 1073741824  9000    0    0    0     0          0         0   524288      70    0    0    0     0       0          0\n",
			wantRx: 1 << 30, wantTx: 1 << 19},
		{name: "two interfaces", in: header +
			"  eth0:      10       1    0    0    0     0          0         0       20       1    0    0    0     0       0          0\n" +
			"  eth1:       1       1    0    0    0     0          0         0        2       1    0    0    0     0       0          0\n",
			wantRx: 11, wantTx: 22},
		{name: "truncated", in: header + "  eth0: 10 1 0\n", wantErr: "fields"},
		{name: "garbage", in: header + "  eth0 10 1 0\n", wantErr: "no interface name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rx, tx, err := parseNetDev([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseNetDev = %d, %d, %v; want error %q", rx, tx, err, tt.wantErr)
				}
				return
			}
			if err != nil || rx != tt.wantRx || tx != tt.wantTx {
				t.Errorf("parseNetDev = %d, %d, %v; want %d, %d", rx, tx, err, tt.wantRx, tt.wantTx)
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	const route4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\tFE01D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	if got := parseRoute4([]byte(route4)); got != "10.213.1.254" {
		t.Errorf("parseRoute4 = %q; want 10.213.1.254", got)
	}
	noDefault := "Iface\tDestination\tGateway\n" + "eth0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	if got := parseRoute4([]byte(noDefault)); got != "" {
		t.Errorf("parseRoute4 without default = %q; want empty", got)
	}
	zeros := strings.Repeat("0", 32)
	route6 := zeros + " 00 " + zeros + " 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"
	lo6 := zeros + " 00 " + zeros + " 00 " + zeros + " ffffffff 00000001 00000000 00200200 lo\n"
	if !hasDefault6([]byte(route6)) || hasDefault6([]byte(lo6)) {
		t.Errorf("hasDefault6: eth0 default = %v, lo unreachable default = %v; want true, false",
			hasDefault6([]byte(route6)), hasDefault6([]byte(lo6)))
	}
}

func TestListeningPorts(t *testing.T) {
	const tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 100 0 0 10 0\n"
	want := map[int]bool{8080: true}
	if diff := cmp.Diff(want, listeningPorts([]byte(tcp))); diff != "" {
		t.Errorf("listeningPorts mismatch (-want +got):\n%s", diff)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("Failed to send 51 bytes to syslog\n"))
	b.Write([]byte("0123456789"))
	if got := b.String(); got != "23456789" {
		t.Errorf("tailBuffer = %q; want the last 8 bytes", got)
	}
	c := &tailBuffer{max: 4096}
	c.Write([]byte("Failed to send 51 bytes to syslog\nNo routable interface\n"))
	if got := c.String(); got != "No routable interface\n" {
		t.Errorf("tailBuffer = %q; want syslog noise dropped", got)
	}
}

func TestStartHint(t *testing.T) {
	tests := []struct{ stderr, want string }{
		{"Failed to open tun socket in namespace", "chmod 0666 /dev/net/tun"},
		{"Couldn't open user namespace /proc/1/ns/user: Permission denied", "jail's namespaces"},
		{"No routable interface for IPv4", "--net slirp4netns"},
		{"something else", "pasta --help"},
	}
	for _, tt := range tests {
		if got := startHint(ModePasta, tt.stderr); !strings.Contains(got, tt.want) {
			t.Errorf("startHint(%q) = %q; want it to contain %q", tt.stderr, got, tt.want)
		}
	}
}
