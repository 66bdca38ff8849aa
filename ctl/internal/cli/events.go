package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"flotilla.dev/lib/bus"
	eventsv1 "flotilla.dev/proto/events/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func newEventsCmd(g *globals) *cobra.Command {
	var follow bool
	var count int
	var natsURL, subject string
	cmd := &cobra.Command{
		Use:   "events --follow",
		Short: "Print the fleet's events (NATS) live",
		Long:  "Print events as daemons publish them. Events are notifications, not history: only those published while this runs are shown.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !follow {
				return fmt.Errorf("events are live only: use --follow")
			}
			if natsURL == "" {
				nc, err := g.resolve()
				if err != nil {
					return err
				}
				natsURL = nc.NATSURL
			}
			b, err := bus.Connect(natsURL, "flotctl")
			if err != nil {
				return err
			}
			defer b.Close()
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			out := cmd.OutOrStdout()
			ch := make(chan *eventsv1.Envelope, 256)
			unsub, err := b.Subscribe(subject, func(e *eventsv1.Envelope) {
				select {
				case ch <- e:
				default:
				}
			})
			if err != nil {
				return err
			}
			defer unsub()
			if err := b.Flush(); err != nil {
				return fmt.Errorf("nats %s: %w", natsURL, err)
			}
			fmt.Fprintf(os.Stderr, "following events on %s (%s)\n", natsURL, subject)
			seen := 0
			for {
				select {
				case <-ctx.Done():
					return nil
				case e := <-ch:
					printEvent(out, g.output, e)
					seen++
					if count > 0 && seen >= count {
						return nil
					}
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow events as they happen")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many events (0: never)")
	cmd.Flags().StringVar(&natsURL, "nats-url", "", "NATS server (default: from the fleet or node config)")
	cmd.Flags().StringVar(&subject, "subject", eventsv1.SubjectAll, "subject to follow (NATS wildcards allowed)")
	return cmd
}

func printEvent(w interface{ Write([]byte) (int, error) }, format string, e *eventsv1.Envelope) {
	if format == "json" {
		data, _ := protojson.Marshal(e)
		fmt.Fprintln(w, string(data))
		return
	}
	ts := time.Unix(0, e.Timestamp).Format(time.RFC3339Nano)
	var payload []byte
	switch p := e.Payload.(type) {
	case *eventsv1.Envelope_Daemon:
		payload, _ = protojson.Marshal(p.Daemon)
	case *eventsv1.Envelope_Pod:
		payload, _ = protojson.Marshal(p.Pod)
	case *eventsv1.Envelope_Container:
		c := proto.Clone(p.Container).(*eventsv1.ContainerEvent)
		c.CriEvent = nil
		payload, _ = protojson.Marshal(c)
	case *eventsv1.Envelope_Image:
		payload, _ = protojson.Marshal(p.Image)
	case *eventsv1.Envelope_Network:
		payload, _ = protojson.Marshal(p.Network)
	}
	fmt.Fprintf(w, "%s %s %s %s\n", ts, e.Subject, e.Source, payload)
}
