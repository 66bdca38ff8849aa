package ids

import (
	"regexp"
	"strings"
	"testing"
)

// The functions replace regular expressions; they must accept exactly what
// those accepted.
func TestNameMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	inputs := []string{
		"", "a", "A", "0", "_a", ".a", "-a", "a_b.c-d", "a b", "a/b", "a\x00", "é", "aé",
		"d0091b23325a3aaac77bf1121e55de24d435b508944038991211eebe56aa4be3",
		strings.Repeat("a", 127), strings.Repeat("a", 128), strings.Repeat("a", 129),
		"a\n", "\na", "abc:def", "ABC~",
	}
	for _, s := range inputs {
		if got, want := Name(s, 128), re.MatchString(s); got != want {
			t.Errorf("Name(%q, 128) = %v, the pattern says %v", s, got, want)
		}
	}
	if Name(strings.Repeat("b", 65), 64) || !Name(strings.Repeat("b", 64), 64) {
		t.Error("Name does not honour max")
	}
}

func TestHexMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-f0-9]{3,63}$`)
	inputs := []string{"", "ab", "abc", "ABC", "abg", "0123456789abcdef", strings.Repeat("f", 63),
		strings.Repeat("f", 64), "abc ", " abc", "sha256:abc"}
	for _, s := range inputs {
		if got, want := Hex(s, 3, 63), re.MatchString(s); got != want {
			t.Errorf("Hex(%q, 3, 63) = %v, the pattern says %v", s, got, want)
		}
	}
	if !Hex(strings.Repeat("0", 64), 64, 64) || Hex(strings.Repeat("0", 63), 64, 64) {
		t.Error("Hex does not honour min/max")
	}
}
