// Command flotbench measures a CRI runtime (any CRI socket), the floor (bare
// runc and netns + CNI) and compares results.
//
//	flotbench cri   --endpoint unix:///run/x.sock --name X --out x.json ...
//	flotbench floor --rootfs DIR --out floor.json ...
//	flotbench compare flotilla.json containerd.json floor.json
//	flotbench phases  <daemon logs at log_level debug>...
//	perf script -F comm,tid,time,period,event | flotbench cpu --result x.json
//	flotbench conflist --name N --bridge B --subnet S --data-dir D
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"flotilla.dev/bench/internal/floor"
	"flotilla.dev/bench/internal/perfcpu"
	"flotilla.dev/bench/internal/phases"
	"flotilla.dev/bench/internal/procmem"
	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/scenario"
	"flotilla.dev/netd/conflist"
)

// defaultCNIBin is where hack/deps installs the CNI plugins: .tools/cni of
// the checkout flotbench was built from (hack/bench.sh always passes
// --cni-bin).
var defaultCNIBin = func() string {
	_, file, _, ok := runtime.Caller(0) // <repo>/bench/cmd/flotbench/main.go
	if !ok {
		return ".tools/cni"
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", ".tools", "cni")
}()

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "cri":
		err = runCRI(ctx, os.Args[2:])
	case "floor":
		err = runFloor(ctx, os.Args[2:])
	case "compare":
		err = runCompare(os.Args[2:])
	case "phases":
		err = runPhases(os.Args[2:])
	case "cpu":
		err = runCPU(os.Args[2:])
	case "conflist":
		err = runConflist(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flotbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: flotbench cri|floor|compare|phases|cpu|conflist [flags] (flotbench <cmd> -h for the flags)")
	os.Exit(2)
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runCRI(ctx context.Context, args []string) error {
	res, out, err := criRun(ctx, args)
	if err != nil {
		return err
	}
	return finish(res, out)
}

// criRun runs the CRI scenarios; everything it started (pods, the paired
// floor) is gone when it returns.
func criRun(ctx context.Context, args []string) (*report.Result, string, error) {
	fs := flag.NewFlagSet("cri", flag.ExitOnError)
	var o scenario.Options
	name := fs.String("name", "runtime", "name of the runtime in the results")
	out := fs.String("out", "", "write the JSON result to this file")
	fs.StringVar(&o.Endpoint, "endpoint", "", "CRI endpoint, unix:///path/cri.sock (required)")
	fs.StringVar(&o.Image, "image", "registry.k8s.io/e2e-test-images/busybox:1.29-2", "busybox image (sleep, echo); pulled untimed when absent")
	fs.StringVar(&o.WorkDir, "work-dir", "", "directory for pod logs (default: a new temp dir, removed at exit)")
	fs.IntVar(&o.Pods, "pods", 20, "pod start: pods started one after another")
	fs.IntVar(&o.Density, "density", 30, "density: pods started concurrently")
	fs.IntVar(&o.DensityRounds, "density-rounds", 1, "density: rounds of starting the pods, each after a floor round when --floor-rootfs is given; the rates are the medians of the rounds")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "density: concurrent starts and teardowns")
	fs.BoolVar(&o.SharePID, "share-pid", false, "pods share one PID namespace (a pod with shareProcessNamespace: true; runtimes start a pause process); default: what the kubelet sends for a plain pod")
	fs.IntVar(&o.ExecCalls, "exec", 50, "ExecSync calls")
	fs.IntVar(&o.ListCalls, "list", 20, "calls of each List* RPC")
	fs.DurationVar(&o.CallTimeout, "timeout", time.Minute, "deadline of each CRI call")
	daemons := fs.String("daemons", "", "comma-separated process names of the runtime's daemons, e.g. criproxy,imaged,sandboxd,netd")
	perPod := fs.String("per-pod", "", "comma-separated process names that exist per pod, e.g. flotilla-shim,catatonit")
	scope := fs.String("scope", "", "count only processes whose (or whose ancestor's) command line or cwd contains this, e.g. the runtime's root")
	var fo floor.Options
	fs.StringVar(&fo.Rootfs, "floor-rootfs", "", "busybox root filesystem: interleave a floor pod (netns + CNI ADD + runc create+start) with each sequential pod start, and measure the floor's density right before the runtime's")
	fs.StringVar(&fo.Runc, "floor-runc", "runc", "runc binary of the paired floor")
	fs.StringVar(&fo.CNIBin, "cni-bin", defaultCNIBin, "CNI plugin directory of the paired floor")
	nf := netfilterFlag(fs, "the paired floor's conflist")
	fs.StringVar(&fo.StateDir, "floor-state-dir", "", "directory for the paired floor's runc root, bundles and netns pins (default: $TMPDIR or /tmp)")
	fs.Parse(args)
	if o.Endpoint == "" {
		return nil, "", fmt.Errorf("cri: --endpoint is required")
	}
	self := map[int]bool{os.Getpid(): true}
	o.Daemons = procmem.Selector{Names: list(*daemons), Scope: *scope, Exclude: self}
	o.PerPod = procmem.Selector{Names: list(*perPod), Scope: *scope, Exclude: self}
	o.RunID = fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	if o.WorkDir == "" {
		d, err := os.MkdirTemp("", "flotbench-")
		if err != nil {
			return nil, "", err
		}
		defer os.RemoveAll(d)
		o.WorkDir = d
	}
	o.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "flotbench: "+format+"\n", args...) }
	res := report.New(*name)
	if fo.Rootfs != "" {
		var err error
		if fo.Netfilter, err = netfilter(*nf); err != nil {
			return nil, "", err
		}
		fo.Concurrency = o.Concurrency
		fo.Density = o.Density
		paired, err := floor.NewPaired(ctx, fo)
		if err != nil {
			return nil, "", fmt.Errorf("paired floor: %w", err)
		}
		o.Floor = paired // closed by PodStart
		o.DensityFloor = func(ctx context.Context) (float64, float64, error) { return floor.Density(ctx, fo, res) }
	}
	r, err := scenario.Dial(ctx, o, res)
	if err != nil {
		if o.Floor != nil {
			o.Floor.Close(res)
		}
		return nil, "", err
	}
	r.MeasureDaemons("idle")
	if err := r.EnsureImage(ctx); err != nil {
		res.Problem("%v", err)
	}
	func() {
		defer r.Close() // removes every pod left, also after Ctrl-C
		r.PodStart(ctx)
		if ctx.Err() == nil {
			r.Density(ctx)
		}
	}()
	if ctx.Err() != nil {
		res.Problem("interrupted: %v", ctx.Err())
	}
	return res, *out, nil
}

