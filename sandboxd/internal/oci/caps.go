package oci

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"flotilla.dev/lib/caps"
)

// CapSet is a set of capability names (CAP_...).
type CapSet []string

// Has reports whether c is in the set.
func (s CapSet) Has(c string) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

// BoundingSet returns the capabilities in this process's bounding set
// (CapBnd): what "ALL" and privileged containers get.
func BoundingSet() (CapSet, error) { return capsFromStatus("/proc/self/status", "CapBnd:") }

// EffectiveSet returns this process's effective capabilities.
func EffectiveSet() (CapSet, error) { return capsFromStatus("/proc/self/status", "CapEff:") }

func capsFromStatus(path, field string) (CapSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", path, field, err)
			}
			return FromMask(mask), nil
		}
	}
	return nil, fmt.Errorf("%s: no %s line", path, field)
}

// FromMask converts a capability bitmask to names (unknown bits skipped).
func FromMask(mask uint64) CapSet {
	var out CapSet
	for i := 0; i < caps.Count; i++ {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, caps.Name(i))
		}
	}
	return out
}

// NormalizeCap turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN", and reports whether it is a known capability ("ALL" is
// returned as is).
func NormalizeCap(c string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, true
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	_, ok := caps.Number(u)
	return u, ok
}
