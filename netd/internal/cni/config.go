// Package cni loads CNI network configurations and runs the plugins through
// libcni.
package cni

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
)

// Reasons reported while the network is not ready.
const (
	ReasonNoConfig      = "NoCNIConfig"
	ReasonInvalidConfig = "InvalidCNIConfig"
	ReasonMissingPlugin = "CNIPluginNotFound"
)

// State is the outcome of loading the configuration directory.
type State struct {
	// List is the network in use; nil when not ready.
	List *libcni.NetworkConfigList
	// File it was read from.
	File    string
	Reason  string
	Message string
}

// Ready reports whether a usable network exists.
func (s *State) Ready() bool { return s.List != nil }

// Loader re-reads the configuration directory when any file in it changes
// (name, size or mtime), so new or edited conflists are picked up without
// a restart.
type Loader struct {
	dir     string
	network string
	binDirs []string

	mu    sync.Mutex
	stamp string
	state *State
}

// NewLoader loads from dir; network picks a network by name (empty: the
// first valid file by name).
func NewLoader(dir, network string, binDirs []string) *Loader {
	return &Loader{dir: dir, network: network, binDirs: binDirs}
}

// Load returns the current state and whether it changed since the last call.
func (l *Loader) Load() (*State, bool) {
	files, stamp := l.scan()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != nil && stamp == l.stamp {
		return l.state, false
	}
	st := l.load(files)
	changed := l.state == nil || st.File != l.state.File || st.Reason != l.state.Reason || !sameBytes(st, l.state)
	l.stamp, l.state = stamp, st
	return st, changed
}

func sameBytes(a, b *State) bool {
	if a.List == nil || b.List == nil {
		return a.List == b.List
	}
	return string(a.List.Bytes) == string(b.List.Bytes)
}

// scan lists config files sorted by name with a stamp of names, sizes,
// mtimes, plus the plugin dirs (a plugin installed later makes it ready).
func (l *Loader) scan() ([]string, string) {
	var b strings.Builder
	var files []string
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		fmt.Fprintf(&b, "err:%v;", err)
	}
	for _, e := range ents {
		switch filepath.Ext(e.Name()) {
		case ".conflist", ".conf", ".json":
		default:
			continue
		}
		info, err := e.Info()
		if err != nil || info.IsDir() {
			continue
		}
		files = append(files, filepath.Join(l.dir, e.Name()))
		fmt.Fprintf(&b, "%s:%d:%d;", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	for _, d := range l.binDirs {
		if info, err := os.Stat(d); err == nil {
			fmt.Fprintf(&b, "bin:%s:%d;", d, info.ModTime().UnixNano())
		}
	}
	sort.Strings(files)
	return files, b.String()
}

func (l *Loader) load(files []string) *State {
	if len(files) == 0 {
		return &State{Reason: ReasonNoConfig, Message: fmt.Sprintf("no CNI configuration in %s", l.dir)}
	}
	var firstErr *State
	for _, f := range files {
		list, err := readList(f)
		if err == nil && l.network != "" && list.Name != l.network {
			continue
		}
		if err == nil {
			err = l.checkPlugins(list)
			if err != nil {
				if firstErr == nil {
					firstErr = &State{File: f, Reason: ReasonMissingPlugin, Message: fmt.Sprintf("%s: %v", f, err)}
				}
				continue
			}
			return &State{List: list, File: f}
		}
		if firstErr == nil {
			firstErr = &State{File: f, Reason: ReasonInvalidConfig, Message: fmt.Sprintf("%s: %v", f, err)}
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return &State{Reason: ReasonNoConfig, Message: fmt.Sprintf("no CNI network named %q in %s", l.network, l.dir)}
}

// readList parses a .conflist, or a single-plugin .conf/.json as a list.
func readList(f string) (*libcni.NetworkConfigList, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, err
	}
	if filepath.Ext(f) == ".conflist" {
		return libcni.NetworkConfFromBytes(b)
	}
	c, err := libcni.ConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	if c.Network.Type == "" {
		return nil, fmt.Errorf("plugin type missing")
	}
	return libcni.ConfListFromConf(c) //nolint:staticcheck // single-plugin files are still common
}

func (l *Loader) checkPlugins(list *libcni.NetworkConfigList) error {
	if len(list.Plugins) == 0 {
		return fmt.Errorf("network %q has no plugins", list.Name)
	}
	for _, p := range list.Plugins {
		t := p.Network.Type
		if t == "" || strings.ContainsRune(t, '/') {
			return fmt.Errorf("network %q: invalid plugin type %q", list.Name, t)
		}
		found := false
		for _, d := range l.binDirs {
			if info, err := os.Stat(filepath.Join(d, t)); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("network %q: plugin %q not found in %s", list.Name, t, strings.Join(l.binDirs, ":"))
		}
	}
	return nil
}