func finish(res *report.Result, out string) error {
	res.Print(os.Stdout)
	if out != "" {
		if err := res.Write(out); err != nil {
			return err
		}
		fmt.Printf("result: %s\n", out)
	}
	return nil
}

func runFloor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	var o floor.Options
	out := fs.String("out", "", "write the JSON result to this file")
	fs.StringVar(&o.Rootfs, "rootfs", "", "busybox root filesystem (e.g. umoci unpack of the benchmark image), used read-only (required)")
	fs.StringVar(&o.Runc, "runc", "runc", "runc binary")
	fs.StringVar(&o.CNIBin, "cni-bin", defaultCNIBin, "CNI plugin directory (bridge, host-local, loopback)")
	nf := netfilterFlag(fs, "the floor's conflist")
	fs.IntVar(&o.N, "n", 20, "iterations of each measurement")
	fs.IntVar(&o.Density, "density", 30, "density: pods (netns + CNI ADD + runc create+start) started concurrently; 0 skips it")
	fs.IntVar(&o.DensityRounds, "density-rounds", 1, "density: rounds; the rate and CPU per pod are the medians of the rounds")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "density: concurrent starts")
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for runc's root, the bundles and the netns pins (default: $TMPDIR or /tmp)")
	fs.Parse(args)
	if o.Rootfs == "" {
		return fmt.Errorf("floor: --rootfs is required")
	}
	var err error
	if o.Netfilter, err = netfilter(*nf); err != nil {
		return err
	}
	res := report.New("floor")
	res.Endpoint = "runc + libcni"
	if err := floor.Run(ctx, o, res); err != nil {
		res.Problem("%v", err)
	}
	return finish(res, *out)
}

// netfilterFlag registers --cni-netfilter, portmap's backend in a conflist.
func netfilterFlag(fs *flag.FlagSet, in string) *string {
	return fs.String("cni-netfilter", "auto", "portmap's backend in "+in+": auto (probe the host once, as flotctl up does), iptables, nftables or none (portmap probes at every call)")
}

// netfilter resolves --cni-netfilter: "auto" probes the host as `flotctl
// up` does for the fleet's conflist (conflist.Detect), "none" is empty.
func netfilter(s string) (string, error) {
	switch s {
	case "auto":
		return conflist.Detect(), nil
	case "none":
		return "", nil
	case conflist.IPTables, conflist.NFTables:
		return s, nil
	}
	return "", fmt.Errorf("--cni-netfilter %q: want auto, iptables, nftables or none", s)
}

