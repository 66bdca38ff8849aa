package cni

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseQuantity(t *testing.T) {
	for in, want := range map[string]int64{"10M": 10_000_000, "1Gi": 1 << 30, "500k": 500_000, "1e6": 1_000_000, "1.5M": 1_500_000, "100": 100} {
		got, err := ParseQuantity(in)
		if err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "fast", "M", "1X", "NaN", "1e300"} {
		if _, err := ParseQuantity(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCapabilityArgs(t *testing.T) {
	caps, err := CapabilityArgs(&Pod{
		PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 9000}},
		Annotations:  map[string]string{AnnotationIngressBandwidth: "1M"},
		DNS:          &DNS{Servers: []string{"10.0.0.10"}},
		PodCIDR:      "10.1.0.0/24",
	})
	if err != nil {
		t.Fatal(err)
	}
	pms := caps["portMappings"].([]map[string]any)
	if len(pms) != 1 || pms[0]["protocol"] != "tcp" || pms[0]["hostPort"] != int32(8080) {
		t.Errorf("portMappings (unpublished ports skipped, protocol lower-cased): %v", pms)
	}
	bw := caps["bandwidth"].(map[string]any)
	if bw["ingressRate"] != int64(1_000_000) || bw["egressRate"] != nil {
		t.Errorf("bandwidth: %v", bw)
	}
	if caps["dns"] == nil || caps["ipRanges"] == nil {
		t.Errorf("dns/ipRanges missing: %v", caps)
	}
	if caps, _ := CapabilityArgs(&Pod{}); len(caps) != 0 {
		t.Errorf("empty pod: %v", caps)
	}
	for _, p := range []*Pod{
		{PortMappings: []PortMapping{{HostPort: 1, ContainerPort: 1, Protocol: "icmp"}}},
		{PortMappings: []PortMapping{{HostPort: 70000, ContainerPort: 1}}},
		{PortMappings: []PortMapping{{HostPort: 1, ContainerPort: 1, HostIP: "nope"}}},
		{Annotations: map[string]string{AnnotationEgressBandwidth: "-1M"}},
	} {
		if _, err := CapabilityArgs(p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: want InvalidArgument, got %v", p, err)
		}
	}
}

func TestLoaderPicksFirstValidAndFollowsChanges(t *testing.T) {
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "bridge"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := NewLoader(dir, "", []string{bin})
	if st, _ := l.Load(); st.Ready() || st.Reason != ReasonNoConfig {
		t.Fatalf("empty dir: %+v", st)
	}
	write("20-b.conflist", `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`)
	write("10-a.conflist", `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"}]}`)
	st, changed := l.Load()
	if !st.Ready() || st.List.Name != "a" || !changed {
		t.Fatalf("want network a: %+v", st)
	}
	if _, changed := l.Load(); changed {
		t.Fatal("unchanged dir reported as changed")
	}
	write("05-single.conf", `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`)
	if st, _ := l.Load(); st.List == nil || st.List.Name != "single" || len(st.List.Plugins) != 1 {
		t.Fatalf("single-plugin .conf: %+v", st)
	}
	if st, _ := NewLoader(dir, "b", []string{bin}).Load(); st.List == nil || st.List.Name != "b" {
		t.Fatalf("network by name: %+v", st)
	}
	if st, _ := NewLoader(dir, "zzz", []string{bin}).Load(); st.Ready() || st.Reason != ReasonNoConfig {
		t.Fatalf("unknown network name: %+v", st)
	}
	write("01-bad.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../../bin/sh"}]}`)
	if st, _ := l.Load(); st.List == nil || st.List.Name != "single" {
		t.Fatalf("an invalid file before a valid one is skipped: %+v", st)
	}
}

func TestIdlePortmap(t *testing.T) {
	prev := `{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}`
	for name, c := range map[string]struct {
		stdin    string
		idle     bool
		wantPrev string
	}{
		"no mappings":        {`{"type":"portmap","prevResult":` + prev + `}`, true, prev},
		"empty mappings":     {`{"type":"portmap","runtimeConfig":{"portMappings":[]},"prevResult":` + prev + `}`, true, prev},
		"no prevResult":      {`{"type":"portmap"}`, true, ""},
		"null prevResult":    {`{"type":"portmap","prevResult":null}`, true, ""},
		"a mapping":          {`{"type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80}]},"prevResult":` + prev + `}`, false, ""},
		"another plugin":     {`{"type":"bridge","prevResult":` + prev + `}`, false, ""},
		"not a network conf": {`[1,2]`, false, ""},
	} {
		got, idle := idlePortmap([]byte(c.stdin))
		if idle != c.idle || string(got) != c.wantPrev {
			t.Errorf("%s: idle=%v prev=%s; want %v %s", name, idle, got, c.idle, c.wantPrev)
		}
	}
}

func TestPluginEnv(t *testing.T) {
	if got := pluginEnv([]string{"PATH=/bin", "CNI_COMMAND=ADD"}); !slices.Contains(got, "GOMAXPROCS=1") {
		t.Errorf("plugins get one P by default: %v", got)
	}
	if got := pluginEnv([]string{"GOMAXPROCS=4", "CNI_COMMAND=ADD"}); slices.Contains(got, "GOMAXPROCS=1") || !slices.Contains(got, "GOMAXPROCS=4") {
		t.Errorf("netd's own GOMAXPROCS is passed on unchanged: %v", got)
	}
}
