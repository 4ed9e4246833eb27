//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/image"
)

const imageUsage = `Usage:
  warden image import REF [--name NAME]   import an OCI image layout or a docker-save tarball;
                                          prints the image's ID and name
  warden image ls [--json]                the imported images
  warden image rm NAME|ID...              remove names, or images by ID (prefix), and the
                                          layers no image uses any more

REF is a directory written by "podman save --format oci-dir" (or "skopeo copy
... oci:DIR"), or a tarball from "docker save" or "podman save". Every blob is
checked against its digest; a layer that would write outside its own
directory is refused. Layers are unpacked once, into $XDG_DATA_HOME/warden
(~/.local/share/warden), and shared between images.

warden run --image REF -- CMD runs CMD in an image: REF is a path (imported
first, if it is not yet), a name (busybox means busybox:latest) or an ID or
a prefix of it.
`

func cmdImage(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, imageUsage)
		return exitWarden
	}
	switch args[0] {
	case "import":
		return imageImport(args[1:], stdout, stderr)
	case "ls", "list":
		return imageLs(args[1:], stdout, stderr)
	case "rm", "remove":
		return imageRm(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, imageUsage)
		return 0
	}
	return fail(stderr, sandbox.Usagef("image: unknown subcommand %q", args[0]), "run `warden image help`")
}

func openImageStore() (*image.Store, error) {
	root, err := image.DefaultRoot()
	if err != nil {
		return nil, err
	}
	return image.Open(root)
}

// imageFlags parses args; help is true for -h/--help (usage printed).
func imageFlags(fs *pflag.FlagSet, args []string, stdout io.Writer) (help bool, err error) {
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprint(stdout, imageUsage)
		return true, nil
	}
	return false, err
}

func imageImport(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("image import", pflag.ContinueOnError)
	name := fs.String("name", "", "the image's `NAME` (default: the name the layout or tarball gives)")
	help, err := imageFlags(fs, args, stdout)
	if help {
		return 0
	}
	if err != nil || fs.NArg() != 1 {
		return fail(stderr, sandbox.Usagef("usage: warden image import REF [--name NAME]"))
	}
	s, err := openImageStore()
	if err != nil {
		return fail(stderr, err)
	}
	img, err := s.Import(fs.Arg(0), *name)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(img.ID+" "+img.Name))
	return 0
}

func imageLs(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("image ls", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	help, err := imageFlags(fs, args, stdout)
	if help {
		return 0
	}
	if err != nil || fs.NArg() > 0 {
		return fail(stderr, sandbox.Usagef("usage: warden image ls [--json]"))
	}
	s, err := openImageStore()
	if err != nil {
		return fail(stderr, err)
	}
	list, err := s.List()
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		type entry struct {
			Name    string       `json:"name"`
			ID      string       `json:"id"`
			Layers  []string     `json:"layers"` // newest first
			Size    int64        `json:"size"`
			Created string       `json:"created"`
			Config  image.Config `json:"config"`
		}
		out := []entry{}
		for _, img := range list {
			out = append(out, entry{img.Name, img.ID, img.Layers, img.Size, img.Created.Format(time.RFC3339), img.Config})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tLAYERS\tSIZE\tIMPORTED")
	for _, img := range list {
		name := img.Name
		if name == "" {
			name = "<none>"
		}
		id := strings.TrimPrefix(img.ID, "sha256:")[:12]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", name, id, len(img.Layers), humanBytes(img.Size), img.Created.Local().Format(time.DateTime))
	}
	tw.Flush()
	return 0
}

func imageRm(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("image rm", pflag.ContinueOnError)
	help, err := imageFlags(fs, args, stdout)
	if help {
		return 0
	}
	if err != nil || fs.NArg() == 0 {
		return fail(stderr, sandbox.Usagef("usage: warden image rm NAME|ID..."))
	}
	s, err := openImageStore()
	if err != nil {
		return fail(stderr, err)
	}
	status := 0
	for _, ref := range fs.Args() {
		if err := s.Remove(ref); err != nil {
			status = fail(stderr, err)
			continue
		}
		fmt.Fprintln(stdout, ref)
	}
	return status
}

// humanBytes is n in B, K, M or G (powers of 1024), as ls -lh writes it.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
