package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// RestoreRecord is the record of one restore, an operator's or a drill's: who asked, when,
// which images, where to, how it ended and how long it took. The restore writes it once, when it
// ends, before announcing it, at catalog/<database>/restores/<id>.json: like a run record, it is
// the truth a lost restore.completed event delays but never changes (the scheduler reconciles a
// drill from it).
type RestoreRecord struct {
	Database    string    `json:"database"`
	ID          string    `json:"id"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
	// Seconds is the measured restore time (downloads, RESTORE, roll-forward, probe).
	Seconds float64 `json:"seconds"`
	// Target is the last image restored, Images the chain (names "<timestamp>-<type>").
	Target string   `json:"target,omitempty"`
	Images []string `json:"images,omitempty"`
	// PointInTime is the roll-forward's stop time (zero: end of logs).
	PointInTime time.Time `json:"point_in_time,omitzero"`
	// Into is the database restored into (empty: in place).
	Into    string              `json:"into,omitempty"`
	Drill   bool                `json:"drill,omitempty"`
	Success bool                `json:"success"`
	Class   events.FailureClass `json:"class,omitempty"`
	Code    string              `json:"code,omitempty"`
	Message string              `json:"message,omitempty"`
	// ProbeResult is the first row the probe query returned.
	ProbeResult string `json:"probe_result,omitempty"`
}

// MaxRestoreRecordSize bounds a stored restore record.
const MaxRestoreRecordSize = 64 << 10

const restoresDir = "restores/"

// RestoreKey is the object key of db's record of restore id.
func RestoreKey(db, id string) string { return Prefix(db) + restoresDir + id + ".json" }

// ValidRestoreID reports whether id can name a restore (1-64 letters, digits or '-').
func ValidRestoreID(id string) bool { return validLeaseID(id) }

// Validate names every rule r breaks (wrapping ErrInvalid), or returns nil.
func (r RestoreRecord) Validate() error {
	var p problems
	if err := checkName(r.Database, "20000101000000"); err != nil {
		p.need(false, "database: %v", err)
	}
	p.need(validLeaseID(r.ID), "id must be 1-%d letters, digits or '-'", maxLeaseID)
	p.need(text(r.RequestedBy, maxText), "requested_by is required")
	p.need(!r.StartedAt.IsZero() && !r.EndedAt.Before(r.StartedAt) && sane(r.StartedAt) && sane(r.EndedAt), "started_at and ended_at are required, in order")
	p.need(r.Seconds >= 0, "seconds is negative")
	p.need(len(r.Images) <= MaxImages, "more than %d images", MaxImages)
	p.need(r.Class == "" || r.Class.Valid(), "class is not a failure class")
	p.need(len(r.Message) <= maxDetail && len(r.ProbeResult) <= maxText, "message or probe_result too long")
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: restore record %s/%s: %s", ErrInvalid, r.Database, r.ID, strings.Join(p, "; "))
}

// Completed is the restore.completed event of r.
func (r RestoreRecord) Completed() events.RestoreCompleted {
	images := r.Images
	if len(images) == 0 {
		images = []string{"(none)"}
	}
	return events.RestoreCompleted{Database: r.Database, Images: images, Success: r.Success, Message: r.Message, ID: r.ID, Into: r.Into,
		Drill: r.Drill, Class: r.Class, Code: r.Code, Seconds: r.Seconds, ProbeResult: r.ProbeResult}
}

// PutRestore stores r once (If-None-Match: *): the same record again succeeds, another one for
// the same id is ErrExists. Safe concurrently.
func (c *Catalog) PutRestore(ctx context.Context, r RestoreRecord) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("put restore record: %w", err)
	}
	r.RequestedAt, r.StartedAt, r.EndedAt, r.PointInTime = utc(r.RequestedAt), r.StartedAt.UTC(), r.EndedAt.UTC(), utc(r.PointInTime)
	body, err := json.Marshal(struct {
		SchemaVersion int `json:"schema_version"`
		RestoreRecord
	}{1, r})
	if err != nil {
		return fmt.Errorf("encode restore record %s: %w", r.ID, err)
	}
	if len(body) > MaxRestoreRecordSize {
		return fmt.Errorf("%w: restore record %s is %d bytes", ErrInvalid, r.ID, len(body))
	}
	key := RestoreKey(r.Database, r.ID)
	_, err = c.store.Put(ctx, key, append(body, '\n'), objstore.Cond{IfNoneMatch: true})
	if err == nil {
		return nil
	}
	if !errors.Is(err, objstore.ErrPrecondition) {
		return fmt.Errorf("put restore record %s: %w", key, err)
	}
	old, _, gerr := c.store.Get(ctx, key)
	if gerr != nil {
		return fmt.Errorf("put restore record %s: exists, and reading it back failed: %w", key, gerr)
	}
	if bytes.Equal(bytes.TrimSpace(old), body) {
		return nil
	}
	return fmt.Errorf("put restore record %s: %w", key, ErrExists)
}

// DecodeRestore parses a stored restore record strictly.
func DecodeRestore(body []byte) (RestoreRecord, error) {
	if len(body) > MaxRestoreRecordSize {
		return RestoreRecord{}, fmt.Errorf("decode restore record: %w: %d bytes", ErrInvalid, len(body))
	}
	var s struct {
		SchemaVersion int `json:"schema_version"`
		RestoreRecord
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return RestoreRecord{}, fmt.Errorf("decode restore record: %w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return RestoreRecord{}, fmt.Errorf("decode restore record: %w: data after the record", ErrInvalid)
	}
	if s.SchemaVersion != 1 {
		return RestoreRecord{}, fmt.Errorf("decode restore record: %w: schema_version %d", ErrInvalid, s.SchemaVersion)
	}
	if err := s.RestoreRecord.Validate(); err != nil {
		return RestoreRecord{}, fmt.Errorf("decode restore record: %w", err)
	}
	return s.RestoreRecord, nil
}

// GetRestore returns db's record of restore id, or ErrNotFound.
func (c *Catalog) GetRestore(ctx context.Context, db, id string) (RestoreRecord, error) {
	if !validLeaseID(id) {
		return RestoreRecord{}, fmt.Errorf("get restore record: %w: id %q", ErrInvalid, id)
	}
	body, _, err := c.store.Get(ctx, RestoreKey(db, id))
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return RestoreRecord{}, fmt.Errorf("get restore record %s/%s: %w", db, id, ErrNotFound)
	case err != nil:
		return RestoreRecord{}, fmt.Errorf("get restore record %s/%s: %w", db, id, err)
	}
	r, err := DecodeRestore(body)
	if err == nil && (r.Database != db || r.ID != id) {
		err = fmt.Errorf("%w: it names %s/%s", ErrInvalid, r.Database, r.ID)
	}
	if err != nil {
		return RestoreRecord{}, fmt.Errorf("get restore record %s/%s: %w", db, id, err)
	}
	return r, nil
}

// ListRestores returns db's restore records, oldest first (by EndedAt). A record that does not
// decode is skipped (a newer keyguard's, say); a store failure is an error. Read-only.
func (c *Catalog) ListRestores(ctx context.Context, db string) ([]RestoreRecord, error) {
	infos, err := c.store.List(ctx, Prefix(db)+restoresDir)
	if err != nil {
		return nil, fmt.Errorf("list restore records of %s: %w", db, err)
	}
	var out []RestoreRecord
	for _, in := range infos {
		if in.Size > MaxRestoreRecordSize || !strings.HasSuffix(in.Key, ".json") {
			continue
		}
		body, _, err := c.store.Get(ctx, in.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read restore record %s: %w", in.Key, err)
		}
		if r, err := DecodeRestore(body); err == nil && r.Database == db {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b RestoreRecord) int { return a.EndedAt.Compare(b.EndedAt) })
	return out, nil
}
