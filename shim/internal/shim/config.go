package shim

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"
)

// Config is the shim's command line, built by the client's Spawn.
type Config struct {
	ID          string
	Bundle      string
	StateDir    string
	Runtime     string
	RuntimeRoot string
	LogPath     string
	Terminal    bool
	Stdin       bool
	StdinOnce   bool
	LogLineSize int
	Timeout     time.Duration
}

// Args renders c as the shim's arguments (without argv[0]).
func (c Config) Args() []string {
	return []string{
		"--id", c.ID, "--bundle", c.Bundle, "--state-dir", c.StateDir,
		"--runtime", c.Runtime, "--runtime-root", c.RuntimeRoot, "--log-path", c.LogPath,
		fmt.Sprintf("--terminal=%t", c.Terminal), fmt.Sprintf("--stdin=%t", c.Stdin),
		fmt.Sprintf("--stdin-once=%t", c.StdinOnce), fmt.Sprintf("--log-line-size=%d", c.LogLineSize),
		"--timeout", c.Timeout.String(),
	}
}

// ParseConfig parses the shim's arguments and validates them.
func ParseConfig(args []string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("flotilla-shim", flag.ContinueOnError)
	fs.StringVar(&c.ID, "id", "", "container id")
	fs.StringVar(&c.Bundle, "bundle", "", "OCI bundle directory")
	fs.StringVar(&c.StateDir, "state-dir", "", "directory for the shim's socket, pid and exit files")
	fs.StringVar(&c.Runtime, "runtime", "runc", "OCI runtime binary")
	fs.StringVar(&c.RuntimeRoot, "runtime-root", "", "OCI runtime --root")
	fs.StringVar(&c.LogPath, "log-path", "", "CRI log file of the container")
	fs.BoolVar(&c.Terminal, "terminal", false, "give the container a pty")
	fs.BoolVar(&c.Stdin, "stdin", false, "keep the container's stdin open")
	fs.BoolVar(&c.StdinOnce, "stdin-once", false, "close stdin after the first attach")
	fs.IntVar(&c.LogLineSize, "log-line-size", 0, "longest log line written as one entry")
	fs.DurationVar(&c.Timeout, "timeout", time.Minute, "deadline for runtime create")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks c without side effects.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("--id is required"))
	}
	for name, p := range map[string]string{"--bundle": c.Bundle, "--state-dir": c.StateDir} {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("%s must be an absolute path, got %q", name, p))
		}
	}
	if c.LogPath != "" && !filepath.IsAbs(c.LogPath) {
		errs = append(errs, fmt.Errorf("--log-path must be absolute, got %q", c.LogPath))
	}
	if c.StdinOnce && !c.Stdin {
		errs = append(errs, errors.New("--stdin-once needs --stdin"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("--timeout must be positive"))
	}
	return errors.Join(errs...)
}
