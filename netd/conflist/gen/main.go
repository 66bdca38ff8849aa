// Command gen writes deploy/cni/10-flotilla.conflist: go run ./netd/conflist/gen > deploy/cni/10-flotilla.conflist
package main

import (
	"fmt"
	"os"

	"flotilla.dev/netd/conflist"
)

func main() {
	b, err := conflist.Default().JSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s\n", b)
}
