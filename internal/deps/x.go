package main
import (
 _ "github.com/coreos/go-systemd/v22/dbus"
 _ "github.com/godbus/dbus/v5"
 _ "golang.org/x/sys/unix"
 _ "github.com/spf13/pflag"
 _ "github.com/seccomp/libseccomp-golang"
 _ "github.com/pelletier/go-toml/v2"
 _ "github.com/moby/sys/mountinfo"
 _ "github.com/google/go-cmp/cmp"
)
func main(){}
