// Command oci-validate is the helper of scripts/oci-validate.sh: it runs one
// runtime-tools validation program against an OCI runtime, cleans up what
// the program leaked, counts its TAP output, and summarises a whole run.
//
//	oci-validate run --name N --bin PROG --runtime RT --cwd DIR --tmp DIR \
//	    --logs DIR --results FILE [--timeout 60s]
//	oci-validate summary --results FILE [--markdown] [--extra-column NAME]
//	oci-validate goarch
//	oci-validate static FILE   (exit 0 when FILE is an ELF without interpreter)
//
// "run" is meant to be started inside a private mount namespace
// (unshare -m --propagation private); it makes itself a child subreaper so
// that every process the test leaves behind (containers included) is
// reparented to a helper it controls, and can be killed afterwards.
// Exit status: 0 whatever the test result; 2 when the harness itself failed.
package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"runtime"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oci-validate run|summary|goarch ... (see scripts/oci-validate.sh)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "reap":
		err = cmdReap(os.Args[2:])
	case "summary":
		err = cmdSummary(os.Args[2:])
	case "goarch":
		fmt.Println(runtime.GOARCH)
	case "static":
		err = cmdStatic(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oci-validate %s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
}

// cmdStatic fails unless the file is an ELF executable with no program
// interpreter, i.e. one that runs without a libc in the container.
func cmdStatic(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: static FILE")
	}
	f, err := elf.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", args[0])
		}
	}
	return nil
}
