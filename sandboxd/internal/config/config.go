// Package config is sandboxd's configuration: the [sandboxd] table.
package config

import (
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"

	"flotilla.dev/lib/daemon"
)

// Runtime is one OCI runtime, chosen by a RuntimeClass handler.
type Runtime struct {
	Path string `toml:"path" comment:"OCI runtime binary (name looked up in PATH, or absolute path)."`
	Root string `toml:"root" comment:"The runtime's --root state directory; empty is <run_root>/runtimes/<handler>."`
	// ExecSyncViaRuntime turns off flotilla-shim's ExecSync fast path.
	ExecSyncViaRuntime bool `toml:"exec_sync_via_runtime" comment:"Run every ExecSync through the runtime's exec; false lets flotilla-shim run it itself when the runtime is runc and the container needs nothing it lacks (3-5 ms instead of 15-20)."`
	// StartViaRuntime turns off flotilla-shim's StartContainer fast path.
	StartViaRuntime bool `toml:"start_via_runtime" comment:"Run the runtime's start for StartContainer; false lets flotilla-shim do what runc start does itself when the runtime is runc (release runc init through its exec fifo), saving one runc process per start."`
	// BinaryCopyPerCall turns off the shared sealed copy of runc 1.0/1.1.
	BinaryCopyPerCall bool `toml:"binary_copy_per_call" comment:"Let runc 1.0/1.1 protect its own binary in every runc init (its CVE-2019-5736 defence: a read-only bind mount of itself and a re-exec, or a ≈ 9 MB copy in memory where it cannot mount; up to 2.5 ms per create and exec); false makes one sealed copy at start that every call runs from, which runc then does not protect again (runc's memfd-bind). No effect on other runtimes or runc 1.2+."`
}

// Config of sandboxd.
type Config struct {
	daemon.Common
	Root         string `toml:"root" comment:"Persistent state: pod and container records."`
	RunRoot      string `toml:"run_root" comment:"Runtime state: bundles, shim sockets, exit files, pinned namespaces."`
	ImagedSocket string `toml:"imaged_socket" comment:"imaged's socket (container rootfs)."`
	NetdSocket   string `toml:"netd_socket" comment:"netd's socket (pod networks)."`
	ShimPath     string `toml:"shim_path" comment:"flotilla-shim binary; empty looks beside sandboxd, then in PATH."`

	DefaultRuntime string              `toml:"default_runtime" comment:"Handler used when a pod names none."`
	Runtimes       map[string]*Runtime `toml:"runtimes" comment:"OCI runtimes by RuntimeClass handler."`
	PauseImage     string              `toml:"pause_image" comment:"Image run as the pod's init only when the pod shares one PID namespace."`
	CgroupDriver   string              `toml:"cgroup_driver" comment:"cgroupfs (systemd is not supported)."`
	StreamAddress  string              `toml:"stream_address" comment:"Streaming server (exec, attach, port-forward) listen address; port 0 picks a free port."`
	// SeccompProfile is the RuntimeDefault profile: empty is the built-in one.
	SeccompProfile      string   `toml:"seccomp_profile" comment:"JSON seccomp profile used for RuntimeDefault; empty is the built-in default."`
	DefaultCapabilities []string `toml:"default_capabilities" comment:"Capabilities every container gets unless it drops them."`
}

// DefaultCapabilities is the set a container gets by default (CRI-O's set).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL",
}

// Defaults returns sandboxd's defaults.
func Defaults() *Config {
	return &Config{
		Common:              daemon.CommonDefaults("/run/flotilla/sandboxd.sock"),
		Root:                "/var/lib/flotilla/sandboxd",
		RunRoot:             "/run/flotilla/sandboxd",
		ImagedSocket:        "/run/flotilla/imaged.sock",
		NetdSocket:          "/run/flotilla/netd.sock",
		DefaultRuntime:      "runc",
		Runtimes:            map[string]*Runtime{"runc": {Path: "runc"}},
		PauseImage:          "registry.k8s.io/pause:3.10",
		CgroupDriver:        "cgroupfs",
		StreamAddress:       "127.0.0.1:0",
		DefaultCapabilities: append([]string(nil), DefaultCapabilities...),
	}
}

// Flags registers sandboxd's flags.
func Flags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Socket, "socket", c.Socket, "unix socket to serve on")
	fs.StringVar(&c.Root, "root", c.Root, "persistent state directory")
	fs.StringVar(&c.RunRoot, "run-root", c.RunRoot, "runtime state directory")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS server URL")
	fs.StringVar(&c.ImagedSocket, "imaged-socket", c.ImagedSocket, "imaged's socket")
	fs.StringVar(&c.NetdSocket, "netd-socket", c.NetdSocket, "netd's socket")
	fs.StringVar(&c.ShimPath, "shim-path", c.ShimPath, "flotilla-shim binary")
	fs.StringVar(&c.StreamAddress, "stream-address", c.StreamAddress, "streaming server listen address")
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
	switch c.CgroupDriver {
	case "cgroupfs":
	case "systemd":
		return fmt.Errorf("cgroup_driver %q is unsupported: only cgroupfs is implemented", c.CgroupDriver)
	default:
		return fmt.Errorf("cgroup_driver %q: want cgroupfs", c.CgroupDriver)
	}
	if len(c.Runtimes) == 0 {
		return fmt.Errorf("runtimes: at least one runtime handler must be configured")
	}
	for h, r := range c.Runtimes {
		if r == nil || r.Path == "" {
			return fmt.Errorf("runtimes.%s: path must be set", h)
		}
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		return fmt.Errorf("default_runtime %q is not in runtimes (%s)", c.DefaultRuntime, strings.Join(c.Handlers(), ", "))
	}
	if _, _, err := net.SplitHostPort(c.StreamAddress); err != nil {
		return fmt.Errorf("stream_address %q: %w", c.StreamAddress, err)
	}
	for _, cp := range c.DefaultCapabilities {
		if !strings.HasPrefix(cp, "CAP_") {
			return fmt.Errorf("default_capabilities: %q is not a capability name (CAP_...)", cp)
		}
	}
	return nil
}

// Handlers lists the configured runtime handlers, sorted.
func (c *Config) Handlers() []string {
	var hs []string
	for h := range c.Runtimes {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return hs
}

// Runtime returns the runtime for a handler ("" is the default one) with its
// root filled in.
func (c *Config) Runtime(handler string) (Runtime, bool) {
	if handler == "" {
		handler = c.DefaultRuntime
	}
	r, ok := c.Runtimes[handler]
	if !ok {
		return Runtime{}, false
	}
	out := *r
	if out.Root == "" {
		out.Root = filepath.Join(c.RunRoot, "runtimes", handler)
	}
	return out, true
}
