package config

import (
	"testing"
	"time"
)

func TestDefaultsValidate(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.PullProgressTimeout) != time.Minute || c.MaxParallelDownloads == 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"relative root":    func(c *Config) { c.Root = "storage" },
		"empty run root":   func(c *Config) { c.RunRoot = "" },
		"no driver":        func(c *Config) { c.StorageDriver = "" },
		"zero timeout":     func(c *Config) { c.PullProgressTimeout = 0 },
		"negative timeout": func(c *Config) { c.PullProgressTimeout = Duration(-time.Second) },
	} {
		c := Defaults()
		mut(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || time.Duration(d) != 90*time.Second {
		t.Fatalf("%v %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Errorf("marshal %s", b)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Error("accepted \"soon\"")
	}
}
