package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

func newStatusCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [db...]",
		Short: "The fleet at a glance, or the state of some databases in full",
		Long: `status prints one line per database of the fleet policy (and per database keyguard has a
state for): the last good backup and its age, the next schedule slot, the key version, an open
rotation window, the run in flight, consecutive failures and the scheduler's last decision.

status <db>... prints each database's state in full: key, rotation window, run in flight (and
who requested it, and why), last success and failure, retry plan, and the last decision with its
reason (a refused on-demand request shows there).`,
		Example: "  keyguard status\n  keyguard status proddb\n  keyguard status -json",
		Args:    args(0, -1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.status(cmd.Context(), args, asJSON)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// dbStatus is the -json form of one database's status: the state's operator-facing fields.
type dbStatus struct {
	Database            string                `json:"database"`
	InFleet             bool                  `json:"in_fleet"`
	HasState            bool                  `json:"has_state"`
	Revision            int64                 `json:"revision,omitempty"`
	Key                 *state.KeyInfo        `json:"key,omitempty"`
	Window              *state.RotationWindow `json:"rotation_window,omitempty"`
	Run                 *state.Run            `json:"run,omitempty"`
	LastSuccess         *state.Outcome        `json:"last_success,omitempty"`
	LastFailure         *state.Outcome        `json:"last_failure,omitempty"`
	ConsecutiveFailures int                   `json:"consecutive_failures"`
	NextRetry           *state.Retry          `json:"next_retry,omitempty"`
	NextSlot            *slot                 `json:"next_slot,omitempty"`
	NeedFull            bool                  `json:"need_full"`
	NeedFullReason      string                `json:"need_full_reason,omitempty"`
	LastDecision        *state.Decision       `json:"last_decision,omitempty"`
	LastRefusal         *state.Decision       `json:"last_refusal,omitempty"`
	PendingAlerts       int                   `json:"pending_alerts"`
	// Restore is a drill in flight, LastDrill how the last one ended; Restores the newest
	// restores recorded in the catalog (status <db> only).
	Restore   *state.RestoreRun       `json:"restore,omitempty"`
	LastDrill *state.DrillOutcome     `json:"last_drill,omitempty"`
	Restores  []catalog.RestoreRecord `json:"restores,omitempty"`
}

// shownRestores is how many of the newest restores status <db> shows.
const shownRestores = 5

// slot is a schedule slot: when, and the backup type it takes.
type slot struct {
	Type events.BackupType `json:"type"`
	At   time.Time         `json:"at"`
}

// status prints the fleet table (no dbs) or the state of each named database in full.
func (o *ops) status(ctx context.Context, dbs []string, asJSON bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	states := state.NewObjectStore(o.objs)
	names := dbs
	if len(names) == 0 {
		if names, err = states.Databases(ctx); err != nil {
			return err
		}
		for _, d := range fleet.Databases {
			names = append(names, d.Name)
		}
		slices.Sort(names)
		names = slices.Compact(names)
	}
	now := o.now()
	out := make([]dbStatus, 0, len(names))
	for _, db := range names {
		pol, inFleet := fleet.Database(db)
		s := dbStatus{Database: db, InFleet: inFleet}
		if inFleet {
			if t, at, ok := policy.NextSlot(pol, now); ok {
				s.NextSlot = &slot{Type: t, At: at}
			}
		}
		st, _, err := states.Get(ctx, db)
		switch {
		case errors.Is(err, state.ErrNotFound) && !inFleet:
			return unknownDatabase(db)
		case errors.Is(err, state.ErrNotFound):
			out = append(out, s)
			continue
		case err != nil:
			return err
		}
		s.HasState, s.Revision, s.Key, s.Window, s.Run = true, st.Revision, &st.Key, st.Window, st.Run
		s.LastSuccess, s.LastFailure, s.ConsecutiveFailures, s.NextRetry = st.LastSuccess, st.LastFailure, st.ConsecutiveFailures, st.NextRetry
		s.NeedFull, s.NeedFullReason, s.LastDecision, s.PendingAlerts = st.NeedFull, st.NeedFullReason, st.LastDecision, len(st.PendingAlerts)
		s.LastRefusal, s.Restore, s.LastDrill = st.LastRefusal, st.Restore, st.LastDrill
		if len(dbs) > 0 {
			recs, err := catalog.New(o.objs).ListRestores(ctx, db)
			if err != nil {
				return err
			}
			s.Restores = recs[max(0, len(recs)-shownRestores):]
		}
		out = append(out, s)
	}
	switch {
	case asJSON:
		return o.json(out)
	case len(out) == 0:
		_, err := fmt.Fprintf(o.out, "no databases: the fleet policy names none and keyguard has no state\n")
		return err
	case len(dbs) == 0:
		return o.fleetTable(out, now)
	}
	tw := o.table()
	for i, s := range out {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		printStatus(tw, s, now)
	}
	return tw.Flush()
}

// unknownDatabase is the error of every command given a database keyguard knows nothing of.
func unknownDatabase(db string) error {
	return fmt.Errorf("database %s: not in the fleet policy and keyguard has no record of it (keyguard status lists the databases)", db)
}

// known checks that db is in the fleet policy or has a state or catalog entries.
func (o *ops) known(ctx context.Context, fleet *config.Fleet, db string, entries int) error {
	if _, ok := fleet.Database(db); ok || entries > 0 {
		return nil
	}
	_, _, err := state.NewObjectStore(o.objs).Get(ctx, db)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrNotFound):
		return unknownDatabase(db)
	}
	return err
}

