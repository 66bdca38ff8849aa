package framework

import (
	"flotilla.dev/ctl/fleet"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// NATSCluster is a cluster of Debian nats-server processes on loopback.
type NATSCluster struct {
	URLs []string
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := fleet.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartNATSCluster starts n nats-server nodes routed to each other and
// stops them when the test ends.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skipf("nats-server not installed (make deps): %v", err)
	}
	clientPorts := make([]int, n)
	routePorts := make([]int, n)
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
	}
	c := &NATSCluster{}
	for i := range n {
		routes := ""
		for j := range n {
			if j != i {
				if routes != "" {
					routes += ","
				}
				routes += fmt.Sprintf("nats://127.0.0.1:%d", routePorts[j])
			}
		}
		cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(clientPorts[i]),
			"--cluster_name", "flotilla-test", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]),
			"--routes", routes, "-n", fmt.Sprintf("node%d", i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		c.URLs = append(c.URLs, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	for _, p := range clientPorts {
		deadline := time.Now().Add(10 * time.Second)
		for {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nats-server on %d not up: %v", p, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}
