// Command netd owns pod network namespaces and CNI results.
package main

import (
	"os"

	"flotilla.dev/netd/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout)) }
