// Package app is imaged's main, importable so that one multi-call executable
// (ctl/cmd/flotilla) can run every daemon and share its text between them.
package app

import (
	"io"

	"flotilla.dev/imaged/internal/config"
	"flotilla.dev/imaged/internal/server"
	"flotilla.dev/lib/daemon"
)

// Main runs imaged with the arguments after the program name and returns the
// exit code.
func Main(args []string, stdout io.Writer) int {
	return daemon.Main(daemon.Spec[*config.Config]{
		Name:     "imaged",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, args, stdout)
}
