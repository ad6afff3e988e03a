package main

import "github.com/spf13/cobra"

func newBackupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "The catalog of a database: list, show, create, delete, fetch",
		Long: `backup works on the catalog, keyguard's record of every backup image: list and show read it,
create asks the scheduler for a backup now, delete removes one image (a dry run unless
-confirm), fetch downloads image files with their SHA-256 checked.

An image is named by its Db2 timestamp (yyyymmddhhmmss, as in RESTORE ... TAKEN AT), or by
"latest": the newest backup that was not discarded.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE("backup subcommand"),
	}
	cmd.AddCommand(newBackupListCmd(a), newBackupShowCmd(a), newBackupCreateCmd(a), newBackupDeleteCmd(a), newBackupFetchCmd(a))
	return cmd
}
