// Command sandboxd runs pods and containers through flotilla-shim.
package main

import (
	"os"

	"flotilla.dev/sandboxd/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout)) }
