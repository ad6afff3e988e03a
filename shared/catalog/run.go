package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// RunRecord is the recorded outcome of one run: exactly one of Completed and Failed. Whoever
// observes the outcome writes it once, before publishing it (the runner after its backup, the
// scheduler when Db2 on Cloud lists the backup as finished, the local stack's simulated Db2), so
// that a lost or late event never changes what is known: the scheduler looks the run up here
// before it counts a lease expiry as a failure, and completion accepts a success only with its
// record. A completed record names the catalog entry it produced, written before it.
type RunRecord struct {
	Database  string                  `json:"database"`
	RunID     string                  `json:"run_id"`
	Completed *events.BackupCompleted `json:"completed,omitempty"`
	Failed    *events.BackupFailed    `json:"failed,omitempty"`
}

// MaxRunRecordSize bounds a stored run record.
const MaxRunRecordSize = 64 << 10

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// RunKey is the object key of db's record of runID: catalog/<database>/runs/<run id>.json.
func RunKey(db, runID string) string { return Prefix(db) + runsDir + runID + ".json" }

const runsDir = "runs/"

// Outcome is the record's event (a BackupCompleted or a BackupFailed value).
func (r RunRecord) Outcome() events.Payload {
	if r.Completed != nil {
		return *r.Completed
	}
	return *r.Failed
}

// Validate names every rule r breaks (wrapping ErrInvalid), or returns nil.
func (r RunRecord) Validate() error {
	var p problems
	if err := checkName(r.Database, "20000101000000"); err != nil {
		p.need(false, "database: %v", err)
	}
	p.need(runIDRE.MatchString(r.RunID), "run_id must be 1-200 of A-Z a-z 0-9 . _ - starting with a letter or digit")
	p.need((r.Completed == nil) != (r.Failed == nil), "exactly one of completed and failed is required")
	switch {
	case r.Completed != nil:
		if err := r.Completed.Validate(); err != nil {
			p.need(false, "completed: %v", err)
		}
		p.need(r.Completed.Database == r.Database && r.Completed.RunID == r.RunID, "completed names another run")
	case r.Failed != nil:
		if err := r.Failed.Validate(); err != nil {
			p.need(false, "failed: %v", err)
		}
		p.need(r.Failed.Database == r.Database && r.Failed.RunID == r.RunID, "failed names another run")
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: run record %s/%s: %s", ErrInvalid, r.Database, r.RunID, strings.Join(p, "; "))
}

// encodeRun is the stored form: compact JSON with a schema version, instants in UTC.
func encodeRun(r RunRecord) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if r.Completed != nil {
		c := *r.Completed
		c.StartedAt, c.EndedAt = c.StartedAt.UTC(), c.EndedAt.UTC()
		r.Completed = &c
	}
	if r.Failed != nil {
		f := *r.Failed
		f.StartedAt, f.EndedAt = utc(f.StartedAt), f.EndedAt.UTC()
		r.Failed = &f
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		SchemaVersion int `json:"schema_version"`
		RunRecord
	}{SchemaVersion, r}); err != nil {
		return nil, fmt.Errorf("encode run record %s: %w", r.RunID, err)
	}
	if buf.Len() > MaxRunRecordSize {
		return nil, fmt.Errorf("%w: run record %s is %d bytes", ErrInvalid, r.RunID, buf.Len())
	}
	return buf.Bytes(), nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// DecodeRun parses a stored run record strictly (unknown fields, a newer schema, or a record
