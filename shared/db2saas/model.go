package db2saas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Status is a backup's state, normalised from what the service reports.
type Status string

// Backup states. IBM's SDKs show only "running"; completed and failed are assumed from the
// sibling Cloud Databases API (running, completed, failed).
const (
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	// StatusUnknown is any status this package does not recognise (kept in Backup.RawStatus).
	StatusUnknown Status = "unknown"
)

// TypeScheduled is the type of the service's own automatic backups; keyguard never claims one.
// (Documented values elsewhere in IBM Cloud: scheduled, on_demand.)
const TypeScheduled = "scheduled"

// Backup is one entry of the instance's backup list.
type Backup struct {
	// ID identifies the backup in the list (IBM's SDK says "CRN of the db2 instance"; it is
	// treated as opaque).
	ID string
	// Type as reported, e.g. "on_demand" or "scheduled".
	Type string
	// Status normalised; RawStatus is the service's own word.
	Status    Status
	RawStatus string
	// CreatedAt is when the backup was created (taken as its start), in UTC.
	CreatedAt time.Time
	// SizeBytes is the reported size (the API says "size of the backup or data set", no unit;
	// taken as bytes).
	SizeBytes int64
	// Duration is how long the backup operation took (the API reports whole seconds).
	Duration time.Duration
}

// EndedAt is CreatedAt plus Duration.
func (b Backup) EndedAt() time.Time { return b.CreatedAt.Add(b.Duration) }

// Task is what a create answers: the id (a CRN) of the service task that runs the backup. The
// list does not name tasks, so the id is for logs only.
type Task struct {
	ID string
}

// Limits on what the parsers accept.
const (
	// MaxResponseBytes bounds a response body.
	MaxResponseBytes = 4 << 20
	maxText          = 1024
)

// ParseStatus normalises a reported status, case-insensitively.
func ParseStatus(s string) Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "running", "in_progress", "in-progress", "inprogress", "pending", "queued", "started", "active":
		return StatusRunning
	case "completed", "complete", "succeeded", "success", "successful", "done":
		return StatusCompleted
	case "failed", "failure", "error", "errored", "cancelled", "canceled", "aborted":
		return StatusFailed
	}
	return StatusUnknown
}

// wireBackup is a list entry as it travels. Unknown fields are ignored (the service may add some).
type wireBackup struct {
	ID        *string      `json:"id"`
	Type      *string      `json:"type"`
	Status    *string      `json:"status"`
	CreatedAt *string      `json:"created_at"`
	Size      *json.Number `json:"size"`
	Duration  *json.Number `json:"duration"`
}

// ParseBackupList parses the body of GET /manage/backups. It never panics. It refuses a body that
// is not one JSON object with a "backups" array (null counts as empty), and any entry without an
// id, status or parseable created_at, or with a negative or fractional size or duration. The
// order of the service is kept.
func ParseBackupList(data []byte) ([]Backup, error) {
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: backup list is %d bytes, limit %d", ErrMalformedResponse, len(data), MaxResponseBytes)
	}
	var body struct {
		Backups *[]json.RawMessage `json:"backups"`
	}
	if err := decodeOne(data, &body); err != nil {
		return nil, fmt.Errorf("%w: backup list: %v", ErrMalformedResponse, err)
	}
	if body.Backups == nil {
		if !hasKey(data, "backups") {
			return nil, fmt.Errorf("%w: backup list: no \"backups\" field", ErrMalformedResponse)
		}
		return []Backup{}, nil
	}
	out := make([]Backup, 0, len(*body.Backups))
	for i, raw := range *body.Backups {
		b, err := parseBackup(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: backups[%d]: %v", ErrMalformedResponse, i, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func parseBackup(raw json.RawMessage) (Backup, error) {
	var w wireBackup
	if err := decodeOne(raw, &w); err != nil {
		return Backup{}, err
	}
	var p []string
	var b Backup
	switch {
	case w.ID == nil || strings.TrimSpace(*w.ID) == "":
		p = append(p, "id is required")
	case len(*w.ID) > maxText:
		p = append(p, "id is too long")
	default:
		b.ID = *w.ID
	}
	if w.Type != nil {
		if len(*w.Type) > maxText {
			p = append(p, "type is too long")
		} else {
			b.Type = *w.Type
		}
	}
	switch {
	case w.Status == nil || strings.TrimSpace(*w.Status) == "":
		p = append(p, "status is required")
	case len(*w.Status) > maxText:
		p = append(p, "status is too long")
	default:
		b.RawStatus, b.Status = *w.Status, ParseStatus(*w.Status)
	}
	if w.CreatedAt == nil {
		p = append(p, "created_at is required")
	} else if t, err := ParseTime(*w.CreatedAt); err != nil {
		p = append(p, err.Error())
	} else {
		b.CreatedAt = t
	}
	if w.Size != nil {
		n, err := wholeNumber(*w.Size, math.MaxInt64)
		if err != nil {
			p = append(p, "size: "+err.Error())
		}
		b.SizeBytes = n
	}
	if w.Duration != nil {
		n, err := wholeNumber(*w.Duration, int64(math.MaxInt64/time.Second))
		if err != nil {
			p = append(p, "duration: "+err.Error())
		}
		b.Duration = time.Duration(n) * time.Second
	}
	if len(p) > 0 {
		return Backup{}, errors.New(strings.Join(p, "; "))
	}
	return b, nil
}

// ParseTask parses the body of POST /manage/backups/backup: {"task":{"id":"..."}}. A missing or
// empty task id is accepted (the create happened; the id is informational) and gives Task{}.
func ParseTask(data []byte) (Task, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Task{}, nil
	}
	var body struct {
		Task *struct {
			ID *string `json:"id"`
		} `json:"task"`
	}
	if err := decodeOne(data, &body); err != nil {
		return Task{}, fmt.Errorf("%w: create answer: %v", ErrMalformedResponse, err)
	}
	if body.Task == nil || body.Task.ID == nil {
		return Task{}, nil
	}
	if len(*body.Task.ID) > maxText {
		return Task{}, fmt.Errorf("%w: create answer: task id is too long", ErrMalformedResponse)
	}
	return Task{ID: *body.Task.ID}, nil
}

