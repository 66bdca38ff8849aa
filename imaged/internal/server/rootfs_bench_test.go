package server_test

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"testing"
	"time"

	"flotilla.dev/lib/testutil/registry"
	imagev1 "flotilla.dev/proto/image/v1"
)

// BenchmarkRootfs measures what sandboxd's CreateContainer asks of imaged
// for a busybox container over the socket: two_calls is CreateRootfs then
// MountRootfs (p50 of each), one_call is CreateRootfs with mount (p50).
// RemoveRootfs runs outside the measured steps.
//
//	go test -tags "$GOTAGS" -run '^$' -bench BenchmarkRootfs -benchtime 200x ./imaged/internal/server/
//
// ROOTFS_CPUPROFILE=file writes a CPU profile of the measured loop.
func BenchmarkRootfs(b *testing.B) {
	reg := startRegistry(b, registry.Options{Images: []string{"busybox"}})
	e := newEnv(b, reg, envOpts{quiet: true})
	ctx := ctxT(b)
	_, err := e.pull(ctx, "busybox", nil)
	must(b, err)
	if p := os.Getenv("ROOTFS_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		must(b, err)
		must(b, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	p50 := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	n := 0
	loop := func(b *testing.B, step func(id string) []time.Duration) [][]time.Duration {
		var out [][]time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			n++
			id := fmt.Sprintf("bench%d", n)
			ds := step(id)
			if out == nil {
				out = make([][]time.Duration, len(ds))
			}
			for j, d := range ds {
				out[j] = append(out[j], d)
			}
			b.StopTimer()
			_, err := e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: id})
			must(b, err)
			b.StartTimer()
		}
		b.StopTimer()
		return out
	}
	b.Run("two_calls", func(b *testing.B) {
		ds := loop(b, func(id string) []time.Duration {
			t0 := time.Now()
			_, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: id, Image: "busybox", PodId: "p", Name: "c"})
			must(b, err)
			t1 := time.Now()
			_, err = e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: id})
			must(b, err)
			return []time.Duration{t1.Sub(t0), time.Since(t1)}
		})
		b.ReportMetric(p50(ds[0]), "create_ms_p50")
		b.ReportMetric(p50(ds[1]), "mount_ms_p50")
	})
	b.Run("one_call", func(b *testing.B) {
		ds := loop(b, func(id string) []time.Duration {
			t0 := time.Now()
			r, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: id, Image: "busybox", PodId: "p", Name: "c", Mount: true})
			must(b, err)
			if r.Rootfs.GetMountPoint() == "" {
				b.Fatal("not mounted")
			}
			return []time.Duration{time.Since(t0)}
		})
		b.ReportMetric(p50(ds[0]), "create_mount_ms_p50")
	})
}
