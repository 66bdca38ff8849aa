package conflist

import (
	"bytes"
	"encoding/json"
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