// runConflist prints the CNI network every runtime is measured on (the
// floor's, floor.Network), for a peer's CNI configuration directory.
func runConflist(args []string) error {
	fs := flag.NewFlagSet("conflist", flag.ExitOnError)
	name := fs.String("name", "flotbench", "network name")
	bridge := fs.String("bridge", "", "bridge device, at most 15 bytes (required)")
	subnet := fs.String("subnet", "", "pod subnet, e.g. 10.214.250.0/24 (required)")
	dataDir := fs.String("data-dir", "", "host-local's allocation directory (required)")
	nf := netfilterFlag(fs, "the conflist")
	fs.Parse(args)
	backend, err := netfilter(*nf)
	if err != nil {
		return err
	}
	b, err := floor.Network(*name, *bridge, *subnet, *dataDir, backend)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", b)
	return err
}

func runCompare(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("compare: give result files, the first one is the numerator of the ratios")
	}
	var rs []*report.Result
	for _, a := range args {
		r, err := report.Read(a)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	report.Compare(os.Stdout, rs)
	// The first result is the runtime under test, unless only the floor
	// was measured.
	if _, floorOnly := rs[0].Ops["floor.runc_total"]; !floorOnly {
		fmt.Println()
		report.PrintTargets(os.Stdout, rs[0])
	}
	return nil
}

// runPhases prints the per-step timings the daemons logged at debug level,
// optionally only those of one scenario's window in a flotbench result.
func runPhases(args []string) error {
	fs := flag.NewFlagSet("phases", flag.ExitOnError)
	result := fs.String("result", "", "flotbench cri result (JSON) whose scenario window selects the log lines")
	window := fs.String("window", "podstart", "scenario of --result: podstart (sequential) or density")
	fs.Parse(args)
	files := fs.Args()
	if len(files) == 0 {
		return fmt.Errorf("phases: give the daemons' log files")
	}
	c := phases.NewCollector()
	if *result != "" {
		res, err := report.Read(*result)
		if err != nil {
			return err
		}
		w, ok := res.Windows[*window]
		if !ok {
			return fmt.Errorf("phases: %s has no %q window", *result, *window)
		}
		c.From, c.To = w[0], w[1]
		fmt.Printf("%s (%s, %s)\n", *window, w[0].Format(time.RFC3339), w[1].Sub(w[0]).Round(time.Millisecond))
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		err = c.Read(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	phases.Print(os.Stdout, c.Steps())
	return nil
}

// runCPU prints where the machine's CPU went during the density rounds of a
// flotbench result, from `perf record -a -e cpu-clock -k CLOCK_REALTIME`
// samples (perf script -F comm,tid,time,period,event) on stdin.
func runCPU(args []string) error {
	fs := flag.NewFlagSet("cpu", flag.ExitOnError)
	result := fs.String("result", "", "flotbench cri or floor result (JSON) whose density rounds select the samples (required)")
	top := fs.Int("top", 15, "processes to list")
	fs.Parse(args)
	if *result == "" {
		return fmt.Errorf("cpu: --result is required")
	}
	res, err := report.Read(*result)
	if err != nil {
		return err
	}
	windows := densityWindows(res)
	if len(windows) == 0 {
		return fmt.Errorf("cpu: %s has no density window", *result)
	}
	u, err := perfcpu.Read(os.Stdin, windows)
	if err != nil {
		return err
	}
	if u.Samples == 0 {
		return fmt.Errorf("cpu: no perf sample falls in the %d density rounds of %s (recorded with -k CLOCK_REALTIME?)", len(windows), *result)
	}
	pods := res.Values["density.pods"]
	if pods == 0 {
		return fmt.Errorf("cpu: %s does not say how many pods a density round started", *result)
	}
	fmt.Printf("%s, %d density rounds:\n", res.Name, len(windows))
	u.Print(os.Stdout, int(pods)*len(windows), *top)
	return nil
}

// densityWindows are the rounds' windows (density.1, density.2, ...), or
// the last round's ("density") in a result from before they were recorded.
func densityWindows(res *report.Result) []perfcpu.Window {
	var ws []perfcpu.Window
	for k := 1; ; k++ {
		w, ok := res.Windows[fmt.Sprintf("density.%d", k)]
		if !ok {
			break
		}
		ws = append(ws, perfcpu.Window(w))
	}
	if len(ws) == 0 {
		if w, ok := res.Windows["density"]; ok {
			ws = append(ws, perfcpu.Window(w))
		}
	}
	return ws
}
