package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"flotilla.dev/ctl/fleet"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type criClients struct {
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
}

func (g *globals) cri() (*criClients, error) {
	nc, err := g.resolve()
	if err != nil {
		return nil, err
	}
	conn, err := fleet.Dial(nc.Sockets["criproxy"])
	if err != nil {
		return nil, err
	}
	return &criClients{conn: conn, runtime: runtimeapi.NewRuntimeServiceClient(conn), images: runtimeapi.NewImageServiceClient(conn)}, nil
}

// criCall connects to the CRI socket for one command and bounds it with a
// 10 s deadline; done releases both.
func (g *globals) criCall(cmd *cobra.Command) (*criClients, context.Context, func(), error) {
	c, err := g.cri()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	return c, ctx, func() { cancel(); c.conn.Close() }, nil
}

func age(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Since(time.Unix(0, ns)).Round(time.Second).String()
}

func newPodsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pods",
		Short: "List pod sandboxes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, done, err := g.criCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), g.output, resp, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "POD ID\tNAME\tNAMESPACE\tSTATE\tAGE\tRUNTIME")
				for _, p := range resp.Items {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", short(p.Id), p.GetMetadata().GetName(), p.GetMetadata().GetNamespace(),
						strings.TrimPrefix(p.State.String(), "SANDBOX_"), age(p.CreatedAt), p.RuntimeHandler)
				}
			})
		},
	}
}

func newPsCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List containers (running ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, done, err := g.criCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			req := &runtimeapi.ListContainersRequest{}
			if !all {
				req.Filter = &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}
			}
			resp, err := c.runtime.ListContainers(ctx, req)
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), g.output, resp, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "CONTAINER\tNAME\tIMAGE\tSTATE\tAGE\tPOD ID")
				for _, ct := range resp.Containers {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", short(ct.Id), ct.GetMetadata().GetName(), ct.GetImage().GetImage(),
						strings.TrimPrefix(ct.State.String(), "CONTAINER_"), age(ct.CreatedAt), short(ct.PodSandboxId))
				}
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include exited and created containers")
	return cmd
}

func newImagesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, done, err := g.criCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
			if err != nil {
				return err
			}
			sort.Slice(resp.Images, func(i, j int) bool { return first(resp.Images[i].RepoTags) < first(resp.Images[j].RepoTags) })
			return render(cmd.OutOrStdout(), g.output, resp, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "IMAGE\tIMAGE ID\tSIZE")
				for _, im := range resp.Images {
					name := first(im.RepoTags)
					if name == "" {
						name = first(im.RepoDigests)
					}
					fmt.Fprintf(tw, "%s\t%s\t%.1fMB\n", name, short(im.Id), float64(im.Size)/1e6)
				}
			})
		},
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func newInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect ID|IMAGE",
		Short: "Show the verbose status of a pod, a container or an image (json or yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := g.criCall(cmd)
			if err != nil {
				return err
			}
			defer done()
			format := g.output
			if format == "table" {
				format = "json"
			}
			id := args[0]
			if ct, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true}); err == nil {
				return render(cmd.OutOrStdout(), format, ct, nil)
			}
			if p, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true}); err == nil {
				return render(cmd.OutOrStdout(), format, p, nil)
			}
			im, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}, Verbose: true})
			if err == nil && im.Image != nil {
				return render(cmd.OutOrStdout(), format, im, nil)
			}
			return fmt.Errorf("no pod, container or image %q", id)
		},
	}
}
