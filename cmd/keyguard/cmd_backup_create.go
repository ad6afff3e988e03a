package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

func newBackupCreateCmd(a *app) *cobra.Command {
	var (
		typ, mode, reason string
		wait              bool
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create <db>",
		Short: "Ask the scheduler for a backup now; -wait follows it to its outcome",
		Long: `backup create sends a backup request through Event Notifications to the scheduler, which
starts the backup at once unless a hold applies (the key is not active, a rotation window is
open, a run is in flight): then it refuses, and records the refusal with its reason in the
database's state (status shows it as the last refused request). The request names who asked (keyguard-cli:$USER and a request id)
and -reason says why; both are kept with the run and its outcome, and status shows them.

With -wait the command follows the request: it prints the run the scheduler started and waits
for its outcome (the run record in the catalog, or the state), and exits 0 when the backup
completed, 1 when it failed or was refused, with the reason.`,
		Example: "  keyguard backup create proddb -reason 'before the upgrade' -wait\n" +
			"  keyguard backup create proddb -type incremental",
		Args: args(1, 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := events.BackupRequested{Database: args[0], Type: events.BackupType(typ), Mode: events.Mode(mode), Reason: reason}
			if !req.Type.Valid() {
				return usagef("%s: -type %q: want full, incremental or delta", cmd.CommandPath(), typ)
			}
			if req.Mode != "" && !req.Mode.Valid() {
				return usagef("%s: -mode %q: want online or offline", cmd.CommandPath(), mode)
			}
			if timeout < 0 {
				return usagef("%s: -timeout must not be negative", cmd.CommandPath())
			}
			o, err := a.ops(needStore | needSender)
			if err != nil {
				return err
			}
			return o.backupCreate(cmd.Context(), req, wait, timeout)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "full", "backup type: full, incremental or delta")
	f.StringVar(&mode, "mode", "", "online or offline (default: the database's mode)")
	f.StringVar(&reason, "reason", "", "why, for the record (kept with the run and shown by status)")
	f.BoolVar(&wait, "wait", false, "follow the request to its outcome; exit 1 if it fails or is refused")
	f.DurationVar(&timeout, "timeout", 0, "with -wait, give up after this long (default: the database's lease plus 15m)")
	return cmd
}

// requester is RequestedBy of a request from this command: who asks, and the request's own id,
// so that its run and its refusal are recognisable among others by the same user.
func requester(user, token string) string {
	return fmt.Sprintf("keyguard-cli:%s (request %s)", user, token[:min(len(token), 8)])
}

func (o *ops) backupCreate(ctx context.Context, req events.BackupRequested, wait bool, timeout time.Duration) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	pol, ok := fleet.Database(req.Database)
	if !ok {
		return fmt.Errorf("database %s is not in the fleet policy: the scheduler would refuse the request", req.Database)
	}
	// Say now what the scheduler will refuse (it refuses asynchronously); the request is sent
	// anyway, as the state may change before it arrives.
	var warn string
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, req.Database)
	switch {
	case err == nil:
		warn, _ = policy.Hold(st)
	case !errors.Is(err, state.ErrNotFound):
		return err
	}
	token := o.newID()
	req.RequestedBy = requester(o.user, token)
	id := "keyguard-cli-" + token
	if err := o.sender.Send(ctx, id, req); err != nil {
		return fmt.Errorf("send backup request: %w", err)
	}
	fmt.Fprintf(o.out, "backup request %s sent: %s backup of %s", id, req.Type, req.Database)
	if req.Mode != "" {
		fmt.Fprintf(o.out, " (%s)", req.Mode)
	}
	fmt.Fprintln(o.out)
	if warn != "" {
		fmt.Fprintf(o.out, "warning: the scheduler will refuse it unless this changes first: %s\n", warn)
	}
	if !wait {
		_, err = fmt.Fprintf(o.out, "keyguard status %s shows the outcome (the run in flight, or the refusal as the last decision); -wait follows it\n", req.Database)
		return err
	}
	if timeout == 0 {
		timeout = pol.Lease + 15*time.Minute
	}
	return o.follow(ctx, pol, req.RequestedBy, timeout)
}

