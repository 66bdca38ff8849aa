package perfcpu

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Lines as `perf script -F comm,tid,time,period,event` prints them.
const script = `
         swapper     0 1796077352.038084:     500000 cpu-clock:ppp: 
   runc:[2:INIT] 10766 1796077352.100000:     500000 cpu-clock:ppp: 
               4 10760 1796077352.100500:     500000 cpu-clock:ppp: 
        sandboxd   812 1796077352.200000:     250000 cpu-clock:ppp: 
  Chrome Child  4242 1796077352.300000:     500000 cpu-clock:ppp: 
warning: some line perf prints
          bridge 12001 1796077353.500000:     500000 cpu-clock:ppp: 
          bridge 12001 1796077360.000000:     500000 cpu-clock:ppp: 
`

func at(sec int64, ns int64) time.Time { return time.Unix(sec, ns) }

func TestReadSumsPeriodsInsideTheWindows(t *testing.T) {
	ws := []Window{
		{at(1796077352, 0), at(1796077352, 250000000)},
		{at(1796077353, 0), at(1796077354, 0)},
	}
	u, err := Read(strings.NewReader(script), ws)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"swapper":       500 * time.Microsecond,
		"runc:[2:INIT]": 500 * time.Microsecond,
		"4":             500 * time.Microsecond,
		"sandboxd":      250 * time.Microsecond,
		"bridge":        500 * time.Microsecond, // the one at 1796077360 is outside
	}
	if len(u.ByComm) != len(want) {
		t.Fatalf("got %v, want %v", u.ByComm, want)
	}
	for c, d := range want {
		if u.ByComm[c] != d {
			t.Errorf("%s: got %v, want %v", c, u.ByComm[c], d)
		}
	}
	if u.Samples != 5 || u.Wall != 1250*time.Millisecond {
		t.Errorf("samples %d, wall %v; want 5, 1.25s", u.Samples, u.Wall)
	}

	// A comm with a space is one name.
	u, err = Read(strings.NewReader(script), []Window{{at(1796077352, 250000001), at(1796077352, 400000000)}})
	if err != nil || u.ByComm["Chrome Child"] != 500*time.Microsecond || len(u.ByComm) != 1 {
		t.Errorf("comm with a space: %v, %v", u.ByComm, err)
	}
}

func TestReadRefusesPeriodsThatAreNotTime(t *testing.T) {
	in := "  sandboxd   812 1796077352.200000:     123456 cycles:P: \n"
	if _, err := Read(strings.NewReader(in), []Window{{at(0, 0), at(1796077400, 0)}}); err == nil || !strings.Contains(err.Error(), "cpu-clock") {
		t.Fatalf("err = %v, want one that names cpu-clock", err)
	}
}

func TestGroupAndPrint(t *testing.T) {
	for comm, g := range map[string]string{
		"runc:[2:INIT]": "runc init", "exe": "runc init", "11": "runc create (kill, delete)", "runc": "runc create (kill, delete)",
		"bridge": "CNI plugins", "netd": "Flotilla daemons", "flotilla-shim": "Flotilla shims", "swapper": "idle",
		"kworker/u8:4-fl": "kernel threads", "containerd-shim": "containerd and its shims", "python3": "other",
	} {
		if got := Group(comm); got != g {
			t.Errorf("Group(%q) = %q, want %q", comm, got, g)
		}
	}
	u := &Usage{ByComm: map[string]time.Duration{
		"swapper": 10 * time.Millisecond, "4": 60 * time.Millisecond, "runc:[2:INIT]": 30 * time.Millisecond, "netd": 30 * time.Millisecond,
	}, Samples: 260, Wall: time.Second}
	var b bytes.Buffer
	u.Print(&b, 3, 2)
	out := b.String()
	// 120 ms busy over 3 pods; idle is 10 of 130 ms.
	for _, s := range []string{"40.0 ms per pod busy, 8 % idle", "runc create (kill, delete)          ", "20.00     50%", "10.00     25%"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	// --top 2: two processes listed (4 and one of the 10 ms ones), idle never.
	if strings.Count(out, "\n") != 2+3+1+2 || strings.Contains(out, "swapper") {
		t.Errorf("want 3 parts and 2 processes, no idle:\n%s", out)
	}
}
