package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The daemon is chosen by the name the executable runs as, or by its first
// argument; anything else is a usage error.
func TestDispatch(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "netd")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv []string
		want string
		code int
	}{
		{[]string{link, "--version"}, "netd ", 0},
		{[]string{exe, "imaged", "--version"}, "imaged ", 0},
		{[]string{exe, "nosuchd"}, "", 2},
	} {
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Args[0] = c.argv[0]
		cmd.Env = append(os.Environ(), "FLOTILLA_DISPATCH_TEST=1")
		out, _ := cmd.Output()
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.HasPrefix(string(out), c.want) {
			t.Errorf("%v: exit %d output %q, want %d %q", c.argv, code, out, c.code, c.want)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("FLOTILLA_DISPATCH_TEST") == "1" {
		main()
	}
	os.Exit(m.Run())
}
