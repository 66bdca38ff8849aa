// Command flotilla is every Flotilla daemon in one executable, chosen by the
// name it is run as (criproxy, imaged, sandboxd, netd: links to it) or by its
// first argument (flotilla netd --config ...).
//
// One executable instead of four lets the daemons' processes share its text
// and read-only data in the page cache: on an idle node that is most of a Go
// daemon's memory (docs/performance.md, "Daemon memory").
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	criproxy "flotilla.dev/criproxy/app"
	imaged "flotilla.dev/imaged/app"
	netd "flotilla.dev/netd/app"
	sandboxd "flotilla.dev/sandboxd/app"
	"go.podman.io/storage/pkg/reexec"
)

var daemons = map[string]func(args []string, stdout io.Writer) int{
	"criproxy": criproxy.Main,
	"imaged":   imaged.Main,
	"sandboxd": sandboxd.Main,
	"netd":     netd.Main,
}

func main() {
	// imaged's layer application re-executes this binary under another
	// name; must run before anything else.
	if reexec.Init() {
		return
	}
	os.Exit(run(os.Args))
}

func run(argv []string) int {
	if main, ok := daemons[filepath.Base(argv[0])]; ok {
		return main(argv[1:], os.Stdout)
	}
	if len(argv) > 1 {
		if main, ok := daemons[argv[1]]; ok {
			return main(argv[2:], os.Stdout)
		}
	}
	names := make([]string, 0, len(daemons))
	for n := range daemons {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: %s DAEMON [flags], or run it as DAEMON (a link to it); DAEMON is one of %v\n",
		filepath.Base(argv[0]), names)
	return 2
}
