package crilog

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCopySplitsLongLinesAndReopens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.now = func() time.Time { return time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC) }

	long := strings.Repeat("x", 40)
	in := "hello\n" + long + "\ntail"
	if err := w.Copy("stdout", strings.NewReader(in), 16, nil); err != nil {
		t.Fatal(err)
	}
	ts := "2016-10-06T00:17:09.669794202Z"
	want := ts + " stdout F hello\n" +
		ts + " stdout P " + long[:16] + "\n" +
		ts + " stdout P " + long[16:32] + "\n" +
		ts + " stdout F " + long[32:] + "\n" +
		ts + " stdout F tail\n"
	got, _ := os.ReadFile(path)
	if string(got) != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}

	// Rotation: the file is renamed away, Reopen creates a fresh one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.now = time.Now
	if err := w.Entry("stderr", false, []byte("after")); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if !regexp.MustCompile(`^\S+Z stderr F after\n$`).Match(got) {
		t.Fatalf("reopened log = %q", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(string(got))[0]); err != nil {
		t.Fatal(err)
	}
}
