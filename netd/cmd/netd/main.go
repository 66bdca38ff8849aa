// Command netd owns pod network namespaces and CNI results.
package main

import (
	"os"

	"flotilla.dev/lib/daemon"
	"flotilla.dev/netd/internal/config"
	"flotilla.dev/netd/internal/server"
)

func main() {
	os.Exit(daemon.Main(daemon.Spec[*config.Config]{
		Name:     "netd",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, os.Args[1:], os.Stdout))
}
