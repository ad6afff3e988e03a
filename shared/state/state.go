package state

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/keyguard-dev/keyguard/events"
)

// SchemaVersion is the version of the State layout written by this code.
const SchemaVersion = 1

// MaxSeen bounds the list of recently seen event keys kept for idempotency.
const MaxSeen = 64

// Bounds of the pending alerts: at most MaxPendingAlerts (alerts of one reason and severity
// coalesce into one), each message at most MaxAlertMessage bytes and MaxAlertRelated related
// items. With MaxSeen they keep a state under BudgetBytes whatever happens (see budget_test.go).
const (
	MaxPendingAlerts = 8
	MaxAlertMessage  = 1024
	MaxAlertRelated  = 8
	maxRelatedItem   = 120
)

// BudgetBytes is the documented size budget of one stored state: every list in it is bounded so
// that the worst case (a year of failures while Event Notifications refuses every send, every
// field at its longest) stays under it. MaxEncodedSize, the hard limit, is twice as large.
const BudgetBytes = 32 << 10

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
	// LastExpired is the run whose lease expired last: its late success is still accepted.
	LastExpired *Run `json:"last_expired,omitempty"`

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
	// LastRefusal is the last on-demand request a hold refused (also recorded as the last
	// decision, which the next tick replaces): the one who asked finds it here.
	LastRefusal *Decision `json:"last_refusal,omitempty"`

	// Restore is the restore drill in flight: it holds backups of the database until its record
	// is in the catalog or its lease ends.
	Restore *RestoreRun `json:"restore,omitempty"`
	// DrillSlot is the drill schedule's slot last taken.
	DrillSlot time.Time `json:"drill_slot,omitzero"`
	// LastDrill is how the last drill ended (from its record in the catalog).
	LastDrill *DrillOutcome `json:"last_drill,omitempty"`
	// CheckAlerted names the checks (package check) found critical and alerted on, once per
	// cause until it clears; bounded by the number of checks.
	CheckAlerted []string `json:"check_alerted,omitempty"`
}

// Bounds of CheckAlerted: the checks that may alert from the scheduler (six, short names).
const (
	MaxCheckAlerted = 6
	maxCheckName    = 24
)

