package layout

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExitFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	e := Exit{Code: 137, ExitedAt: time.Unix(1700000000, 123456789).UTC(), OOMKilled: true}
	if err := WriteFileAtomic(dir, ExitFile, e.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeExit(b)
	if err != nil || got != e {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, e)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	for _, bad := range []string{"", "1 2", "x 1 0", "1 2 3 4"} {
		if _, err := DecodeExit([]byte(bad)); err == nil {
			t.Errorf("DecodeExit(%q) succeeded", bad)
		}
	}
}
