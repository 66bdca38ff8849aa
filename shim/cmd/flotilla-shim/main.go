// Command flotilla-shim supervises one container; see package
// flotilla.dev/shim/internal/shim. It is started by shim/client.Spawn.
package main

import (
	"os"

	"flotilla.dev/shim/internal/shim"
)

func main() { os.Exit(shim.Main(os.Args[1:])) }
