// Command mkimage writes the test image busybox:latest (two layers built
// from Debian's busybox-static, the second deleting /etc/motd with a
// whiteout) as a docker-save tarball or an OCI layout, for benchmarks and
// manual tries: go run ./scripts/mkimage -format docker busybox.tar
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

func main() {
	format := flag.String("format", imagetest.Docker, "docker, docker-gz, oci or oci-zstd")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkimage [-format F] DEST")
		os.Exit(2)
	}
	if err := imagetest.Busybox(flag.Arg(0), *format); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
