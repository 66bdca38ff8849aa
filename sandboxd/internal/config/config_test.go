package config

import (
	"strings"
	"testing"

	libconfig "flotilla.dev/lib/config"
)

func TestDefaultsValidate(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r, ok := c.Runtime("")
	if !ok || r.Path != "runc" || r.Root != "/run/flotilla/sandboxd/runtimes/runc" {
		t.Fatalf("default runtime %+v %v", r, ok)
	}
	if _, ok := c.Runtime("nope"); ok {
		t.Fatal("unknown handler resolved")
	}
}

func TestSystemdCgroupDriverIsUnsupported(t *testing.T) {
	c := Defaults()
	c.CgroupDriver = "systemd"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("got %v", err)
	}
}

func TestRuntimesFromTOML(t *testing.T) {
	c := Defaults()
	doc := []byte(`[sandboxd]
default_runtime = "runsc"
[sandboxd.runtimes.runsc]
path = "/usr/bin/runsc"
root = "/run/runsc"
`)
	if err := libconfig.Overlay("sandboxd", doc, c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r, ok := c.Runtime("")
	if !ok || r.Path != "/usr/bin/runsc" || r.Root != "/run/runsc" {
		t.Fatalf("runsc %+v", r)
	}
	if _, ok := c.Runtime("runc"); !ok {
		t.Fatal("default runc handler lost by the overlay")
	}
	c.DefaultRuntime = "missing"
	if err := c.Validate(); err == nil {
		t.Fatal("missing default runtime accepted")
	}
}
