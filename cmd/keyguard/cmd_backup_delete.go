package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/state"
)

func newBackupDeleteCmd(a *app) *cobra.Command {
	var confirm, force bool
	cmd := &cobra.Command{
		Use:   "delete <db> <image>",
		Short: "Delete one backup and its files (a dry run unless -confirm)",
		Long: `backup delete checks that the image may go and says what would be deleted: its catalog entry
and the files keyguard stored for it (external locations, such as a Db2 on Cloud backup, are
left alone). Nothing is deleted without -confirm.

It refuses (exit 1) when another backup's restore chain needs the image (delete those first,
newest first), when a run is in flight and the image is on the newest chain, when a running
restore holds it, or when it is a full and fewer than the policy's keep_fulls fulls would
remain; -force allows going below keep_fulls, never below one full and never breaking a chain.`,
		Example: "  keyguard backup delete proddb 20261109010000\n  keyguard backup delete proddb 20261109010000 -confirm",
		Args: func(cmd *cobra.Command, a []string) error {
			if err := args(2, 2, 1)(cmd, a); err != nil {
				return err
			}
			return imageArg(cmd, a[1], false)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.backupDelete(cmd.Context(), args[0], args[1], force, confirm)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "delete (without it, only say what would be deleted)")
	cmd.Flags().BoolVar(&force, "force", false, "allow going below the retention policy's keep_fulls (never below one full, never breaking a chain)")
	return cmd
}

// backupDelete deletes one backup and its image files (or, without confirm, says what it would
// delete), refusing (errRefused) when:
//   - another entry's restore chain needs it (always, -force or not): delete those first;
//   - a run is in flight and the image is on the newest restore chain, which the run may build on;
//   - a running restore uses it (a live lease under leases/<db>/, catalog.InUse);
//   - it is a database full and fewer than the policy's keep_fulls fulls would remain; -force
//     allows this down to one full, never to none (the last restorable chain is never deleted).
func (o *ops) backupDelete(ctx context.Context, db, ts string, force, confirm bool) error {
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
	list := l.Entries
	e, ok := find(list, ts)
	if !ok {
		return fmt.Errorf("backup %s of %s: %w (keyguard backup list %s shows the images)", ts, db, catalog.ErrNotFound, db)
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: not deleting %s of %s: %s", errRefused, e.Name(), db, fmt.Sprintf(format, args...))
	}
	if len(l.Skipped) > 0 {
		return refuse("the catalog holds objects this keyguard cannot read, whose chains may need it: %s", skippedKeys(l.Skipped))
	}
	if deps := catalog.Dependents(list, ts); len(deps) > 0 {
		return refuse("%s build%s on it (delete %s first, newest first; -force never breaks a chain)",
			strings.Join(deps, ", "), verbS(len(deps)), pronoun(len(deps)))
	}
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, db)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if st != nil && st.Run != nil && catalog.OnNewestChain(list, ts) {
		return refuse("run %s is in flight and may build on the newest restore chain, which this image is part of", st.Run.ID)
	}
	if inUse, err := catalog.New(o.objs).InUse(ctx, db, o.now()); err != nil {
		return err
	} else if inUse[ts] {
		return refuse("a running restore uses it (its lease is under %s; -force never deletes it)", catalog.LeasePrefix(db))
	}
	fulls := ""
	if e.Scope == catalog.ScopeDatabase && e.Type == events.Full && !e.IsDiscarded() {
		keep := max(pol.Retention.KeepFulls, catalog.MinKeepFulls)
		left := countFulls(list) - 1
		switch {
		case left < 1:
			return refuse("it is the last full backup, the only restorable chain (-force never deletes it)")
		case left < keep && !force:
			return refuse("%d full backup%s would remain and the retention policy keeps %d (keep_fulls); -force allows it", left, plural(left), keep)
		}
		fulls = fmt.Sprintf("; %d full backup%s remain", left, plural(left))
	}
	if !confirm {
		fmt.Fprintf(o.out, "would delete %s of %s (no other backup builds on it, no running restore uses it%s):\n", e.Name(), db, fulls)
		fmt.Fprintf(o.out, "  %s\n", catalog.Key(db, e.ImageTimestamp, e.Type))
		fs, ext := stored(e)
		for _, f := range fs {
			fmt.Fprintf(o.out, "  %s (%s)\n", f.Key, size(f.Size))
		}
		if ext > 0 {
			fmt.Fprintf(o.out, "  (%d external location%s left alone)\n", ext, plural(ext))
		}
		_, err := fmt.Fprintln(o.out, "dry run: nothing deleted; add -confirm to delete it")
		return err
	}
	if err := catalog.New(o.objs).Delete(ctx, db, ts); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.out, "deleted %s of %s and its %s\n", e.Name(), db, files(e))
	return err
}

func skippedKeys(s []catalog.Skipped) string {
	keys := make([]string, len(s))
	for i, k := range s {
		keys[i] = k.Key
	}
	return strings.Join(keys, ", ")
}

func countFulls(list []catalog.Entry) int {
	n := 0
	for _, e := range list {
		if e.Scope == catalog.ScopeDatabase && e.Type == events.Full && !e.IsDiscarded() {
			n++
		}
	}
	return n
}
