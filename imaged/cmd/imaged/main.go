// Command imaged pulls and stores images (containers/image + containers/storage).
package main

import (
	"os"

	"flotilla.dev/imaged/app"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	// Layer application re-executes this binary; must run before anything else.
	if reexec.Init() {
		return
	}
	os.Exit(app.Main(os.Args[1:], os.Stdout))
}