// that fails Validate are errors wrapping ErrInvalid).
func DecodeRun(body []byte) (RunRecord, error) {
	if len(body) > MaxRunRecordSize {
		return RunRecord{}, fmt.Errorf("decode run record: %w: %d bytes", ErrInvalid, len(body))
	}
	var s struct {
		SchemaVersion int `json:"schema_version"`
		RunRecord
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return RunRecord{}, fmt.Errorf("decode run record: %w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return RunRecord{}, fmt.Errorf("decode run record: %w: data after the record", ErrInvalid)
	}
	if s.SchemaVersion < 1 || s.SchemaVersion > SchemaVersion {
		return RunRecord{}, fmt.Errorf("decode run record: %w: schema_version %d", ErrInvalid, s.SchemaVersion)
	}
	if err := s.RunRecord.Validate(); err != nil {
		return RunRecord{}, fmt.Errorf("decode run record: %w", err)
	}
	return s.RunRecord, nil
}

// PutRun stores r once (If-None-Match: *). Storing a record equal to the stored one succeeds
// (an idempotent retry); a different stored record is ErrExists: the first outcome recorded for
// a run is its outcome. Safe concurrently.
func (c *Catalog) PutRun(ctx context.Context, r RunRecord) error {
	body, err := encodeRun(r)
	if err != nil {
		return fmt.Errorf("put run record: %w", err)
	}
	key := RunKey(r.Database, r.RunID)
	_, err = c.store.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true})
	if err == nil {
		return nil
	}
	if !errors.Is(err, objstore.ErrPrecondition) {
		return fmt.Errorf("put run record %s: %w", key, err)
	}
	old, _, gerr := c.store.Get(ctx, key)
	if gerr != nil {
		return fmt.Errorf("put run record %s: exists, and reading it back failed: %w", key, gerr)
	}
	if bytes.Equal(old, body) {
		return nil
	}
	return fmt.Errorf("put run record %s: %w", key, ErrExists)
}

// GetRun returns db's record of runID, or ErrNotFound. A record that does not decode is an
// error wrapping ErrInvalid. Read-only; safe concurrently.
func (c *Catalog) GetRun(ctx context.Context, db, runID string) (RunRecord, error) {
	if !runIDRE.MatchString(runID) {
		return RunRecord{}, fmt.Errorf("get run record: %w: run id %q", ErrInvalid, runID)
	}
	if err := checkName(db, "20000101000000"); err != nil {
		return RunRecord{}, fmt.Errorf("get run record: %w", err)
	}
	key := RunKey(db, runID)
	body, _, err := c.store.Get(ctx, key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return RunRecord{}, fmt.Errorf("get run record %s: %w", key, ErrNotFound)
	case err != nil:
		return RunRecord{}, fmt.Errorf("get run record %s: %w", key, err)
	}
	r, err := DecodeRun(body)
	if err != nil {
		return RunRecord{}, fmt.Errorf("get run record %s: %w", key, err)
	}
	if r.Database != db || r.RunID != runID {
		return RunRecord{}, fmt.Errorf("get run record %s: %w: it names %s/%s", key, ErrInvalid, r.Database, r.RunID)
	}
	return r, nil
}

// DeleteRun removes db's record of runID; a missing record is not an error.
func (c *Catalog) DeleteRun(ctx context.Context, db, runID string) error {
	if !runIDRE.MatchString(runID) {
		return fmt.Errorf("delete run record: %w: run id %q", ErrInvalid, runID)
	}
	if err := c.store.Delete(ctx, RunKey(db, runID)); err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("delete run record %s/%s: %w", db, runID, err)
	}
	return nil
}

// Record writes what a run produced: its entry first (when it has one: a kept or discarded
// image), then its run record, so that a completed record always names an entry that exists.
// Both writes are create-only and idempotent, so a crashed recorder can record again.
func (c *Catalog) Record(ctx context.Context, e *Entry, r RunRecord) error {
	if e != nil {
		if err := c.Put(ctx, *e); err != nil {
			return fmt.Errorf("record run %s: %w", r.RunID, err)
		}
	}
	if err := c.PutRun(ctx, r); err != nil {
		return fmt.Errorf("record run %s: %w", r.RunID, err)
	}
	return nil
}

