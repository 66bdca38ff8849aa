package cri

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodSandboxMetrics reads a running container's metrics from its real
// cgroup and its pod's network from its namespace, with the labels the
// descriptors name, and leaves out containers that do not run.
func TestPodSandboxMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	descs, err := e.svc.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range descs.GetDescriptors() {
		if d.GetHelp() == "" || len(d.GetLabelKeys()) < len(metricLabelKeys) || keys[d.GetName()] != nil {
			t.Errorf("descriptor %v: want help, the base labels, a name of its own", d)
		}
		keys[d.GetName()] = d.GetLabelKeys()
	}

	podID, pcfg := e.podWithLogs("metrics")
	// Interfaces in the pod's network namespace (a veth pair, as CNI's bridge plugin makes one end of).
	netns := e.net.pods[podID]
	if out, err := exec.Command("nsenter", "--net="+netns, "sh", "-c", "ip link add m0 type veth peer name m1 && ip link set m0 up && ip link set m1 up").CombinedOutput(); err != nil {
		t.Fatalf("dummy interface: %v: %s", err, out)
	}
	cfg := ctrConfig("metered", "sleep", "1000")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 512, MemoryLimitInBytes: 64 << 20}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	idle := e.create(podID, pcfg, ctrConfig("created-only", "true"))
	if _, code := e.execSync(id, "sh", "-c", "for i in 1 2; do sleep 1000 </dev/null >/dev/null 2>&1 & done"); code != 0 {
		t.Fatal("exec")
	}

	// A pod on the node's network reports its container, not the node's interfaces.
	hcfg := podConfig("metrics-hostnet")
	hcfg.LogDirectory = t.TempDir()
	hcfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	hostPod := e.runPod(hcfg)
	e.startCtr(e.create(hostPod, hcfg, ctrConfig("on-host", "sleep", "1000")))

	resp, err := e.svc.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var pm, hm *runtimeapi.PodSandboxMetrics
	for _, m := range resp.GetPodMetrics() {
		switch m.GetPodSandboxId() {
		case podID:
			pm = m
		case hostPod:
			hm = m
		}
	}
	if len(resp.GetPodMetrics()) != 2 || pm == nil || hm == nil {
		t.Fatalf("pod metrics %v", resp.GetPodMetrics())
	}
	if len(hm.GetMetrics()) != 0 || len(hm.GetContainerMetrics()) != 1 {
		t.Errorf("host network pod: %d pod metrics (want none), %d containers' (want 1)", len(hm.GetMetrics()), len(hm.GetContainerMetrics()))
	}
	if len(pm.GetContainerMetrics()) != 1 || pm.GetContainerMetrics()[0].GetContainerId() != id {
		t.Fatalf("container metrics of %v, want only the running %s (not %s)", pm.GetContainerMetrics(), id, idle)
	}
	got := map[string]uint64{}
	check := func(m *runtimeapi.Metric) {
		k, ok := keys[m.GetName()]
		if !ok || len(m.GetLabelValues()) != len(k) {
			t.Errorf("metric %s: labels %v, descriptor %v", m.GetName(), m.GetLabelValues(), k)
			return
		}
		if now := time.Now().UnixNano(); m.GetTimestamp() > now || m.GetTimestamp() < now-int64(time.Minute) {
			t.Errorf("metric %s: timestamp %d", m.GetName(), m.GetTimestamp())
		}
		key := m.GetName()
		if len(k) > len(metricLabelKeys) {
			key += "{" + strings.Join(m.GetLabelValues()[len(metricLabelKeys):], ",") + "}"
		}
		got[key] = m.GetValue().GetValue()
	}
	for _, m := range pm.GetContainerMetrics()[0].GetMetrics() {
		check(m)
		if l := m.GetLabelValues(); l[0] != "metered" || l[1] != id || l[2] != "busybox" || l[4] != pcfg.GetMetadata().GetNamespace() || l[5] != "metrics" {
			t.Errorf("metric %s labels %v", m.GetName(), l)
		}
	}
	for _, m := range pm.GetMetrics() {
		check(m)
		if l := m.GetLabelValues(); l[0] != "POD" || l[1] != podID || l[5] != "metrics" {
			t.Errorf("pod metric %s labels %v", m.GetName(), l)
		}
	}
	for name, want := range map[string]uint64{
		"container_spec_cpu_period": 100000, "container_spec_cpu_quota": 20000, "container_spec_cpu_shares": 512,
		"container_spec_memory_limit_bytes": 64 << 20, "container_processes": 3, "container_threads": 3,
	} {
		if got[name] != want {
			t.Errorf("%s = %d, want %d", name, got[name], want)
		}
	}
	for _, name := range []string{"container_memory_usage_bytes", "container_memory_working_set_bytes", "container_file_descriptors",
		"container_start_time_seconds", "container_last_seen", "container_memory_failures_total{pgfault,container}"} {
		if got[name] == 0 {
			t.Errorf("%s is 0 or missing", name)
		}
	}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_oom_events_total", "container_sockets",
		"container_network_receive_bytes_total{m0}", "container_network_transmit_packets_dropped_total{m0}",
		"container_memory_rss", "container_cpu_cfs_periods_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is missing", name)
		}
	}
	if _, ok := got["container_network_receive_bytes_total{lo}"]; ok {
		t.Error("the loopback interface is reported")
	}
	if st := got["container_start_time_seconds"]; st > uint64(time.Now().Unix()) || st < uint64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("start time %d", st)
	}
}

