package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// The layout and tarball readers here use go-containerregistry's types and
// parsers only (pkg/v1, pkg/v1/types): its layout and tarball packages
// link net/http and more, whose initialization every warden command
// would pay for at start.

// source is an image in an OCI layout or a docker-save tarball, read up to
// its config (small files only): enough to know its ID and whether its
// layers are in the store already.
type source struct {
	ref      string
	id       string // config digest, verified against the config's bytes
	config   *v1.ConfigFile
	diffIDs  []string // oldest first
	layers   []blob   // oldest first, one per DiffID
	names    []string // from the layout's annotations or the tarball's RepoTags
	isLayout bool
}

// blob is one layer as the image stores it (compressed or not).
type blob struct {
	open   func() (io.ReadCloser, error)
	digest v1.Hash // of what open returns; zero if the format gives none
}

const fixNotImage = `give a directory written by "podman save --format oci-dir" (or "skopeo copy ... oci:DIR") or a tarball from "docker save"`

// openSource reads the image ref names on disk.
func openSource(ref string) (*source, error) {
	fi, err := os.Stat(ref)
	if err != nil {
		return nil, errorf(ref, NotFound, "no such file or directory",
			"give the path of an OCI image layout or a docker-save tarball (`warden image ls` lists the imported images)", nil)
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(ref, "index.json")); err != nil {
			return nil, errorf(ref, BadFormat, "a directory but not an OCI image layout (no index.json)", fixNotImage, nil)
		}
		return openLayout(ref)
	}
	if !fi.Mode().IsRegular() {
		return nil, errorf(ref, BadFormat, "neither a directory nor a regular file", fixNotImage, nil)
	}
	hasManifest, hasIndex, err := tarballMembers(ref)
	switch {
	case errors.Is(err, errCompressed):
		return nil, errorf(ref, BadFormat, "a compressed file, not a docker-save tarball", "decompress it first (gunzip, zstd -d) and import the .tar", nil)
	case err != nil:
		return nil, errorf(ref, BadFormat, "neither an OCI image layout (not a directory) nor a docker-save tarball ("+err.Error()+")", fixNotImage, nil)
	case hasManifest:
		return openTarball(ref)
	case hasIndex:
		return nil, errorf(ref, BadFormat, "an OCI archive (index.json but no manifest.json), not a docker-save tarball",
			"extract it (mkdir DIR && tar -xf "+ref+" -C DIR) and import the directory", nil)
	}
	return nil, errorf(ref, BadFormat, "neither an OCI image layout (no index.json) nor a docker-save tarball (no manifest.json)", fixNotImage, nil)
}

// errCompressed: a constant, not errors.New, so that the package has
// nothing to initialize at start.
var errCompressed error = constError("compressed")

type constError string

func (e constError) Error() string { return string(e) }

// tarballMembers says whether the tar file has manifest.json and
// index.json at its top. Layers are skipped with seeks, not read.
func tarballMembers(file string) (manifest, index bool, err error) {
	f, err := os.Open(file)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(4); bytes.HasPrefix(magic, []byte{0x1f, 0x8b}) || bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return false, false, errCompressed
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, false, err
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return manifest, index, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("not a tar file: %v", err)
		}
		switch path.Clean(h.Name) {
		case "manifest.json":
			manifest = true
		case "index.json":
			index = true
		}
	}
}

// maxJSON is the most a JSON file of an image (index, manifest, config,
// manifest.json) may have: they are read whole.
const maxJSON = 16 << 20

// layout is an OCI image layout directory.
type layout string

// blobPath is the file of the blob h: blobs/<algorithm>/<hex> (v1.Hash
// parsing allows only known algorithms and hex digits).
func (l layout) blobPath(h v1.Hash) string {
	return filepath.Join(string(l), "blobs", h.Algorithm, h.Hex)
}

// open opens the blob h, a regular file (not a symlink, as
// go-containerregistry's layout refuses).
func (l layout) open(h v1.Hash) (*os.File, error) {
	if _, err := v1.NewHash(h.String()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(l.blobPath(h), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("layout blob %s is a symlink", h)
		}
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("layout blob %s is not a regular file", h)
	}
	return f, nil
}

// read reads the small blob h and checks it against its digest.
func (l layout) read(what string, h v1.Hash) ([]byte, error) {
	f, err := l.open(h)
	if err != nil {
		return nil, errorf(string(l), BadFormat, "read "+what+" "+h.String(), "the layout is incomplete; write it again", err)
	}
	defer f.Close()
	b, err := readJSON(f)
	if err != nil {
		return nil, errorf(string(l), BadFormat, "read "+what+" "+h.String(), "", err)
	}
	if err := checkDigest(string(l), what, b, h); err != nil {
		return nil, err
	}
	return b, nil
}

