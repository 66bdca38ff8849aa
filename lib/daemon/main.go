package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"flotilla.dev/lib/config"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/metrics"
	"flotilla.dev/lib/timerslack"
	"flotilla.dev/lib/version"
)

// Common is the part of every daemon's configuration that is the same.
// Daemon configs embed it (flattened into their TOML table).
type Common struct {
	Socket         string `toml:"socket" comment:"Unix socket this daemon serves gRPC on (mode 0600)."`
	LogLevel       string `toml:"log_level" comment:"debug, info, warn or error."`
	LogFormat      string `toml:"log_format" comment:"text or json."`
	NATSURL        string `toml:"nats_url" comment:"NATS server (or comma-separated cluster) events are published to."`
	MetricsAddress string `toml:"metrics_address" comment:"host:port serving Prometheus /metrics and /debug/pprof; empty disables it."`
	TimerSlackUS   int    `toml:"timer_slack_us" comment:"How late (µs) the kernel may wake the daemon's threads from timed sleeps; saves CPU in bursts. Processes in containers keep the slack the daemon inherited. 0 keeps the inherited slack."`
}

// DefaultNATSURL is where the embedded NATS server (in criproxy) listens.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// DefaultTimerSlackUS is the daemons' default timer slack (package timerslack).
const DefaultTimerSlackUS = 500

// CommonDefaults returns the defaults with the daemon's socket.
func CommonDefaults(socket string) Common {
	return Common{Socket: socket, LogLevel: "info", LogFormat: "text", NATSURL: DefaultNATSURL,
		TimerSlackUS: DefaultTimerSlackUS}
}

// Validate checks the common fields without side effects.
func (c *Common) Validate() error {
	if c.Socket == "" {
		return fmt.Errorf("socket must be set")
	}
	if _, err := flog.ParseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log_format %q: want text or json", c.LogFormat)
	}
	if c.TimerSlackUS < 0 || c.TimerSlackUS > 1_000_000 {
		return fmt.Errorf("timer_slack_us %d: want 0 to 1000000", c.TimerSlackUS)
	}
	return nil
}

// Config is what Main needs from a daemon's configuration.
type Config interface {
	config.Validator
	CommonConfig() *Common
}

// Spec describes a daemon binary for Main.
type Spec[C Config] struct {
	// Name is the binary and the config table: criproxy, imaged, sandboxd, netd.
	Name string
	// Defaults returns a config with every default filled in.
	Defaults func() C
	// Flags registers extra flags that override the config after loading.
	Flags func(fs *flag.FlagSet, cfg C)
	// Run runs the daemon until ctx is cancelled.
	Run func(ctx context.Context, cfg C, log *slog.Logger) error
}

// Main parses flags, loads layered config, sets up logging and runs the
// daemon until SIGINT/SIGTERM. It returns the process exit code.
//
//	<name> [--config FILE] [--print-config] [--version] [--log-level L] [daemon flags]
func Main[C Config](spec Spec[C], args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet(spec.Name, flag.ContinueOnError)
	file := fs.String("config", config.DefaultFile, "configuration file; drop-ins are read from flotilla.d/ beside it")
	printCfg := fs.Bool("print-config", false, "print the commented default configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log-level", "", "override log_level")
	// Extra flags bind to a scratch config; they are applied after loading.
	flagged := spec.Defaults()
	if spec.Flags != nil {
		spec.Flags(fs, flagged)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", spec.Name, version.Version)
		return 0
	}
	cfg := spec.Defaults()
	if *printCfg {
		out, err := config.Marshal(spec.Name, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "# Default configuration of %s %s.\n# Put it in %s or a drop-in under %s.\n\n%s",
			spec.Name, version.Version, config.DefaultFile, config.DropInDir(config.DefaultFile), out)
		return 0
	}
	if err := config.Load(spec.Name, *file, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		return 2
	}
	if spec.Flags != nil {
		// Re-bind the flags onto the loaded config so only the ones given win.
		fs2 := flag.NewFlagSet(spec.Name, flag.ContinueOnError)
		fs2.SetOutput(io.Discard)
		fs2.String("config", "", "")
		fs2.Bool("print-config", false, "")
		fs2.Bool("version", false, "")
		fs2.String("log-level", "", "")
		spec.Flags(fs2, cfg)
		_ = fs2.Parse(args)
	}
	if *logLevel != "" {
		cfg.CommonConfig().LogLevel = *logLevel
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration: %v\n", spec.Name, err)
		return 2
	}
	c := cfg.CommonConfig()
	logger, err := flog.New(flog.Options{Level: c.LogLevel, Format: c.LogFormat, Daemon: spec.Name})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		return 2
	}
	ctx, cancel := SignalContext(context.Background())
	defer cancel()
	logger.Info("starting", "version", version.Version, "pid", os.Getpid(), "config", *file)
	if c.TimerSlackUS > 0 {
		if err := timerslack.Set(int64(c.TimerSlackUS) * 1000); err != nil {
			logger.Warn("timer slack not set", "error", err)
		}
	}
	if c.MetricsAddress != "" {
		if err := metrics.Serve(ctx, c.MetricsAddress, logger); err != nil {
			logger.Error("exiting", "error", err)
			return 1
		}
	}
	if err := spec.Run(ctx, cfg, logger); err != nil {
		logger.Error("exiting", "error", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}
