package cri

import (
	"context"
	"os/exec"
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
