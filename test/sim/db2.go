package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
)

// Executor is the executor name the simulated fleet's databases name.
const Executor = "simulated"

// db2 is the executor of the simulated fleet: Code Engine job runs (a start that is idempotent
// by run id, may fail or answer ambiguously, and takes a while to schedule a container) of a
// runner that does what shared/runner does around the backup: it reads the catalog and Db2's
// history to decide what the image builds on (taking a full when Db2 would build on an image
// that is not a usable catalog entry of the run's key version), runs the backup (its outcome is
// the trace's), then records the outcome in the catalog (the entry, then the run record, or the
// discarded image), and publishes it. Each database's Db2 keeps its own history of images.
type db2 struct {
	s    *Sim
	cat  *catalog.Catalog
	send sender
	jobs map[string]*job
	live map[string][]*job // per database, the jobs that may not have ended
	hist map[string][]image
}

var (
	_ scheduler.Executor = (*db2)(nil)
	_ scheduler.Canceler = (*db2)(nil)
)

type jobState int

const (
	jobPending jobState = iota
	jobRunning
	jobDone
	jobCancelled
)

type job struct {
	run   events.BackupStarted
	state jobState
	at    time.Time // the backup began (Db2's image timestamp)
	typ   events.BackupType
	base  string // the image Db2 builds it on
	att   Attempt
}

// image is one image in a Db2's history.
type image struct {
	ts  string
	typ events.BackupType
}

func newDb2(s *Sim) *db2 {
	return &db2{s: s, cat: catalog.NewWithOptions(s.cos, catalog.Options{Clock: s.clk}), send: sender{s: s, source: "keyguard/runner"}, jobs: map[string]*job{}, live: map[string][]*job{}, hist: map[string][]image{}}
}

// Start creates the job run of run, once per run id.
func (d *db2) Start(_ context.Context, run events.BackupStarted) error {
	s := d.s
	s.pause(s.jitter(100*time.Millisecond, 600*time.Millisecond))
	s.maybeCrash("before starting " + run.RunID)
	if s.failAt("start "+run.RunID) || s.rng.Float64() < s.p.CEStartErr {
		s.fault()
		return errkind.With(errkind.Transient, fmt.Errorf("code engine: create job run %s: 503 Service Unavailable", run.RunID))
	}
	if err := run.Validate(); err != nil {
		return err
	}
	if _, ok := d.jobs[run.RunID]; ok {
		return nil
	}
	j := &job{run: run}
	s.or.started(run, s.view(run.Database), d.active(run.Database))
	d.jobs[run.RunID] = j
	d.live[run.Database] = append(d.live[run.Database], j)
	s.trace("start", run.RunID)
	s.after(s.jitter(10*time.Second, time.Minute), "job "+run.RunID, func() { d.begin(j) })
	if s.rng.Float64() < s.p.CEStartErr/2 {
		s.fault()
		return errkind.With(errkind.Transient, fmt.Errorf("code engine: create job run %s: timeout", run.RunID))
	}
	s.maybeCrash("after starting " + run.RunID)
	return nil
}

// Cancel stops a job that has not ended; it publishes nothing then. Safe to call twice.
func (d *db2) Cancel(_ context.Context, run events.BackupStarted) error {
	s := d.s
	s.pause(s.jitter(100*time.Millisecond, 400*time.Millisecond))
	s.maybeCrash("before cancelling " + run.RunID)
	if j := d.jobs[run.RunID]; j != nil && (j.state == jobPending || j.state == jobRunning) {
		j.state = jobCancelled
		s.trace("cancel", run.RunID)
	}
	s.maybeCrash("after cancelling " + run.RunID)
	return nil
}

// active returns the runs of db whose job has not ended.
func (d *db2) active(db string) []string {
	var out []string
	live := d.live[db][:0]
	for _, j := range d.live[db] {
		if j.state == jobPending || j.state == jobRunning {
			out = append(out, j.run.RunID)
			live = append(live, j)
		}
	}
	d.live[db] = live
	return out
}

