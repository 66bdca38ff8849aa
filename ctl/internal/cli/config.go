package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"flotilla.dev/ctl/fleet"
	"github.com/spf13/cobra"
)

func newConfigCmd(g *globals) *cobra.Command {
	var defaults bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration in use (a fleet's with --root, the node's otherwise), or every daemon's commented defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if defaults {
				for _, d := range fleet.Daemons {
					c := exec.Command(filepath.Join(binDir(), d), "--print-config")
					c.Stdout, c.Stderr = out, os.Stderr
					if err := c.Run(); err != nil {
						return fmt.Errorf("%s --print-config: %w", d, err)
					}
					fmt.Fprintln(out)
				}
				return nil
			}
			file := g.config
			if g.root != "" {
				file = fleet.NewLayout(g.root).ConfigFile
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("%w (use --defaults for the built-in defaults)", err)
			}
			fmt.Fprintf(out, "# %s\n%s", file, data)
			drop, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "flotilla.d", "*.toml"))
			for _, f := range drop {
				if d, err := os.ReadFile(f); err == nil {
					fmt.Fprintf(out, "\n# %s\n%s", f, d)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&defaults, "defaults", false, "print every daemon's commented default configuration")
	return cmd
}
