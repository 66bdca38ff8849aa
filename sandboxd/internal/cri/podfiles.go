package cri

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// writeResolvConf writes the pod's resolv.conf from its DNS config, or
// copies the host's when the pod has none.
func writeResolvConf(path string, dns *runtimeapi.DNSConfig) error {
	var buf bytes.Buffer
	if len(dns.GetServers())+len(dns.GetSearches())+len(dns.GetOptions()) == 0 {
		host, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("read host resolv.conf: %w", err)
		}
		buf.Write(host)
	} else {
		for _, s := range dns.GetServers() {
			fmt.Fprintf(&buf, "nameserver %s\n", s)
		}
		if len(dns.GetSearches()) > 0 {
			fmt.Fprintf(&buf, "search %s\n", strings.Join(dns.GetSearches(), " "))
		}
		if len(dns.GetOptions()) > 0 {
			fmt.Fprintf(&buf, "options %s\n", strings.Join(dns.GetOptions(), " "))
		}
	}
	return writeFile(path, buf.Bytes())
}

// writeHosts writes a default /etc/hosts (the kubelet mounts its own for
// most pods; crictl users get this one).
func writeHosts(path, hostname string, ips []string) error {
	var buf bytes.Buffer
	buf.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, ip := range ips {
		fmt.Fprintf(&buf, "%s\t%s\n", ip, hostname)
	}
	return writeFile(path, buf.Bytes())
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func validateDNS(dns *runtimeapi.DNSConfig) error {
	for _, list := range [][]string{dns.GetServers(), dns.GetSearches(), dns.GetOptions()} {
		for _, v := range list {
			if v == "" || strings.ContainsAny(v, "\n\r\t ") {
				return fmt.Errorf("dns config value %q is empty or has whitespace: %w", v, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

func validHostname(h string) error {
	if len(h) > 64 || strings.ContainsAny(h, " /\n\t\x00") {
		return fmt.Errorf("hostname %q is not valid: %w", h, errdefs.ErrInvalidArgument)
	}
	return nil
}

// cgroupParent validates a cgroupfs parent path.
func cgroupParent(p string) (string, error) {
	if p == "" {
		return "/flotilla", nil
	}
	if strings.HasSuffix(p, ".slice") {
		return "", fmt.Errorf("cgroup parent %q is a systemd slice: the systemd cgroup driver is unsupported, use cgroupfs: %w", p, errdefs.ErrInvalidArgument)
	}
	clean := filepath.Clean("/" + p)
	if strings.Contains(p, "..") {
		return "", fmt.Errorf("cgroup parent %q must not contain '..': %w", p, errdefs.ErrInvalidArgument)
	}
	return clean, nil
}