// begin is the job's container starting: the runner decides what to take, and Db2 begins.
func (d *db2) begin(j *job) {
	s := d.s
	if j.state != jobPending {
		return
	}
	out := s.invoke("job", "runner "+j.run.RunID, func(ctx context.Context) error {
		typ, err := d.basis(ctx, j.run)
		if err != nil {
			return fmt.Errorf("read catalog of %s: %w", j.run.Database, err)
		}
		j.state, j.typ, j.at, j.base = jobRunning, typ, s.now().Truncate(time.Second), d.parent(j.run.Database, typ)
		j.att = s.tr.Attempt(s.tr.byName[j.run.Database], typ, j.at)
		s.or.began(j)
		s.trace("begin", fmt.Sprintf("%s %s", j.run.RunID, typ))
		if j.att.Hang {
			s.after(jobMaxTime, "job killed "+j.run.RunID, func() {
				if j.state == jobRunning {
					j.state = jobDone
				}
			})
			return nil
		}
		s.after(j.att.Duration, "job end "+j.run.RunID, func() { d.end(j) })
		return nil
	})
	if j.state == jobPending && (out.err != nil || out.crashed) {
		// The job failed before the backup and Code Engine does not run it again (the module's
		// runner_retry_limit is 0): the scheduler counts the run at its lease.
		j.state = jobDone
	}
}

// basis is what shared/runner decides before an incremental or delta: the image Db2 would build
// on (an incremental on the latest full of its history, a delta on the latest image) must be a
// catalog entry that is not discarded, has the run's key version, and whose own chain, followed
// by its parent links, reaches a full through such entries; else the run takes a full. (The
// runner lists the whole catalog and checks the chain with catalog.Chain; reading just the
// links keeps a year of simulated backups fast, and the invariants check every cataloged chain
// with catalog.Chain.)
func (d *db2) basis(ctx context.Context, run events.BackupStarted) (events.BackupType, error) {
	if run.Type == events.Full {
		return events.Full, nil
	}
	ts := d.parent(run.Database, run.Type)
	for seen := 0; ts != "" && seen < 1000; seen++ {
		e, err := d.cat.Get(ctx, run.Database, ts)
		switch {
		case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrInvalid):
			return events.Full, nil
		case err != nil:
			return "", err
		case e.IsDiscarded() || e.KeyVersion != run.KeyVersion:
			return events.Full, nil
		case e.Type == events.Full:
			return run.Type, nil
		}
		ts = e.ParentTimestamp
	}
	return events.Full, nil
}

// parent is the image Db2 builds a backup of type typ on.
func (d *db2) parent(db string, typ events.BackupType) string {
	hist := d.hist[db]
	for i := len(hist) - 1; i >= 0 && typ != events.Full; i-- {
		if typ == events.Delta || hist[i].typ == events.Full {
			return hist[i].ts
		}
	}
	return ""
}

