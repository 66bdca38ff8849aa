// Package procstat reads a process's /proc/PID/stat, whose command name, in
// parentheses, may itself hold blanks and parentheses: the fields are
// counted after its last closing parenthesis.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is one process's stat line.
type Stat struct {
	Comm   string   // field 2, without its parentheses
	fields []string // field 3 (state) on
}

// Parse splits a stat line.
func Parse(b []byte) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("stat %.40q: no command name", b)
	}
	return Stat{Comm: string(b[open+1 : end]), fields: strings.Fields(string(b[end+1:]))}, nil
}

// Read reads and parses <procfs>/<pid>/stat.
func Read(procfs string, pid int) (Stat, error) {
	name := filepath.Join(procfs, strconv.Itoa(pid), "stat")
	b, err := os.ReadFile(name)
	if err != nil {
		return Stat{}, err
	}
	s, err := Parse(b)
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// Field returns field n, numbered from 1 as in proc(5) (3 is the state,
// 4 the parent's pid, 14 and 15 utime and stime, 22 the start time), or ""
// when the line has no such field.
func (s Stat) Field(n int) string {
	if n < 3 || n-3 >= len(s.fields) {
		return ""
	}
	return s.fields[n-3]
}

// Uint returns field n (n ≥ 3) as a number.
func (s Stat) Uint(n int) (uint64, error) {
	f := s.Field(n)
	if f == "" {
		return 0, fmt.Errorf("stat of %q: no field %d", s.Comm, n)
	}
	return strconv.ParseUint(f, 10, 64)
}
