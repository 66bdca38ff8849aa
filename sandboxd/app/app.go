// Package app is sandboxd's main, importable so that one multi-call executable
// (ctl/cmd/flotilla) can run every daemon and share its text between them.
package app

import (
	"io"

	"flotilla.dev/lib/daemon"
	"flotilla.dev/sandboxd/internal/config"
	"flotilla.dev/sandboxd/internal/server"
)

// Main runs sandboxd with the arguments after the program name and returns the
// exit code.
func Main(args []string, stdout io.Writer) int {
	return daemon.Main(daemon.Spec[*config.Config]{
		Name:     "sandboxd",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, args, stdout)
}