// readJSON reads a JSON file whole, up to maxJSON.
func readJSON(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJSON+1))
	if err == nil && len(b) > maxJSON {
		err = fmt.Errorf("larger than %d MiB", maxJSON>>20)
	}
	return b, err
}

// openLayout reads an OCI image layout: index.json, then the one image
// for this machine's platform (through nested indexes), its manifest and
// its config, each checked against its digest.
func openLayout(dir string) (*source, error) {
	bad := func(what string, err error) (*source, error) {
		return nil, errorf(dir, BadFormat, what, "", err)
	}
	l := layout(dir)
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		return bad("read index.json", err)
	}
	raw, err := readJSON(f)
	f.Close()
	if err != nil {
		return bad("read index.json", err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return bad("read index.json", err)
	}
	desc, err := pickImage(l, idx, 0)
	if err != nil {
		return nil, err
	}
	raw, err = l.read("the manifest", desc.Digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return bad("parse the manifest "+desc.Digest.String(), err)
	}
	cfgRaw, err := l.read("the config", m.Config.Digest)
	if err != nil {
		return nil, err
	}
	src, err := newSource(dir, cfgRaw, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	src.isLayout = true
	if len(m.Layers) != len(src.diffIDs) {
		return bad(fmt.Sprintf("the manifest has %d layers and the config %d diff_ids", len(m.Layers), len(src.diffIDs)), nil)
	}
	for _, d := range m.Layers {
		src.layers = append(src.layers, blob{open: func() (io.ReadCloser, error) { return l.open(d.Digest) }, digest: d.Digest})
	}
	src.names = layoutNames(desc.Annotations)
	return src, nil
}

// pickImage returns the descriptor of the one image in idx for this
// platform.
func pickImage(l layout, idx *v1.IndexManifest, depth int) (*v1.Descriptor, error) {
	dir := string(l)
	if depth > 4 {
		return nil, errorf(dir, BadFormat, "read the image index", "", errors.New("indexes nested more than 4 deep"))
	}
	var cands []v1.Descriptor
	for _, d := range idx.Manifests {
		if p := d.Platform; p != nil && p.OS != "" && (p.OS != "linux" || p.Architecture != runtime.GOARCH) {
			continue
		}
		if d.Platform != nil && d.Platform.OS == "unknown" {
			continue // buildkit's attestation manifests
		}
		switch d.MediaType {
		case types.OCIManifestSchema1, types.DockerManifestSchema2:
			cands = append(cands, d)
		case types.OCIImageIndex, types.DockerManifestList:
			raw, err := l.read("the nested index", d.Digest)
			if err != nil {
				return nil, err
			}
			child, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return nil, errorf(dir, BadFormat, "read the nested index "+d.Digest.String(), "", err)
			}
			sub, err := pickImage(l, child, depth+1)
			if err != nil {
				return nil, err
			}
			if sub.Annotations == nil {
				sub.Annotations = d.Annotations // the name is on the outer descriptor
			}
			cands = append(cands, *sub)
		}
	}
	switch len(cands) {
	case 1:
		return &cands[0], nil
	case 0:
		return nil, errorf(dir, BadFormat, "the layout holds no image for linux/"+runtime.GOARCH, "write a layout of an image for this machine", nil)
	}
	return nil, errorf(dir, BadFormat, fmt.Sprintf("the layout holds %d images", len(cands)), "write a layout that holds only the image to run", nil)
}

// layoutNames is the image's name from its descriptor's annotations:
// containerd's full name, else the OCI ref.name when it is a full name
// (podman and skopeo often write only a tag there, which names nothing).
func layoutNames(ann map[string]string) []string {
	for _, k := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
		if n := ann[k]; strings.ContainsAny(n, ":/") {
			if nn, err := normalizeName(n); err == nil {
				return []string{nn}
			}
		}
	}
	return nil
}

