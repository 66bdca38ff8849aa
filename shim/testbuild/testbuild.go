// Package testbuild builds the flotilla-shim binary (C, shim/c/) for tests
// in other packages, through shim/build.sh like the Makefile.
package testbuild

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build compiles flotilla-shim into out.
func Build(out string) error {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("build flotilla-shim: cannot locate the source")
	}
	script := filepath.Join(filepath.Dir(file), "..", "build.sh")
	if b, err := exec.Command("sh", script, out).CombinedOutput(); err != nil {
		return fmt.Errorf("build flotilla-shim: %v\n%s", err, b)
	}
	return nil
}
