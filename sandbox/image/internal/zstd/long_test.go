// Copyright 2023 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package zstd

import (
	"bytes"
	"io"
	"math/rand"
	"os/exec"
	"testing"
)

// TestLongWindow is warden's: a stream whose matches reach 9 MiB back
// (zstd --long=27) needs more than the 8 MiB window Go's copy allows.
func TestLongWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 18 MiB")
	}
	zstd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("needs the zstd command")
	}
	block := make([]byte, 9<<20)
	rand.New(rand.NewSource(1)).Read(block)
	data := append(append([]byte{}, block...), block...)
	cmd := exec.Command(zstd, "-q", "-c", "--long=27", "-3")
	cmd.Stdin = bytes.NewReader(data)
	compressed, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if len(compressed) > len(data)*3/4 {
		t.Fatalf("zstd --long=27 compressed %d bytes to %d: the second copy was not matched", len(data), len(compressed))
	}
	got, err := io.ReadAll(NewReader(bytes.NewReader(compressed)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("decompressed data differs")
	}
}
