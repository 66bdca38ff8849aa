package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: these tests start runc, mounts and network namespaces: run them as root")
	}
	os.Exit(m.Run())
}