// timeLayouts are the created_at forms accepted: RFC 3339 (the documented example is
// "2025-01-27T08:43:46.000Z") and the same without a zone, read as UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// ParseTime parses a created_at value into UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return time.Time{}, fmt.Errorf("created_at %q is not a timestamp", clip(s))
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				break
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("created_at %q is not an RFC 3339 timestamp", clip(s))
}

// wholeNumber reads a non-negative integer, written as an integer or an integral float, at most max.
func wholeNumber(n json.Number, max int64) (int64, error) {
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		if i < 0 || i > max {
			return 0, fmt.Errorf("%d is out of range", i)
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f >= float64(max) {
		return 0, fmt.Errorf("%q is not a whole number in range", clip(n.String()))
	}
	return int64(f), nil
}

// decodeOne decodes exactly one JSON value into v, with numbers kept exact.
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// hasKey reports whether the top-level JSON object in data has the key.
func hasKey(data []byte, key string) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// EncodeProfile returns the x-db-profile value for an instance CRN: the CRN URL-encoded with
// url.QueryEscape, so ':' becomes %3A and '/' %2F, as IBM's SDK tests send it.
func EncodeProfile(instanceCRN string) string { return url.QueryEscape(instanceCRN) }

// LocationScheme prefixes the location keyguard records for a Db2 on Cloud backup.
const LocationScheme = "db2saas://"

// Location names a backup for the catalog: db2saas://<instance CRN>/<backup id>, each part
// escaped with url.PathEscape so that the one '/' between them splits them unambiguously.
func Location(instanceCRN, backupID string) string {
	return LocationScheme + url.PathEscape(instanceCRN) + "/" + url.PathEscape(backupID)
}

// ParseLocation splits a Location back into the instance CRN and the backup id.
func ParseLocation(loc string) (instanceCRN, backupID string, err error) {
	rest, ok := strings.CutPrefix(loc, LocationScheme)
	if !ok {
		return "", "", fmt.Errorf("location %q does not start with %s", clip(loc), LocationScheme)
	}
	a, b, ok := strings.Cut(rest, "/")
	if !ok || a == "" || b == "" || strings.Contains(b, "/") {
		return "", "", fmt.Errorf("location %q is not %s<instance>/<backup>", clip(loc), LocationScheme)
	}
	if instanceCRN, err = url.PathUnescape(a); err != nil {
		return "", "", fmt.Errorf("location %q: instance: %v", clip(loc), err)
	}
	if backupID, err = url.PathUnescape(b); err != nil {
		return "", "", fmt.Errorf("location %q: backup: %v", clip(loc), err)
	}
	return instanceCRN, backupID, nil
}
