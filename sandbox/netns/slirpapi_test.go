package netns

import (
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSlirpAPI serves one slirp4netns API socket: each request is decoded
// into got and answered with reply ("" never answers).
func fakeSlirpAPI(t *testing.T, reply string) (string, chan map[string]any) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan map[string]any, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req map[string]any
		if json.NewDecoder(c).Decode(&req) == nil {
			got <- req
		}
		if reply == "" {
			io.Copy(io.Discard, c) // hold the connection, say nothing
			time.Sleep(time.Minute)
			return
		}
		io.WriteString(c, reply)
	}()
	return sock, got
}

// TestSlirpAddHostfwd: the add_hostfwd request carries the port and the
// jail's address; slirp4netns's error, and its silence, become errors that
// name the port.
func TestSlirpAddHostfwd(t *testing.T) {
	p := Port{HostIP: "127.0.0.1", HostPort: 18080, JailPort: 80, Proto: "tcp"}

	sock, got := fakeSlirpAPI(t, `{"return":{"id":1}}`)
	if err := slirpAddHostfwd(sock, p); err != nil {
		t.Fatalf("slirpAddHostfwd: %v", err)
	}
	req := <-got
	args, _ := req["arguments"].(map[string]any)
	if req["execute"] != "add_hostfwd" || args["proto"] != "tcp" || args["host_addr"] != "127.0.0.1" ||
		args["host_port"] != 18080.0 || args["guest_addr"] != slirpJailIP || args["guest_port"] != 80.0 {
		t.Errorf("request %v; want add_hostfwd tcp 127.0.0.1:18080 -> %s:80", req, slirpJailIP)
	}

	sock, _ = fakeSlirpAPI(t, `{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}`)
	if err := slirpAddHostfwd(sock, p); err == nil || !strings.Contains(err.Error(), "slirp_add_hostfwd failed") || !strings.Contains(err.Error(), "127.0.0.1:18080:80/tcp") {
		t.Errorf("refused: err %v; want slirp4netns's reason and the port", err)
	}

	defer func(d time.Duration) { slirpAPITimeout = d }(slirpAPITimeout)
	slirpAPITimeout = 200 * time.Millisecond
	sock, _ = fakeSlirpAPI(t, "")
	if err := slirpAddHostfwd(sock, p); err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Errorf("silent API: err %v; want a timeout", err)
	}
}
