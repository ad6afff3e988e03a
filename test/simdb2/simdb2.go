// Package simdb2 is the local stack's simulated Db2: deterministic durations, sizes and
// checksums, failure injection by rule or while the database re-wraps its keys, and an outcome
// recorded in the catalog (an entry for the image, the run record) then published through Event
// Notifications, exactly as the runner job does, so the scheduler -> executor -> completion loop
// closes without Db2. It is test code: no deployed function links it, and a deployed fleet that
// names it is refused at load.
package simdb2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/outbox"
)

// Name is the executor name a local fleet gives simulated databases; only the local stack
// registers it (config.WithExecutors).
const Name = "simulated"

// Catalog records what a simulated run produced.
type Catalog interface {
	List(ctx context.Context, db string) ([]catalog.Entry, error)
	Record(ctx context.Context, e *catalog.Entry, r catalog.RunRecord) error
}

// FailRule makes the Nth run (1-based, counting every start of that database) of Database fail.
type FailRule struct {
	Database string
	Nth      int
	Class    events.FailureClass
	Code     string
	Message  string
}

// Simulated is a simulated Db2 backup executor. The zero value is not usable: set Send and
// Catalog.
type Simulated struct {
	Clock   clock.Clock
	Send    outbox.Sender
	Catalog Catalog
	// Durations per backup type; defaults: full 40m, incremental 15m, delta 5m.
	Durations map[events.BackupType]time.Duration
	Fail      []FailRule
	// Rewrapping, when set, says whether the database is re-wrapping its data keys after a key
	// rotation; a backup started then fails the way Db2's does (class rotation), which is what
	// keyguard's rotation window exists to prevent.
	Rewrapping func(database string) bool
	Log        *slog.Logger

	mu     sync.Mutex
	known  map[string]bool
	starts map[string]int
	timers map[string]clock.Timer
}

// Name is the executor name recorded in backup.started.
func (s *Simulated) Name() string { return "simulated" }

// Start schedules the run's outcome. Starting a run id twice is a no-op.
func (s *Simulated) Start(_ context.Context, run events.BackupStarted) error {
	if err := run.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.known == nil {
		s.known, s.starts = map[string]bool{}, map[string]int{}
	}
	if s.known[run.RunID] {
		s.mu.Unlock()
		return nil
	}
	s.known[run.RunID] = true
	s.starts[run.Database]++
	n := s.starts[run.Database]
	s.mu.Unlock()

	d := s.duration(run.Type)
	var rule *FailRule
	for i := range s.Fail {
		if s.Fail[i].Database == run.Database && s.Fail[i].Nth == n {
			rule = &s.Fail[i]
		}
	}
	if rule == nil && s.Rewrapping != nil && s.Rewrapping(run.Database) {
		rule = &FailRule{Database: run.Database, Class: events.Rotation, Code: "SQL1728N",
			Message: "The command or operation failed because the keystore could not be accessed (key material is being re-wrapped after a root key rotation)."}
	}
	timer := clock.Or(s.Clock).AfterFunc(d, func() { s.finish(run, d, rule) })
	s.mu.Lock()
	if s.timers == nil {
		s.timers = map[string]clock.Timer{}
	}
	s.timers[run.RunID] = timer
	s.mu.Unlock()
	return nil
}

// Cancel stops a run that has not finished: it will publish no outcome. Safe to call twice.
func (s *Simulated) Cancel(_ context.Context, run events.BackupStarted) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.timers[run.RunID]; ok {
		t.Stop()
		delete(s.timers, run.RunID)
	}
	return nil
}

func (s *Simulated) duration(t events.BackupType) time.Duration {
	if d, ok := s.Durations[t]; ok {
		return d
	}
	return map[events.BackupType]time.Duration{events.Full: 40 * time.Minute, events.Incremental: 15 * time.Minute, events.Delta: 5 * time.Minute}[t]
}

func (s *Simulated) finish(run events.BackupStarted, d time.Duration, rule *FailRule) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ended := run.StartedAt.Add(d)
	var p events.Payload
	if rule != nil {
		p = events.BackupFailed{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt,
			EndedAt: ended, Class: rule.Class, Code: rule.Code, Message: rule.Message}
	} else {
		sum := sha256.Sum256([]byte(run.RunID))
		size := map[events.BackupType]int64{events.Full: 40 << 30, events.Incremental: 6 << 30, events.Delta: 2 << 30}[run.Type]
		p = events.BackupCompleted{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt,
			EndedAt: ended, ImageTimestamp: run.StartedAt.UTC().Format("20060102150405"), SizeBytes: size, SHA256: hex.EncodeToString(sum[:]),
			Location: fmt.Sprintf("simulated://%s/%s", run.Database, run.StartedAt.UTC().Format("20060102150405")),
			KeyCRN:   run.KeyCRN, KeyVersion: run.KeyVersion, Verified: true}
	}
	if err := s.record(ctx, run, p); err != nil {
		s.log().Error("simulated executor could not record the outcome", "run", run.RunID, "err", err)
	}
	if err := s.Send.Send(ctx, run.RunID+"/outcome", p); err != nil {
		// The scheduler finds the outcome in the catalog on its next tick.
		s.log().Warn("simulated executor could not publish the outcome", "run", run.RunID, "err", err)
	}
}

// record writes the outcome to the catalog: the image's entry (built on the newest image, or
// the newest full for an incremental, as Db2 builds it) and the run record.
func (s *Simulated) record(ctx context.Context, run events.BackupStarted, p events.Payload) error {
	rec := catalog.RunRecord{Database: run.Database, RunID: run.RunID}
	var entry *catalog.Entry
	switch o := p.(type) {
	case events.BackupFailed:
		rec.Failed = &o
	case events.BackupCompleted:
		rec.Completed = &o
		parent := ""
		if run.Type != events.Full {
			entries, err := s.Catalog.List(ctx, run.Database)
			if err != nil {
				return err
			}
			for i := len(entries) - 1; i >= 0 && parent == ""; i-- {
				if run.Type == events.Delta || entries[i].Type == events.Full {
					parent = entries[i].ImageTimestamp
				}
			}
		}
		e := catalog.ServiceEntry(o, Name, parent)
		entry = &e
	}
	return s.Catalog.Record(ctx, entry, rec)
}

func (s *Simulated) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
