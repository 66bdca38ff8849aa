package cri

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkPodStart measures RunPodSandbox + CreateContainer +
// StartContainer with real runc and flotilla-shim (the rootfs and network
// stand-ins of these tests: a copied busybox tree and an unconnected
// netns) and reports p50/p90 per pod.
func BenchmarkPodStart(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		pcfg := podConfig(fmt.Sprintf("bench-%d", i))
		pcfg.LogDirectory = b.TempDir()
		start := time.Now()
		pod := e.runPod(pcfg)
		id := e.create(pod, pcfg, ctrConfig("c", "sleep", "1000"))
		e.startCtr(id)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
		b.StartTimer()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
