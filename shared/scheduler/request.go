package scheduler

import (
	"context"
	"fmt"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Requests handles backup.requested (on-demand backups: an operator, or a restore drill) on the
// scheduler's /events route. A request runs now, under the same holds as a schedule slot
// (policy.Hold): while one applies it is refused with the reason (422); the refusal is recorded
// as the database's last decision and last refusal (policy.Refused), so the operator who asked
// can see it, and nothing else changes. The same request delivered twice starts one run.
type Requests struct{ *Scheduler }

// Handle starts the requested backup or says why not; a tick.shard event on this route is
// handed to the tick handler.
func (r Requests) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type == events.TypeTickShard {
		return r.Scheduler.Handle(ctx, e)
	}
	if e.Type != events.TypeBackupRequested {
		return edge.Result{}, edge.Reject("the scheduler's events route takes %s and %s, not %q", events.TypeBackupRequested, events.TypeTickShard, e.Type)
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil {
		return edge.Result{}, err
	}
	req := *p.(*events.BackupRequested)
	db, err := config.Lookup(ctx, r.Fleet, req.Database)
	if err != nil {
		return edge.Result{}, err
	}
	now := clock.Or(r.Clock).Now()
	digest := e.Digest()
	var refused string
	var started, expired *state.Run
	_, err = state.Update(ctx, r.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) }, func(st *state.State) error {
		refused, started, expired = "", nil, st.LastExpired
		if st.HasSeen(digest) {
			return state.ErrNoChange
		}
		started, refused = policy.Request(st, db, req, now)
		if refused == "" {
			st.MarkSeen(digest)
			return nil
		}
		// The refusal is recorded (once), so that the operator who asked sees why.
		if !policy.Refused(st, req, refused, now) {
			return state.ErrNoChange
		}
		return nil
	})
	if err != nil {
		return edge.Result{}, fmt.Errorf("update state of %s: %w", db.Name, err)
	}
	if refused != "" {
		return edge.Result{}, edge.Reject("backup of %s not started: %s", db.Name, refused)
	}
	if started == nil {
		return edge.Result{Outcome: "duplicate", Detail: "request already handled"}, nil
	}
	if expired != nil && now.Before(expired.StartedAt.Add(policy.MaxRunTime)) {
		r.cancel(ctx, db, *expired) // as a scheduled start does (policy.Tick): in case its cancel was lost
	}
	if err := r.start(ctx, db, *started); err != nil {
		return edge.Result{}, err
	}
	return edge.Result{Outcome: "started", Detail: fmt.Sprintf("%s: %s %s backup %s", db.Name, started.Mode, started.Type, started.ID)}, nil
}
