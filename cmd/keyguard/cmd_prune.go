package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/catalog"
)

func newPruneCmd(a *app) *cobra.Command {
	var confirm, dryRun bool
	cmd := &cobra.Command{
		Use:   "prune <db>",
		Short: "Apply the retention policy now (a dry run unless -confirm)",
		Long: `prune applies the database's retention policy (keep_fulls, keep_days) as completion does after
every success: it prints what is kept and what would be dropped, and deletes the dropped
backups, newest first, only with -confirm. It never drops an image a kept restore chain needs,
the last restorable chain, or an image a running restore holds; while the catalog holds an
object this keyguard cannot read, it drops nothing.`,
		Example: "  keyguard prune proddb\n  keyguard prune proddb -confirm",
		Args:    args(1, 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if confirm && dryRun {
				return usagef("%s: -confirm and -dry-run contradict each other", cmd.CommandPath())
			}
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.prune(cmd.Context(), args[0], !confirm)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "delete what the policy drops (without it, only say what it would drop)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "the default; kept for scripts written for earlier versions")
	_ = cmd.Flags().MarkHidden("dry-run")
	return cmd
}

// prune applies db's retention policy: catalog.Retain with now and the images running restores
// have leased (catalog.InUse), then deletes the dropped entries newest first (unless dry).
func (o *ops) prune(ctx context.Context, db string, dry bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	pol, ok := fleet.Database(db)
	if !ok {
		return fmt.Errorf("database %s is not in the fleet policy (its retention is unknown)", db)
	}
	l, err := catalog.New(o.objs).ListReport(ctx, db)
	if err != nil {
		return err
	}
	if len(l.Entries) == 0 {
		return fmt.Errorf("no backups of %s in the catalog", db)
	}
	now := o.now()
	inUse, err := catalog.New(o.objs).InUse(ctx, db, now)
	if err != nil {
		return fmt.Errorf("prune %s: %w", db, err)
	}
	policy := catalog.RetentionPolicy{KeepFulls: pol.Retention.KeepFulls, KeepDays: pol.Retention.KeepDays}
	keep, drop := l.Retain(policy, now, inUse)
	fmt.Fprintf(o.out, "retention of %s: keep_fulls %d, keep_days %d, at %s: keep %d, drop %d\n\n",
		db, max(policy.KeepFulls, catalog.MinKeepFulls), policy.KeepDays, utc(now), len(keep), len(drop))
	for _, sk := range l.Skipped {
		fmt.Fprintf(o.out, "unreadable %s: %s\n", sk.Key, sk.Reason)
	}
	if len(l.Skipped) > 0 {
		fmt.Fprintf(o.out, "retention is paused while the catalog holds objects this keyguard cannot read\n\n")
	}
	tw := o.table()
	fmt.Fprintln(tw, "ACTION\tTIMESTAMP\tTYPE\tENDED\tSIZE\tPARENT")
	line := func(action string, e catalog.Entry) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", action, e.ImageTimestamp, e.Type, utc(e.EndedAt), size(e.SizeBytes), orDash(e.ParentTimestamp))
	}
	for _, e := range keep {
		line("keep", e)
	}
	for _, e := range drop {
		line("drop", e)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(drop) == 0:
		_, err := fmt.Fprintln(o.out, "\nnothing to delete")
		return err
	case dry:
		_, err := fmt.Fprintf(o.out, "\ndry run: nothing deleted; add -confirm to delete the %d backup%s marked drop\n", len(drop), plural(len(drop)))
		return err
	}
	fmt.Fprintln(o.out)
	c := catalog.New(o.objs)
	for _, e := range drop {
		if err := c.Delete(ctx, db, e.ImageTimestamp); err != nil {
			return fmt.Errorf("prune %s: %w", db, err)
		}
		fmt.Fprintf(o.out, "deleted %s and its %s\n", e.Name(), files(e))
	}
	return nil
}
