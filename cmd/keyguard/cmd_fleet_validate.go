package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newFleetValidateCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a fleet policy file as a deployment loads it (needs no environment)",
		Long: `fleet validate loads FILE exactly as the deployed functions load the policy object: every
problem is named (exit 1); a valid policy is summarized, one line per database.`,
		Example: "  keyguard fleet validate fleet.yaml",
		Args:    args(1, 1, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, f, err := loadFleetFile(args[0])
			if err != nil {
				return err
			}
			o := &ops{out: a.out}
			if asJSON {
				return o.json(summarize(f))
			}
			fmt.Fprintf(a.out, "%s: valid, %d database%s\n\n", args[0], len(f.Databases), plural(len(f.Databases)))
			return o.printFleet(f)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
