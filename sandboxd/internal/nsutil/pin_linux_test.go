package nsutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPinUTSAndIPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	paths, err := Pin(dir, "pinned-host", IPC, UTS)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range paths {
			if err := Unpin(p); err != nil {
				t.Error(err)
			}
		}
	}()
	for _, k := range []Kind{IPC, UTS} {
		if !IsPinned(paths[k], k) {
			t.Fatalf("%s not pinned at %s", k, paths[k])
		}
	}
	// The pinned namespaces are new, and no thread of ours stayed in them.
	for _, k := range []Kind{IPC, UTS} {
		var pinned unix.Stat_t
		if err := unix.Stat(paths[k], &pinned); err != nil {
			t.Fatal(err)
		}
		tasks, _ := filepath.Glob("/proc/self/task/*/ns/" + string(k))
		for _, task := range tasks {
			var st unix.Stat_t
			if err := unix.Stat(task, &st); err == nil && st.Ino == pinned.Ino {
				t.Fatalf("%s: thread %s stayed in the pinned namespace", k, task)
			}
		}
	}
	out, err := exec.Command("nsenter", "--uts="+paths[UTS], "hostname").Output()
	if err != nil || strings.TrimSpace(string(out)) != "pinned-host" {
		t.Fatalf("hostname in pinned UTS: %q %v", out, err)
	}
	// Unpin is idempotent and leaves nothing behind.
	for _, p := range paths {
		if err := Unpin(p); err != nil {
			t.Fatal(err)
		}
		if err := Unpin(p); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
	if IsPinned(filepath.Join(dir, "utsns"), UTS) {
		t.Fatal("still pinned")
	}
}
