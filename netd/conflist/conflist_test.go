package conflist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// The shipped default is what Default() generates.
func TestShippedDefaultIsGenerated(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	shipped, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deploy", "cni", "10-flotilla.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Default().JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(shipped), bytes.TrimSpace(want)) {
		t.Fatalf("deploy/cni/10-flotilla.conflist is stale; regenerate it with `go run ./netd/conflist/gen`:\n%s", want)
	}
}

func TestRejectsBadInput(t *testing.T) {
	for _, b := range []Bridge{
		{},
		{Name: "n", Bridge: "this-name-is-too-long", Subnets: []string{"10.1.0.0/24"}, DataDir: "/x"},
		{Name: "n", Bridge: "b", Subnets: []string{"10.1.0.0/33"}, DataDir: "/x"},
		{Name: "n", Bridge: "b", Subnets: []string{"10.1.0.0/24"}, DataDir: "/x", Chain: []string{"tuning"}},
	} {
		if _, err := b.JSON(); err == nil {
			t.Errorf("%+v: no error", b)
		}
	}
	out, err := Bridge{Name: "n", Bridge: "b", Subnets: []string{"10.1.0.0/24", "fd00:1::/64"}, DataDir: "/x"}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
}

// Chain selects the plugins after bridge: nil is the default chain, empty
// is bridge alone.
func TestChainSelectsPlugins(t *testing.T) {
	types := func(chain []string) []string {
		out, err := Bridge{Name: "n", Bridge: "b", Subnets: []string{"10.1.0.0/24"}, DataDir: "/x", Chain: chain}.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Plugins []struct{ Type string } }
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		var ts []string
		for _, p := range v.Plugins {
			ts = append(ts, p.Type)
		}
		return ts
	}
	for _, c := range []struct {
		chain []string
		want  string
	}{
		{nil, "[bridge portmap bandwidth firewall]"},
		{[]string{}, "[bridge]"},
		{[]string{"portmap"}, "[bridge portmap]"},
	} {
		if got := fmt.Sprint(types(c.chain)); got != c.want {
			t.Errorf("chain %v: plugins %s, want %s", c.chain, got, c.want)
		}
	}
}

// Netfilter names portmap's backend, and bridge's ipMasqBackend when it
// masquerades; empty leaves both to the plugins.
func TestNetfilterSetsBackends(t *testing.T) {
	plugins := func(b Bridge) map[string]map[string]any {
		out, err := b.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Plugins []map[string]any }
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		m := map[string]map[string]any{}
		for _, p := range v.Plugins {
			m[p["type"].(string)] = p
		}
		return m
	}
	b := Bridge{Name: "n", Bridge: "b", Subnets: []string{"10.1.0.0/24"}, DataDir: "/x", Netfilter: IPTables}
	p := plugins(b)
	if p["portmap"]["backend"] != "iptables" || p["bridge"]["ipMasqBackend"] != nil {
		t.Errorf("netfilter iptables without masquerading: portmap %v, bridge %v", p["portmap"], p["bridge"])
	}
	b.IPMasq, b.Netfilter = true, NFTables
	p = plugins(b)
	if p["portmap"]["backend"] != "nftables" || p["bridge"]["ipMasqBackend"] != "nftables" {
		t.Errorf("netfilter nftables with masquerading: portmap %v, bridge %v", p["portmap"], p["bridge"])
	}
	b.Netfilter = ""
	p = plugins(b)
	if _, ok := p["portmap"]["backend"]; ok {
		t.Errorf("no netfilter: portmap %v", p["portmap"])
	}
	if _, ok := p["bridge"]["ipMasqBackend"]; ok {
		t.Errorf("no netfilter: bridge %v", p["bridge"])
	}
	// The shared chain entry is not changed by a Bridge that set a backend.
	if _, ok := chained["portmap"]["backend"]; ok {
		t.Errorf("chained portmap entry modified: %v", chained["portmap"])
	}
	b.Netfilter = "ebtables"
	if _, err := b.JSON(); err == nil {
		t.Error("netfilter ebtables: no error")
	}
}

// Detect finds what the plugins would: iptables on a host where it works,
// nothing where neither tool is on PATH.
func TestDetect(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("iptables -S needs root")
	}
	if p, err := exec.LookPath("iptables"); err == nil && exec.Command(p, "-S", "INPUT", "1").Run() == nil {
		if got := Detect(); got != IPTables {
			t.Errorf("Detect() = %q on a host where iptables works, want %q", got, IPTables)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if got := Detect(); got != "" {
		t.Errorf("Detect() = %q without iptables and nft, want empty", got)
	}
}
