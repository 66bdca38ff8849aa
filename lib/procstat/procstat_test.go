package procstat

import (
	"os"
	"strconv"
	"testing"
)

func TestParseCommWithBlanksAndParentheses(t *testing.T) {
	s, err := Parse([]byte("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 900 900 20 0 9 0 777\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Comm != "a (b) c" || s.Field(3) != "S" || s.Field(4) != "1" {
		t.Errorf("comm %q, state %q, ppid %q", s.Comm, s.Field(3), s.Field(4))
	}
	if v, err := s.Uint(14); err != nil || v != 123 {
		t.Errorf("utime = %v, %v", v, err)
	}
	if v, err := s.Uint(22); err != nil || v != 777 {
		t.Errorf("starttime = %v, %v", v, err)
	}
	if _, err := s.Uint(23); err == nil {
		t.Error("field 23 of a 22-field line: no error")
	}
	if s.Field(2) != "" || s.Field(1) != "" {
		t.Error("fields 1 and 2 are not among the fields after the name")
	}
	for _, bad := range []string{"", "1 x S", "1 )x( S"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func TestReadThisProcess(t *testing.T) {
	s, err := Read("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.Field(4) != strconv.Itoa(os.Getppid()) {
		t.Errorf("ppid field %q, want %d", s.Field(4), os.Getppid())
	}
	if _, err := Read("/proc", 1<<30); !os.IsNotExist(err) {
		t.Errorf("a process that does not exist: %v", err)
	}
}
