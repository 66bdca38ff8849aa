package cli

import (
	"fmt"
	"os"
	"strings"

	"flotilla.dev/ctl/fleet"
	"github.com/pelletier/go-toml/v2"
)

// nodeConfig is the part of flotilla.toml flotctl reads.
type nodeConfig struct {
	Sockets map[string]string
	NATSURL string
}

// resolve finds the daemons' sockets and the NATS URL: from a fleet root,
// or from the node's config file with the built-in defaults.
func (g *globals) resolve() (*nodeConfig, error) {
	nc := &nodeConfig{Sockets: map[string]string{}, NATSURL: "nats://127.0.0.1:4222"}
	file := g.config
	if g.root != "" {
		l := fleet.NewLayout(g.root)
		for _, d := range fleet.Daemons {
			nc.Sockets[d] = l.Socket(d)
		}
		file = l.ConfigFile
	} else {
		for _, d := range fleet.Daemons {
			nc.Sockets[d] = "/run/flotilla/" + d + ".sock"
		}
		nc.Sockets["criproxy"] = "/run/flotilla/cri.sock"
	}
	data, err := os.ReadFile(file)
	switch {
	case err == nil:
		var doc map[string]map[string]any
		if err := toml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for d, tbl := range doc {
			if s, ok := tbl["socket"].(string); ok && s != "" {
				nc.Sockets[d] = s
			}
		}
		if u, ok := doc["criproxy"]["nats_url"].(string); ok && u != "" {
			nc.NATSURL = u
		}
	case g.root != "":
		return nil, fmt.Errorf("no fleet in %s: %w", g.root, err)
	}
	if g.endpoint != "" {
		nc.Sockets["criproxy"] = strings.TrimPrefix(g.endpoint, "unix://")
	}
	return nc, nil
}
