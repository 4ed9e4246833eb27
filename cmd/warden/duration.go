//go:build linux

package main

import (
	"time"

	"github.com/warden-sandbox/warden/sandbox"
)

func parseDuration(flag, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, sandbox.Usagef("%s %q: not a positive duration; use e.g. 30s, 10m, 1h30m", flag, s)
	}
	return d, nil
}
