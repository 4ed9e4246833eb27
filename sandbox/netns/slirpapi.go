package netns

import (
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// slirpAddHostfwd asks slirp4netns, through its API socket, to forward
// p.HostIP:p.HostPort on the host to p.JailPort on the jail's address.
func slirpAddHostfwd(socket string, p Port) error {
	type args struct {
		Proto     string `json:"proto"`
		HostAddr  string `json:"host_addr"`
		HostPort  int    `json:"host_port"`
		GuestAddr string `json:"guest_addr"`
		GuestPort int    `json:"guest_port"`
	}
	req := struct {
		Execute   string `json:"execute"`
		Arguments args   `json:"arguments"`
	}{"add_hostfwd", args{p.Proto, p.HostIP, p.HostPort, slirpJailIP, p.JailPort}}
	var resp struct {
		Return *struct {
			ID int `json:"id"`
		} `json:"return"`
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect slirp4netns api %s: %w", socket, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return fmt.Errorf("slirp4netns api: %w", err)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("slirp4netns api add_hostfwd: %w", err)
	}
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return fmt.Errorf("slirp4netns api add_hostfwd: read reply: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("slirp4netns api add_hostfwd: %s", resp.Error.Desc)
	}
	if resp.Return == nil {
		return fmt.Errorf("slirp4netns api add_hostfwd: reply has neither return nor error")
	}
	return nil
}
