// Package config is sandboxd's configuration: the [sandboxd] table.
package config

import (
	"flag"
	"fmt"

	"flotilla.dev/lib/daemon"
)

// Config of sandboxd.
type Config struct {
	daemon.Common
	Root         string `toml:"root" comment:"Persistent state: pod and container records."`
	RunRoot      string `toml:"run_root" comment:"Runtime state: bundles, shim sockets, exit files."`
	ImagedSocket string `toml:"imaged_socket" comment:"imaged's socket (container rootfs)."`
	NetdSocket   string `toml:"netd_socket" comment:"netd's socket (pod networks)."`
	ShimPath     string `toml:"shim_path" comment:"flotilla-shim binary; empty looks beside sandboxd, then in PATH."`
}

// Defaults returns sandboxd's defaults.
func Defaults() *Config {
	return &Config{
		Common:       daemon.CommonDefaults("/run/flotilla/sandboxd.sock"),
		Root:         "/var/lib/flotilla/sandboxd",
		RunRoot:      "/run/flotilla/sandboxd",
		ImagedSocket: "/run/flotilla/imaged.sock",
		NetdSocket:   "/run/flotilla/netd.sock",
	}
}

// Flags registers sandboxd's flags.
func Flags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Socket, "socket", c.Socket, "unix socket to serve on")
}

// CommonConfig implements daemon.Config.
func (c *Config) CommonConfig() *daemon.Common { return &c.Common }

// Validate has no side effects.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.Root == "" || c.RunRoot == "" {
		return fmt.Errorf("root and run_root must be set")
	}
	return nil
}
