package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
)

func newBackupListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list <db>",
		Short: "The backups of a database, oldest first, in the manner of Db2's LIST HISTORY",
		Long: `backup list prints one line per backup in the catalog, oldest first: the image timestamp,
type and mode, size, the key version that protects it, its restore chain (base for a full;
+N on <full> for an incremental or delta that needs N images after that full), whether it was
verified, the log files it needs and where its files are.`,
		Example: "  keyguard backup list proddb\n  keyguard backup list proddb -json",
		Args:    args(1, 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.backupList(cmd.Context(), args[0], asJSON)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the catalog entries)")
	return cmd
}

func (o *ops) backupList(ctx context.Context, db string, asJSON bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	list, err := catalog.New(o.objs).List(ctx, db)
	if err != nil {
		return err
	}
	if err := o.known(ctx, fleet, db, len(list)); err != nil {
		return err
	}
	if asJSON {
		if list == nil {
			list = []catalog.Entry{}
		}
		return o.json(list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintf(o.out, "no backups of %s yet\n", db)
		return err
	}
	tw := o.table()
	fmt.Fprintln(tw, "TIMESTAMP\tTYPE\tMODE\tSIZE\tKEY VERSION\tCHAIN\tVERIFIED\tLOGS\tLOCATION")
	for _, e := range list {
		typ := string(e.Type)
		if e.Scope == catalog.ScopeTablespace {
			typ += " (tablespaces)"
		}
		logs := "-"
		if e.LogRange.First != "" {
			logs = e.LogRange.First + "-" + orDash(e.LogRange.Last)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ImageTimestamp, typ, e.Mode, size(e.SizeBytes), short(e.KeyVersion),
			chainCell(list, e), yesNo(e.Verification.Verified), logs, location(e))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	recs, err := catalog.New(o.objs).ListRestores(ctx, db)
	if err != nil || len(recs) == 0 {
		return err
	}
	fmt.Fprintf(o.out, "\nrestores of %s (oldest first):\n", db)
	for _, r := range recs {
		fmt.Fprintln(o.out, "  "+restoreLine(r))
	}
	return nil
}

// chainCell describes e's restore chain in one cell.
func chainCell(list []catalog.Entry, e catalog.Entry) string {
	switch {
	case e.IsDiscarded():
		return "discarded"
	case e.Type == events.Full:
		return "base"
	}
	chain, err := catalog.Chain(list, e.ImageTimestamp)
	switch {
	case errors.Is(err, catalog.ErrBrokenChain):
		return "BROKEN"
	case err != nil || len(chain) == 0:
		return "?"
	}
	return fmt.Sprintf("+%d on %s", len(chain)-1, chain[0].ImageTimestamp)
}
