// Package testbuild builds the flotilla-shim binary (C, shim/c/) for tests
// in other packages, through shim/build.sh like the Makefile.
package testbuild

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// shimDir is shim/ of the checkout this package was built from.
func shimDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the shim's source")
	}
	return filepath.Join(filepath.Dir(file), ".."), nil
}

// Build compiles flotilla-shim into out.
func Build(out string) error {
	dir, err := shimDir()
	if err != nil {
		return fmt.Errorf("build flotilla-shim: %w", err)
	}
	script := filepath.Join(dir, "build.sh")
	if b, err := exec.Command("sh", script, out).CombinedOutput(); err != nil {
		return fmt.Errorf("build flotilla-shim: %v\n%s", err, b)
	}
	return nil
}
