// Command criproxy serves the CRI socket the kubelet talks to and routes
// every call to the daemon that owns it.
package main

import (
	"os"

	"flotilla.dev/criproxy/internal/config"
	"flotilla.dev/criproxy/internal/server"
	"flotilla.dev/lib/daemon"
)

func main() {
	os.Exit(daemon.Main(daemon.Spec[*config.Config]{
		Name:     "criproxy",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, os.Args[1:], os.Stdout))
}