// follow waits for the outcome of the request by `by`: its refusal (the last refusal the state
// records), or the run it started (the run in flight, then its run record in the catalog or its
// outcome in the state).
func (o *ops) follow(ctx context.Context, db config.Database, by string, timeout time.Duration) error {
	states, cat := state.NewObjectStore(o.objs), catalog.New(o.objs)
	deadline := o.now().Add(timeout)
	fmt.Fprintf(o.out, "waiting for the scheduler (at most %s)\n", timeout)
	var runID string
	for {
		st, _, err := states.Get(ctx, db.Name)
		switch {
		case errors.Is(err, state.ErrNotFound):
		case err != nil:
			return err
		default:
			if hold, ok := policy.RefusedRequest(st, by); ok {
				return fmt.Errorf("%w: the scheduler did not start the backup of %s: %s", errRefused, db.Name, hold)
			}
			if runID == "" {
				runID = o.started(st, by)
			}
			if runID != "" {
				done, err := o.outcome(ctx, cat, st, db, runID)
				if done || err != nil {
					return err
				}
			}
		}
		if !o.now().Before(deadline) {
			what := "the scheduler has not answered the request"
			if runID != "" {
				what = "run " + runID + " is still in flight"
			}
			return fmt.Errorf("gave up waiting after %s: %s (keyguard status %s shows where it is)", timeout, what, db.Name)
		}
		if err := o.sleep(ctx, o.pollEvery); err != nil {
			return err
		}
	}
}

// started finds the run the request by `by` started, prints it and returns its id ("" when none
// shows yet).
func (o *ops) started(st *state.State, by string) string {
	var r *state.Run
	switch {
	case st.Run != nil && st.Run.RequestedBy == by:
		r = st.Run
	case st.LastSuccess != nil && st.LastSuccess.RequestedBy == by:
		fmt.Fprintf(o.out, "started run %s (%s)\n", st.LastSuccess.RunID, st.LastSuccess.Type)
		return st.LastSuccess.RunID
	case st.LastFailure != nil && st.LastFailure.RequestedBy == by:
		fmt.Fprintf(o.out, "started run %s (%s)\n", st.LastFailure.RunID, st.LastFailure.Type)
		return st.LastFailure.RunID
	default:
		return ""
	}
	line := fmt.Sprintf("started run %s: %s %s backup at %s", r.ID, r.Type, r.Mode, utc(r.StartedAt))
	if d := st.LastDecision; d != nil && d.Action == string(policy.Start) && strings.Contains(d.Reason, "taken as full") {
		line += " (" + d.Reason[strings.Index(d.Reason, "taken as full"):] + ")"
	}
	fmt.Fprintln(o.out, line)
	return r.ID
}

// outcome reports runID's outcome when it is known: its run record first (written before the
// outcome is announced), else what the state recorded (a lease that expired, a start that
// failed).
func (o *ops) outcome(ctx context.Context, cat *catalog.Catalog, st *state.State, db config.Database, runID string) (done bool, err error) {
	rec, err := cat.GetRun(ctx, db.Name, runID)
	switch {
	case err == nil && rec.Completed != nil:
		c := rec.Completed
		line := fmt.Sprintf("completed: %s %s backup %s of %s, %s, key version %s", c.Mode, c.Type, c.ImageTimestamp, db.Name, size(c.SizeBytes), short(c.KeyVersion))
		if c.Verified {
			line += ", verified"
		}
		fmt.Fprintln(o.out, line)
		if c.Note != "" {
			fmt.Fprintln(o.out, "note:", c.Note)
		}
		return true, nil
	case err == nil:
		f := rec.Failed
		msg := strings.TrimSpace(f.Code + " " + f.Message)
		return true, fmt.Errorf("backup %s of %s failed (%s): %s%s", runID, db.Name, f.Class, msg, retryNote(st))
	case !errors.Is(err, catalog.ErrNotFound):
		return false, err
	}
	if r := st.LastFailure; r != nil && r.RunID == runID {
		return true, fmt.Errorf("backup %s of %s failed (%s): %s%s", runID, db.Name, r.Class, r.Message, retryNote(st))
	}
	if r := st.LastSuccess; r != nil && r.RunID == runID {
		fmt.Fprintf(o.out, "completed: %s backup %s of %s, key version %s\n", r.Type, r.Image, db.Name, short(r.KeyVersion))
		return true, nil
	}
	return false, nil
}

func retryNote(st *state.State) string {
	if r := st.NextRetry; r != nil {
		return fmt.Sprintf("; the scheduler retries (%s, attempt %d) at %s", r.Type, r.Attempt, utc(r.At))
	}
	return ""
}
