package floor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"flotilla.dev/bench/internal/report"
)

// busyboxRootfs builds a minimal root filesystem from the host's busybox
// and the libraries it links, with sleep as a hard link.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	copyFile := func(src, dst string) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(bb, filepath.Join(root, "bin", "busybox"))
	for _, applet := range []string{"sleep", "echo"} {
		if err := os.Link(filepath.Join(root, "bin", "busybox"), filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("ldd", bb).Output()
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(l) {
				if strings.HasPrefix(f, "/") {
					real, err := filepath.EvalSymlinks(f)
					if err != nil {
						t.Fatal(err)
					}
					copyFile(real, filepath.Join(root, f))
				}
			}
		}
	}
	return root
}

func TestFloorMeasuresAndCleansUp(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	cniBin := filepath.Join("..", "..", "..", ".tools", "cni")
	if _, err := os.Stat(filepath.Join(cniBin, "bridge")); err != nil {
		t.Skipf("CNI plugins not installed in %s (hack/install-deps.sh)", cniBin)
	}
	cniBin, _ = filepath.Abs(cniBin)
	res := report.New("floor")
	o := Options{Rootfs: busyboxRootfs(t), Runc: "runc", CNIBin: cniBin, N: 2, Density: 3, Concurrency: 2, DensityRounds: 2}
	if err := Run(context.Background(), o, res); err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %q", res.Problems)
	}
	for _, k := range []string{"floor.runc_create", "floor.runc_start", "floor.runc_total", "floor.runc_teardown", "floor.runc_exec",
		"floor.netns", "floor.cni_add", "floor.netns_cni_add", "floor.cni_del_netns"} {
		s, ok := res.Ops[k]
		if !ok || s.N != 2 || s.Errors != 0 || s.P50 <= 0 {
			t.Errorf("%s = %+v, want 2 timed successes", k, s)
		}
	}
	// Two rounds of 3 pods; the rate is their median, between the slowest
	// and the fastest round.
	if s := res.Ops["floor.density_pod"]; s.N != 6 || s.Errors != 0 {
		t.Errorf("floor.density_pod = %+v, want 2 rounds of 3 pods started", s)
	}
	if n := res.Values["density.rounds"]; n != 2 {
		t.Errorf("density.rounds = %v, want 2", n)
	}
	lo, hi := res.Values["density.pods_per_s.min"], res.Values["density.pods_per_s.max"]
	if v := res.Values["density.pods_per_s"]; v <= 0 || v > 1000 || v < lo || v > hi || lo == hi {
		t.Errorf("density.pods_per_s = %v, rounds from %v to %v", v, lo, hi)
	}
	if v := res.Values["density.cpu_ms_per_pod"]; v < 1 || v > 10000 {
		t.Errorf("density.cpu_ms_per_pod = %v", v)
	}
	if w := res.Windows["density"]; !w[1].After(w[0]) {
		t.Errorf("density window %v", w)
	}
	// The paired floor a CRI run interleaves: pods started one at a time,
	// each running (in its namespace, with an address) until Close.
	paired, err := NewPaired(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if d, err := paired.Start(context.Background()); err != nil || d <= 0 {
			t.Fatalf("paired floor pod %d: %v, %v", i, d, err)
		}
	}
	st, err := exec.Command("runc", "--root", filepath.Join(paired.tmp, "runc"), "list", "-q").Output()
	if err != nil || len(strings.Fields(string(st))) != 2 {
		t.Errorf("runc list of the paired floor: %q, %v; want 2 containers", st, err)
	}
	paired.Close(res)
	// Each pod is at least a runc create and CNI ADD: milliseconds of CPU.
	if v, cpu, err := Density(context.Background(), o, res); err != nil || v <= 0 || cpu < 1 {
		t.Errorf("Density = %v pods/s, %v ms of CPU per pod, %v", v, cpu, err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %q", res.Problems)
	}
	// Nothing is left: no bridge of this process, no pinned namespace or
	// other mount, no cgroup of the containers.
	suffix := fmt.Sprintf("-%d", os.Getpid()%10000)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "fbf") && strings.HasSuffix(i.Name, suffix) {
			t.Errorf("bridge %s left behind", i.Name)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(mounts), "flotbench-floor-") {
		t.Errorf("mounts left behind:\n%s", mounts)
	}
	cg, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/*/flotbench-floor-%d-*", os.Getpid()))
	if len(cg) > 0 {
		t.Errorf("cgroups left behind: %v", cg)
	}
}

func TestFloorReportsABrokenRootfs(t *testing.T) {
	res := report.New("floor")
	err := runcFloor(context.Background(), Options{Rootfs: t.TempDir(), Runc: "runc", N: 1}, t.TempDir(), res)
	if err == nil || !strings.Contains(err.Error(), "bin/sleep") {
		t.Fatalf("rootfs without sleep: err = %v", err)
	}
	if len(res.Ops) != 0 {
		t.Fatalf("nothing may be timed: %+v", res.Ops)
	}
}

// The network the runtimes and the floor are measured on is netd's bridge
// conflist with portmap, loadable by libcni, without masquerade, and portmap
// told its backend only when one is given.
func TestNetworkIsTheFleetsConflistWithPortmap(t *testing.T) {
	for _, backend := range []string{"iptables", "nftables", ""} {
		b, err := Network("flotbench-x", "fbx0", "10.214.250.0/24", "/tmp/ipam", backend)
		if err != nil {
			t.Fatalf("Network(%q): %v", backend, err)
		}
		list, err := libcni.ConfListFromBytes(b)
		if err != nil {
			t.Fatalf("libcni refuses the conflist: %v\n%s", err, b)
		}
		if list.Name != "flotbench-x" || len(list.Plugins) != 2 {
			t.Fatalf("name %q, %d plugins; want flotbench-x, 2:\n%s", list.Name, len(list.Plugins), b)
		}
		var bridge struct {
			Type, Bridge string
			IPMasq       bool `json:"ipMasq"`
			IPAM         struct {
				Type, DataDir string
				Ranges        [][]struct{ Subnet string }
			}
		}
		var portmap struct{ Type, Backend string }
		if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(list.Plugins[1].Bytes, &portmap); err != nil {
			t.Fatal(err)
		}
		if bridge.Type != "bridge" || bridge.Bridge != "fbx0" || bridge.IPMasq || bridge.IPAM.Type != "host-local" ||
			bridge.IPAM.DataDir != "/tmp/ipam" || len(bridge.IPAM.Ranges) != 1 || bridge.IPAM.Ranges[0][0].Subnet != "10.214.250.0/24" {
			t.Errorf("bridge plugin: %+v", bridge)
		}
		if portmap.Type != "portmap" || portmap.Backend != backend {
			t.Errorf("chained plugin %+v, want portmap with backend %q", portmap, backend)
		}
	}
	if _, err := Network("x", "this-bridge-name-is-too-long", "10.214.250.0/24", "/tmp/ipam", ""); err == nil {
		t.Error("a bridge name over 15 bytes was accepted")
	}
}