// tarballManifest is manifest.json of a docker-save tarball, one entry per
// image.
type tarballManifest []struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// openTarball reads a docker-save tarball (docker, podman): manifest.json,
// the image's config and its RepoTags. Its layers are checked against the
// config's diff_ids as they are unpacked (manifest.json has no digests).
func openTarball(file string) (*source, error) {
	raw, err := readMember(file, "manifest.json")
	if err != nil {
		return nil, errorf(file, BadFormat, "read manifest.json", "", err)
	}
	var mf tarballManifest
	if err := json.Unmarshal(raw, &mf); err != nil {
		return nil, errorf(file, BadFormat, "read manifest.json", "", err)
	}
	if len(mf) != 1 {
		return nil, errorf(file, BadFormat, fmt.Sprintf("the tarball holds %d images", len(mf)), "save only the image to run (docker save NAME)", nil)
	}
	cfgRaw, err := readMember(file, mf[0].Config)
	if err != nil {
		return nil, errorf(file, BadFormat, "read the config", "", err)
	}
	// docker save names the config after its digest ("<hex>.json", or
	// "blobs/sha256/<hex>" since Docker 25): that is a claim to check.
	sum := sha256.Sum256(cfgRaw)
	id := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	claim := strings.TrimPrefix(strings.TrimSuffix(path.Base(mf[0].Config), ".json"), "sha256:")
	if isHex64(claim) && claim != id.Hex {
		return nil, errorf(file, Corrupt, fmt.Sprintf("the config %s does not match its digest (sha256:%s)", mf[0].Config, claim),
			"the tarball is damaged; save it again", nil)
	}
	src, err := newSource(file, cfgRaw, id)
	if err != nil {
		return nil, err
	}
	if len(mf[0].Layers) != len(src.diffIDs) {
		return nil, errorf(file, BadFormat, fmt.Sprintf("manifest.json has %d layers and the config %d diff_ids", len(mf[0].Layers), len(src.diffIDs)), "", nil)
	}
	for _, member := range mf[0].Layers {
		src.layers = append(src.layers, blob{open: func() (io.ReadCloser, error) { return openMember(file, member) }})
	}
	for _, t := range mf[0].RepoTags {
		if n, err := normalizeName(t); err == nil {
			src.names = append(src.names, n)
		}
	}
	return src, nil
}

// readMember reads the small member name of the tar file.
func readMember(file, name string) ([]byte, error) {
	rc, err := openMember(file, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readJSON(rc)
}

// openMember opens the member name of the tar file, following symlinks
// and hard links between members (docker save links a layer it has
// already written to that one). The tar is read up to the member; the
// content of the others is skipped, not read.
func openMember(file, name string) (io.ReadCloser, error) {
	want := path.Clean(name)
	seen := map[string]bool{}
	for {
		if seen[want] || len(seen) > 16 {
			return nil, fmt.Errorf("member %s: a cycle of links", name)
		}
		seen[want] = true
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(f)
		var h *tar.Header
		for {
			if h, err = tr.Next(); err != nil {
				break
			}
			if path.Clean(h.Name) == want {
				break
			}
		}
		if err != nil {
			f.Close()
			if err == io.EOF {
				return nil, fmt.Errorf("no member %s in the tar file", want)
			}
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			// Relative to the link's directory; an absolute target is
			// taken from the tar's top.
			if path.IsAbs(h.Linkname) {
				want = path.Clean(h.Linkname[1:])
			} else {
				want = path.Join(path.Dir(want), h.Linkname)
			}
			f.Close()
			continue
		case tar.TypeLink:
			want = path.Clean(h.Linkname)
			f.Close()
			continue
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars
			return struct {
				io.Reader
				io.Closer
			}{tr, f}, nil
		}
		f.Close()
		return nil, fmt.Errorf("member %s is not a file", want)
	}
}

// newSource parses the config (whose digest id has been checked).
func newSource(ref string, cfgRaw []byte, id v1.Hash) (*source, error) {
	if id.Algorithm != "sha256" {
		return nil, errorf(ref, BadFormat, "the config digest is "+id.Algorithm+", not sha256", "", nil)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return nil, errorf(ref, BadFormat, "parse the image config", "", err)
	}
	src := &source{ref: ref, id: id.String(), config: cfg}
	if len(cfg.RootFS.DiffIDs) == 0 {
		return nil, errorf(ref, BadFormat, "the image has no layers", "build it FROM an image with a file system", nil)
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if d.Algorithm != "sha256" {
			return nil, errorf(ref, BadFormat, "a diff_id is "+d.Algorithm+", not sha256", "", nil)
		}
		src.diffIDs = append(src.diffIDs, d.String())
	}
	return src, nil
}

// imageConfig is the part of the config warden uses.
func (src *source) imageConfig() Config {
	c := src.config.Config
	return Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
}

func checkDigest(ref, what string, b []byte, want v1.Hash) error {
	h, err := v1.Hasher(want.Algorithm)
	if err != nil {
		return errorf(ref, BadFormat, what+" has a digest of an unknown algorithm", "", err)
	}
	h.Write(b)
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return errorf(ref, Corrupt, fmt.Sprintf("%s does not match its digest %s (content has %s:%s)", what, want, want.Algorithm, got),
			"the image is damaged; write or save it again", nil)
	}
	return nil
}
