// Package ids checks the identifiers the daemons accept from their callers:
// pod, container and exec ids, and image ids or id prefixes.
//
// These are plain loops rather than regular expressions on purpose: every
// daemon runs in the same executable and so runs every package's
// initialisation, and a compiled `[…]{0,127}` pattern alone keeps ~40 KB of
// instructions alive in each process (docs/performance.md, "Daemon memory").
package ids

// Name reports whether s is 1 to max characters: a letter or digit, then
// letters, digits, '_', '.' or '-'. It is the shape of pod, container and
// exec ids (runc's own rule for container ids is the same set).
func Name(s string, max int) bool {
	if len(s) == 0 || len(s) > max || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// Hex reports whether s is min to max lowercase hexadecimal digits.
func Hex(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