// cgroup v2 cannot be mounted on this machine (hybrid v1): its reading is
// checked on files laid out as the kernel writes them.
func TestV2MetricsFromFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"cpu.stat":            "usage_usec 3500000\nuser_usec 2100000\nsystem_usec 1400000\nnr_periods 40\nnr_throttled 7\nthrottled_usec 2600000\n",
		"cpu.max":             "20000 100000\n",
		"cpu.weight":          "100\n",
		"memory.current":      "10485760\n",
		"memory.peak":         "20971520\n",
		"memory.swap.current": "0\n",
		"memory.stat":         "anon 4194304\nfile 6291456\nfile_mapped 1048576\ninactive_file 2097152\nkernel 524288\npgfault 900\npgmajfault 3\n",
		"memory.events":       "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
		"memory.max":          "67108864\n",
		"memory.low":          "0\n",
		"memory.swap.max":     "max\n",
		"io.stat":             "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &metricSet{labels: make([]string, len(metricLabelKeys))}
	v2Metrics(m, dir)
	got := map[string]uint64{}
	for _, x := range m.out {
		key := x.GetName()
		if extra := x.GetLabelValues()[len(metricLabelKeys):]; len(extra) > 0 {
			key += "{" + strings.Join(extra, ",") + "}"
		}
		got[key] = x.GetValue().GetValue()
	}
	dev := deviceName("8:0")
	for name, want := range map[string]uint64{
		"container_cpu_usage_seconds_total": 3, "container_cpu_user_seconds_total": 2, "container_cpu_system_seconds_total": 1,
		"container_cpu_cfs_periods_total": 40, "container_cpu_cfs_throttled_periods_total": 7, "container_cpu_cfs_throttled_seconds_total": 2,
		"container_spec_cpu_quota": 20000, "container_spec_cpu_period": 100000, "container_spec_cpu_shares": 2 + 99*262142/9999,
		"container_memory_usage_bytes": 10 << 20, "container_memory_max_usage_bytes": 20 << 20, "container_memory_working_set_bytes": 8 << 20,
		"container_memory_rss": 4 << 20, "container_memory_cache": 6 << 20, "container_memory_mapped_file": 1 << 20,
		"container_memory_kernel_usage": 512 << 10, "container_memory_failcnt": 5, "container_oom_events_total": 1,
		"container_memory_failures_total{pgmajfault,container}": 3, "container_spec_memory_limit_bytes": 64 << 20,
		"container_spec_memory_swap_limit_bytes":      9223372036854771712,
		"container_fs_reads_bytes_total{" + dev + "}": 4096, "container_fs_writes_total{" + dev + "}": 2,
		"container_blkio_device_usage_total{" + dev + ",8,0,Write}": 8192,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %d (present %v), want %d", name, v, ok, want)
		}
	}
}
