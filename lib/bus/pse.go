package bus

import (
	_ "unsafe" // for go:linkname

	_ "github.com/nats-io/nats-server/v2/server/pse" // initialized before this package
)

// natsProcStatFile is the file that nats-server's pse package reads every
// second, from a timer its init starts in every process linking the server
// (all of Flotilla's daemons, as they share one executable), to keep the
// CPU share that the server reports in /varz and in $SYS statistics. The
// embedded server serves neither, and in an idle daemon those reads were a
// wake-up a second and about 40 % of the garbage (≈ 4 KB a tick; the rest
// was criproxy's health checks), which the heap kept until the next GC.
//
//go:linkname natsProcStatFile github.com/nats-io/nats-server/v2/server/pse.procStatFile
var natsProcStatFile string

// Emptying the path ends the sampling at its next tick: pse's periodic
// returns without scheduling itself again when the read fails (checked
// against nats-server v2.15.3; TestNATSProcSamplingStopped notices a
// rename). The server's ProcUsage then reports an error, which its callers
// ignore (zero CPU and memory in /varz).
func init() { natsProcStatFile = "" }
