// Package cli is flotctl, Flotilla's admin CLI.
package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// DefaultRoot is where `flotctl up` keeps a dev fleet.
const DefaultRoot = "/tmp/flotilla"

type globals struct {
	root     string
	config   string
	endpoint string
	output   string
	out      io.Writer
}

// NewRoot builds the flotctl command tree.
func NewRoot(out io.Writer) *cobra.Command {
	g := &globals{out: out}
	root := &cobra.Command{
		Use:           "flotctl",
		Short:         "Administer a Flotilla node: run a dev fleet, inspect daemons, pods, containers, images and events",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", "", "root of a fleet started by `flotctl up` (default: the node's /etc/flotilla config)")
	pf.StringVar(&g.config, "config", "/etc/flotilla/flotilla.toml", "node configuration file (when --root is not given)")
	pf.StringVar(&g.endpoint, "endpoint", "", "CRI endpoint (unix:///path/cri.sock); default from --root or --config")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	root.AddCommand(newUpCmd(g), newStatusCmd(g), newEventsCmd(g), newConfigCmd(g),
		newPodsCmd(g), newPsCmd(g), newImagesCmd(g), newInspectCmd(g))
	return root
}

// Execute runs flotctl and returns its exit code.
func Execute() int {
	cmd := NewRoot(os.Stdout)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "flotctl:", err)
		return 1
	}
	return 0
}

// binDir is where the fleet's binaries are: beside flotctl.
func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}
