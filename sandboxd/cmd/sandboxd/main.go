// Command sandboxd runs pods and containers through flotilla-shim.
package main

import (
	"os"

	"flotilla.dev/lib/daemon"
	"flotilla.dev/sandboxd/internal/config"
	"flotilla.dev/sandboxd/internal/server"
)

func main() {
	os.Exit(daemon.Main(daemon.Spec[*config.Config]{
		Name:     "sandboxd",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, os.Args[1:], os.Stdout))
}
