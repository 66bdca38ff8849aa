// Package config is netd's configuration: the [netd] table.
package config

import (
	"flag"
	"fmt"

	"flotilla.dev/lib/daemon"
)

// Config of netd.
type Config struct {
	daemon.Common
	Root    string   `toml:"root" comment:"Persistent state: pod network records (<root>/pods/records.db; the one file per pod of earlier versions is moved into it at start), libcni cache (<root>/cni-cache). host-local keeps IPs in the dataDir set in the conflist: put it under root (e.g. <root>/ipam)."`
	RunRoot string   `toml:"run_root" comment:"Runtime state: pinned network namespaces live in <run_root>/netns (default /run/flotilla/netns), partial CNI results of ADDs in progress in <run_root>/netd/cni-partial."`
	ConfDir string   `toml:"cni_conf_dir" comment:"Directory of CNI network configurations (.conflist/.conf)."`
	BinDirs []string `toml:"cni_bin_dirs" comment:"Directories searched for CNI plugin binaries."`
	Network string   `toml:"network" comment:"Name of the CNI network to use; empty picks the first file by name."`
}

// Defaults returns netd's defaults.
func Defaults() *Config {
	return &Config{
		Common:  daemon.CommonDefaults("/run/flotilla/netd.sock"),
		Root:    "/var/lib/flotilla/netd",
		RunRoot: "/run/flotilla",
		ConfDir: "/etc/cni/net.d",
		BinDirs: []string{"/opt/cni/bin", "/usr/lib/cni"},
	}
}

// Flags registers netd's flags.
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
	if c.ConfDir == "" || len(c.BinDirs) == 0 {
		return fmt.Errorf("cni_conf_dir and cni_bin_dirs must be set")
	}
	return nil
}
