// Package imagetest writes small OCI image layouts and docker-save tarballs
// for tests: Build from layers described in Go, Busybox from the host's
// static busybox. It uses go-containerregistry's own writers, so what it
// writes is what other tools write. Tests only: it writes whatever a Layer
// says, hostile paths included.
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/warden-sandbox/warden/sandbox/image"
)

// Formats Build writes.
const (
	OCI      = "oci"       // OCI image layout directory, gzip layers (podman save --format oci-dir)
	OCIZstd  = "oci-zstd"  // OCI image layout directory, zstd layers
	Docker   = "docker"    // docker-save tarball, uncompressed layers (docker save)
	DockerGz = "docker-gz" // docker-save tarball, gzip layers
)

// ModTime is the time of every entry and of the config: the same layers
// always have the same DiffID, so two images built from one Layer share it.
var ModTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Entry is one member of a layer's tar.
type Entry struct {
	Path     string // written as is: "/abs" and "../x" stay hostile
	Type     byte   // tar.TypeReg (the default, also for 0), TypeDir, TypeSymlink, TypeLink, TypeChar, TypeFifo
	Content  string // of a regular file
	Target   string // of a symlink or hard link
	Mode     int64  // permission bits; 0 means 0644 for files, 0755 for dirs, 0777 for symlinks
	UID, GID int
	Major    int64 // of a device
	Minor    int64
	Xattrs   map[string]string // extended attributes, as PAX SCHILY.xattr records
}

// Layer is a layer's entries, in tar order.
type Layer []Entry

// File is a regular file.
func File(p, content string) Entry { return Entry{Path: p, Type: tar.TypeReg, Content: content} }

// Dir is a directory.
func Dir(p string) Entry { return Entry{Path: p, Type: tar.TypeDir} }

// Symlink is a symbolic link at p to target.
func Symlink(p, target string) Entry { return Entry{Path: p, Type: tar.TypeSymlink, Target: target} }

// Hardlink is a hard link at p to the layer's earlier entry target.
func Hardlink(p, target string) Entry { return Entry{Path: p, Type: tar.TypeLink, Target: target} }

// Whiteout deletes p of the layers below (".wh.<name>" beside it).
func Whiteout(p string) Entry {
	return File(path.Join(path.Dir(p), ".wh."+path.Base(p)), "")
}

// Opaque hides everything the layers below have in dir ("dir/.wh..wh..opq").
func Opaque(dir string) Entry { return File(path.Join(dir, ".wh..wh..opq"), "") }

// Files is a layer of regular files, in path order.
func Files(m map[string]string) Layer {
	var l Layer
	for p, c := range m {
		l = append(l, File(p, c))
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Path < l[j].Path })
	return l
}

// Tar is the layer as an uncompressed tar.
func (l Layer) Tar() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range l {
		h := &tar.Header{Name: e.Path, Typeflag: e.Type, Linkname: e.Target, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			Devmajor: e.Major, Devminor: e.Minor, ModTime: ModTime, Format: tar.FormatPAX}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		switch e.Type {
		case 0, tar.TypeReg:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Content))
			h.Mode = orDefault(e.Mode, 0o644)
		case tar.TypeDir:
			h.Mode = orDefault(e.Mode, 0o755)
		case tar.TypeSymlink:
			h.Mode = orDefault(e.Mode, 0o777)
		default:
			h.Mode = orDefault(e.Mode, 0o644)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.Path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Content)); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func orDefault(m, d int64) int64 {
	if m == 0 {
		return d
	}
	return m
}

// Build writes an unnamed image of layers (oldest first) at dst in format
// (OCI, OCIZstd, Docker or DockerGz).
func Build(dst, format string, cfg image.Config, layers ...Layer) error {
	return BuildNamed(dst, format, "", cfg, layers...)
}

