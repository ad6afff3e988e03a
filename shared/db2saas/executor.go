package db2saas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
)

// Service is what the Executor needs from the Db2 on Cloud API; *Client implements it.
type Service interface {
	// CreateBackup starts an on-demand backup of the instance. Not idempotent; fails with
	// ErrBackupInProgress while any backup of the instance runs.
	CreateBackup(ctx context.Context, instanceCRN string) (Task, error)
	// ListBackups returns every backup the service lists for the instance (empty, not an
	// error, when there is none). Read-only; safe concurrently.
	ListBackups(ctx context.Context, instanceCRN string) ([]Backup, error)
}

var _ Service = (*Client)(nil)

// Defaults of the Executor's fields.
const (
	DefaultGrace  = 15 * time.Minute
	DefaultSkew   = 2 * time.Minute
	DefaultBudget = 7 * time.Second
	// ExecutorName is what backup.started records as the executor.
	ExecutorName = config.ExecDb2SaaS
)

// Executor runs keyguard backups on Db2 on Cloud. Set Client and Instances; the rest defaults.
//
// Matching rule. The service keeps no id of ours and its create answer names a task that the
// list does not show, so a run's backup is recognised by time: it is the earliest listed backup
// whose type is not "scheduled" (the service's own daily backups are never claimed) and whose
// created_at lies in [run.StartedAt - Skew, run.StartedAt + Grace]. This is sound because the
// service runs one backup per instance at a time, the scheduler calls Start right after it sets
// StartedAt, and two runs of one database start further apart than Skew + Grace (a retry waits
// at least the policy's backoff, 30 minutes by default, after a failure that Probe reports no
// earlier than Grace after the start). Each database must have its own instance: two databases
// on one instance would claim each other's backups.
type Executor struct {
	Client Service
	// Instances maps a database name to its Db2 on Cloud instance CRN (see InstancesFromFleet
	// and InstanceMap).
	Instances func(database string) (instanceCRN string, ok bool)
	// Clock judges the grace period (wall clock when nil).
	Clock clock.Clock
	// Log gets a line per backup created, found or finished (slog.Default when nil).
	Log *slog.Logger
	// Grace is how long after run.StartedAt a run's backup may appear in the list; after it, a
	// run without one has failed (transient, "backup not found"). Default 15 minutes.
	Grace time.Duration
	// Skew is how far the service's created_at may precede run.StartedAt (clock differences).
	// Default 2 minutes.
	Skew time.Duration
	// Budget bounds one Start or Probe, every API call included (default 7 s, under the 10 s
	// Event Notifications gives a handler).
	Budget time.Duration
}

// Name is the executor name recorded in backup.started.
func (x *Executor) Name() string { return ExecutorName }

// InstancesFromFleet resolves a database to its instance CRN through the fleet policy. Only a
// database whose executor is db2saas resolves.
func InstancesFromFleet(f *config.Fleet) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if f == nil {
			return "", false
		}
		d, ok := f.Database(name)
		if !ok || d.Executor != config.ExecDb2SaaS || d.Instance == "" {
			return "", false
		}
		return d.Instance, true
	}
}

// InstanceMap resolves a database to an instance CRN through a fixed map.
func InstanceMap(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		crn, ok := m[name]
		return crn, ok && crn != ""
	}
}

// Start creates the run's backup unless the service already lists one for the run (see the
// matching rule), so calling it again, concurrently or after a crash, never makes a second
// backup. It returns nil once the backup exists or was created. Errors are *Error: permanent for
// an invalid run or a type or mode Db2 on Cloud does not offer (only full online backups),
// configuration for a database without an instance, transient when another backup of the
// instance is running, when the run's time to create has passed (Grace - Skew after StartedAt),
// or when the service is unavailable.
func (x *Executor) Start(ctx context.Context, run events.BackupStarted) error {
	op := "start " + run.RunID
	crn, err := x.prepare(op, run)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, x.budget())
	defer cancel()
	log := x.log().With("database", run.Database, "run", run.RunID, "instance", crn)

	list, err := x.Client.ListBackups(ctx, crn)
	if err != nil {
		return wrap(op, err)
	}
	if b, ok := x.match(run, list); ok {
		log.Info("backup already started for the run", "backup", b.ID, "status", b.RawStatus)
		return nil
	}
	if latest := run.StartedAt.Add(x.grace() - x.skew()); x.now().After(latest) {
		return newError(op, events.Transient, fmt.Errorf("too late to create the backup: a backup created after %s would not be recognised as the run's", latest.Format(time.RFC3339)))
	}
	task, err := x.Client.CreateBackup(ctx, crn)
	if err == nil {
		log.Info("backup created", "task", task.ID)
		return nil
	}
	if !errors.Is(err, ErrBackupInProgress) {
		return wrap(op, err)
	}
	// Refused because a backup runs: ours (a concurrent or retried Start) or someone else's.
	list, lerr := x.Client.ListBackups(ctx, crn)
	if lerr != nil {
		return wrap(op, errors.Join(err, lerr))
	}
	if b, ok := x.match(run, list); ok {
		log.Info("backup already started for the run", "backup", b.ID, "status", b.RawStatus)
		return nil
	}
	return wrap(op, err)
}

