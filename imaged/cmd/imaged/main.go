// Command imaged pulls and stores images (containers/image + containers/storage).
package main

import (
	"os"

	"flotilla.dev/imaged/internal/config"
	"flotilla.dev/imaged/internal/server"
	"flotilla.dev/lib/daemon"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	// Layer application re-executes this binary; must run before anything else.
	if reexec.Init() {
		return
	}
	os.Exit(daemon.Main(daemon.Spec[*config.Config]{
		Name:     "imaged",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, os.Args[1:], os.Stdout))
}
