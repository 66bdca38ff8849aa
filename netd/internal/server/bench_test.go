package server

import (
	"fmt"
	"testing"
)

// BenchmarkSetupTeardown measures one pod's namespace plus CNI ADD
// (bridge, host-local, portmap, bandwidth, firewall), then DEL.
func BenchmarkSetupTeardown(b *testing.B) {
	e := newEnv(b, 15, true)
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("b%d", i)
		if _, err := e.setup(id, nil); err != nil {
			b.Fatal(err)
		}
		e.teardown(id)
	}
}
