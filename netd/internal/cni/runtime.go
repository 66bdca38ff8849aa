package cni

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// IfName is the pod's interface.
const IfName = "eth0"

// Pod is what the plugins are told about a pod.
type Pod struct {
	ID, Name, Namespace, UID string
	NetNS                    string
	Annotations              map[string]string
	PortMappings             []PortMapping
	DNS                      *DNS
	PodCIDR                  string
}

// PortMapping is the portMappings capability entry.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// DNS is the dns capability.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// Annotations carrying the pod's bandwidth limits.
const (
	AnnotationIngressBandwidth = "kubernetes.io/ingress-bandwidth"
	AnnotationEgressBandwidth  = "kubernetes.io/egress-bandwidth"
)

// Args returns the CNI_ARGS the kubelet world expects.
func Args(p *Pod) [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", p.Namespace},
		{"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
		{"K8S_POD_UID", p.UID},
	}
}

// CapabilityArgs returns the runtimeConfig capabilities for p; it fails on
// malformed bandwidth annotations or port mappings (InvalidArgument).
func CapabilityArgs(p *Pod) (map[string]any, error) {
	caps := map[string]any{}
	if len(p.PortMappings) > 0 {
		pms := make([]map[string]any, 0, len(p.PortMappings))
		for _, pm := range p.PortMappings {
			if pm.HostPort <= 0 {
				continue // not published on the host
			}
			if pm.HostPort > 65535 || pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
				return nil, fmt.Errorf("port mapping %d->%d: port out of range: %w", pm.HostPort, pm.ContainerPort, errdefs.ErrInvalidArgument)
			}
			proto := strings.ToLower(pm.Protocol)
			switch proto {
			case "":
				proto = "tcp"
			case "tcp", "udp", "sctp":
			default:
				return nil, fmt.Errorf("port mapping %d: protocol %q: %w", pm.HostPort, pm.Protocol, errdefs.ErrInvalidArgument)
			}
			m := map[string]any{"hostPort": pm.HostPort, "containerPort": pm.ContainerPort, "protocol": proto}
			if pm.HostIP != "" {
				if net.ParseIP(pm.HostIP) == nil {
					return nil, fmt.Errorf("port mapping %d: host IP %q: %w", pm.HostPort, pm.HostIP, errdefs.ErrInvalidArgument)
				}
				m["hostIP"] = pm.HostIP
			}
			pms = append(pms, m)
		}
		if len(pms) > 0 {
			caps["portMappings"] = pms
		}
	}
	bw := map[string]any{}
	for ann, key := range map[string]string{AnnotationIngressBandwidth: "ingress", AnnotationEgressBandwidth: "egress"} {
		v, ok := p.Annotations[ann]
		if !ok {
			continue
		}
		rate, err := ParseQuantity(v)
		if err != nil || rate <= 0 {
			return nil, fmt.Errorf("annotation %s=%q: not a positive bandwidth: %w", ann, v, errdefs.ErrInvalidArgument)
		}
		// The kubelet and CRI-O pass the largest burst the kernel accepts.
		bw[key+"Rate"], bw[key+"Burst"] = rate, int64(math.MaxInt32)
	}
	if len(bw) > 0 {
		caps["bandwidth"] = bw
	}
	if p.DNS != nil && (len(p.DNS.Servers)+len(p.DNS.Searches)+len(p.DNS.Options)) > 0 {
		caps["dns"] = p.DNS
	}
	if p.PodCIDR != "" {
		caps["ipRanges"] = [][]map[string]string{{{"subnet": p.PodCIDR}}}
	}
	return caps, nil
}

// ParseQuantity parses a Kubernetes quantity such as "10M", "1Gi", "500k"
// or "1e6" into an integer (bits per second for bandwidth).
func ParseQuantity(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := 1.0
	for _, suf := range []struct {
		s string
		m float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
		{"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18}} {
		if strings.HasSuffix(s, suf.s) {
			s, mult = strings.TrimSuffix(s, suf.s), suf.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid quantity %q", s)
	}
	v := f * mult
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("quantity %q too large", s)
	}
	return int64(math.Ceil(v)), nil
}

// Runner runs plugins through libcni with its cache under cacheDir.
type Runner struct {
	cni  *libcni.CNIConfig
	exec *partialExec
}

// NewRunner searches binDirs for plugins and keeps the partial results of
// ADDs in progress under partialDir. Those only need to outlive netd, not
// the node: what they undo (veths, iptables rules) is gone after a reboot,
// so partialDir belongs on tmpfs, where writing them costs no disk inodes.
func NewRunner(binDirs []string, cacheDir, partialDir string) *Runner {
	ex := newPartialExec(partialDir)
	return &Runner{cni: libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, ex), exec: ex}
}

func rt(id, netns string, args [][2]string, caps map[string]any) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: IfName, Args: args, CapabilityArgs: caps}
}

// Add runs ADD and returns the pod's IPs, IPv4 first.
func (r *Runner) Add(ctx context.Context, list *libcni.NetworkConfigList, id, netns string, args [][2]string, caps map[string]any) ([]string, error) {
	res, err := r.cni.AddNetworkList(ctx, list, rt(id, netns, args, caps))
	if err != nil {
		return nil, err // the partial result stays for the DEL that undoes this
	}
	r.exec.forget(id) // libcni cached the whole result
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI result of network %q: %w", list.Name, err)
	}
	var v4, v6 []string
	for _, ip := range cur.IPs {
		if ip.Interface != nil && *ip.Interface < len(cur.Interfaces) && cur.Interfaces[*ip.Interface].Sandbox == "" {
			continue // an address on a host-side interface
		}
		if ip.Address.IP.To4() != nil {
			v4 = append(v4, ip.Address.IP.String())
		} else {
			v6 = append(v6, ip.Address.IP.String())
		}
	}
	return append(v4, v6...), nil
}

// Check runs CHECK.
func (r *Runner) Check(ctx context.Context, list *libcni.NetworkConfigList, id, netns string, args [][2]string, caps map[string]any) error {
	return r.cni.CheckNetworkList(ctx, list, rt(id, netns, args, caps))
}

// Del runs DEL; netns may be empty when the namespace is gone (plugins then
// still release IPs and host-side rules).
func (r *Runner) Del(ctx context.Context, list *libcni.NetworkConfigList, id, netns string, args [][2]string, caps map[string]any) error {
	err := r.cni.DelNetworkList(ctx, list, rt(id, netns, args, caps))
	if err == nil {
		r.exec.forget(id)
	}
	return err
}

// GC deletes libcni-cached attachments of list that are not in valid and,
// for cniVersion 1.1.0 and later, asks every plugin to release what it
// holds for other containers (host-local frees leaked IPs).
func (r *Runner) GC(ctx context.Context, list *libcni.NetworkConfigList, valid []string) error {
	args := &libcni.GCArgs{}
	for _, id := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: id, IfName: IfName})
	}
	return r.cni.GCNetworkList(ctx, list, args)
}
