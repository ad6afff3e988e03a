package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/state"
)

func newPlanRestoreCmd(a *app) *cobra.Command {
	var (
		asJSON bool
		at     string
	)
	cmd := &cobra.Command{
		Use:   "plan-restore <db>",
		Short: "The images, Db2 commands and notes of a restore to the latest point or to -at",
		Long: `plan-restore chooses the newest complete restore chain (ended at or before -at, when given)
whose key versions keyguard has not recorded as destroyed, and prints its images in restore
order, the RESTORE ... INCREMENTAL AUTOMATIC and ROLLFORWARD commands, and notes (images
skipped, and why).

-at takes an RFC 3339 time (2026-11-25T10:00:00Z, 2026-11-25T11:00:00+01:00), a UTC time
without zone (2026-11-25 10:00, 2026-11-25T10:00:00), or a date (2026-11-25: the start of that
day, UTC).`,
		Example: "  keyguard plan-restore proddb\n  keyguard plan-restore proddb -at 2026-11-25\n  keyguard plan-restore proddb -at '2026-11-25 10:30' -json",
		Args:    args(1, 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pit time.Time
			if at != "" {
				t, err := parseAt(at)
				if err != nil {
					return usagef("%s: -at %q: %v", cmd.CommandPath(), at, err)
				}
				pit = t
			}
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.planRestore(cmd.Context(), args[0], pit, asJSON)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&at, "at", "", "restore to this point in time (RFC 3339, 'yyyy-mm-dd hh:mm' UTC, or a date); default: the latest")
	return cmd
}

// atLayouts are the accepted forms of -at besides RFC 3339, read as UTC.
var atLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// parseAt reads a point in time: RFC 3339, or one of atLayouts in UTC (a date is its start).
func parseAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range atLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want an RFC 3339 time (2026-11-25T10:00:00Z), a UTC time (2026-11-25 10:00) or a date (2026-11-25)")
}

// planRestore prints catalog.PlanRestore's plan. Key availability comes from the state: a key
// keyguard recorded as destroyed makes every image under it unavailable; key versions are not
// checked against Key Protect (the operator command has no Key Protect client), and a note says so.
func (o *ops) planRestore(ctx context.Context, db string, pit time.Time, asJSON bool) error {
	list, err := o.entries(ctx, db)
	if err != nil {
		return err
	}
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, db)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	available := func(crn, _ string) bool {
		return st == nil || crn != st.Key.CRN || st.Key.State != events.KeyDestroyed
	}
	p, err := catalog.PlanRestore(list, pit, available)
	if err != nil {
		return err
	}
	p.Notes = append(p.Notes, "key versions were not checked against Key Protect, only the key state keyguard recorded")
	if st != nil && st.Key.Blocked && st.Key.State != events.KeyDestroyed {
		p.Notes = append(p.Notes, fmt.Sprintf("the key is %s: make it active again before restoring", orText(string(st.Key.State), "not usable")))
	}
	if asJSON {
		return o.json(p)
	}
	fmt.Fprintf(o.out, "restore %s from image %s, roll forward %s\n\nimages, in restore order:\n", db, p.Target, p.RollForward)
	tw := o.table()
	for i, e := range p.Images {
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\tended %s\tkey version %s\t%s\n", i+1, e.ImageTimestamp, e.Type, e.Mode, utc(e.EndedAt),
			short(e.KeyVersion), imageKeys(e))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "\nDb2 commands, once the images are where Db2 can read them (keyguard backup fetch %s %s -chain):\n", db, p.Target)
	for _, c := range p.Commands {
		fmt.Fprintln(o.out, "  "+c)
	}
	fmt.Fprintln(o.out, "\nnotes:")
	for _, n := range p.Notes {
		fmt.Fprintln(o.out, "  - "+n)
	}
	return nil
}
