package cni

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"flotilla.dev/lib/procstat"
)

// procState is the state letter in /proc/<pid>/stat, "" when pid is gone.
func procState(pid int) string {
	st, err := procstat.Read("/proc", pid)
	if err != nil {
		return ""
	}
	return st.Field(3)
}

func TestExitedZeroLeavesTheChildUnreaped(t *testing.T) {
	for _, tc := range []struct {
		script string
		zero   bool
		wait   string
	}{
		{"exit 0", true, ""},
		{"exit 3", false, "exit status 3"},
		{"kill -KILL $$", false, "signal: killed"},
	} {
		c := exec.Command("/bin/sh", "-c", tc.script)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if got := exitedZero(c.Process.Pid); got != tc.zero {
			t.Errorf("%q: exitedZero = %v, want %v", tc.script, got, tc.zero)
		}
		// Still there to be reaped, and Wait reaps it with its status.
		if st := procState(c.Process.Pid); st != "Z" {
			t.Errorf("%q: after exitedZero the child's state is %q, want a zombie", tc.script, st)
		}
		err := c.Wait()
		if msg := ""; err != nil {
			msg = err.Error()
			if msg != tc.wait {
				t.Errorf("%q: Wait: %q, want %q", tc.script, msg, tc.wait)
			}
		} else if tc.wait != "" {
			t.Errorf("%q: Wait succeeded, want %q", tc.script, tc.wait)
		}
		if st := procState(c.Process.Pid); st != "" {
			t.Errorf("%q: after Wait the child's state is %q, want it gone", tc.script, st)
		}
	}
}

// writePlugin writes an executable shell script named name into dir.
func writePlugin(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReapLaterExecAnswersAsLibcni runs the same plugins through libcni's
// RawExec and through reapLaterExec: the output, the stderr passed on and
// the error must be the same, and a plugin that succeeded is reaped soon
// after.
func TestReapLaterExecAnswersAsLibcni(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	plugins := map[string]string{
		// Reads its stdin and environment, answers on stdout, warns on stderr.
		"ok": `echo $$ > ` + pidFile + `
in=$(cat)
echo "warning: $CNI_COMMAND" >&2
printf '{"cniVersion":"1.0.0","stdin":%s}' "$in"`,
		"json-error":  `cat >/dev/null; printf '{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"more"}'; exit 1`,
		"stderr-only": `echo "no bridge here" >&2; exit 2`,
		"silent":      `exit 4`,
		"garbled":     `echo 'not json'; exit 1`,
		"killed":      `kill -KILL $$`,
	}
	for name, body := range plugins {
		writePlugin(t, dir, name, body)
	}
	stdin := []byte(`{"cniVersion":"1.0.0","name":"n"}`)
	env := []string{"CNI_COMMAND=ADD", "PATH=/usr/bin:/bin"}
	for _, name := range []string{"ok", "json-error", "stderr-only", "silent", "garbled", "killed", "missing"} {
		path := filepath.Join(dir, name)
		var wantErr, gotErr bytes.Buffer
		want, werr := (&invoke.RawExec{Stderr: &wantErr}).ExecPlugin(context.Background(), path, stdin, env)
		got, gerr := (&reapLaterExec{Stderr: &gotErr}).ExecPlugin(context.Background(), path, stdin, env)
		if !bytes.Equal(got, want) || gotErr.String() != wantErr.String() {
			t.Errorf("%s: got %q (stderr %q), libcni %q (stderr %q)", name, got, gotErr.String(), want, wantErr.String())
		}
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Errorf("%s: error %v, libcni %v", name, gerr, werr)
		}
		var te *types.Error
		if gerr != nil && !errors.As(gerr, &te) {
			t.Errorf("%s: error %T, want a CNI *types.Error as libcni gives", name, gerr)
		}
	}
	var te *types.Error
	if _, err := (&reapLaterExec{}).ExecPlugin(context.Background(), filepath.Join(dir, "json-error"), stdin, env); !errors.As(err, &te) || te.Code != 7 || te.Msg != "boom" {
		t.Errorf("json-error: %#v, want code 7 and msg boom", err)
	}

	// The plugin that succeeded does not stay a zombie.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for procState(pid) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d not reaped: state %q", pid, procState(pid))
		}
		time.Sleep(reapDelay)
	}
}
