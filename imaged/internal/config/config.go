// Package config is imaged's configuration: the [imaged] table.
package config

import (
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"flotilla.dev/lib/daemon"
)

// Config of imaged.
type Config struct {
	daemon.Common
	Root            string `toml:"root" comment:"containers/storage graph root (images and container layers)."`
	RunRoot         string `toml:"run_root" comment:"containers/storage run root."`
	StorageDriver   string `toml:"storage_driver" comment:"containers/storage graph driver."`
	RegistriesConf  string `toml:"registries_conf" comment:"registries.conf (mirrors, short names, blocked and insecure registries); its .d directory is read too."`
	SignaturePolicy string `toml:"signature_policy" comment:"policy.json enforced on every pull."`
	// RegistriesDir holds the registries.d lookaside/sigstore-attachment configuration.
	RegistriesDir string `toml:"registries_dir" comment:"registries.d directory (signature storage, use-sigstore-attachments)."`
	// AuthFile is consulted when the kubelet sends no AuthConfig.
	AuthFile string `toml:"auth_file" comment:"containers-auth.json used when a pull carries no credentials; empty: none."`
	// PullProgressTimeout cancels a pull that made no progress for that long.
	PullProgressTimeout Duration `toml:"pull_progress_timeout" comment:"cancel a pull that reads no bytes for this long (e.g. \"1m\")."`
	// MaxParallelDownloads bounds the layers fetched at once per pull.
	MaxParallelDownloads uint `toml:"max_parallel_downloads" comment:"layers fetched in parallel per pull."`
}

// Duration is a time.Duration that reads and writes "1m30s" in TOML.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Defaults returns imaged's defaults.
func Defaults() *Config {
	return &Config{
		Common:               daemon.CommonDefaults("/run/flotilla/imaged.sock"),
		Root:                 "/var/lib/flotilla/storage",
		RunRoot:              "/run/flotilla/storage",
		StorageDriver:        "overlay",
		RegistriesConf:       "/etc/containers/registries.conf",
		SignaturePolicy:      "/etc/containers/policy.json",
		RegistriesDir:        "/etc/containers/registries.d",
		PullProgressTimeout:  Duration(time.Minute),
		MaxParallelDownloads: 6,
	}
}

// Flags registers imaged's flags.
func Flags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Socket, "socket", c.Socket, "unix socket to serve on")
	fs.StringVar(&c.Root, "root", c.Root, "containers/storage graph root")
	fs.StringVar(&c.RunRoot, "run-root", c.RunRoot, "containers/storage run root")
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
	if !filepath.IsAbs(c.Root) || !filepath.IsAbs(c.RunRoot) {
		return fmt.Errorf("root and run_root must be absolute paths")
	}
	if c.StorageDriver == "" {
		return fmt.Errorf("storage_driver must be set")
	}
	if c.PullProgressTimeout <= 0 {
		return fmt.Errorf("pull_progress_timeout must be positive")
	}
	return nil
}
