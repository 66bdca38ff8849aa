// Package app is netd's main, importable so that one multi-call executable
// (ctl/cmd/flotilla) can run every daemon and share its text between them.
package app

import (
	"io"

	"flotilla.dev/lib/daemon"
	"flotilla.dev/netd/internal/config"
	"flotilla.dev/netd/internal/server"
)

// Main runs netd with the arguments after the program name and returns the
// exit code.
func Main(args []string, stdout io.Writer) int {
	return daemon.Main(daemon.Spec[*config.Config]{
		Name:     "netd",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, args, stdout)
}