// end is the backup's end: the runner records the outcome, then publishes it.
func (d *db2) end(j *job) {
	s := d.s
	if j.state != jobRunning {
		return
	}
	j.state = jobDone
	run, db := j.run, j.run.Database
	s.invoke("job", "runner "+run.RunID+" end", func(ctx context.Context) error {
		now := s.now()
		att := j.att
		if att.Class != "" && !att.Discard {
			f := events.BackupFailed{Database: db, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt, EndedAt: now,
				Class: att.Class, Code: att.Code, Message: att.Message}
			recorded := true
			if err := d.cat.Record(ctx, nil, catalog.RunRecord{Database: db, RunID: run.RunID, Failed: &f}); err != nil && !errors.Is(err, catalog.ErrExists) {
				recorded = false
			}
			return d.publish(ctx, run, f, recorded)
		}
		ts := j.at.Format(catalog.TimestampLayout)
		parent := j.base
		d.hist[db] = append(d.hist[db], image{ts: ts, typ: j.typ})
		size := s.tr.byName[db].Size
		if j.typ != events.Full {
			size /= map[events.BackupType]int64{events.Incremental: 5, events.Delta: 20}[j.typ]
		}
		ent := catalog.Entry{Database: db, ImageTimestamp: ts, Type: j.typ, Mode: run.Mode, Scope: catalog.ScopeDatabase, ParentTimestamp: parent,
			StartedAt: run.StartedAt, EndedAt: now, Images: []catalog.Object{{Key: "sim://" + db + "/" + ts, Size: size}}, SizeBytes: size,
			KeyCRN: run.KeyCRN, KeyVersion: run.KeyVersion, RunID: run.RunID, Executor: Executor,
			Verification: catalog.Verification{Verified: !att.Discard, Tool: "db2ckbkp", At: now}}
		if j.typ != run.Type {
			ent.Notes = []string{fmt.Sprintf("full backup instead of %s: Db2 would build it on an image that is not a usable catalog entry", run.Type)}
		}
		if att.Discard {
			return d.discard(ctx, run, ent, att, false)
		}
		done := events.BackupCompleted{Database: db, RunID: run.RunID, Type: ent.Type, Mode: ent.Mode, StartedAt: run.StartedAt, EndedAt: now,
			ImageTimestamp: ts, Location: ent.Images[0].Key, SizeBytes: size, KeyCRN: run.KeyCRN, KeyVersion: run.KeyVersion, Verified: true,
			CatalogKey: ent.Key()}
		rec := catalog.RunRecord{Database: db, RunID: run.RunID, Completed: &done}
		// As the runner: the entry (twice at most), then the run record (twice at most); once
		// the entry is stored the image is kept, whatever becomes of the record.
		err := d.cat.Put(ctx, ent)
		if err != nil && !errors.Is(err, catalog.ErrExists) {
			err = d.cat.Put(ctx, ent)
		}
		if err != nil {
			att.Class, att.Code, att.Message = events.Transient, "", "write catalog entry: "+err.Error()
			return d.discard(ctx, run, ent, att, true)
		}
		if err := d.cat.Record(ctx, nil, rec); err != nil {
			_ = d.cat.Record(ctx, nil, rec)
		}
		return d.publish(ctx, run, done, true)
	})
}

// discard records the image Db2 wrote as discarded and fails the run naming it; as the runner,
// when the image's entry could not be written (uncataloged) and the discarded record fails too,
// storing the kept entry again tells whether it is stored (a write whose answer was lost), and
// when nothing tells, the outcome is left to the catalog.
func (d *db2) discard(ctx context.Context, run events.BackupStarted, ent catalog.Entry, att Attempt, uncataloged bool) error {
	now := d.s.now()
	f := events.BackupFailed{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt, EndedAt: now,
		Class: att.Class, Code: att.Code, Message: att.Message, DiscardedImage: ent.ImageTimestamp}
	kept := ent
	ent.Discarded = &catalog.Discard{At: now, Reason: att.Message}
	ent.Verification.Verified = false
	if err := d.cat.Put(ctx, ent); err != nil {
		if uncataloged && d.cat.Put(ctx, kept) == nil {
			// As the runner: the kept entry is stored (a write whose answer was lost): the run
			// succeeded, its outcome is the entry's.
			rec := catalog.RecordOf(kept)
			_ = d.cat.Record(ctx, nil, rec)
			return d.publish(ctx, run, *rec.Completed, true)
		}
		if uncataloged {
			// As the runner: the outcome is unknown; nothing is recorded or published, and the
			// job fails: the scheduler reads the outcome from the catalog at the lease.
			return fmt.Errorf("image %s could be neither cataloged nor recorded as discarded", ent.ImageTimestamp)
		}
		f.Message += "; image " + ent.ImageTimestamp + " could not be recorded as discarded"
	}
	recorded := true
	if err := d.cat.Record(ctx, nil, catalog.RunRecord{Database: run.Database, RunID: run.RunID, Failed: &f}); err != nil && !errors.Is(err, catalog.ErrExists) {
		recorded = false
	}
	return d.publish(ctx, run, f, recorded)
}

// publish sends the outcome; its failure matters only when nothing was recorded.
func (d *db2) publish(ctx context.Context, run events.BackupStarted, out events.Payload, recorded bool) error {
	if err := d.send.Send(ctx, run.RunID+"/outcome", out); err != nil && !recorded {
		return fmt.Errorf("publish outcome of %s: %w", run.RunID, err)
	}
	return nil
}
