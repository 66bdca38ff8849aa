package fleet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	netconf "flotilla.dev/netd/conflist"
)

func TestWriteConfigIsCompleteAndIsolated(t *testing.T) {
	root := t.TempDir()
	o := &Options{Root: root, BinDir: "/opt/flotilla/bin", CNIBinDirs: []string{"/x/cni"},
		RegistriesConf: "/r.conf", SignaturePolicy: "/p.json"}
	l, err := WriteConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("generated config is not TOML: %v\n%s", err, data)
	}
	for _, d := range Daemons {
		tbl := doc[d]
		if tbl == nil {
			t.Fatalf("no [%s] table", d)
		}
		sock, _ := tbl["socket"].(string)
		if !strings.HasPrefix(sock, root+"/") {
			t.Errorf("[%s] socket %q outside the root", d, sock)
		}
		for k, v := range tbl {
			if s, ok := v.(string); ok && strings.HasPrefix(s, "/") && (k == "root" || k == "run_root") && !strings.HasPrefix(s, root+"/") {
				t.Errorf("[%s] %s = %q outside the root", d, k, s)
			}
		}
	}
	if doc["criproxy"]["nats_embedded"] != true || !strings.HasPrefix(doc["netd"]["nats_url"].(string), "nats://127.0.0.1:") {
		t.Errorf("embedded NATS not wired: %v %v", doc["criproxy"], doc["netd"]["nats_url"])
	}
	if doc["sandboxd"]["shim_path"] != "/opt/flotilla/bin/flotilla-shim" {
		t.Errorf("shim_path %v", doc["sandboxd"]["shim_path"])
	}
	cl, err := os.ReadFile(filepath.Join(l.CNIConfDir, "10-flotilla.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(cl, &conf); err != nil {
		t.Fatal(err)
	}
	n := NetworkFor(root)
	if conf.Plugins[0]["bridge"] != n.Bridge || !strings.Contains(string(cl), n.Subnet) {
		t.Errorf("conflist does not use the fleet's bridge %s / subnet %s:\n%s", n.Bridge, n.Subnet, cl)
	}
	if !strings.Contains(string(cl), filepath.Join(root, "lib")) {
		t.Errorf("IPAM data outside the root:\n%s", cl)
	}
	// portmap is told the netfilter API found on this host, so it does not
	// probe with two iptables runs at every pod start and stop.
	portmap := false
	for _, p := range conf.Plugins {
		if p["type"] == "portmap" {
			portmap = true
			if got, _ := p["backend"].(string); got != netconf.Detect() {
				t.Errorf("portmap backend %q, want %q", got, netconf.Detect())
			}
		}
	}
	if !portmap {
		t.Errorf("no portmap in the default chain:\n%s", cl)
	}
}

func TestExternalNATS(t *testing.T) {
	o := &Options{Root: t.TempDir(), BinDir: "/b", NATSURL: "nats://a:4222,nats://b:4222"}
	l, err := WriteConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(l.ConfigFile)
	if !strings.Contains(string(data), "nats_embedded = false") || strings.Count(string(data), `"nats://a:4222,nats://b:4222"`) != 4 {
		t.Fatalf("external NATS not used by every daemon:\n%s", data)
	}
}

func TestNetworksDifferPerRoot(t *testing.T) {
	seen := map[string]string{}
	for i := 0; i < 50; i++ {
		root := filepath.Join("/tmp", "flt-"+strings.Repeat("x", i))
		n := NetworkFor(root)
		if len(n.Bridge) > 15 {
			t.Fatalf("bridge name %q longer than IFNAMSIZ-1", n.Bridge)
		}
		if other, ok := seen[n.Bridge]; ok {
			t.Fatalf("roots %s and %s share bridge %s", other, root, n.Bridge)
		}
		seen[n.Bridge] = root
	}
}
