package cri

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shimOnce.path != "" {
		os.RemoveAll(filepath.Dir(shimOnce.path))
	}
	os.Exit(code)
}
