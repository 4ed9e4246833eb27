package netns

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	rkslirp "github.com/rootless-containers/rootlesskit/v3/pkg/port/slirp4netns"
)

// slirpAPITimeout bounds one call to slirp4netns's API socket: rootlesskit's
// client takes a context but does not watch it.
var slirpAPITimeout = 5 * time.Second

// slirpAddHostfwd asks slirp4netns, through its API socket, to forward
// p.HostIP:p.HostPort on the host to p.JailPort on the jail's address, with
// rootlesskit's slirp4netns port driver (its add_hostfwd client).
func slirpAddHostfwd(socket string, p Port) error {
	d, err := rkslirp.NewParentDriver(io.Discard, socket)
	if err != nil {
		return fmt.Errorf("slirp4netns api: %w", err)
	}
	spec := port.Spec{Proto: p.Proto, ParentIP: p.HostIP, ParentPort: p.HostPort, ChildIP: slirpJailIP, ChildPort: p.JailPort}
	ctx, cancel := context.WithTimeout(context.Background(), slirpAPITimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := d.AddPort(ctx, spec)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The call ends when the helper is stopped and its socket closes.
		err = fmt.Errorf("no reply in %s", slirpAPITimeout)
	}
	if err != nil {
		return fmt.Errorf("slirp4netns api add_hostfwd %s (socket %s): %w", p, socket, err)
	}
	return nil
}
