// Package config is criproxy's configuration: the [criproxy] table.
package config

import (
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"

	"flotilla.dev/lib/daemon"
)

// Config of criproxy.
type Config struct {
	daemon.Common
	SocketMode Mode `toml:"socket_mode" comment:"Permissions of the CRI socket, octal; never open to others."`
	// Backends, each a list of replica sockets.
	Imaged         []string `toml:"imaged" comment:"imaged replicas (unix socket paths): the CRI ImageService."`
	Sandboxd       []string `toml:"sandboxd" comment:"sandboxd replicas (unix socket paths): the CRI RuntimeService."`
	Netd           []string `toml:"netd" comment:"netd replicas (unix socket paths): NetworkReady."`
	HealthInterval Duration `toml:"health_interval" comment:"How long criproxy waits before following a backend replica's health again once it stopped, could not be reached or hung. Health is followed through one gRPC health Watch stream per replica, not polled."`
	StatusTimeout  Duration `toml:"status_timeout" comment:"Deadline for the backend calls behind Status and Version."`
	NATSEmbedded   bool     `toml:"nats_embedded" comment:"Run an embedded NATS server (set false to use an external server or cluster at nats_url)."`
	NATSListen     string   `toml:"nats_listen" comment:"host:port the embedded NATS server listens on."`
}

// Mode is a file mode written as an octal string ("0660") in TOML.
type Mode uint32

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%04o", uint32(m))), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("socket mode %q: want octal like \"0660\"", b)
	}
	*m = Mode(v)
	return nil
}

// Duration is a time.Duration written as "1s" in TOML.
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Defaults returns criproxy's defaults.
func Defaults() *Config {
	return &Config{
		Common:         daemon.CommonDefaults("/run/flotilla/cri.sock"),
		SocketMode:     0o660,
		Imaged:         []string{"/run/flotilla/imaged.sock"},
		Sandboxd:       []string{"/run/flotilla/sandboxd.sock"},
		Netd:           []string{"/run/flotilla/netd.sock"},
		HealthInterval: Duration{time.Second},
		StatusTimeout:  Duration{2 * time.Second},
		NATSEmbedded:   true,
		NATSListen:     "127.0.0.1:4222",
	}
}

// Flags registers criproxy's flags.
func Flags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Socket, "socket", c.Socket, "CRI unix socket to serve on")
}

// CommonConfig implements daemon.Config.
func (c *Config) CommonConfig() *daemon.Common { return &c.Common }

// Validate has no side effects.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if len(c.Imaged) == 0 || len(c.Sandboxd) == 0 || len(c.Netd) == 0 {
		return fmt.Errorf("imaged, sandboxd and netd need at least one socket each")
	}
	if c.SocketMode&^0o777 != 0 || c.SocketMode&0o007 != 0 {
		return fmt.Errorf("socket_mode %o: must not give access to others (at most 0660)", c.SocketMode)
	}
	if c.HealthInterval.Duration <= 0 || c.StatusTimeout.Duration <= 0 {
		return fmt.Errorf("health_interval and status_timeout must be positive")
	}
	if c.NATSEmbedded {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("nats_listen %q: %w", c.NATSListen, err)
		}
	}
	return nil
}
