package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// restoreOptions are restore's flags.
type restoreOptions struct {
	at, into, target, probe string
	storage, tablespaces    []string
	replace, force, without bool
	wait, asJSON            bool
	timeout                 time.Duration
}

func newRestoreCmd(a *app) *cobra.Command {
	var ro restoreOptions
	cmd := &cobra.Command{
		Use:   "restore <db>",
		Short: "Restore a database (in place or into a new one, to the latest point or a time); -wait follows it",
		Long: `restore asks the restore job (restore.requested through Event Notifications) to restore a
self-managed database (executor db2cli) from its catalog, following Db2's procedure: every image
checked against its SHA-256, the keystore copy put in place for an encrypted database on an
instance without one, RESTORE ... INCREMENTAL AUTOMATIC with LOGTARGET, the roll-forward to the
end of logs or to -at, and RESTORE ... ABORT when it fails part way.

In place (without -into) the database is overwritten; connected applications make the restore
refuse unless -force, which disconnects them (QUIESCE DATABASE IMMEDIATE FORCE CONNECTIONS).
-into NEW restores into a new database (RESTORE ... INTO) and never replaces an existing one
unless -replace; -storage-path redirects its storage. -at takes a UTC time (RFC 3339 or a date)
and is refused, naming the restorable range, outside it. -without-roll-forward restores an
offline image as it is. -probe runs a query on the restored database. -tablespace NAME[,NAME]
restores only those table spaces, in place and online (the rest of the database stays in use),
from the newest table space or database image that holds them, then rolls them forward to the
end of the logs (ROLLFORWARD ... AND STOP TABLESPACE (...) ONLINE).

A partitioned database is restored partition by partition, the catalog partition first, then
rolled forward on all partitions. A roll-forward that needs an archived log missing from the
archive is refused before the database is touched, naming the missing file.

The restore is recorded in the catalog (who asked, when, which images, how long it took):
status <db> and backup list <db> show the history. With -wait the command shows the restore's
progress (taken by the restore job, images leased, done) and exits 0 when it succeeded, 1 when
it failed or was refused, with the reason and Db2's message code.`,
		Example: "  keyguard restore payroll -into PAYCHECK -at 2026-11-24T02:45:00Z -probe 'SELECT COUNT(*) FROM APP.ORDERS' -wait\n" +
			"  keyguard restore payroll -force -wait\n" +
			"  keyguard restore payroll -tablespace TS_ORDERS,TS_LINES -wait",
		Args: args(1, 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := events.RestoreRequested{Database: args[0], Target: ro.target, Into: ro.into, Replace: ro.replace, Force: ro.force,
				WithoutRollForward: ro.without, StoragePaths: ro.storage, Probe: ro.probe, Tablespaces: ro.tablespaces}
			if ro.at != "" {
				t, err := parseAt(ro.at)
				if err != nil {
					return usagef("%s: -at %q: %v", cmd.CommandPath(), ro.at, err)
				}
				req.PointInTime = t.UTC()
			}
			if ro.target != "" && !catalog.ValidTimestamp(ro.target) {
				return usagef("%s: -target %q: want an image timestamp (yyyymmddhhmmss)", cmd.CommandPath(), ro.target)
			}
			if ro.without && !req.PointInTime.IsZero() {
				return usagef("%s: -without-roll-forward and -at exclude each other", cmd.CommandPath())
			}
			if len(ro.tablespaces) > 0 && (ro.into != "" || ro.at != "" || ro.without) {
				return usagef("%s: -tablespace restores in place to the end of the logs: not with -into, -at or -without-roll-forward", cmd.CommandPath())
			}
			if ro.replace && ro.into == "" {
				return usagef("%s: -replace goes with -into (a restore in place always replaces the database)", cmd.CommandPath())
			}
			o, err := a.ops(needStore | needSender)
			if err != nil {
				return err
			}
			return o.restore(cmd.Context(), req, ro)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	f := cmd.Flags()
	f.StringVar(&ro.at, "at", "", "roll forward to this UTC time (RFC 3339, or 2006-01-02 15:04); default: the end of the logs")
	f.StringVar(&ro.into, "into", "", "restore into this new database (Db2 alias) instead of in place")
	f.StringVar(&ro.target, "target", "", "restore this image (timestamp), or the newest restorable one before it")
	f.BoolVar(&ro.replace, "replace", false, "with -into, overwrite a database of that name")
	f.BoolVar(&ro.force, "force", false, "in place, disconnect the connected applications")
	f.BoolVar(&ro.without, "without-roll-forward", false, "restore an offline image as it is (WITHOUT ROLLING FORWARD)")
	f.StringArrayVar(&ro.storage, "storage-path", nil, "with -into, a storage path of the new database (repeat; a redirected restore)")
	f.StringVar(&ro.probe, "probe", "", "an SQL query to run on the restored database")
	f.StringSliceVar(&ro.tablespaces, "tablespace", nil, "restore only these table spaces (NAME[,NAME]), in place and online")
	f.BoolVar(&ro.wait, "wait", false, "follow the restore to its end; exit 1 if it fails")
	f.DurationVar(&ro.timeout, "timeout", 0, "with -wait, give up after this long (default: the database's lease)")
	f.BoolVar(&ro.asJSON, "json", false, "with -wait, print the restore's record as JSON")
	return cmd
}

func (o *ops) restore(ctx context.Context, req events.RestoreRequested, ro restoreOptions) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	db, ok := fleet.Database(req.Database)
	if !ok {
		return unknownDatabase(req.Database)
	}
	if db.Executor != config.ExecDb2CLI {
		return fmt.Errorf("%w: %s is backed up by %s; the restore job restores %s databases (Db2 on Cloud restores through its console)", errRefused, db.Name, db.Executor, config.ExecDb2CLI)
	}
	// A backup or a drill in flight uses the database: say so before anything is sent.
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, db.Name)
	switch {
	case err == nil:
		if reason, held := policy.Hold(st); held && (st.Run != nil || st.Restore != nil) {
			return fmt.Errorf("%w: %s is busy: %s; restore when it has ended", errRefused, db.Name, reason)
		}
	case !errors.Is(err, state.ErrNotFound):
		return err
	}
	token := o.newID()
	req.RequestedBy = requester(o.user, token)
	req.ID = "op-" + token
	if err := o.sender.Send(ctx, "keyguard-cli-restore-"+token, req); err != nil {
		return fmt.Errorf("send restore request: %w", err)
	}
	where := "in place"
	if req.Into != "" {
		where = "into " + req.Into
	}
	to := "the end of the logs"
	if !req.PointInTime.IsZero() {
		to = utc(req.PointInTime)
	}
	fmt.Fprintf(o.out, "restore %s requested: %s %s, rolled forward to %s\n", req.ID, db.Name, where, to)
	if db.Runner == config.RunnerHost {
		fmt.Fprintf(o.out, "note: %s is served by a runner on its Db2 host; the restore job must run where Db2 is (run the restore function there)\n", db.Name)
	}
	if !ro.wait {
		_, err := fmt.Fprintf(o.out, "keyguard status %s shows it when it has ended; -wait follows it\n", db.Name)
		return err
	}
	timeout := ro.timeout
	if timeout == 0 {
		timeout = db.Lease
	}
	return o.followRestore(ctx, db.Name, req.ID, timeout, ro.asJSON)
}

