//go:build tools

// This file only records, for go mod tidy, the packages of runtime-tools
// v0.9.0 that scripts/oci-validate.sh builds from the module cache:
// cmd/runtimetest and the validation/<name> programs (all of which import
// validation/util). It is never compiled into oci-validate.
package main

import (
	_ "github.com/opencontainers/runtime-tools/cmd/runtimetest"
	_ "github.com/opencontainers/runtime-tools/validation/util"
)
