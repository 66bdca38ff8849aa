package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"flotilla.dev/lib/testutil/registry"
)

// BenchmarkPull measures, on fresh stores, a cold pull through imaged of the
// multi-layer test image (≥ 50 MB), `skopeo copy` of the same image into a
// containers-storage store, and 8 concurrent pulls of it through imaged.
// Each iteration is one of each; the medians are reported as metrics:
//
//	go test -tags "$GOTAGS" -run '^$' -bench BenchmarkPull -benchtime 5x ./imaged/internal/server/
func BenchmarkPull(b *testing.B) {
	reg := startRegistry(b, registry.Options{Images: []string{"large"}})
	ref := reg.Local("docker.io/flotilla/large:1")
	size := imageSize(b, reg, ref)
	var imaged, skopeo, conc []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := newEnv(b, reg, envOpts{quiet: true})
		start := time.Now()
		if _, err := e.pull(ctxT(b), ref, nil); err != nil {
			b.Fatal(err)
		}
		imaged = append(imaged, time.Since(start))

		skopeo = append(skopeo, skopeoCopy(b, ref))

		e8 := newEnv(b, reg, envOpts{quiet: true})
		start = time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for j := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = e8.pull(ctxT(b), ref, nil)
			}()
		}
		wg.Wait()
		conc = append(conc, time.Since(start))
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(median(imaged)), "imaged-cold-ms")
	b.ReportMetric(ms(median(skopeo)), "skopeo-cold-ms")
	b.ReportMetric(ms(median(conc)), "imaged-8-concurrent-ms")
	b.ReportMetric(float64(size)/1e6, "image-MB")
	fmt.Fprintf(os.Stderr, "pull %s (%.1f MB compressed, %d runs): imaged cold p50 %v, skopeo copy p50 %v, 8 concurrent pulls p50 %v\n",
		ref, float64(size)/1e6, b.N, median(imaged).Round(time.Millisecond), median(skopeo).Round(time.Millisecond), median(conc).Round(time.Millisecond))
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// imageSize sums the compressed layer sizes of ref.
func imageSize(b *testing.B, reg *registry.Registry, ref string) int64 {
	out, err := reg.Skopeo(ctxT(b), "inspect", "--tls-verify=false", "--raw", "docker://"+ref)
	if err != nil {
		b.Fatal(err)
	}
	var m struct{ Layers []struct{ Size int64 } }
	must(b, json.Unmarshal(out, &m))
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	if len(m.Layers) < 2 || n < 50e6 {
		b.Fatalf("%s: %d layers, %d bytes: want a multi-layer image of at least 50 MB", ref, len(m.Layers), n)
	}
	return n
}

// skopeoCopy copies ref into a fresh containers-storage store and returns the time it took.
func skopeoCopy(b *testing.B, ref string) time.Duration {
	dir, err := os.MkdirTemp("", "imaged-bench-skopeo-")
	must(b, err)
	defer func() {
		unmountUnder(b, dir)
		os.RemoveAll(dir)
	}()
	policy := filepath.Join(dir, "policy.json")
	must(b, os.WriteFile(policy, []byte(registry.PolicyJSONText), 0o644))
	dest := fmt.Sprintf("containers-storage:[overlay@%s+%s]%s", filepath.Join(dir, "root"), filepath.Join(dir, "run"), "docker.io/flotilla/large:1")
	cmd := exec.Command("skopeo", "--policy", policy, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, dest)
	cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"))
	must(b, os.WriteFile(filepath.Join(dir, "registries.conf"), nil, 0o644))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("skopeo copy: %v: %s", err, out)
	}
	// skopeo leaves the overlay home mounted on some versions: undo it.
	if err := exec.Command("umount", "-R", filepath.Join(dir, "root", "overlay")).Run(); err != nil {
		_ = err // not mounted
	}
	return d
}
