package image

import "strings"

// Kind says what went wrong with an image reference, for callers that
// branch on it (the CLI prints every kind the same way and exits 125).
type Kind int

const (
	// NotFound: no such file, and no image of that name or ID.
	NotFound Kind = iota + 1
	// BadFormat: not an image layout or tarball warden can read, or an
	// image it cannot use (no layers, several images, sha512 diff_ids).
	BadFormat
	// Corrupt: a blob does not match its digest.
	Corrupt
	// Hostile: a layer would write outside its own directory.
	Hostile
	// BadName: a name given to Import that cannot be a name.
	BadName
	// StoreFailed: the store itself failed (permissions, disk full, I/O).
	StoreFailed
	// InUse: Remove of an image a running jail uses (Store.Use). Its
	// Ref is the image's name (else the reference given), and its
	// message reads "image NAME is in use by a running jail; ...".
	InUse
)

// Error is a failure about one image reference. Its message is one line:
// "image REF: what is wrong[: cause][; what to do]".
type Error struct {
	Ref  string // the reference as the caller gave it
	Kind Kind
	What string // what is wrong
	Fix  string // what to do about it; may be empty
	Err  error  // the cause; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("image ")
	b.WriteString(e.Ref)
	if e.Kind == InUse {
		b.WriteString(" ") // "image NAME is in use ..."
	} else {
		b.WriteString(": ")
	}
	b.WriteString(e.What)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	// One line, whatever a cause from a library looks like.
	return oneLine(b.String())
}

// oneLine replaces the line breaks of s with spaces. (A function, not a
// strings.Replacer: a package variable built at start is paid for by
// every warden command.)
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(ref string, kind Kind, what, fix string, cause error) *Error {
	return &Error{Ref: ref, Kind: kind, What: what, Fix: fix, Err: cause}
}

// storeErr is a failure of the store's own files.
func storeErr(ref, what string, cause error) *Error {
	return errorf(ref, StoreFailed, what, "check the store's directory (free space, permissions) and try again", cause)
}
