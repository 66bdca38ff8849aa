// Package procmem accounts the memory of processes found by name: PSS and
// RSS from /proc/PID/smaps_rollup, summed over the matching processes.
package procmem

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"flotilla.dev/lib/procstat"
)

// Proc is one process seen in /proc.
type Proc struct {
	PID  int    `json:"pid"`
	PPID int    `json:"ppid"`
	Name string `json:"name"` // basename of argv[0], or comm for kernel threads
	Cmd  string `json:"cmdline"`
	Cwd  string `json:"cwd,omitempty"`
}

// Usage is the memory of a set of processes, in KiB.
type Usage struct {
	Procs  int            `json:"procs"`
	PSSKiB int64          `json:"pss_kib"`
	RSSKiB int64          `json:"rss_kib"`
	ByName map[string]int `json:"by_name,omitempty"` // process count per matched name
	// PSSByName is the PSS (KiB) per matched name.
	PSSByName map[string]int64 `json:"pss_kib_by_name,omitempty"`
}

// PSSMiB is the PSS in MiB.
func (u Usage) PSSMiB() float64 { return float64(u.PSSKiB) / 1024 }

// RSSMiB is the RSS in MiB.
func (u Usage) RSSMiB() float64 { return float64(u.RSSKiB) / 1024 }

// Selector picks processes: the name (basename of argv[0], or the 15-byte
// comm) equals one of Names, and — when Scope is set — the process or one of
// its ancestors has Scope in its command line or working directory. Scope
// tells one fleet's shims from another's on a shared machine.
type Selector struct {
	Names   []string
	Scope   string
	Exclude map[int]bool // pids never counted (e.g. the benchmark itself)
}

// Snapshot reads every process of /proc (procfs root, normally "/proc").
func Snapshot(procfs string) (map[int]*Proc, error) {
	ents, err := os.ReadDir(procfs)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", procfs, err)
	}
	out := map[int]*Proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(procfs, pid)
		if err != nil {
			continue // gone meanwhile
		}
		out[pid] = p
	}
	return out, nil
}

func readProc(procfs string, pid int) (*Proc, error) {
	dir := filepath.Join(procfs, strconv.Itoa(pid))
	st, err := procstat.Read(procfs, pid)
	if err != nil {
		return nil, err
	}
	if st.Field(4) == "" {
		return nil, fmt.Errorf("parse %s/stat", dir)
	}
	ppid, _ := strconv.Atoi(st.Field(4))
	p := &Proc{PID: pid, PPID: ppid, Name: st.Comm}
	if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmd) > 0 {
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		p.Cmd = strings.Join(args, " ")
		if args[0] != "" {
			p.Name = filepath.Base(args[0])
		}
	}
	p.Cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
	return p, nil
}

// Select returns the processes of procs that s picks, sorted by pid.
func (s Selector) Select(procs map[int]*Proc) []*Proc {
	var out []*Proc
	for _, p := range procs {
		if s.Exclude[p.PID] || !s.nameMatches(p) || !s.inScope(procs, p) {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

func (s Selector) nameMatches(p *Proc) bool {
	for _, n := range s.Names {
		if n == "" {
			continue
		}
		// comm is truncated to 15 bytes: "containerd-shim-runc-v2" reads
		// "containerd-shim" there; argv[0] gives the full name.
		if p.Name == n || (len(n) > 15 && p.Name == n[:15]) {
			return true
		}
	}
	return false
}

func (s Selector) inScope(procs map[int]*Proc, p *Proc) bool {
	if s.Scope == "" {
		return true
	}
	seen := map[int]bool{}
	for q := p; q != nil && !seen[q.PID]; q = procs[q.PPID] {
		seen[q.PID] = true
		if strings.Contains(q.Cmd, s.Scope) || strings.Contains(q.Cwd, s.Scope) {
			return true
		}
	}
	return false
}

// Measure sums PSS and RSS of procs. Processes that exit meanwhile are
// skipped; a process whose smaps_rollup cannot be read otherwise is an
// error (the numbers would be silently low).
func Measure(procfs string, procs []*Proc) (Usage, error) {
	u := Usage{ByName: map[string]int{}, PSSByName: map[string]int64{}}
	for _, p := range procs {
		pss, rss, err := Rollup(procfs, p.PID)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return u, err
		}
		u.Procs++
		u.PSSKiB += pss
		u.RSSKiB += rss
		u.ByName[p.Name]++
		u.PSSByName[p.Name] += pss
	}
	return u, nil
}

// Rollup reads Pss and Rss (KiB) of one process from smaps_rollup.
func Rollup(procfs string, pid int) (pss, rss int64, err error) {
	f, err := os.Open(filepath.Join(procfs, strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var havePSS, haveRSS bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, perr := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss:":
			pss, havePSS = v, perr == nil
		case "Rss:":
			rss, haveRSS = v, perr == nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read smaps_rollup of %d: %w", pid, err)
	}
	if !havePSS || !haveRSS {
		// An exited process (zombie) has an empty rollup.
		return 0, 0, os.ErrNotExist
	}
	return pss, rss, nil
}
