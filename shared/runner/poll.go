package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// StateReader reads a database's state.
type StateReader interface {
	Get(ctx context.Context, db string) (*state.State, string, error)
}

// Poller is the runner as an agent on a self-managed Db2 host: every interval it reads the state
// of the db2cli databases it serves and runs, once, each run the scheduler put in flight, and,
// with Restores set, each restore drill in flight (state.Restore). A run is idempotent through
// the catalog (a run id already cataloged is only announced again) and a restore through its
// mark (restores/<db>/<id>.json), so a restarted agent or two polls back up or restore once.
type Poller struct {
	Runner    *Runner
	States    StateReader
	Databases []string // the databases this host serves; every db2cli database with runner: host when empty
	Interval  time.Duration
	// OnPoll, when set, is told of every pass Run makes (how many runs it ran, its error): the
	// agent records its polls there for the deployment preflight.
	OnPoll func(ctx context.Context, ran int, err error)
	// Restores runs the drills of the databases served (the restore job's logic on this host);
	// nil leaves them to their lease, which fails them.
	Restores edge.Handler

	done map[string]bool
}

// maxDone bounds the runs an agent remembers having run; forgetting one costs a catalog lookup
// (the run is recorded, so it is not run again).
const maxDone = 1024

// Poll makes one pass and returns how many runs it ran.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	fleet, err := p.Runner.Fleet.Fleet(ctx)
	if err != nil {
		return 0, fmt.Errorf("load fleet: %w", err)
	}
	if p.done == nil {
		p.done = map[string]bool{}
	}
	n := 0
	var errs []error
	for _, db := range fleet.Databases {
		if db.ExecutorKey() != config.ExecDb2CLI+"-"+config.RunnerHost || (len(p.Databases) > 0 && !slices.Contains(p.Databases, db.Name)) {
			continue
		}
		st, _, err := p.States.Get(ctx, db.Name)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", db.Name, err))
			continue
		}
		if rs := st.Restore; rs != nil && p.Restores != nil && !p.done[rs.ID] && !clock.Or(p.Runner.Clock).Now().After(rs.LeaseUntil) {
			if err := p.restore(ctx, db, *rs); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", rs.ID, err))
			} else {
				p.remember(rs.ID)
				n++
			}
		}
		r := st.Run
		if r == nil || p.done[r.ID] || clock.Or(p.Runner.Clock).Now().After(r.LeaseUntil) {
			continue
		}
		run := r.Event(db.Name)
		if run.KeyCRN == "" { // a run started before runs pinned their key
			run.KeyCRN, run.Executor = db.KeyCRN, db.Executor
		}
		e, err := events.Encode(r.ID+"/started", "keyguard/runner-poll", r.StartedAt, run)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := p.Runner.Handle(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.ID, err))
			continue // not marked done: the next pass tries to publish again
		}
		p.remember(r.ID)
		n++
	}
	return n, errors.Join(errs...)
}

func (p *Poller) remember(id string) {
	if len(p.done) >= maxDone { // a long-lived agent: forget old runs (each is recorded anyway)
		clear(p.done)
	}
	p.done[id] = true
}

// restore runs the drill rs of db on this host, as the restore job would (its mark makes a
// second delivery a no-op).
func (p *Poller) restore(ctx context.Context, db config.Database, rs state.RestoreRun) error {
	if db.Drill == nil {
		return fmt.Errorf("restore %s of %s: the fleet policy has no drill for it (the restore is left to its lease)", rs.ID, db.Name)
	}
	e, err := events.Encode(db.Name+"/restore/"+rs.ID, "keyguard/runner-poll", rs.StartedAt, policy.DrillRequest(db, rs))
	if err != nil {
		return err
	}
	_, err = p.Restores.Handle(ctx, e)
	return err
}

// Run polls every Interval until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		n, err := p.Poll(ctx)
		if err != nil {
			p.Runner.log().Warn("poll", "err", err)
		}
		if p.OnPoll != nil {
			p.OnPoll(ctx, n, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
