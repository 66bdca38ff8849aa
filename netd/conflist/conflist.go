// Package conflist writes the bridge network configuration Flotilla ships
// (deploy/cni/10-flotilla.conflist) and that `flotctl up` writes per fleet.
// It has no dependencies, so other modules can copy or import it.
package conflist

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os/exec"
)

// Bridge describes one bridge network.
type Bridge struct {
	// Name of the CNI network (netd's `network` key selects by it).
	Name string
	// Bridge device on the host, at most 15 bytes, e.g. "flot-3fa9c2".
	// Unique per fleet so two fleets on one host never share it.
	Bridge string
	// Subnets for pod addresses, e.g. "10.88.0.0/16"; one IPv4 and/or one
	// IPv6 (dual stack). Unique per fleet.
	Subnets []string
	// DataDir is host-local's allocation directory; keep it under netd's
	// root (e.g. <root>/ipam) so a fleet's IPs live with the fleet.
	DataDir string
	// IPMasq masquerades pod traffic leaving the host (off for test
	// networks whose traffic must stay on the machine).
	IPMasq bool
	// Chain lists the plugins chained after bridge, from "portmap",
	// "bandwidth" and "firewall"; nil means DefaultChain. Each costs one
	// plugin exec per pod start and stop.
	Chain []string
	// Netfilter is the API the plugins program: "iptables" or "nftables"
	// (portmap's backend, and bridge's ipMasqBackend when IPMasq). Empty
	// leaves the choice to the plugins, which then probe for it on every
	// call: portmap runs `iptables --version` and `iptables -S INPUT 1`
	// at each ADD and DEL, even for a pod without host ports. Whoever
	// writes the conflist on the node can probe once instead (Detect).
	Netfilter string
}

// Netfilter APIs for Bridge.Netfilter.
const (
	IPTables = "iptables"
	NFTables = "nftables"
)

// DefaultChain is the chain shipped: hostPort, the bandwidth annotations and
// the firewall plugin's isolation rules.
var DefaultChain = []string{"portmap", "bandwidth", "firewall"}

var chained = map[string]map[string]any{
	"portmap":   {"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
	"bandwidth": {"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}},
	"firewall":  {"type": "firewall"},
}

// JSON returns the conflist: bridge with host-local, then the Chain —
// by default portmap (hostPort, including 127.0.0.1 through its
// snat/route_localnet handling), bandwidth
// (kubernetes.io/{ingress,egress}-bandwidth) and firewall.
func (b Bridge) JSON() ([]byte, error) {
	if b.Name == "" || b.Bridge == "" || b.DataDir == "" || len(b.Subnets) == 0 {
		return nil, fmt.Errorf("conflist: name, bridge, subnets and data dir are required")
	}
	if b.Netfilter != "" && b.Netfilter != IPTables && b.Netfilter != NFTables {
		return nil, fmt.Errorf("conflist: netfilter %q: want %q, %q or empty", b.Netfilter, IPTables, NFTables)
	}
	if len(b.Bridge) > 15 {
		return nil, fmt.Errorf("conflist: bridge name %q longer than 15 bytes", b.Bridge)
	}
	var ranges [][]map[string]string
	var routes []map[string]string
	for _, s := range b.Subnets {
		ip, _, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("conflist: subnet %q: %w", s, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": s}})
		if ip.To4() != nil {
			routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
		} else {
			routes = append(routes, map[string]string{"dst": "::/0"})
		}
	}
	bridge := map[string]any{"type": "bridge", "bridge": b.Bridge, "isGateway": true, "ipMasq": b.IPMasq, "hairpinMode": true,
		"ipam": map[string]any{"type": "host-local", "ranges": ranges, "routes": routes, "dataDir": b.DataDir}}
	if b.IPMasq && b.Netfilter != "" {
		bridge["ipMasqBackend"] = b.Netfilter
	}
	plugins := []map[string]any{bridge}
	chain := b.Chain
	if chain == nil {
		chain = DefaultChain
	}
	for _, name := range chain {
		p, ok := chained[name]
		if !ok {
			return nil, fmt.Errorf("conflist: unknown chained plugin %q (want portmap, bandwidth or firewall)", name)
		}
		if name == "portmap" && b.Netfilter != "" {
			p = maps.Clone(p)
			p["backend"] = b.Netfilter
		}
		plugins = append(plugins, p)
	}
	list := map[string]any{"cniVersion": "1.0.0", "name": b.Name, "plugins": plugins}
	return json.MarshalIndent(list, "", "  ")
}

// Default is the network shipped in deploy/cni/10-flotilla.conflist.
func Default() Bridge {
	return Bridge{Name: "flotilla", Bridge: "flot0", Subnets: []string{"10.88.0.0/16"},
		DataDir: "/var/lib/flotilla/netd/ipam", IPMasq: true}
}

// Detect returns the netfilter API the plugins would choose on this host,
// probing as they do: IPTables when `iptables -t filter -S INPUT 1` works
// (iptables-legacy or iptables-nft), else NFTables when `nft list tables`
// does, else "" (the plugins then probe, and fail, on their own).
func Detect() string {
	if p, err := exec.LookPath("iptables"); err == nil && exec.Command(p, "-t", "filter", "-S", "INPUT", "1", "--wait").Run() == nil {
		return IPTables
	}
	if p, err := exec.LookPath("nft"); err == nil && exec.Command(p, "list", "tables").Run() == nil {
		return NFTables
	}
	return ""
}
