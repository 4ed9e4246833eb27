package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Config is what an image says about running it.
type Config struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
}

// Image is an image in the store.
type Image struct {
	Name    string    // the name it is known by ("busybox:latest"); may be ""
	ID      string    // config digest, "sha256:..."
	Layers  []string  // absolute paths of the unpacked layer dirs, NEWEST FIRST (overlay lowerdir order)
	Config  Config    //
	Size    int64     // bytes on disk of its layers
	Created time.Time // when imported
}

// Store is an image store rooted at one directory.
type Store struct {
	root string
}

// record is images/<config-hex>.json.
type record struct {
	ID      string    `json:"id"`
	DiffIDs []string  `json:"diff_ids"` // oldest first, as in the config
	Sizes   []int64   `json:"layer_sizes"`
	Config  Config    `json:"config"`
	Created time.Time `json:"created"`
}

// DefaultRoot is $XDG_DATA_HOME/warden, else ~/.local/share/warden.
func DefaultRoot() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "warden"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) {
		return "", fmt.Errorf("image store: neither $XDG_DATA_HOME nor $HOME is an absolute path; set one of them")
	}
	return filepath.Join(home, ".local", "share", "warden"), nil
}

// Open opens the store at root, creating root/{layers,images,tmp} (0700)
// if needed, and removes the leftovers of killed imports when no import is
// running.
func Open(root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, storeErr(root, "open the store", err)
	}
	s := &Store{root: root}
	for _, d := range []string{root, s.layersDir(), s.imagesDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, storeErr(root, "open the store", err)
		}
	}
	// An import holds the lock for as long as its tmp/ entries are in use:
	// what tmp/ holds while nobody has the lock belongs to a dead process.
	// If someone holds it, the leftovers wait for the next Open.
	unlock, err := s.lock(true)
	if err == nil {
		defer unlock()
		if err := s.cleanTmp(); err != nil {
			return nil, storeErr(root, "remove the leftovers of an interrupted import in tmp/", err)
		}
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return nil, storeErr(root, "lock the store", err)
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) layersDir() string { return filepath.Join(s.root, "layers", "sha256") }
func (s *Store) imagesDir() string { return filepath.Join(s.root, "images") }
func (s *Store) tmpDir() string    { return filepath.Join(s.root, "tmp") }
func (s *Store) namesFile() string { return filepath.Join(s.root, "names.json") }

// layerDir is where the layer of DiffID "sha256:<hex>" is kept.
func (s *Store) layerDir(diffID string) string {
	return filepath.Join(s.layersDir(), strings.TrimPrefix(diffID, "sha256:"))
}

