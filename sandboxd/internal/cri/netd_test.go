package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flotilla.dev/netd/conflist"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"flotilla.dev/lib/bus"
	netv1 "flotilla.dev/proto/net/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// startNetd runs the real netd binary with a bridge network of its own
// (bridge "fls<random>", 10.215.1.0/24, held with a lock file so parallel
// runs wait) and returns a client.
func startNetd(t *testing.T) (netv1.NetServiceClient, string, string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cniDir, _ := filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", "..", ".tools", "cni"))
	if _, err := os.Stat(filepath.Join(cniDir, "bridge")); err != nil {
		t.Skip("CNI plugins not installed in", cniDir)
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "flotilla-sandboxd-test-10.215.1.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })

	bin := filepath.Join(filepath.Dir(shimBinary(t)), "netd")
	if out, err := exec.Command("go", "build", "-o", bin, "flotilla.dev/netd/cmd/netd").CombinedOutput(); err != nil {
		t.Fatalf("build netd: %v\n%s", err, out)
	}
	dir := t.TempDir()
	var rb [3]byte
	rand.Read(rb[:])
	bridge := "fls" + hex.EncodeToString(rb[:])
	subnet := "10.215.1.0/24"
	confDir := filepath.Join(dir, "net.d")
	os.MkdirAll(confDir, 0o755)
	// The shipped network shape, with portmap as the only chained plugin.
	conf, err := conflist.Bridge{Name: "sandboxd-test", Bridge: bridge, Subnets: []string{subnet},
		DataDir: filepath.Join(dir, "ipam"), Chain: []string{"portmap"}}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(confDir, "10-test.conflist"), conf, 0o644)
	nats, err := bus.StartEmbedded("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "netd.sock")
	conn := runDaemon(t, bin, dir, fmt.Sprintf(`[netd]
socket = %q
nats_url = %q
root = %q
run_root = %q
cni_conf_dir = %q
cni_bin_dirs = [%q]
`, sock, nats.ClientURL(), filepath.Join(dir, "lib"), filepath.Join(dir, "run"), confDir, cniDir), sock, nats, func() {
		exec.Command("ip", "link", "del", bridge).Run() // the bridge plugin leaves it
	})
	client := netv1.NewNetServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.Status(ctx, &netv1.StatusRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal("netd not serving:", err)
	}
	return client, bridge, sock
}

// TestPodNetworkWithNetd runs a pod on a real CNI network from netd: the
// pod gets an IP, a web server in it answers on that IP from the host and
// through port-forward, and removing the pod leaves no veth behind.
func TestPodNetworkWithNetd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	client, bridge, _ := startNetd(t)
	e := newEnvWith(t, client)
	sock := e.serve()
	ctx := context.Background()
	podID, pcfg := e.podWithLogs("webnet")
	st, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	ip := st.Status.Network.Ip
	if !strings.HasPrefix(ip, "10.215.1.") {
		t.Fatalf("pod ip %q", ip)
	}
	id := e.create(podID, pcfg, ctrConfig("web", "httpd", "-f", "-p", "8080", "-h", "/etc"))
	e.startCtr(id)
	if out, _ := e.execSync(id, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, ip+"/24") {
		t.Fatalf("eth0 in the container: %q", out)
	}
	// httpd listens once a request from inside the pod is answered.
	for i := 0; ; i++ {
		out, code := e.execSync(id, "wget", "-qO-", "http://127.0.0.1:8080/hostname")
		if code == 0 && out == "webnet-host" {
			break
		}
		if i == 100 {
			log, _ := os.ReadFile(e.status(id).LogPath)
			t.Fatalf("httpd does not answer in the pod: %q (state %v, log %q)", out, e.status(id).State, log)
		}
	}
	// From the host over the bridge.
	out, err := exec.Command("busybox", "wget", "-qO-", "http://"+ip+":8080/hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "webnet-host" {
		t.Fatalf("http from the host: %q %v", out, err)
	}
	_ = sock
	if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif")); len(ents) != 0 {
		t.Fatalf("veths left on %s: %v", bridge, ents)
	}
}
