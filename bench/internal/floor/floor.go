// Package floor measures what any runtime must do at least for a pod: runc
// create+start of a busybox bundle, and a network namespace with CNI ADD
// (libcni, bridge plugin) — the floor the runtimes are compared with — one
// after another, and both together for many pods at once (density).
package floor

import (
	"context"
	"fmt"
	"os"

	"flotilla.dev/bench/internal/report"
)

// Options of the floor measurement.
type Options struct {
	Rootfs string // busybox root filesystem, used read-only
	Runc   string
	CNIBin string
	N      int
	// Density pods are started Concurrency at a time (netns + CNI ADD +
	// runc create + start each); 0 skips it.
	Density, Concurrency int
	// DensityRounds: times Run measures density (at least once); its
	// rate and CPU per pod are the rounds' medians.
	DensityRounds int
	// StateDir holds runc's root, the bundles' config.json and the netns
	// pins (a directory made in it, removed at the end); default: os.TempDir().
	StateDir string
	// Netfilter: portmap's backend in the floor's conflist ("iptables",
	// "nftables"; empty: portmap probes at every call), as netd's
	// conflist.Bridge.Netfilter.
	Netfilter string
}

// Run measures both parts, and density when o.Density > 0, recording
// floor.* ops (and density.* values) in res. Everything it
// creates (containers, namespaces, bridge, IPAM state) is removed.
func Run(ctx context.Context, o Options, res *report.Result) error {
	tmp, err := os.MkdirTemp(o.StateDir, "flotbench-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := runcFloor(ctx, o, tmp, res); err != nil {
		res.Problem("runc floor: %v", err)
	}
	if err := cniFloor(ctx, o, tmp, res); err != nil {
		res.Problem("netns+CNI floor: %v", err)
	}
	if o.Density > 0 {
		if err := recordDensity(ctx, o, tmp, res); err != nil {
			res.Problem("density floor: %v", err)
		}
	}
	if len(res.Ops) == 0 {
		return fmt.Errorf("nothing measured")
	}
	return nil
}