// ServiceEntry is the catalog entry of a backup kept by a service rather than by keyguard (Db2
// on Cloud, or the local stack's simulated Db2): its one image is the external location the
// completion names, verified meaning only that the service reported it completed. For an
// incremental or delta, parent is the image it builds on. The instants are the completion's, so
// that recording the same completion twice writes the same entry.
func ServiceEntry(ev events.BackupCompleted, executor, parent string) Entry {
	e := Entry{Database: ev.Database, ImageTimestamp: ev.ImageTimestamp, Type: ev.Type, Mode: ev.Mode, Scope: ScopeDatabase,
		StartedAt: ev.StartedAt, EndedAt: ev.EndedAt, Images: []Object{{Key: ev.Location, Size: ev.SizeBytes}}, SizeBytes: ev.SizeBytes,
		KeyCRN: ev.KeyCRN, KeyVersion: ev.KeyVersion, RunID: ev.RunID, Executor: executor,
		Verification: Verification{Verified: ev.Verified, Tool: executor, Detail: "the service reported the backup completed"}}
	if ev.Verified {
		e.Verification.At = ev.EndedAt
	}
	if ev.Type != events.Full {
		e.ParentTimestamp = parent
	}
	return e
}

// PruneRuns deletes db's run records written before cutoff, except those of the runs in keep
// (the runs of the entries retention keeps): failed runs' records and those of pruned entries.
// It returns how many it deleted. Run records are kept for reconciliation only, which needs a
// record for a few leases at most.
func (c *Catalog) PruneRuns(ctx context.Context, db string, keep map[string]bool, cutoff time.Time) (int, error) {
	infos, err := c.store.List(ctx, Prefix(db)+runsDir)
	if err != nil {
		return 0, fmt.Errorf("prune run records of %s: %w", db, err)
	}
	n := 0
	for _, in := range infos {
		id, ok := strings.CutSuffix(strings.TrimPrefix(in.Key, Prefix(db)+runsDir), ".json")
		if !ok || !runIDRE.MatchString(id) || keep[id] || !in.LastModified.Before(cutoff) {
			continue
		}
		if err := c.store.Delete(ctx, in.Key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return n, fmt.Errorf("prune run record %s: %w", in.Key, err)
		}
		n++
	}
	return n, nil
}

// RecordOf is the run record that e implies: the outcome of the run that cataloged the image and
// died before writing its run record (Record writes the entry first). A kept image is the run's
// success; a discarded one is its failure, naming the image (the next backup is then a full).
// Reconciliation writes it, so that the run's outcome is read from the catalog whatever became
// of its producer.
func RecordOf(e Entry) RunRecord {
	r := RunRecord{Database: e.Database, RunID: e.RunID}
	if d := e.Discarded; d != nil {
		msg := "image " + e.ImageTimestamp + " was discarded: " + d.Reason
		if len(msg) > 4000 {
			msg = msg[:4000]
		}
		r.Failed = &events.BackupFailed{Database: e.Database, RunID: e.RunID, Type: e.Type, Mode: e.Mode, StartedAt: e.StartedAt,
			EndedAt: d.At, Class: events.Transient, Message: msg, DiscardedImage: e.ImageTimestamp}
		return r
	}
	c := events.BackupCompleted{Database: e.Database, RunID: e.RunID, Type: e.Type, Mode: e.Mode, StartedAt: e.StartedAt, EndedAt: e.EndedAt,
		ImageTimestamp: e.ImageTimestamp, SizeBytes: e.SizeBytes, KeyCRN: e.KeyCRN, KeyVersion: e.KeyVersion, Verified: e.Verification.Verified,
		CatalogKey: e.Key(), Note: strings.Join(e.Notes, "; ")}
	if len(c.Note) > 4000 {
		c.Note = c.Note[:4000]
	}
	if len(e.Images) > 0 {
		c.Location, c.SHA256 = e.Images[0].Key, e.Images[0].SHA256
	}
	r.Completed = &c
	return r
}
