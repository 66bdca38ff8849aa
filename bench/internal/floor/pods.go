package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"

	"flotilla.dev/bench/internal/report"
	"flotilla.dev/lib/netns"
)

// pods starts floor pods, each the least a runtime does for one: a pinned
// network namespace, CNI ADD, and runc create + start of a busybox `sleep`
// joining that namespace. It remembers what each pod got, so close removes
// exactly that, also after a failure or an interrupt.
type pods struct {
	o      Options
	dir    string
	nw     *floorNet
	rootfs string
	state  string
	spec   map[string]any

	mu   sync.Mutex
	all  []*floorPod
	next int
}

type floorPod struct {
	id, bundle, netns string
	rt                *libcni.RuntimeConf
	pinned, added     bool
	created           bool
}

// openPods prepares a pod set in dir: its own bridge and subnet, runc's
// default spec and the runc state directory.
func openPods(ctx context.Context, o Options, dir string) (*pods, error) {
	rootfs, err := filepath.Abs(o.Rootfs)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "sleep")); err != nil {
		return nil, fmt.Errorf("rootfs %s has no bin/sleep: %w", rootfs, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "netns"), 0o755); err != nil {
		return nil, err
	}
	spec, err := baseSpec(ctx, o.Runc, dir)
	if err != nil {
		return nil, err
	}
	nw, err := openNet(o, dir)
	if err != nil {
		return nil, err
	}
	return &pods{o: o, dir: dir, nw: nw, rootfs: rootfs, state: filepath.Join(dir, "runc"), spec: spec}, nil
}

// prepare writes the bundle of a new pod (before any clock starts: the
// floor's bundles are ready-made, as a runtime's spec is not).
func (ps *pods) prepare() (*floorPod, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	id := fmt.Sprintf("flotbench-floor-%d-p%d", os.Getpid(), ps.next)
	ps.next++
	p := &floorPod{id: id, bundle: filepath.Join(ps.dir, "bundles", id), netns: filepath.Join(ps.dir, "netns", id)}
	p.rt = &libcni.RuntimeConf{ContainerID: id, NetNS: p.netns, IfName: "eth0"}
	setNetns(ps.spec, p.netns)
	if err := writeSpec(ps.spec, p.bundle, ps.rootfs, id); err != nil {
		return nil, err
	}
	ps.all = append(ps.all, p)
	return p, nil
}

func (ps *pods) mark(f func()) { ps.mu.Lock(); f(); ps.mu.Unlock() }

// start creates p's namespace, adds it to the network and starts its
// container.
func (ps *pods) start(ctx context.Context, p *floorPod) error {
	out, err := os.CreateTemp(ps.dir, "runc-*.out")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	if err := netns.Create(p.netns); err != nil {
		return err
	}
	ps.mark(func() { p.pinned = true })
	err = ps.nw.add(ctx, p.rt)
	ps.mark(func() { p.added = true }) // a failed ADD is undone with DEL too
	if err != nil {
		return err
	}
	err = runRunc(ps.o.Runc, ps.state, out, "create", "--bundle", p.bundle, p.id)
	ps.mark(func() { p.created = true })
	if err != nil {
		return err
	}
	return runRunc(ps.o.Runc, ps.state, out, "start", p.id)
}

func (ps *pods) teardown(p *floorPod) error {
	var errs []error
	out, err := os.CreateTemp(ps.dir, "runc-*.out")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	if p.created {
		errs = append(errs, runRunc(ps.o.Runc, ps.state, out, "delete", "--force", p.id))
	}
	if p.added {
		errs = append(errs, ps.nw.del(p.rt))
	}
	if p.pinned {
		errs = append(errs, netns.Remove(p.netns))
	}
	return errors.Join(errs...)
}

// close removes every pod, the bridge and the subnet's lock; problems go
// to res.
func (ps *pods) close(res *report.Result) {
	ps.mu.Lock()
	all := ps.all
	ps.all = nil
	ps.mu.Unlock()
	for _, p := range all {
		if err := ps.teardown(p); err != nil {
			res.Problem("floor teardown of %s: %v", p.id, err)
		}
	}
	ps.nw.close(res)
}

// Paired starts floor pods one at a time, for a CRI run to interleave with
// its own pod starts: both then see the same machine, minute by minute,
// and their ratio does not drift with it.
type Paired struct {
	ps  *pods
	tmp string
}

// NewPaired prepares floor pods under o.StateDir (a directory made there).
func NewPaired(ctx context.Context, o Options) (*Paired, error) {
	tmp, err := os.MkdirTemp(o.StateDir, "flotbench-floor-")
	if err != nil {
		return nil, err
	}
	ps, err := openPods(ctx, o, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &Paired{ps: ps, tmp: tmp}, nil
}

// Start starts one floor pod and returns how long that took (its bundle is
// written before the clock starts). The pod runs until Close.
func (f *Paired) Start(ctx context.Context) (time.Duration, error) {
	p, err := f.ps.prepare()
	if err != nil {
		return 0, err
	}
	t := time.Now()
	err = f.ps.start(ctx, p)
	return time.Since(t), err
}

// Close removes every floor pod and what they used; problems go to res.
func (f *Paired) Close(res *report.Result) {
	f.ps.close(res)
	os.RemoveAll(f.tmp)
}
