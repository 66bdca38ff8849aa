package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testCfg struct {
	Socket string `toml:"socket" comment:"where to listen"`
	Level  string `toml:"log_level"`
	Max    int    `toml:"max"`
}

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "flotilla.toml")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "[imaged]\nsocket = \"/a\"\nmax = 3\n[netd]\nsocket = \"/n\"\n")
	write(filepath.Join(dir, "flotilla.d", "20-b.toml"), "[imaged]\nmax = 7\n")
	write(filepath.Join(dir, "flotilla.d", "10-a.toml"), "[imaged]\nmax = 5\nlog_level = \"debug\"\n")

	cfg := testCfg{Socket: "/default", Level: "info", Max: 1}
	if err := Load("imaged", file, &cfg); err != nil {
		t.Fatal(err)
	}
	want := testCfg{Socket: "/a", Level: "debug", Max: 7}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestLoadMissingFileKeepsDefaults(t *testing.T) {
	cfg := testCfg{Socket: "/default"}
	if err := Load("imaged", filepath.Join(t.TempDir(), "none.toml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Socket != "/default" {
		t.Fatalf("defaults changed: %+v", cfg)
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	cfg := testCfg{}
	err := Overlay("imaged", []byte("[imaged]\nsokcet = \"/x\"\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "sokcet") {
		t.Fatalf("want an error naming the unknown key, got %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	in := testCfg{Socket: "/s", Level: "warn", Max: 2}
	data, err := Marshal("criproxy", in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "# where to listen") {
		t.Fatalf("no comment in:\n%s", data)
	}
	var out testCfg
	if err := Overlay("criproxy", data, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
}
