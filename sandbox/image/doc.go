// Package image is warden's host-side image store: it imports OCI image
// layouts and docker-save tarballs, verifies every blob against its digest,
// refuses hostile layers, and keeps each layer unpacked once, in overlayfs
// format, for `warden run --image` to stack as overlay lower directories.
//
// It owns the directory tree under Store.Root():
//
//	lock                      flock(2) held by Import and Remove
//	layers/sha256/<diffid>/   one unpacked layer, named by its DiffID (the
//	                          digest of its uncompressed tar); written once,
//	                          read-only thereafter
//	images/<config-hex>.json  one image: its DiffIDs (oldest first), config
//	                          (Entrypoint, Cmd, Env, WorkingDir, User), size,
//	                          import time; the config digest is the image ID
//	images/<config-hex>.use   flock(2) of the image's users: shared by each
//	                          running jail of it (Use), exclusive for Remove,
//	                          which refuses to remove an image in use
//	names.json                name → image ID ("busybox:latest" → "sha256:…")
//	tmp/                      layers being unpacked; whatever is here when no
//	                          import runs is a leftover of a killed one
//
// A layer appears under layers/ only by rename(2) of a completely unpacked,
// verified directory, so a kill -9, an ENOSPC or a refused layer never
// leaves half a layer: Open removes what tmp/ holds. Layers are unpacked as
// the calling user, by the package's own extractor (extract.go), in the
// on-disk format umoci's rootless OverlayfsRootfs unpacker wrote before
// it: whiteouts are 0/0 character devices, opaque directories carry
// user.overlay.opaque=y, the image's owners are kept in the
// user.rootlesscontainers xattr (umoci's, a two-field protobuf message
// encoded by hand: see rootlessXattr) and every file belongs to the
// caller, who is root inside the jail's user namespace. Modes (setuid
// included), times, hard links and symlinks are kept. Device nodes are
// skipped: they cannot be created without privilege and the jail gets its
// own /dev. Only user.* xattrs are kept (security.*, trusted.* and
// system.* are dropped, file capabilities among them), so a layer is the
// same whether root or a user imported it; an image's user.overlay.*
// xattrs are escaped, so that only its whiteouts steer the overlay. Mount
// the layers with userxattr, and nosuid (the image's setuid bits are
// kept).
//
// Start time: every warden command links this package, so it must cost
// nothing at start. It uses go-containerregistry's types and parsers only
// (pkg/v1), not its layout and tarball readers (which link net/http and
// more), the standard library's gzip and klauspost/compress's zstd
// decoder, whose package initializers cost about 0.25 ms
// (GODEBUG=inittrace=1 bin/warden version).
//
// What it must never do:
//   - write outside Root(): an entry with an absolute path or a ".."
//     component, a hard link to such a path, or an entry whose parent is a
//     symlink the same layer created earlier is refused, with the whole
//     import, by the scanner; and the extractor creates every file
//     relative to directory fds opened without following symlinks, so
//     that an entry the scanner missed fails rather than escapes;
//   - follow a symlink inside a layer on the host side (layers hold the
//     image's absolute symlinks, which point at host paths here);
//   - use a blob that does not match its digest, or a layer whose
//     uncompressed content does not match the config's diff_ids;
//   - import any other warden package: the store is host-side only. Keep
//     it out of the jail's mount namespace (the default policy's $HOME is
//     an empty tmpfs): a payload runs as the same uid and could change the
//     cached layers otherwise.
package image
