// Command flotctl is Flotilla's admin CLI.
package main

import (
	"os"

	"flotilla.dev/ctl/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