// BuildNamed is Build with a name: the OCI ref.name annotation, or the
// tarball's RepoTags. Give a name with a tag ("x:1") or a slash: the store
// takes an OCI ref.name of one word for a bare tag, which names nothing.
func BuildNamed(dst, format, imageName string, cfg image.Config, layers ...Layer) error {
	img, err := buildImage(format, cfg, layers)
	if err != nil {
		return err
	}
	switch format {
	case OCI, OCIZstd:
		p, err := layout.Write(dst, empty.Index)
		if err != nil {
			return err
		}
		var opts []layout.Option
		if imageName != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": imageName}))
		}
		return p.AppendImage(img, opts...)
	case Docker, DockerGz:
		var ref name.Reference
		if imageName != "" {
			ref, err = name.NewTag(imageName)
		} else {
			var d v1.Hash
			if d, err = img.Digest(); err == nil {
				ref, err = name.NewDigest("unnamed@" + d.String())
			}
		}
		if err != nil {
			return err
		}
		return tarball.MultiRefWriteToFile(dst, map[name.Reference]v1.Image{ref: img})
	}
	return fmt.Errorf("imagetest: unknown format %q (want %s, %s, %s or %s)", format, OCI, OCIZstd, Docker, DockerGz)
}

func buildImage(format string, cfg image.Config, layers []Layer) (v1.Image, error) {
	var ls []v1.Layer
	for _, l := range layers {
		b, err := l.Tar()
		if err != nil {
			return nil, err
		}
		opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		var layer v1.Layer
		switch format {
		case Docker:
			layer = static.NewLayer(b, types.DockerUncompressedLayer)
		case OCIZstd:
			layer, err = tarball.LayerFromOpener(opener, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
		case OCI:
			layer, err = tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
		default:
			layer, err = tarball.LayerFromOpener(opener)
		}
		if err != nil {
			return nil, err
		}
		ls = append(ls, layer)
	}
	base := empty.Image
	if format == OCI || format == OCIZstd {
		base = mutate.ConfigMediaType(mutate.MediaType(base, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, ls...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", runtime.GOARCH, v1.Time{Time: ModTime}
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env = cfg.Entrypoint, cfg.Cmd, cfg.Env
	cf.Config.WorkingDir, cf.Config.User = cfg.WorkingDir, cfg.User
	return mutate.ConfigFile(img, cf)
}

// BusyboxApplets are the names Busybox links to /bin/busybox.
var BusyboxApplets = []string{"sh", "ls", "cat", "echo", "true", "false", "id", "env", "mkdir", "rm", "touch",
	"sleep", "wc", "head", "grep", "test", "[", "pwd", "printf", "hostname", "uname", "ps", "cp", "mv", "ln",
	"chmod", "stat", "readlink", "tail", "sed", "cut", "tr", "find", "whoami", "mount"}

// BusyboxGone is the file of Busybox's first layer its second layer
// deletes with a whiteout: a jail of the image must not see it.
const BusyboxGone = "/etc/motd"

// Busybox writes "busybox:latest" at dst in format: layer 1 has
// /bin/busybox (the host's, from Debian's busybox-static) with
// BusyboxApplets as symlinks to it, /etc/passwd (root and nobody),
// /etc/group, /etc/motd, /tmp (1777) and /root (0700); layer 2 deletes
// /etc/motd (BusyboxGone) with a whiteout and adds /etc/hostname. Its
// config runs /bin/sh in / with PATH set.
func Busybox(dst, format string) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("imagetest: %w (install busybox-static: scripts/setup.sh)", err)
	}
	l1 := Layer{Dir("bin"), {Path: "bin/busybox", Content: string(bb), Mode: 0o755}}
	for _, a := range BusyboxApplets {
		l1 = append(l1, Symlink("bin/"+a, "busybox"))
	}
	l1 = append(l1, Dir("etc"),
		File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		File("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
		File("etc/motd", "layer 1 wrote this; layer 2 deletes it\n"),
		Entry{Path: "tmp", Type: tar.TypeDir, Mode: 0o1777},
		Entry{Path: "root", Type: tar.TypeDir, Mode: 0o700})
	l2 := Layer{Dir("etc"), Whiteout("etc/motd"), File("etc/hostname", "busybox\n")}
	cfg := image.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, WorkingDir: "/"}
	return BuildNamed(dst, format, "busybox:latest", cfg, l1, l2)
}
