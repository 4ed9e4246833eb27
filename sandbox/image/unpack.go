package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/klauspost/compress/zstd"
)

// unpackLayer unpacks the layer b into dir (an empty directory) and checks
// b against its digest (when the format gives one) and its uncompressed
// content against diffID. Whatever it returns, dir may hold part of the
// layer: the caller removes dir unless the error is nil.
func unpackLayer(ref, dir string, b blob, diffID string) error {
	short := diffID[len("sha256:"):][:12]
	rc, err := b.open()
	if err != nil {
		return errorf(ref, BadFormat, "open layer "+short, "the image is incomplete; write or save it again", err)
	}
	defer rc.Close()
	var rawHash hash.Hash = sha256.New()
	if b.digest.Algorithm != "" {
		if rawHash, err = v1.Hasher(b.digest.Algorithm); err != nil {
			return errorf(ref, BadFormat, "layer "+short+" has a digest of an unknown algorithm", "", err)
		}
	}
	raw := bufio.NewReaderSize(io.TeeReader(rc, rawHash), 1<<16)
	diffHash := sha256.New()
	err = extractStream(ref, short, dir, raw, diffHash)
	// Hash the rest of the blob too (a decompressor stops at its end, and
	// a failed unpack stops anywhere): a blob that does not match its
	// digest is reported as that, whatever else went wrong.
	if _, cerr := io.Copy(io.Discard, raw); cerr != nil && err == nil {
		err = errorf(ref, BadFormat, "read layer "+short, "", cerr)
	}
	if b.digest.Algorithm != "" {
		if got := hex.EncodeToString(rawHash.Sum(nil)); got != b.digest.Hex {
			return errorf(ref, Corrupt, fmt.Sprintf("the blob of layer %s does not match its digest %s (content has %s:%s)", short, b.digest, b.digest.Algorithm, got),
				"the image is damaged; write or save it again (nothing was imported)", nil)
		}
	}
	if err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != diffID {
		return errorf(ref, Corrupt, fmt.Sprintf("layer %s does not match its diff_id in the config (content has %s)", diffID, got),
			"the image is damaged; write or save it again (nothing was imported)", nil)
	}
	return nil
}

// extractStream decompresses raw (gzip, zstd or plain tar), hashes the tar
// into diffHash and unpacks it into dir, entry by entry, each checked by
// the scanner first.
func extractStream(ref, short, dir string, raw *bufio.Reader, diffHash hash.Hash) error {
	ur, err := decompress(raw)
	if err != nil {
		return errorf(ref, BadFormat, "decompress layer "+short, "", err)
	}
	defer ur.Close()
	tee := io.TeeReader(ur, diffHash)
	tr := tar.NewReader(tee)
	x, err := newExtractor(dir)
	if err != nil {
		return storeErr(ref, "unpack layer "+short, err)
	}
	defer x.close()
	sc := newScanner()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errorf(ref, BadFormat, "read layer "+short+" as a tar file", "the image is damaged; write or save it again", err)
		}
		skip, why := sc.check(h)
		if why != "" {
			return hostile(ref, short, why)
		}
		if skip {
			continue
		}
		if err := x.entry(h, tr); err != nil {
			return unpackErr(ref, short, h.Name, err)
		}
	}
	if err := x.finish(); err != nil {
		return unpackErr(ref, short, ".", err)
	}
	// The tar's end-of-archive blocks and any padding are part of the
	// DiffID.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return errorf(ref, BadFormat, "read layer "+short, "the image is damaged; write or save it again", err)
	}
	return nil
}

func hostile(ref, short, why string) error {
	return errorf(ref, Hostile, fmt.Sprintf("layer %s is refused: it %s", short, why),
		"such an image was built to write outside its root; nothing was imported", nil)
}

func unpackErr(ref, short, name string, err error) error {
	var h *errHostile
	if errors.As(err, &h) {
		return hostile(ref, short, h.why)
	}
	what := fmt.Sprintf("unpack %q of layer %s", name, short)
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.EACCES, syscall.EPERM} {
		if errors.Is(err, e) {
			return storeErr(ref, what, err)
		}
	}
	// Anything else is the layer's (a hard link to a file it does not
	// have, an entry type tar has but Linux has not).
	return errorf(ref, BadFormat, what, "the image has an entry warden cannot unpack; nothing was imported", err)
}

// decompress returns the tar stream of a layer blob: gzip (the standard
// library's), zstd (klauspost/compress, one goroutine, windows up to
// 128 MiB as the reference decoder allows by default) or plain.
func decompress(r *bufio.Reader) (io.ReadCloser, error) {
	magic, _ := r.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(r)
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// diskUsage is the space the files under dir take (st_blocks, each inode
// once). It never follows a symlink.
func diskUsage(dir string) int64 {
	var n int64
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable directory counts as what we saw
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		n += st.Blocks * 512
		return nil
	})
	return n
}
