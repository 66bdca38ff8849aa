package conflist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
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
