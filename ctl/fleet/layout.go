// Package fleet runs a whole Flotilla fleet (NATS in criproxy, imaged,
// sandboxd, netd) as separate processes in one root, the way `flotctl up`
// and the e2e tests do. Two fleets in different roots never share files,
// sockets, bridges or subnets.
package fleet

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
)

// Daemons in start order. criproxy first: it hosts the embedded NATS server.
var Daemons = []string{"criproxy", "netd", "imaged", "sandboxd"}

// Layout is where a fleet keeps its files under its root.
type Layout struct {
	Root       string
	Etc        string // <root>/etc: flotilla.toml, cni/net.d, containers/
	Run        string // <root>/run: sockets, runtime state
	Lib        string // <root>/lib: persistent state
	Log        string // <root>/log: one log file per daemon
	ConfigFile string
	CNIConfDir string
	CRISocket  string
}

// NewLayout returns the layout of a fleet rooted at root.
func NewLayout(root string) Layout {
	root = filepath.Clean(root)
	etc := filepath.Join(root, "etc")
	run := filepath.Join(root, "run")
	return Layout{
		Root: root, Etc: etc, Run: run,
		Lib:        filepath.Join(root, "lib"),
		Log:        filepath.Join(root, "log"),
		ConfigFile: filepath.Join(etc, "flotilla.toml"),
		CNIConfDir: filepath.Join(etc, "cni", "net.d"),
		CRISocket:  filepath.Join(run, "cri.sock"),
	}
}

// Socket is the socket of a daemon.
func (l Layout) Socket(daemon string) string {
	if daemon == "criproxy" {
		return l.CRISocket
	}
	return filepath.Join(l.Run, daemon+".sock")
}

// LogFile is where a daemon's output goes.
func (l Layout) LogFile(daemon string) string { return filepath.Join(l.Log, daemon+".log") }

// PidFile holds a running daemon's pid.
func (l Layout) PidFile(daemon string) string { return filepath.Join(l.Run, daemon+".pid") }

// Endpoint is the CRI endpoint for crictl and the kubelet.
func (l Layout) Endpoint() string { return "unix://" + l.CRISocket }

// Network is the per-fleet CNI network: a bridge name and a /24 derived
// from the root, so fleets on one machine do not collide.
type Network struct {
	Name   string
	Bridge string
	Subnet string
}

// NetworkFor derives a fleet's network from its root. Subnets are taken
// from 10.89.0.0/16–10.99.255.0/24 (tests of netd itself use 10.213.x).
func NetworkFor(root string) Network {
	h := fnv.New32a()
	h.Write([]byte(filepath.Clean(root)))
	v := h.Sum32()
	return Network{
		Name:   "flotilla",
		Bridge: fmt.Sprintf("flot%06x", v&0xffffff),
		Subnet: fmt.Sprintf("10.%d.%d.0/24", 89+(v>>24)%11, (v>>8)&0xff),
	}
}