// fleetTable prints one line per database.
func (o *ops) fleetTable(out []dbStatus, now time.Time) error {
	tw := o.table()
	fmt.Fprintln(tw, "DATABASE\tLAST GOOD BACKUP\tAGE\tNEXT SLOT\tKEY VERSION\tWINDOW\tRUN\tFAILURES\tLAST DECISION")
	for _, s := range out {
		name := s.Database
		if !s.InFleet {
			name += " (not in fleet)"
		}
		next := "-"
		if n := s.NextSlot; n != nil {
			next = minute(n.At) + " " + string(n.Type)
		}
		if !s.HasState {
			fmt.Fprintf(tw, "%s\tnever\t-\t%s\t-\t-\t-\t0\tno state yet (first tick pending)\n", name, next)
			continue
		}
		good, age := "never", "-"
		if r := s.LastSuccess; r != nil {
			good, age = minute(r.At)+" "+string(r.Type), span(max(now.Sub(r.At), 0))
		}
		key := short(s.Key.Version)
		switch {
		case s.Key.Blocked:
			key += " BLOCKED (" + orText(string(s.Key.State), "not usable") + ")"
		case s.Key.State != "" && s.Key.State != events.KeyActive:
			key += " (" + string(s.Key.State) + ")"
		}
		window := "-"
		if w := s.Window; w != nil {
			window = "open until " + minute(w.MaxCloseAt)
		}
		run := "-"
		if r := s.Run; r != nil {
			run = fmt.Sprintf("%s (%s)", r.Type, span(max(now.Sub(r.StartedAt), 0)))
		}
		decision := "-"
		if d := s.LastDecision; d != nil {
			decision = cut(decisionText(d), 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, good, age, next, key, window, run, s.ConsecutiveFailures, decision)
	}
	return tw.Flush()
}

func decisionText(d *state.Decision) string {
	v := d.Action
	if d.Type != "" {
		v += " " + string(d.Type)
	}
	return v + ": " + d.Reason
}

// requested says who asked for a run and why, or "" for a scheduled run.
func requested(by, reason string) string {
	if by == "" {
		return ""
	}
	s := ", requested by " + by
	if reason != "" {
		s += ": " + reason
	}
	return s
}

func printStatus(w io.Writer, s dbStatus, now time.Time) {
	head := s.Database
	if !s.InFleet {
		head += " (not in the fleet policy)"
	}
	fmt.Fprintln(w, head)
	row := func(k, v string) { fmt.Fprintf(w, "  %s\t%s\n", k, v) }
	if !s.HasState {
		fmt.Fprintln(w, "  no state yet (the scheduler writes it on its first tick)")
		if n := s.NextSlot; n != nil {
			row("next slot", fmt.Sprintf("%s %s (%s)", utc(n.At), n.Type, until(n.At, now)))
		}
		return
	}
	key := fmt.Sprintf("%s version %s, %s", short(keyID(s.Key.CRN)), short(s.Key.Version), orText(string(s.Key.State), "state unknown"))
	if s.Key.Blocked {
		key += ", BACKUPS BLOCKED"
	}
	row("key", key)
	if w := s.Window; w != nil {
		row("rotation window", fmt.Sprintf("open since %s, to version %s, until %s (not before %s)",
			utc(w.OpenedAt), short(w.ToVersion), utc(w.MaxCloseAt), utc(w.MinCloseAt)))
	} else {
		row("rotation window", "none")
	}
	if r := s.Run; r != nil {
		v := fmt.Sprintf("%s: %s %s, attempt %d, since %s, lease until %s", r.ID, r.Type, r.Mode, r.Attempt, utc(r.StartedAt), utc(r.LeaseUntil))
		if r.Suspect {
			v += ", SUSPECT (a rotation began during the run)"
		}
		row("run in flight", v+requested(r.RequestedBy, r.Reason))
	} else {
		row("run in flight", "none")
	}
	if r := s.LastSuccess; r != nil {
		row("last success", fmt.Sprintf("%s %s %s (%s), key version %s%s", utc(r.At), r.Type, r.RunID, ago(r.At, now), short(r.KeyVersion),
			requested(r.RequestedBy, r.Reason)))
	} else {
		row("last success", "never")
	}
	if r := s.LastFailure; r != nil {
		v := fmt.Sprintf("%s %s %s", utc(r.At), r.Type, r.RunID)
		if r.Class != "" {
			v += ", " + string(r.Class)
		}
		if r.Message != "" {
			v += ": " + r.Message
		}
		row("last failure", v+requested(r.RequestedBy, r.Reason))
	} else {
		row("last failure", "none")
	}
	row("consecutive failures", fmt.Sprint(s.ConsecutiveFailures))
	if r := s.NextRetry; r != nil {
		row("next retry", fmt.Sprintf("%s %s, attempt %d", utc(r.At), r.Type, r.Attempt))
	} else {
		row("next retry", "none")
	}
	if n := s.NextSlot; n != nil {
		row("next slot", fmt.Sprintf("%s %s (%s)", utc(n.At), n.Type, until(n.At, now)))
	}
	switch {
	case s.NeedFull && s.NeedFullReason != "":
		row("next backup", "full: "+s.NeedFullReason)
	case s.NeedFull:
		row("next backup", "full")
	default:
		row("next backup", "as scheduled")
	}
	if d := s.LastDecision; d != nil {
		row("last decision", utc(d.At)+" "+decisionText(d))
	} else {
		row("last decision", "none")
	}
	if d := s.LastRefusal; d != nil && (s.LastDecision == nil || *d != *s.LastDecision) {
		row("last refused request", utc(d.At)+" "+d.Reason)
	}
	row("pending alerts", fmt.Sprint(s.PendingAlerts))
	if r := s.Restore; r != nil {
		row("drill in flight", fmt.Sprintf("%s into %s since %s, lease until %s", r.ID, r.Target, utc(r.StartedAt), utc(r.LeaseUntil)))
	}
	if d := s.LastDrill; d != nil {
		v := fmt.Sprintf("%s %s (%s): restored in %.1fs", utc(d.At), d.ID, ago(d.At, now), d.Seconds)
		if !d.Success {
			v = fmt.Sprintf("%s %s (%s): FAILED (%s)", utc(d.At), d.ID, ago(d.At, now), d.Code)
		}
		row("last drill", v)
	}
	for i, r := range s.Restores {
		k := ""
		if i == 0 {
			k = "restores"
		}
		row(k, restoreLine(r))
	}
}

// restoreLine is one restore's history line: when it ended, its id, who asked, where to, the
// images, the measured time and the outcome.
func restoreLine(r catalog.RestoreRecord) string {
	where := "in place"
	if r.Into != "" {
		where = "into " + r.Into
	}
	if !r.PointInTime.IsZero() {
		where += " at " + utc(r.PointInTime)
	}
	outcome := fmt.Sprintf("restored in %.1fs", r.Seconds)
	if !r.Success {
		outcome = "FAILED (" + orText(r.Code, string(r.Class)) + ")"
	}
	return fmt.Sprintf("%s %s by %s, %s, %d image(s) to %s: %s", utc(r.EndedAt), r.ID, r.RequestedBy, where, len(r.Images), orDash(r.Target), outcome)
}

// completeDatabases completes database names from the fleet policy, when the environment
// reaches it; otherwise it offers nothing.
func completeDatabases(a *app) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 && cmd.Name() != "status" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		o, err := a.ops(needStore)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		f, err := o.fleet.Fleet(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, d := range f.Databases {
			names = append(names, d.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// newestUsable is the newest backup of list that is not discarded, for "latest".
func newestUsable(list []catalog.Entry) (catalog.Entry, bool) {
	for i := len(list) - 1; i >= 0; i-- {
		if !list[i].IsDiscarded() {
			return list[i], true
		}
	}
	return catalog.Entry{}, false
}
