package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// userBusAddress finds the systemd user manager's bus: $DBUS_SESSION_BUS_ADDRESS,
// else $XDG_RUNTIME_DIR/bus, else /run/user/UID/bus. For a unix:path= address
// the socket must exist, so a missing user manager is reported before dialing.
func userBusAddress(getenv func(string) string, uid int) (string, error) {
	if addr := getenv("DBUS_SESSION_BUS_ADDRESS"); addr != "" {
		if p, ok := strings.CutPrefix(addr, "unix:path="); ok {
			p, _, _ = strings.Cut(p, ",")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS names %s: %w", ErrNoUserBus, p, err)
			}
		}
		return addr, nil
	}
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = "/run/user/" + strconv.Itoa(uid)
	}
	p := dir + "/bus"
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s does not exist (no systemd user manager runs for uid %d; it starts with a login session, or always after loginctl enable-linger)", ErrNoUserBus, p, uid)
	}
	return "unix:path=" + p, nil
}

// scopeUnitName is the transient unit for a jail name.
func scopeUnitName(name string) string {
	if !strings.HasPrefix(name, "warden") {
		name = "warden-" + name
	}
	return name + ".scope"
}

// scopeProperties are the properties of the transient scope: it holds pid,
// and Delegate=yes hands its cgroup (directory, cgroup.procs,
// cgroup.subtree_control) to the user, which is the point of asking.
func scopeProperties(unit string, pid int) []sddbus.Property {
	return []sddbus.Property{
		sddbus.PropDescription("warden jail " + strings.TrimSuffix(unit, ".scope")),
		sddbus.PropPids(uint32(pid)),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		// Not ordered after anything: the scope must start now.
		{Name: "DefaultDependencies", Value: dbus.MakeVariant(false)},
		// A failed scope is garbage-collected too, so the name is free again.
		{Name: "CollectMode", Value: dbus.MakeVariant("inactive-or-failed")},
	}
}

// startScopeDBus asks the systemd user manager at addr for a transient scope.
// It authenticates with EXTERNAL as the real uid: it must run on the host
// side, since inside a user namespace uid 0 does not authenticate.
func startScopeDBus(ctx context.Context, addr, unit string, pid int) error {
	conn, err := sddbus.NewConnection(func() (*dbus.Conn, error) {
		c, err := dbus.Dial(addr, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.Hello(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return fmt.Errorf("connect to the systemd user manager at %s: %w", addr, err)
	}
	defer conn.Close()
	start := func() (string, error) {
		// Buffered: go-systemd's job listener blocks on an unread channel.
		ch := make(chan string, 1)
		if _, err := conn.StartTransientUnitContext(ctx, unit, "fail", scopeProperties(unit, pid), ch); err != nil {
			return "", err
		}
		select {
		case res := <-ch:
			return res, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	res, err := start()
	var derr dbus.Error
	if errors.As(err, &derr) && derr.Name == "org.freedesktop.systemd1.UnitExists" {
		// A failed unit of that name still exists: reset it and try once more.
		_ = conn.ResetFailedUnitContext(ctx, unit)
		res, err = start()
	}
	if err != nil {
		return fmt.Errorf("start transient scope %s: %w", unit, err)
	}
	if res != "done" {
		return fmt.Errorf("start transient scope %s: job %s", unit, res)
	}
	return nil
}
