// Package config is imaged's configuration: the [imaged] table.
package config

import (
	"flag"
	"fmt"

	"flotilla.dev/lib/daemon"
)

// Config of imaged.
type Config struct {
	daemon.Common
	Root    string `toml:"root" comment:"containers/storage graph root (images and container layers)."`
	RunRoot string `toml:"run_root" comment:"containers/storage run root."`
	StorageDriver string `toml:"storage_driver" comment:"containers/storage graph driver."`
	RegistriesConf string `toml:"registries_conf" comment:"registries.conf (mirrors, short names, blocked and insecure registries); its .d directory is read too."`
	SignaturePolicy string `toml:"signature_policy" comment:"policy.json enforced on every pull."`
}

// Defaults returns imaged's defaults.
func Defaults() *Config {
	return &Config{
		Common:          daemon.CommonDefaults("/run/flotilla/imaged.sock"),
		Root:            "/var/lib/flotilla/storage",
		RunRoot:         "/run/flotilla/storage",
		StorageDriver:   "overlay",
		RegistriesConf:  "/etc/containers/registries.conf",
		SignaturePolicy: "/etc/containers/policy.json",
	}
}

// Flags registers imaged's flags.
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
