package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
	"flotilla.dev/lib/netns"
	"flotilla.dev/netd/conflist"
)

// Subnets 10.214.<n>.0/24, n in [1, 99], belong to the floor measurement;
// each run holds its n with a lock file so concurrent runs never share one.
// (10.213 is netd's tests', 10.215 sandboxd's; hack/bench.sh uses 10.214.2xx.)
func lockSubnet() (*os.File, int, error) {
	for n := 1; n < 100; n++ {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("flotbench-floor-10.214.%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, 0, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return f, n, nil
		}
		f.Close()
	}
	return nil, 0, errors.New("no free subnet 10.214.1-99.0/24")
}

// cniFloor times creating a pinned network namespace plus CNI ADD of a
// bridge conflist o.N times, then CNI DEL plus removing the namespace.
func cniFloor(ctx context.Context, o Options, tmp string, res *report.Result) error {
	nw, err := openNet(o, tmp)
	if err != nil {
		return err
	}
	defer nw.close(res)
	n := nw.subnet
	nsDir := filepath.Join(tmp, "netns")
	if err := os.MkdirAll(nsDir, 0o755); err != nil {
		return err
	}
	type attached struct {
		rt   *libcni.RuntimeConf
		path string
		add  bool
	}
	var live []attached
	var pin, add, both, del stats.Recorder
	teardown := func(a attached) error {
		var errs []error
		if a.add {
			errs = append(errs, nw.del(a.rt))
		}
		errs = append(errs, netns.Remove(a.path))
		return errors.Join(errs...)
	}
	defer func() { // after a failure or an interrupt
		for _, a := range live {
			teardown(a)
		}
	}()
	for i := 0; i < o.N && ctx.Err() == nil; i++ {
		id := fmt.Sprintf("flotbench-floor-%d-%d-%d", n, os.Getpid(), i)
		path := filepath.Join(nsDir, id)
		t0 := time.Now()
		err := netns.Create(path)
		d0 := time.Since(t0)
		if err != nil {
			pin.Fail(err)
			both.Fail(err)
			continue
		}
		pin.Add(d0)
		a := attached{rt: &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "eth0"}, path: path}
		t1 := time.Now()
		err = nw.add(ctx, a.rt)
		d1 := time.Since(t1)
		a.add = true // a failed ADD is undone with DEL too
		live = append(live, a)
		add.Observe(d1, err)
		both.Observe(d0+d1, err)
	}
	for _, a := range live {
		t := time.Now()
		err := teardown(a)
		del.Observe(time.Since(t), err)
	}
	live = nil
	res.Ops["floor.netns"] = pin.Summary()
	res.Ops["floor.cni_add"] = add.Summary()
	res.Ops["floor.netns_cni_add"] = both.Summary()
	res.Ops["floor.cni_del_netns"] = del.Summary()
	return nil
}

// Network is the CNI network every runtime is measured on, and the floor:
// netd's bridge conflist (conflist.Bridge, as `flotctl up --cni-chain
// portmap` writes it for the fleet) without masquerade, host-local on subnet,
// then portmap, told its netfilter backend (empty: it probes at every call).
func Network(name, bridge, subnet, dataDir, netfilter string) ([]byte, error) {
	return conflist.Bridge{Name: name, Bridge: bridge, Subnets: []string{subnet}, DataDir: dataDir,
		Chain: []string{"portmap"}, Netfilter: netfilter}.JSON()
}

// floorNet is the floor's CNI network: a bridge conflist on a subnet of its
// own, with IPAM state and the CNI cache under a temporary directory.
type floorNet struct {
	lock   *os.File
	subnet int // 10.214.<subnet>.0/24
	bridge string
	list   *libcni.NetworkConfigList
	cni    *libcni.CNIConfig
}

func openNet(o Options, tmp string) (*floorNet, error) {
	lock, n, err := lockSubnet()
	if err != nil {
		return nil, err
	}
	bridge := fmt.Sprintf("fbf%d-%d", n, os.Getpid()%10000)
	if len(bridge) > 15 {
		bridge = bridge[:15]
	}
	conf, err := Network(fmt.Sprintf("flotbench-floor-%d", n), bridge, fmt.Sprintf("10.214.%d.0/24", n), filepath.Join(tmp, "ipam"), o.Netfilter)
	if err != nil {
		lock.Close()
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		lock.Close()
		return nil, err
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{o.CNIBin}, filepath.Join(tmp, "cni-cache"), nil)
	return &floorNet{lock: lock, subnet: n, bridge: bridge, list: list, cni: cni}, nil
}

// add runs CNI ADD for rt, bounded by 30 s.
func (nw *floorNet) add(ctx context.Context, rt *libcni.RuntimeConf) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := nw.cni.AddNetworkList(ctx, nw.list, rt)
	return err
}

// del runs CNI DEL for rt, bounded by 30 s, also after ctx of the run ended.
func (nw *floorNet) del(rt *libcni.RuntimeConf) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return nw.cni.DelNetworkList(ctx, nw.list, rt)
}

// close deletes the bridge and gives the subnet back.
func (nw *floorNet) close(res *report.Result) {
	if l, err := netlink.LinkByName(nw.bridge); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			res.Problem("delete bridge %s: %v", nw.bridge, err)
		}
	}
	nw.lock.Close()
}
