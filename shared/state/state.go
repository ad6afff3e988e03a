package state

import (
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// SchemaVersion is the version of the State layout written by this code.
const SchemaVersion = 1

// MaxSeen bounds the list of recently seen event keys kept for idempotency.
const MaxSeen = 64

// State is the coordination object of one database, stored as state/<database>.json. It stays
// small whatever the history: every list in it is bounded.
type State struct {
	SchemaVersion int    `json:"schema_version"`
	Revision      int64  `json:"revision"`
	Database      string `json:"database"`
	// WriteID is a random token set by each successful write, so a writer can tell its own write
	// (e.g. an SDK retry answered 412) from someone else's.
	WriteID string `json:"write_id,omitempty"`

	Key    KeyInfo         `json:"key"`
	Window *RotationWindow `json:"rotation_window,omitempty"`
	Run    *Run            `json:"run,omitempty"`

	LastSuccess         *Outcome `json:"last_success,omitempty"`
	LastFailure         *Outcome `json:"last_failure,omitempty"`
	ConsecutiveFailures int      `json:"consecutive_failures"`
	NextRetry           *Retry   `json:"next_retry,omitempty"`
	// NeedFull forces the next backup to be full (after a rotation window, or with no full yet).
	NeedFull       bool   `json:"need_full,omitempty"`
	NeedFullReason string `json:"need_full_reason,omitempty"`

	// Slots holds, per backup type, the schedule slot last taken.
	Slots map[events.BackupType]time.Time `json:"slots,omitempty"`
	// Seen holds the keys (source + id digests) of recently handled events, newest last.
	Seen []string `json:"seen,omitempty"`
	// PendingAlerts are alerts decided but not yet confirmed sent; they are resent until sent.
	PendingAlerts []PendingAlert `json:"pending_alerts,omitempty"`
	LastDecision  *Decision      `json:"last_decision,omitempty"`
}

// KeyInfo is what the state knows of the database's root key.
type KeyInfo struct {
	CRN     string          `json:"crn"`
	Version string          `json:"version,omitempty"`
	State   events.KeyState `json:"state,omitempty"`
	// Blocked is set while the key is not usable (suspended, deactivated, destroyed).
	Blocked bool `json:"blocked,omitempty"`
	// RotatedAt is the latest rotation time seen, from any path.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
}

// RotationWindow is an open hold on backups while Db2 re-wraps its keys.
type RotationWindow struct {
	FromVersion string    `json:"from_version,omitempty"`
	ToVersion   string    `json:"to_version"`
	OpenedAt    time.Time `json:"opened_at"`
	// MinCloseAt is the earliest close (settle time); MaxCloseAt the latest.
	MinCloseAt time.Time `json:"min_close_at"`
	MaxCloseAt time.Time `json:"max_close_at"`
	DetectedBy string    `json:"detected_by,omitempty"`
}

// Run is the backup in flight.
type Run struct {
	ID         string            `json:"id"`
	Type       events.BackupType `json:"type"`
	Mode       events.Mode       `json:"mode"`
	Slot       time.Time         `json:"slot"`
	Attempt    int               `json:"attempt"`
	StartedAt  time.Time         `json:"started_at"`
	LeaseUntil time.Time         `json:"lease_until"`
	KeyVersion string            `json:"key_version,omitempty"`
	// Suspect is set when a rotation began while the run was in flight.
	Suspect bool `json:"suspect,omitempty"`
}

// Outcome records how a run ended.
type Outcome struct {
	RunID      string              `json:"run_id"`
	Type       events.BackupType   `json:"type"`
	At         time.Time           `json:"at"`
	KeyVersion string              `json:"key_version,omitempty"`
	Image      string              `json:"image,omitempty"`
	Class      events.FailureClass `json:"class,omitempty"`
	Message    string              `json:"message,omitempty"`
}

// Retry is a planned retry of a failed run.
type Retry struct {
	At      time.Time         `json:"at"`
	Type    events.BackupType `json:"type"`
	Slot    time.Time         `json:"slot"`
	Attempt int               `json:"attempt"`
}

// PendingAlert is an alert to send, with the id that makes its delivery idempotent.
type PendingAlert struct {
	ID    string       `json:"id"`
	Alert events.Alert `json:"alert"`
}

// Decision is the scheduler's last decision and its reason, kept for operators.
type Decision struct {
	At     time.Time         `json:"at"`
	Action string            `json:"action"`
	Type   events.BackupType `json:"type,omitempty"`
	Reason string            `json:"reason"`
}

// New returns the initial state of a database.
func New(database, keyCRN string) *State {
	return &State{SchemaVersion: SchemaVersion, Database: database, Key: KeyInfo{CRN: keyCRN}}
}

// HasSeen reports whether the event key k was handled recently.
func (s *State) HasSeen(k string) bool {
	for _, x := range s.Seen {
		if x == k {
			return true
		}
	}
	return false
}

// MarkSeen records k, dropping the oldest keys beyond MaxSeen.
func (s *State) MarkSeen(k string) {
	if s.HasSeen(k) {
		return
	}
	s.Seen = append(s.Seen, k)
	if n := len(s.Seen) - MaxSeen; n > 0 {
		s.Seen = append([]string(nil), s.Seen[n:]...)
	}
}

// AddAlert queues an alert unless one with the same id is already pending.
func (s *State) AddAlert(id string, a events.Alert) {
	for _, p := range s.PendingAlerts {
		if p.ID == id {
			return
		}
	}
	s.PendingAlerts = append(s.PendingAlerts, PendingAlert{ID: id, Alert: a})
}

// RemoveAlert drops the pending alert with the given id.
func (s *State) RemoveAlert(id string) {
	out := s.PendingAlerts[:0]
	for _, p := range s.PendingAlerts {
		if p.ID != id {
			out = append(out, p)
		}
	}
	s.PendingAlerts = out
	if len(s.PendingAlerts) == 0 {
		s.PendingAlerts = nil
	}
}
