// Command imaged pulls and stores images (containers/image + containers/storage).
package main

import (
	"os"

	"flotilla.dev/lib/daemon"
	"flotilla.dev/imaged/internal/config"
	"flotilla.dev/imaged/internal/server"
)

func main() {
	os.Exit(daemon.Main(daemon.Spec[*config.Config]{
		Name:     "imaged",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, os.Args[1:], os.Stdout))
}
