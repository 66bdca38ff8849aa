// Package config loads layered TOML configuration:
// defaults → file → drop-ins (lexical order) → flags → Validate().
//
// One file holds a table per daemon ([criproxy], [imaged], [sandboxd],
// [netd]); drop-ins in <dir of file>/flotilla.d/*.toml override it key by key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// DefaultFile is where the node's configuration lives.
const DefaultFile = "/etc/flotilla/flotilla.toml"

// Validator is implemented by every daemon's config. Validate has no side
// effects: it never creates files or directories.
type Validator interface {
	Validate() error
}

// DropInDir returns the drop-in directory that belongs to a config file.
func DropInDir(file string) string {
	return filepath.Join(filepath.Dir(file), "flotilla.d")
}

// Files lists the files that make up a configuration in the order they
// apply: the main file (if it exists) then its drop-ins in lexical order.
func Files(file string) ([]string, error) {
	var files []string
	if _, err := os.Stat(file); err == nil {
		files = append(files, file)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config file: %w", err)
	}
	matches, err := filepath.Glob(filepath.Join(DropInDir(file), "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	return append(files, matches...), nil
}

// Load overlays table `section` of file and its drop-ins onto cfg, which
// holds the defaults. Unknown keys are errors, so typos do not pass silently.
func Load(section string, file string, cfg any) error {
	files, err := Files(file)
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if err := Overlay(section, data, cfg); err != nil {
			return fmt.Errorf("config %s: %w", f, err)
		}
	}
	return nil
}

// Overlay applies table `section` of one TOML document onto cfg.
func Overlay(section string, data []byte, cfg any) error {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return err
	}
	tbl, ok := doc[section]
	if !ok {
		return nil
	}
	m, ok := tbl.(map[string]any)
	if !ok {
		return fmt.Errorf("[%s] is not a table", section)
	}
	sub, err := toml.Marshal(m)
	if err != nil {
		return err
	}
	dec := toml.NewDecoder(bytes.NewReader(sub))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return fmt.Errorf("[%s]: %s", section, strings.TrimSpace(sm.String()))
		}
		return fmt.Errorf("[%s]: %w", section, err)
	}
	return nil
}

// Marshal renders cfg as the commented TOML table `section`, the way each
// binary prints its default configuration. Field comments come from the
// `comment` struct tag.
func Marshal(section string, cfg any) ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(true)
	if err := enc.Encode(map[string]any{section: cfg}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
