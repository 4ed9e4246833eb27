package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Import imports the OCI image layout or docker-save tarball at ref. name,
// if not empty, is the name it gets (else the names the layout or tarball
// gives it); a name that pointed at another image moves to this one.
// Layers already in the store are not unpacked again.
func (s *Store) Import(ref, name string) (*Image, error) {
	if name != "" {
		n, err := normalizeName(name)
		if err != nil {
			return nil, errorf(ref, BadName, fmt.Sprintf("the name %q %v", name, err), "choose a name such as busybox:1.36 or mytools", nil)
		}
		name = n
	}
	img, _, err := s.importRef(ref, name)
	return img, err
}

// Resolve finds the image ref names: a path (an OCI layout or docker-save
// tarball) is imported, unpacking only the layers not in the store yet
// (unpacked says whether any was); anything else is looked up as a name,
// an ID or an ID prefix.
func (s *Store) Resolve(ref string) (img *Image, unpacked bool, err error) {
	if _, err := os.Lstat(ref); err == nil {
		return s.importRef(ref, "")
	}
	if looksLikePath(ref) {
		_, err := openSource(ref) // the error names what is missing
		return nil, false, err
	}
	img, err = s.byRef(ref)
	return img, false, err
}

// looksLikePath: a reference no name can be.
func looksLikePath(ref string) bool {
	if filepath.IsAbs(ref) || ref == "." || ref == ".." {
		return true
	}
	for _, p := range []string{"./", "../", "~"} {
		if len(ref) >= len(p) && ref[:len(p)] == p {
			return true
		}
	}
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst"} {
		if len(ref) > len(ext) && ref[len(ref)-len(ext):] == ext {
			return true
		}
	}
	return false
}

// pending is a layer unpacked into tmp/, waiting to be renamed into place.
type pending struct {
	tmp, dst string
}

// importRef imports the image at the path ref under the store's lock.
func (s *Store) importRef(ref, name string) (*Image, bool, error) {
	src, err := openSource(ref)
	if err != nil {
		return nil, false, err
	}
	unlock, err := s.lock(false)
	if err != nil {
		return nil, false, storeErr(ref, "lock the store", err)
	}
	defer unlock()
	var todo []pending
	// Whatever fails, nothing of this import stays in tmp/.
	defer func() {
		for _, p := range todo {
			removeAll(p.tmp)
		}
	}()
	sizes := make([]int64, len(src.diffIDs))
	inStore := map[string]bool{}
	for i, d := range src.diffIDs {
		dst := s.layerDir(d)
		if _, err := os.Lstat(dst); err == nil || inStore[d] {
			inStore[d] = true
			continue
		}
		tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
		if err != nil {
			return nil, false, storeErr(ref, "create a directory in tmp/", err)
		}
		todo = append(todo, pending{tmp, dst})
		if err := unpackLayer(ref, tmp, src.layers[i], d); err != nil {
			return nil, false, err
		}
		inStore[d] = true
		sizes[i] = diskUsage(tmp)
	}
	if err := s.commit(ref, todo); err != nil {
		return nil, false, err
	}
	unpacked := len(todo) > 0
	todo = nil
	img, err := s.record(src, sizes)
	if err != nil {
		return nil, false, err
	}
	names := src.names
	if name != "" {
		names = []string{name}
	}
	if err := s.setNames(ref, img.ID, names); err != nil {
		return nil, false, err
	}
	if len(names) > 0 {
		img.Name = names[0]
	}
	return img, unpacked, nil
}

// commit moves the unpacked layers into place. The data reaches the disk
// first (syncfs: one call for all of them), so that a crash after the
// rename cannot leave a layer of empty files either.
func (s *Store) commit(ref string, todo []pending) error {
	if len(todo) == 0 {
		return nil
	}
	if f, err := os.Open(s.tmpDir()); err == nil {
		err = unix.Syncfs(int(f.Fd()))
		f.Close()
		if err != nil {
			return storeErr(ref, "write the layers to disk", err)
		}
	}
	for _, p := range todo {
		if err := os.Rename(p.tmp, p.dst); err != nil {
			return storeErr(ref, "move a layer into layers/", err)
		}
	}
	return nil
}

// record returns the image of src, writing its record if there is none.
// sizes has the sizes of the layers this import unpacked (0 for the others).
func (s *Store) record(src *source, sizes []int64) (*Image, error) {
	if r, err := s.readRecord(src.id); err == nil {
		return s.image(r, ""), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, storeErr(src.ref, "read the image record", err)
	}
	for i, d := range src.diffIDs {
		if sizes[i] == 0 {
			sizes[i] = s.layerSize(d)
		}
	}
	r := &record{ID: src.id, DiffIDs: src.diffIDs, Sizes: sizes, Config: src.imageConfig(),
		Created: time.Now().UTC().Truncate(time.Second)}
	if err := writeJSON(s.recordFile(src.id), r); err != nil {
		return nil, storeErr(src.ref, "write the image record", err)
	}
	return s.image(r, ""), nil
}

// layerSize is a stored layer's size, from a record that has it, else
// measured.
func (s *Store) layerSize(diffID string) int64 {
	if recs, err := s.records(); err == nil {
		for _, r := range recs {
			for i, d := range r.DiffIDs {
				if d == diffID && r.Sizes[i] > 0 {
					return r.Sizes[i]
				}
			}
		}
	}
	return diskUsage(s.layerDir(diffID))
}

// setNames points names at id.
func (s *Store) setNames(ref, id string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	all, err := s.readNames()
	if err != nil {
		return storeErr(ref, "read the names of the images", err)
	}
	changed := false
	for _, n := range names {
		if all[n] != id {
			all[n] = id
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := writeJSON(s.namesFile(), all); err != nil {
		return storeErr(ref, "write the names of the images", err)
	}
	return nil
}
