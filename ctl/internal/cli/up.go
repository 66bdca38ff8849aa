package cli

import (
	"context"
	netconf "flotilla.dev/netd/conflist"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"flotilla.dev/ctl/fleet"
	"github.com/spf13/cobra"
)

func newUpCmd(g *globals) *cobra.Command {
	o := fleet.Options{Restart: true}
	var noRestart bool
	var readyTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole fleet (NATS, criproxy, imaged, sandboxd, netd) in the foreground",
		Long: `Run the whole fleet in the foreground for trying Flotilla out. Everything lives under --root
(default ` + DefaultRoot + `): config in etc/, sockets in run/, state in lib/, daemon logs in log/.
A daemon that dies is restarted after a short backoff. Ctrl-C or SIGTERM stops the daemons;
containers keep running, as on a node whose runtime restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Root = g.root
			if o.Root == "" {
				o.Root = DefaultRoot
			}
			if o.BinDir == "" {
				o.BinDir = binDir()
			}
			if o.RegistriesConf == "" {
				o.RegistriesConf = os.Getenv("FLOTILLA_REGISTRIES_CONF")
			}
			if o.SignaturePolicy == "" {
				o.SignaturePolicy = os.Getenv("FLOTILLA_SIGNATURE_POLICY")
			}
			o.Restart = !noRestart
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "flotctl")
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			f, err := fleet.Start(o, log)
			if err != nil {
				return err
			}
			defer f.Stop()
			wctx, wcancel := context.WithTimeout(ctx, readyTimeout)
			st, err := f.WaitReady(wctx, true)
			wcancel()
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				log.Warn("fleet is not fully ready; serving anyway", "status", st.String(), "error", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Flotilla is up in %s\n", f.Layout.Root)
			fmt.Fprintf(out, "endpoint: %s\n", f.Layout.Endpoint())
			fmt.Fprintf(out, "logs:     %s\n", f.Layout.Log)
			fmt.Fprintf(out, "try:      crictl --runtime-endpoint %s version\n", f.Layout.Endpoint())
			fmt.Fprintf(out, "Ctrl-C stops the fleet.\n")
			<-ctx.Done()
			log.Info("stopping the fleet")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.BinDir, "bin-dir", "", "directory of the daemon binaries (default: beside flotctl)")
	fl.StringVar(&o.NATSURL, "nats-url", "", "use this external NATS server or cluster instead of the embedded one")
	fl.StringVar(&o.RegistriesConf, "registries-conf", "", "registries.conf for imaged (default $FLOTILLA_REGISTRIES_CONF, then /etc/containers/registries.conf)")
	fl.StringVar(&o.SignaturePolicy, "signature-policy", "", "policy.json for imaged (default $FLOTILLA_SIGNATURE_POLICY, then /etc/containers/policy.json)")
	fl.StringVar(&o.LogLevel, "log-level", "info", "daemons' log level")
	fl.StringSliceVar(&o.CNIChain, "cni-chain", netconf.DefaultChain, "plugins chained after bridge in the fleet's CNI conflist (portmap, bandwidth, firewall)")
	fl.BoolVar(&noRestart, "no-restart", false, "do not restart daemons that die")
	fl.DurationVar(&readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for Status to be ready")
	return cmd
}