// followRestore shows a restore's progress from what it leaves in the store (the restore job's
// mark when it takes the request, its lease on the images while it works) until its record is
// in the catalog.
func (o *ops) followRestore(ctx context.Context, db, id string, timeout time.Duration, asJSON bool) error {
	cat := catalog.New(o.objs)
	start := o.now()
	deadline := start.Add(timeout)
	taken, leased := false, false
	progress := o.out // progress lines; none with -json, whose output is the outcome alone
	if asJSON {
		progress = io.Discard
	}
	for {
		rec, err := cat.GetRestore(ctx, db, id)
		switch {
		case err == nil:
			if !taken { // it ended before a poll saw it taken
				fmt.Fprintf(progress, "%s  the restore job took the request\n", span(o.now().Sub(start)))
			}
			return o.restoreOutcome(rec, asJSON)
		case !errors.Is(err, catalog.ErrNotFound):
			return err
		}
		if !taken {
			if _, _, err := o.objs.Get(ctx, "restores/"+db+"/"+id+".json"); err == nil {
				taken = true
				fmt.Fprintf(progress, "%s  the restore job took the request\n", span(o.now().Sub(start)))
			} else if !errors.Is(err, objstore.ErrNotFound) {
				return err
			}
		}
		if !leased {
			if body, _, err := o.objs.Get(ctx, catalog.LeaseKey(db, id)); err == nil {
				leased = true
				if l, err := catalog.DecodeLease(body); err == nil {
					fmt.Fprintf(progress, "%s  images leased for the restore: %v; downloading, checking, restoring\n", span(o.now().Sub(start)), l.Images)
				}
			} else if !errors.Is(err, objstore.ErrNotFound) {
				return err
			}
		}
		if !o.now().Before(deadline) {
			return fmt.Errorf("gave up waiting after %s: restore %s of %s has not ended (keyguard status %s shows it when it has)", timeout, id, db, db)
		}
		if err := o.sleep(ctx, o.pollEvery); err != nil {
			return err
		}
	}
}

// restoreOutcome prints a restore's record; a failed restore is the command's error.
func (o *ops) restoreOutcome(rec catalog.RestoreRecord, asJSON bool) error {
	if asJSON {
		if err := o.json(rec); err != nil {
			return err
		}
	} else {
		tw := o.table()
		row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
		row("restore", rec.ID)
		if rec.Into != "" {
			row("database", rec.Database+", into "+rec.Into)
		} else {
			row("database", rec.Database+", in place")
		}
		row("images", fmt.Sprint(rec.Images))
		row("measured", fmt.Sprintf("%.3fs", rec.Seconds))
		if rec.ProbeResult != "" {
			row("probe", rec.ProbeResult)
		}
		row("outcome", map[bool]string{true: "restored", false: "FAILED"}[rec.Success])
		row("message", rec.Message)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !rec.Success {
		code := rec.Code
		if code == "" {
			code = string(rec.Class)
		}
		return fmt.Errorf("restore %s of %s failed (%s)", rec.ID, rec.Database, code)
	}
	return nil
}
