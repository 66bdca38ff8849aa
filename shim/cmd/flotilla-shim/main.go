// Command flotilla-shim supervises one container (placeholder until the
// shim lands).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "flotilla-shim: not implemented yet")
	os.Exit(1)
}
