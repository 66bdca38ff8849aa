package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/invoke"
)

// partialExec runs plugins like libcni's default and remembers, per
// container, the output of the last plugin whose ADD succeeded. When ADD
// fails halfway libcni caches no result, so the DEL that undoes it would
// reach plugins without prevResult, and plugins that key their cleanup on
// it (firewall, portmap's per-IP rules) would leave rules behind. DEL
// without prevResult gets the remembered partial result instead. Partial
// results are also written under dir, so a netd killed in the middle of an
// ADD still undoes it completely at its next start.
type partialExec struct {
	invoke.Exec
	dir  string
	mu   sync.Mutex
	last map[string]json.RawMessage
}

func newPartialExec(dir string) *partialExec {
	return &partialExec{
		Exec: &reapLaterExec{Stderr: os.Stderr},
		dir:  dir,
		last: map[string]json.RawMessage{},
	}
}

func (e *partialExec) file(id string) string { return filepath.Join(e.dir, id+".json") }

func (e *partialExec) remember(id string, out []byte) {
	e.mu.Lock()
	e.last[id] = append(json.RawMessage(nil), out...)
	e.mu.Unlock()
	if id == "" || strings.ContainsAny(id, "/") || os.MkdirAll(e.dir, 0o700) != nil {
		return
	}
	tmp := e.file(id) + ".tmp"
	if os.WriteFile(tmp, out, 0o600) == nil {
		_ = os.Rename(tmp, e.file(id))
	}
}

func (e *partialExec) recall(id string) (json.RawMessage, bool) {
	e.mu.Lock()
	prev, ok := e.last[id]
	e.mu.Unlock()
	if ok || id == "" || strings.ContainsAny(id, "/") {
		return prev, ok
	}
	b, err := os.ReadFile(e.file(id))
	if err != nil || !json.Valid(b) {
		return nil, false
	}
	return b, true
}

func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// idlePortmap reports whether stdin calls portmap for a pod that publishes
// no host port, and returns the previous result it was given. portmap then
// does nothing: ADD prints prevResult back, CHECK and DEL return at once
// (plugins/meta/portmap, read at v1.10.0). Answering for it saves a process start
// at every pod start and stop (about 4 ms of CPU with the pinned plugins);
// a pod with host ports still runs it, so rules are made and removed by
// portmap alone.
func idlePortmap(stdin []byte) (prev json.RawMessage, idle bool) {
	var conf struct {
		Type          string `json:"type"`
		RuntimeConfig struct {
			PortMappings []json.RawMessage `json:"portMappings"`
		} `json:"runtimeConfig"`
		PrevResult json.RawMessage `json:"prevResult"`
	}
	if json.Unmarshal(stdin, &conf) != nil || conf.Type != "portmap" || len(conf.RuntimeConfig.PortMappings) > 0 {
		return nil, false
	}
	if string(conf.PrevResult) == "null" {
		conf.PrevResult = nil
	}
	return conf.PrevResult, true
}

// pluginEnv runs Go plugins with one P unless netd's environment says
// otherwise: a plugin call is short and sequential, and it then starts fewer
// runtime threads, each of which the kernel has to tear down at its exit
// (see reapLaterExec). Over three alternating pairs of density runs netd used
// 6.6 ms of CPU per pod without GOMAXPROCS=1 and 5.3 with it.
func pluginEnv(environ []string) []string {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return environ
		}
	}
	return append(environ[:len(environ):len(environ)], "GOMAXPROCS=1")
}

func (e *partialExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	id := envValue(environ, "CNI_CONTAINERID")
	cmd := envValue(environ, "CNI_COMMAND")
	if prev, idle := idlePortmap(stdin); idle {
		switch {
		case cmd == "CHECK" || cmd == "DEL":
			return nil, nil
		case cmd == "ADD" && prev != nil: // without, portmap refuses it
			e.remember(id, prev)
			return prev, nil
		}
	}
	environ = pluginEnv(environ)
	switch cmd {
	case "ADD":
		out, err := e.Exec.ExecPlugin(ctx, path, stdin, environ)
		if err == nil && json.Valid(out) {
			e.remember(id, out)
		}
		return out, err
	case "DEL":
		if prev, ok := e.recall(id); ok {
			var conf map[string]json.RawMessage
			if json.Unmarshal(stdin, &conf) == nil {
				if _, has := conf["prevResult"]; !has {
					conf["prevResult"] = prev
					if b, err := json.Marshal(conf); err == nil {
						stdin = b
					}
				}
			}
		}
	}
	return e.Exec.ExecPlugin(ctx, path, stdin, environ)
}

// forget drops what was remembered for id.
func (e *partialExec) forget(id string) {
	e.mu.Lock()
	delete(e.last, id)
	e.mu.Unlock()
	_ = os.Remove(e.file(id))
}
