package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"flotilla.dev/ctl/fleet"
	daemonv1 "flotilla.dev/proto/daemon/v1"
	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DaemonStatus is one row of `flotctl status`.
type DaemonStatus struct {
	Daemon  string `json:"daemon"`
	Healthy bool   `json:"healthy"`
	Version string `json:"version,omitempty"`
	Pid     int32  `json:"pid,omitempty"`
	Socket  string `json:"socket"`
	Detail  string `json:"detail,omitempty"`
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each daemon's health, version and socket, and the CRI conditions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nc, err := g.resolve()
			if err != nil {
				return err
			}
			var rows []DaemonStatus
			for _, d := range fleet.Daemons {
				rows = append(rows, probe(cmd.Context(), d, nc.Sockets[d]))
			}
			return render(cmd.OutOrStdout(), g.output, rows, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "DAEMON\tHEALTH\tVERSION\tPID\tSOCKET\tDETAIL")
				for _, r := range rows {
					h := "down"
					if r.Healthy {
						h = "ok"
					}
					pid := ""
					if r.Pid != 0 {
						pid = fmt.Sprint(r.Pid)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Daemon, h, r.Version, pid, r.Socket, r.Detail)
				}
			})
		},
	}
}

func probe(ctx context.Context, daemon, socket string) DaemonStatus {
	row := DaemonStatus{Daemon: daemon, Socket: socket}
	conn, err := fleet.Dial(socket)
	if err != nil {
		row.Detail = err.Error()
		return row
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if daemon == "criproxy" {
		v, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
		if err != nil {
			row.Detail = status.Convert(err).Message()
			return row
		}
		row.Healthy, row.Version = true, v.RuntimeVersion
		if st, err := fleet.QueryStatus(ctx, socket); err == nil {
			row.Detail = fmt.Sprintf("RuntimeReady=%v NetworkReady=%v", st.RuntimeReady, st.NetworkReady)
			if !st.NetworkReady && st.NetworkReason != "" {
				row.Detail += " (" + st.NetworkReason + ")"
			}
		}
		return row
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		row.Detail = status.Convert(err).Message()
		return row
	}
	row.Healthy = h.Status == healthpb.HealthCheckResponse_SERVING
	if info, err := daemonv1.NewDaemonServiceClient(conn).Info(ctx, &daemonv1.InfoRequest{}); err == nil {
		row.Version, row.Pid = info.Version, info.Pid
		row.Detail = "up " + time.Since(time.Unix(0, info.StartedAt)).Round(time.Second).String()
	}
	return row
}