// lock takes the store's lock (exclusive; nonblocking if nb) and returns
// its release. The kernel releases a flock when its holder dies, so a
// killed import never leaves the store locked.
func (s *Store) lock(nb bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if nb {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// cleanTmp removes everything in tmp/. Preconditions: the lock is held.
func (s *Store) cleanTmp() error {
	ents, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		// removeAll makes directories writable on its way down:
		// images have read-only directories, which os.RemoveAll cannot empty
		// as an unprivileged user.
		if err := removeAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v to file with write-temp-then-rename, so a reader sees
// the old or the new file, never half of one.
func writeJSON(file string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(file), ".tmp-"+filepath.Base(file)+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (s *Store) readNames() (map[string]string, error) {
	names := map[string]string{}
	b, err := os.ReadFile(s.namesFile())
	if errors.Is(err, os.ErrNotExist) {
		return names, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, fmt.Errorf("%s: %w", s.namesFile(), err)
	}
	return names, nil
}

func (s *Store) recordFile(id string) string {
	return filepath.Join(s.imagesDir(), strings.TrimPrefix(id, "sha256:")+".json")
}

func (s *Store) readRecord(id string) (*record, error) {
	b, err := os.ReadFile(s.recordFile(id))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", s.recordFile(id), err)
	}
	if r.ID != id || len(r.Sizes) != len(r.DiffIDs) {
		return nil, fmt.Errorf("%s: not the record of %s", s.recordFile(id), id)
	}
	return &r, nil
}

// records reads every image record.
func (s *Store) records() ([]*record, error) {
	ents, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !isHex64(hex) {
			continue // a temporary file of writeJSON
		}
		r, err := s.readRecord("sha256:" + hex)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// image turns a record into an Image named name.
func (s *Store) image(r *record, name string) *Image {
	img := &Image{Name: name, ID: r.ID, Config: r.Config, Created: r.Created}
	seen := map[string]bool{}
	// Newest first. A DiffID that appears twice (empty layers often do)
	// is kept only at its newest place: overlayfs refuses the same lower
	// twice, and the older copy could only ever be reached through names
	// the newer copy already has, so dropping it changes nothing.
	for i := len(r.DiffIDs) - 1; i >= 0; i-- {
		if seen[r.DiffIDs[i]] {
			continue
		}
		seen[r.DiffIDs[i]] = true
		img.Layers = append(img.Layers, s.layerDir(r.DiffIDs[i]))
		img.Size += r.Sizes[i]
	}
	return img
}

// List returns the images in the store: one entry per name, and one with
// Name "" for each image without a name; the newest imports first.
func (s *Store) List() ([]Image, error) {
	names, err := s.readNames()
	if err != nil {
		return nil, storeErr(s.root, "read the names of the images", err)
	}
	recs, err := s.records()
	if err != nil {
		return nil, storeErr(s.root, "read the image records", err)
	}
	byID := map[string][]string{}
	for n, id := range names {
		byID[id] = append(byID[id], n)
	}
	var out []Image
	for _, r := range recs {
		ns := byID[r.ID]
		if len(ns) == 0 {
			ns = []string{""}
		}
		for _, n := range ns {
			out = append(out, *s.image(r, n))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// lookup finds an image by name, else by ID or a prefix of its hex (as
// podman does). It returns the ID and the name it goes by.
func (s *Store) lookup(ref string) (id, name string, err error) {
	names, err := s.readNames()
	if err != nil {
		return "", "", storeErr(ref, "read the names of the images", err)
	}
	if n, nerr := normalizeName(ref); nerr == nil {
		if id, ok := names[n]; ok {
			return id, n, nil
		}
	}
	notFound := errorf(ref, NotFound, "no such file, and no image of this name or ID in the store "+s.root,
		"`warden image ls` lists the images; `warden image import PATH` imports an OCI layout or a docker-save tarball", nil)
	prefix := strings.TrimPrefix(ref, "sha256:")
	if prefix == "" || strings.TrimLeft(prefix, "0123456789abcdef") != "" || len(prefix) > 64 {
		return "", "", notFound
	}
	recs, err := s.records()
	if err != nil {
		return "", "", storeErr(ref, "read the image records", err)
	}
	var hits []string
	for _, r := range recs {
		if strings.HasPrefix(strings.TrimPrefix(r.ID, "sha256:"), prefix) {
			hits = append(hits, r.ID)
		}
	}
	switch len(hits) {
	case 0:
		return "", "", notFound
	case 1:
		return hits[0], firstName(names, hits[0]), nil
	}
	return "", "", errorf(ref, NotFound, fmt.Sprintf("the ID prefix matches %d images", len(hits)), "give more of the ID (`warden image ls`)", nil)
}

// firstName is the first (sorted) name that points at id, or "".
func firstName(names map[string]string, id string) string {
	var ns []string
	for n, i := range names {
		if i == id {
			ns = append(ns, n)
		}
	}
	sort.Strings(ns)
	if len(ns) == 0 {
		return ""
	}
	return ns[0]
}

// byRef returns the stored image ref names, checking that its layers are
// all there.
func (s *Store) byRef(ref string) (*Image, error) {
	id, name, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	r, err := s.readRecord(id)
	if err != nil {
		return nil, storeErr(ref, "read the image record of "+id, err)
	}
	img := s.image(r, name)
	for _, l := range img.Layers {
		if _, err := os.Lstat(l); err != nil {
			return nil, errorf(ref, StoreFailed, "layer "+filepath.Base(l)+" of the image is missing from the store",
				"import the image again from its layout or tarball", err)
		}
	}
	return img, nil
}

// Remove removes a name, or an image by its ID (or ID prefix) with all its
// names. An image whose last name goes is removed too. Then every layer no
// image uses any more is removed.
func (s *Store) Remove(nameOrID string) error {
	unlock, err := s.lock(false)
	if err != nil {
		return storeErr(nameOrID, "lock the store", err)
	}
	defer unlock()
	id, name, err := s.lookup(nameOrID)
	if err != nil {
		return err
	}
	names, err := s.readNames()
	if err != nil {
		return storeErr(nameOrID, "read the names of the images", err)
	}
	n, nerr := normalizeName(nameOrID)
	if nerr == nil && names[n] == id {
		delete(names, n) // a name: the image goes only with its last name
	} else {
		for n, i := range names {
			if i == id {
				delete(names, n)
			}
		}
	}
	gone := firstName(names, id) == ""
	if gone {
		// Nothing changes while a jail uses the image (Use): the lock
		// is held until the record and the lock file are gone.
		if name == "" {
			name = nameOrID
		}
		unlock, err := s.lockUse(id, name)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := writeJSON(s.namesFile(), names); err != nil {
		return storeErr(nameOrID, "write the names of the images", err)
	}
	if gone {
		if err := os.Remove(s.recordFile(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return storeErr(nameOrID, "remove the image record", err)
		}
		if err := os.Remove(s.useFile(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return storeErr(nameOrID, "remove the image's lock file", err)
		}
	}
	if err := s.gc(); err != nil {
		return storeErr(nameOrID, "remove the layers no image uses", err)
	}
	return nil
}

// useFile is the lock file of an image's users: images/<config-hex>.use.
func (s *Store) useFile(id string) string {
	return filepath.Join(s.imagesDir(), strings.TrimPrefix(id, "sha256:")+".use")
}

// Use marks img as in use, by a jail that runs it, until release is
// called (or the process ends): Remove refuses to remove it meanwhile.
// It takes a shared flock(2) on images/<config-hex>.use, on an fd of its
// own (O_CLOEXEC, so a jail's processes do not inherit it; not an
// *os.File, so a dropped release does not let the garbage collector
// unlock it). It waits for a Remove of the image that is under way, and
// then fails with NotFound.
func (s *Store) Use(img *Image) (release func(), err error) {
	file := s.useFile(img.ID)
	for range 100 {
		fd, err := unix.Open(file, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, storeErr(img.ID, "open the image's lock file", err)
		}
		if err := flock(fd, unix.LOCK_SH); err != nil {
			unix.Close(fd)
			return nil, storeErr(img.ID, "lock the image's lock file", err)
		}
		// Remove unlinks the file while it holds it: the file this fd
		// has then is not the lock any more.
		var held, now unix.Stat_t
		if unix.Fstat(fd, &held) != nil || unix.Stat(file, &now) != nil || held.Ino != now.Ino || held.Dev != now.Dev {
			unix.Close(fd)
			continue
		}
		if _, err := os.Stat(s.recordFile(img.ID)); err != nil {
			// Removed while we waited: our file goes too, if nobody
			// else has it.
			if flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
				os.Remove(file)
			}
			unix.Close(fd)
			ref := img.Name
			if ref == "" {
				ref = img.ID
			}
			return nil, errorf(ref, NotFound, "the image was removed", "import it again", nil)
		}
		var once sync.Once
		return func() { once.Do(func() { unix.Close(fd) }) }, nil
	}
	return nil, storeErr(img.ID, "lock the image's lock file", errors.New("it was replaced 100 times"))
}

// lockUse takes the exclusive lock of the image id's users, for Remove;
// InUse if a jail holds it. name is what the error calls the image.
func (s *Store) lockUse(id, name string) (unlock func(), err error) {
	fd, err := unix.Open(s.useFile(id), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, storeErr(name, "open the image's lock file", err)
	}
	if err := flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if err == unix.EWOULDBLOCK {
			return nil, errorf(name, InUse, "is in use by a running jail", "stop it first (warden ls)", nil)
		}
		return nil, storeErr(name, "lock the image's lock file", err)
	}
	return func() { unix.Close(fd) }, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// gc removes every layer no image record names. Preconditions: the lock is
// held (an import renames its layers in before it writes its record).
func (s *Store) gc() error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, r := range recs {
		for _, d := range r.DiffIDs {
			used[strings.TrimPrefix(d, "sha256:")] = true
		}
	}
	ents, err := os.ReadDir(s.layersDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		if used[e.Name()] {
			continue
		}
		// Out of layers/ in one step, then removed from tmp/: a kill in
		// between leaves a leftover for Open, never half a layer.
		dir, err := os.MkdirTemp(s.tmpDir(), "gc-")
		if err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(s.layersDir(), e.Name()), filepath.Join(dir, "layer")); err != nil {
			return err
		}
		if err := removeAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// normalizeName is the form a name is stored and looked up in: Docker Hub's
// and podman's default prefixes dropped, ":latest" added if no tag.
func normalizeName(n string) (string, error) {
	switch {
	case n == "":
		return "", errors.New("empty")
	case strings.ContainsAny(n, " \t\r\n\x00"):
		return "", errors.New("contains white space")
	case strings.HasPrefix(n, "/") || strings.HasPrefix(n, "."):
		return "", errors.New(`starts with "/" or "." (a name would be taken for a path)`)
	case isHex64(strings.TrimPrefix(n, "sha256:")):
		return "", errors.New("looks like an image ID")
	}
	for _, p := range []string{"docker.io/library/", "index.docker.io/library/", "docker.io/", "localhost/"} {
		if rest, ok := strings.CutPrefix(n, p); ok {
			n = rest
			break
		}
	}
	last := n[strings.LastIndex(n, "/")+1:]
	if !strings.Contains(last, ":") && !strings.Contains(n, "@") {
		n += ":latest"
	}
	return n, nil
}

func isHex64(s string) bool {
	return len(s) == 64 && strings.TrimLeft(s, "0123456789abcdef") == ""
}
