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
// scheduler's /events route. A request runs now, under the same holds as a schedule slot: while a
// rotation window is open, a run is in flight or the key is not active it is refused with the
// reason (422) and changes nothing. The same request delivered twice starts one run.
type Requests struct{ *Scheduler }

// Handle starts the requested backup or says why not.
func (r Requests) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeBackupRequested {
		return edge.Result{}, edge.Reject("the scheduler's events route takes %s, not %q", events.TypeBackupRequested, e.Type)
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
	var started *state.Run
	_, err = state.Update(ctx, r.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) }, func(st *state.State) error {
		refused, started = "", nil
		if st.HasSeen(digest) {
			return state.ErrNoChange
		}
		switch {
		case st.Key.Blocked:
			refused = fmt.Sprintf("%s (%s)", policy.ReasonKeyNotActive, st.Key.State)
		case st.Window != nil:
			refused = policy.ReasonRotationWindow
		case st.Run != nil:
			refused = fmt.Sprintf("%s (%s)", policy.ReasonRunInFlight, st.Run.ID)
		}
		if refused != "" {
			return state.ErrNoChange
		}
		st.MarkSeen(digest)
		typ, mode := req.Type, req.Mode
		if mode == "" {
			mode = db.Mode
		}
		if typ != events.Full && (st.NeedFull || st.LastSuccess == nil) {
			typ = events.Full
		}
		run := state.Run{ID: policy.RunID(db.Name, typ, now, 1) + "-req", Type: typ, Mode: mode, Slot: now, Attempt: 1,
			StartedAt: now, LeaseUntil: now.Add(db.Lease), KeyVersion: st.Key.Version}
		st.Run = &run
		started = &run
		st.LastDecision = &state.Decision{At: now, Action: string(policy.Start), Type: typ, Reason: "requested by " + req.RequestedBy}
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
	ev := events.BackupStarted{Database: db.Name, RunID: started.ID, Type: started.Type, Mode: started.Mode, Slot: started.Slot,
		StartedAt: started.StartedAt, LeaseUntil: started.LeaseUntil, KeyCRN: db.KeyCRN, KeyVersion: started.KeyVersion, Executor: db.Executor}
	exec, ok := r.Execs[db.ExecutorKey()]
	if !ok {
		return edge.Result{}, r.startFailed(ctx, db, *started, fmt.Errorf("no executor %q in this deployment", db.ExecutorKey()))
	}
	if err := exec.Start(ctx, ev); err != nil {
		return edge.Result{}, r.startFailed(ctx, db, *started, err)
	}
	if err := r.Send.Send(ctx, started.ID+"/started", ev); err != nil {
		r.log().Warn("send event", "db", db.Name, "type", ev.EventType(), "err", err)
	}
	return edge.Result{Outcome: "started", Detail: fmt.Sprintf("%s: %s %s backup %s", db.Name, started.Mode, started.Type, started.ID)}, nil
}
