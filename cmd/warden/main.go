//go:build linux

package main

import (
	"fmt"

	seccomp "github.com/seccomp/libseccomp-golang"
)

func main() {
	a, b, c := seccomp.GetLibraryVersion()
	fmt.Println(a, b, c)
}
