// Package app is criproxy's main, importable so that one multi-call executable
// (ctl/cmd/flotilla) can run every daemon and share its text between them.
package app

import (
	"io"

	"flotilla.dev/criproxy/internal/config"
	"flotilla.dev/criproxy/internal/server"
	"flotilla.dev/lib/daemon"
)

// Main runs criproxy with the arguments after the program name and returns the
// exit code.
func Main(args []string, stdout io.Writer) int {
	return daemon.Main(daemon.Spec[*config.Config]{
		Name:     "criproxy",
		Defaults: config.Defaults,
		Flags:    config.Flags,
		Run:      server.Run,
	}, args, stdout)
}
