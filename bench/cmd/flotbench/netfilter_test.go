package main

import (
	"testing"

	"flotilla.dev/netd/conflist"
)

func TestNetfilterFlag(t *testing.T) {
	for in, want := range map[string]string{"iptables": "iptables", "nftables": "nftables", "none": "", "auto": conflist.Detect()} {
		if got, err := netfilter(in); err != nil || got != want {
			t.Errorf("--cni-netfilter %s: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "nft", "IPTABLES"} {
		if got, err := netfilter(in); err == nil {
			t.Errorf("--cni-netfilter %q accepted as %q", in, got)
		}
	}
}