// RestoreRun is a restore the scheduler started (a drill).
type RestoreRun struct {
	ID         string    `json:"id"`
	Drill      bool      `json:"drill,omitempty"`
	Target     string    `json:"target,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	LeaseUntil time.Time `json:"lease_until"`
	// Requested is set once Event Notifications accepted the restore.requested that starts
	// it; until then every tick sends it again (the restore job takes one per id).
	Requested bool `json:"requested,omitempty"`
}

// DrillOutcome is how a drill ended.
type DrillOutcome struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Success bool      `json:"success"`
	// Seconds is the measured restore time (the RTO the drill proved).
	Seconds float64 `json:"seconds,omitempty"`
	// Code is Db2's message of a failed drill; its restore record in the catalog says the rest.
	Code string `json:"code,omitempty"`
}

// KeyInfo is what the state knows of the database's root key.
type KeyInfo struct {
	CRN     string          `json:"crn"`
	Version string          `json:"version,omitempty"`
	State   events.KeyState `json:"state,omitempty"`
	// Blocked is set while the key is not usable (suspended, deactivated, destroyed).
	Blocked bool `json:"blocked,omitempty"`
	// RotatedAt is when Version was created (the rotation that made it), from any path.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// StateAt is when State was observed or changed; an older key.state_changed is stale.
	StateAt time.Time `json:"state_at,omitzero"`
	// UnrestorableQueued is set once the alert naming the backups a destroyed key made
	// unrestorable is queued; until then every path that sees the key destroyed tries again.
	UnrestorableQueued bool `json:"unrestorable_queued,omitempty"`
}

// RotationWindow is an open hold on backups while Db2 re-wraps its keys.
type RotationWindow struct {
	FromVersion string `json:"from_version,omitempty"`
	// ToVersion is the version Db2 re-wraps to; empty while unknown (a Cloud Logs alert without
	// a version), until a Key Protect poll fills it in.
	ToVersion string `json:"to_version"`
	// RotatedAt is when the rotation the window is for happened; an older rotation is stale.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	OpenedAt  time.Time `json:"opened_at"`
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
	// KeyCRN and Executor are pinned when the run starts.
	KeyCRN   string `json:"key_crn,omitempty"`
	Executor string `json:"executor,omitempty"`
	// Suspect is set when a rotation began while the run was in flight.
	Suspect bool `json:"suspect,omitempty"`
	// Started is set once the executor accepted the run. Until then every tick asks the executor
	// again (starts are idempotent by run id), so a crash between the state write and the start,
	// or an ambiguous start error, neither loses the run nor starts a second one.
	Started bool `json:"started,omitempty"`
	// StartAttempts counts the starts that failed; StartError is the last one's error.
	StartAttempts int    `json:"start_attempts,omitempty"`
	StartError    string `json:"start_error,omitempty"`
	// RequestedBy and Reason record who asked for an on-demand backup, and why.
	RequestedBy string `json:"requested_by,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Event is the backup.started event of r, a run of database db.
func (r Run) Event(db string) events.BackupStarted {
	e := events.BackupStarted{Database: db, RunID: r.ID, Type: r.Type, Mode: r.Mode, Slot: r.Slot, StartedAt: r.StartedAt,
		LeaseUntil: r.LeaseUntil, KeyCRN: r.KeyCRN, KeyVersion: r.KeyVersion, Executor: r.Executor}
	if r.Type == events.Tablespace {
		// A run of the table space schedule is a full table space backup.
		e.Type, e.Scope = events.Full, events.ScopeTablespace
	}
	return e
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
	// RequestedBy and Reason are the run's (Run.RequestedBy, Run.Reason): who asked for an
	// on-demand backup and why, kept with its outcome.
	RequestedBy string `json:"requested_by,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Retry is a planned retry of a failed run.
type Retry struct {
	At      time.Time         `json:"at"`
	Type    events.BackupType `json:"type"`
	Slot    time.Time         `json:"slot"`
	Attempt int               `json:"attempt"`
}

// PendingAlert is an alert to send, with the id that makes its delivery idempotent. Count is how
// many alerts of its reason and severity it stands for (earlier ones coalesced into it).
type PendingAlert struct {
	ID    string       `json:"id"`
	Alert events.Alert `json:"alert"`
	Count int          `json:"count,omitempty"`
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

// AddAlert queues an alert unless one with the same id is already pending. The list stays
// bounded: an alert of the same reason and severity as a pending one replaces it (the newer
// says more; Count keeps how many it stands for), the message and related items are cut to
// their bounds, and beyond MaxPendingAlerts the oldest of the least severe is dropped.
func (s *State) AddAlert(id string, a events.Alert) {
	for _, p := range s.PendingAlerts {
		if p.ID == id {
			return
		}
	}
	a = boundAlert(a)
	for i, p := range s.PendingAlerts {
		if p.Alert.Reason == a.Reason && p.Alert.Severity == a.Severity {
			n := max(p.Count, 1) + 1
			s.PendingAlerts = append(s.PendingAlerts[:i:i], s.PendingAlerts[i+1:]...)
			s.PendingAlerts = append(s.PendingAlerts, PendingAlert{ID: id, Alert: noteEarlier(a, n-1), Count: n})
			return
		}
	}
	s.PendingAlerts = append(s.PendingAlerts, PendingAlert{ID: id, Alert: a})
	for len(s.PendingAlerts) > MaxPendingAlerts {
		drop := 0
		for i, p := range s.PendingAlerts {
			if rank(p.Alert.Severity) > rank(s.PendingAlerts[drop].Alert.Severity) {
				drop = i
			}
		}
		s.PendingAlerts = append(s.PendingAlerts[:drop:drop], s.PendingAlerts[drop+1:]...)
	}
}

// rank orders severities, most severe first.
func rank(s events.Severity) int {
	switch s {
	case events.Critical:
		return 0
	case events.Warning:
		return 1
	}
	return 2
}

// boundAlert cuts a's message and related items to the state's bounds.
func boundAlert(a events.Alert) events.Alert {
	a.Message = Truncate(a.Message, MaxAlertMessage)
	if len(a.Related) > MaxAlertRelated {
		a.Related = append(a.Related[:MaxAlertRelated:MaxAlertRelated], fmt.Sprintf("... and %d more", len(a.Related)-MaxAlertRelated))
	}
	rel := make([]string, len(a.Related))
	for i, r := range a.Related {
		rel[i] = Truncate(r, maxRelatedItem)
	}
	if len(rel) == 0 {
		rel = nil
	}
	a.Related = rel
	return a
}

// noteEarlier says in a's message that it stands for n earlier alerts too.
func noteEarlier(a events.Alert, n int) events.Alert {
	a.Message = Truncate(fmt.Sprintf("%s (and %d earlier alert(s) of this kind not yet delivered)", a.Message, n), MaxAlertMessage)
	return a
}

// Truncate cuts s to at most n bytes, on a UTF-8 boundary, marking the cut with "...".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 3 {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n]
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
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

// MaxText bounds every free-text field a state keeps (messages, reasons, errors).
const MaxText = 512

// bound cuts every free-text field of s to MaxText and every list to its bound, so that no
// handler can write a state over its budget. Update calls it before every write.
func (s *State) bound() {
	for _, o := range []*Outcome{s.LastSuccess, s.LastFailure} {
		if o != nil {
			o.Message, o.Reason = Truncate(o.Message, MaxText), Truncate(o.Reason, MaxText)
			o.RequestedBy = Truncate(o.RequestedBy, MaxText)
		}
	}
	for _, r := range []*Run{s.Run, s.LastExpired} {
		if r != nil {
			r.StartError, r.Reason = Truncate(r.StartError, MaxText), Truncate(r.Reason, MaxText)
			r.RequestedBy = Truncate(r.RequestedBy, MaxText)
		}
	}
	for _, d := range []*Decision{s.LastDecision, s.LastRefusal} {
		if d != nil {
			d.Reason = Truncate(d.Reason, MaxText)
		}
	}
	if s.LastDrill != nil {
		s.LastDrill.Code = Truncate(s.LastDrill.Code, 32)
	}
	if len(s.CheckAlerted) > MaxCheckAlerted {
		s.CheckAlerted = s.CheckAlerted[:MaxCheckAlerted]
	}
	for i, c := range s.CheckAlerted {
		s.CheckAlerted[i] = Truncate(c, maxCheckName)
	}
	s.NeedFullReason = Truncate(s.NeedFullReason, MaxText)
	if n := len(s.Seen) - MaxSeen; n > 0 {
		s.Seen = append([]string(nil), s.Seen[n:]...)
	}
	for i := range s.PendingAlerts {
		s.PendingAlerts[i].Alert = boundAlert(s.PendingAlerts[i].Alert)
	}
	if n := len(s.PendingAlerts) - MaxPendingAlerts; n > 0 {
		s.PendingAlerts = append([]PendingAlert(nil), s.PendingAlerts[n:]...)
	}
}