// Probe reports the run's outcome: nil while its backup runs (or has not yet appeared in the
// list, within Grace of StartedAt), events.BackupCompleted when the service reports it
// completed, events.BackupFailed when the service reports it failed (class transient: the
// service gives no reason) or when no backup of the run appeared within Grace (transient, code
// backup-not-found). A status this package does not recognise counts as running (and is logged);
// the scheduler's lease bounds the wait. It only reads, so it is safe to repeat.
//
// BackupCompleted carries ImageTimestamp = created_at (UTC, yyyymmddhhmmss), EndedAt =
// created_at + duration (never before StartedAt), SizeBytes = size, Location =
// Location(instance, backup id), the key CRN and version of the run, and Verified = true, which
// here means only that the service reported the backup completed: Db2 on Cloud exposes no image
// to check with db2ckbkp.
func (x *Executor) Probe(ctx context.Context, run events.BackupStarted) (events.Payload, error) {
	op := "probe " + run.RunID
	crn, err := x.prepare(op, run)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, x.budget())
	defer cancel()
	log := x.log().With("database", run.Database, "run", run.RunID, "instance", crn)

	list, err := x.Client.ListBackups(ctx, crn)
	if err != nil {
		return nil, wrap(op, err)
	}
	now := x.now()
	b, ok := x.match(run, list)
	if !ok {
		deadline := run.StartedAt.Add(x.grace())
		if now.Before(deadline) {
			return nil, nil
		}
		log.Warn("no backup found for the run", "deadline", deadline)
		return events.BackupFailed{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode,
			StartedAt: run.StartedAt, EndedAt: now, Class: events.Transient, Code: "backup-not-found",
			Message: fmt.Sprintf("backup not found: Db2 on Cloud lists no backup created between %s and %s for instance %s",
				run.StartedAt.Add(-x.skew()).Format(time.RFC3339), deadline.Format(time.RFC3339), crn)}, nil
	}
	switch b.Status {
	case StatusCompleted:
		ended := b.EndedAt()
		if ended.Before(run.StartedAt) {
			ended = run.StartedAt
		}
		log.Info("backup completed", "backup", b.ID, "size", b.SizeBytes, "duration", b.Duration)
		return events.BackupCompleted{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode,
			StartedAt: run.StartedAt, EndedAt: ended, ImageTimestamp: b.CreatedAt.UTC().Format("20060102150405"),
			Location: Location(crn, b.ID), SizeBytes: b.SizeBytes, KeyCRN: run.KeyCRN, KeyVersion: run.KeyVersion,
			Verified: true}, nil
	case StatusFailed:
		log.Warn("backup failed", "backup", b.ID, "status", b.RawStatus)
		ended := b.EndedAt()
		if b.Duration == 0 || ended.Before(run.StartedAt) {
			ended = now
		}
		return events.BackupFailed{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode,
			StartedAt: run.StartedAt, EndedAt: ended, Class: events.Transient, Code: "backup-failed",
			Message: fmt.Sprintf("Db2 on Cloud reports backup %s of instance %s as %q", b.ID, crn, b.RawStatus)}, nil
	case StatusUnknown:
		log.Warn("backup status not recognised; still waiting", "backup", b.ID, "status", b.RawStatus)
	}
	return nil, nil
}

// match finds the run's backup in list (see the matching rule on Executor).
func (x *Executor) match(run events.BackupStarted, list []Backup) (Backup, bool) {
	from, to := run.StartedAt.Add(-x.skew()), run.StartedAt.Add(x.grace())
	var best Backup
	found := false
	for _, b := range list {
		if strings.EqualFold(strings.TrimSpace(b.Type), TypeScheduled) {
			continue
		}
		if b.CreatedAt.Before(from) || b.CreatedAt.After(to) {
			continue
		}
		if !found || b.CreatedAt.Before(best.CreatedAt) {
			best, found = b, true
		}
	}
	return best, found
}

// prepare checks the run and resolves its instance.
func (x *Executor) prepare(op string, run events.BackupStarted) (string, error) {
	if x.Client == nil || x.Instances == nil {
		return "", newError(op, events.Configuration, errors.New("executor needs Client and Instances"))
	}
	if err := run.Validate(); err != nil {
		return "", newError(op, events.Permanent, err)
	}
	if run.Type != events.Full {
		return "", newError(op, events.Permanent, fmt.Errorf("%w: %s backup (full backups only)", ErrUnsupported, run.Type))
	}
	if run.Mode != events.Online {
		return "", newError(op, events.Permanent, fmt.Errorf("%w: %s backup (online backups only)", ErrUnsupported, run.Mode))
	}
	crn, ok := x.Instances(run.Database)
	if !ok {
		return "", newError(op, events.Configuration, fmt.Errorf("%w: %q", ErrUnknownDatabase, run.Database))
	}
	return crn, nil
}

// wrap puts op in front of a client error, keeping its class.
func wrap(op string, err error) error {
	e := &Error{Op: op, Class: ClassOf(err), Err: err}
	var inner *Error
	if errors.As(err, &inner) {
		e.StatusCode = inner.StatusCode
	}
	return e
}

func (x *Executor) now() time.Time { return clock.Or(x.Clock).Now() }

func (x *Executor) grace() time.Duration {
	if x.Grace > 0 {
		return x.Grace
	}
	return DefaultGrace
}

func (x *Executor) skew() time.Duration {
	if x.Skew > 0 {
		return x.Skew
	}
	return DefaultSkew
}

func (x *Executor) budget() time.Duration {
	if x.Budget > 0 {
		return x.Budget
	}
	return DefaultBudget
}

func (x *Executor) log() *slog.Logger {
	if x.Log != nil {
		return x.Log
	}
	return slog.Default()
}
