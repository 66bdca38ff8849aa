// Command criproxy serves the CRI socket the kubelet talks to and routes
// every call to the daemon that owns it.
package main

import (
	"os"

	"flotilla.dev/criproxy/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout)) }
