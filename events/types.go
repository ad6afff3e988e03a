package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix is the reverse-DNS prefix of every event type keyguard defines.
const Prefix = "dev.keyguard."

// keyguard's own event types.
const (
	TypeKeyRotated       = Prefix + "key.rotated"
	TypeKeyStateChanged  = Prefix + "key.state_changed"
	TypeRotationSettled  = Prefix + "rotation.settled"
	TypeBackupRequested  = Prefix + "backup.requested"
	TypeBackupStarted    = Prefix + "backup.started"
	TypeBackupCompleted  = Prefix + "backup.completed"
	TypeBackupFailed     = Prefix + "backup.failed"
	TypeRestoreRequested = Prefix + "restore.requested"
	TypeRestoreCompleted = Prefix + "restore.completed"
	TypeAlert            = Prefix + "alert"
	// TypeTick is the type keyguard's own ticker (local stack, tests) gives a scheduler tick.
	TypeTick = Prefix + "tick"
	// TypeTickShard asks the scheduler to tick one shard of a fleet too large for one delivery.
	TypeTickShard = Prefix + "tick.shard"
	// TypePreflight proves a deployment's event routes: every function that receives it records
	// its receipt (see Preflight).
	TypePreflight = Prefix + "preflight"
)

// Platform event types keyguard accepts.
const (
	// TypeKnativePing is what Code Engine cron (Knative ping source) sends.
	TypeKnativePing = "dev.knative.sources.ping"
	// CloudLogsAlertPrefix and CloudLogsAlertSuffix bracket an IBM Cloud Logs alert notification
	// type: com.ibm.cloud.logs.<alert name>:AlertTriggered.
	CloudLogsAlertPrefix = "com.ibm.cloud.logs."
	CloudLogsAlertSuffix = ":AlertTriggered"
)

// IsCloudLogsAlert reports whether t is a Cloud Logs alert notification type.
func IsCloudLogsAlert(t string) bool {
	return strings.HasPrefix(t, CloudLogsAlertPrefix) && strings.HasSuffix(t, CloudLogsAlertSuffix) &&
		len(t) > len(CloudLogsAlertPrefix)+len(CloudLogsAlertSuffix)
}

// BackupType is the Db2 backup granularity.
type BackupType string

// Backup types. Incremental is Db2's cumulative incremental; delta is incremental since the last
// backup of any type.
const (
	Full        BackupType = "full"
	Incremental BackupType = "incremental"
	Delta       BackupType = "delta"
)

// Tablespace is the type of a run of a database's table space schedule: a full table space
// backup of the table spaces the fleet policy lists, beside the database's own backups. It is
// not a Db2 backup type (Valid is false): its backup.started event says type full, scope
// tablespace. It ranks after the database types.
const Tablespace BackupType = "tablespace"

// Scopes of a backup.started event.
const (
	ScopeDatabase   = "database"
	ScopeTablespace = "tablespace"
)

// Valid reports whether t is a known backup type.
func (t BackupType) Valid() bool { return t == Full || t == Incremental || t == Delta }

// Rank orders types for precedence when several slots fall due at once: full first.
func (t BackupType) Rank() int {
	switch t {
	case Full:
		return 0
	case Incremental:
		return 1
	case Delta:
		return 2
	}
	return 3
}

// Mode is online (database stays available, needs archive logging) or offline.
type Mode string

// Backup modes.
const (
	Online  Mode = "online"
	Offline Mode = "offline"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == Online || m == Offline }

// FailureClass says what a failed backup needs next.
type FailureClass string

// Failure classes.
const (
	// Transient failures are retried with backoff.
	Transient FailureClass = "transient"
	// Rotation failures come from key material in transition; they reopen or extend the hold.
	Rotation FailureClass = "rotation"
	// Configuration failures (archive logging off, TRACKMOD off, no space) need an operator.
	Configuration FailureClass = "configuration"
	// Permanent failures are not retried; they alert at once.
	Permanent FailureClass = "permanent"
)

// Valid reports whether c is a known class.
func (c FailureClass) Valid() bool {
	return c == Transient || c == Rotation || c == Configuration || c == Permanent
}

// Retryable reports whether a failure of class c is worth retrying on a backoff schedule.
func (c FailureClass) Retryable() bool { return c == Transient || c == Rotation }

// KeyState is a Key Protect key state, by its documented name.
type KeyState string

// Key Protect key states (0 pre-activation is not used by root keys in service).
const (
	KeyActive      KeyState = "active"
	KeySuspended   KeyState = "suspended"
	KeyDeactivated KeyState = "deactivated"
	KeyDestroyed   KeyState = "destroyed"
)

// Valid reports whether s is a known key state.
func (s KeyState) Valid() bool {
	return s == KeyActive || s == KeySuspended || s == KeyDeactivated || s == KeyDestroyed
}

// Usable reports whether backups may be protected by a key in state s.
func (s KeyState) Usable() bool { return s == KeyActive }

// Severity of an alert.
type Severity string

// Alert severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Valid reports whether s is a known severity.
func (s Severity) Valid() bool { return s == Critical || s == Warning || s == Info }

// Payload is implemented by every keyguard event's data.
type Payload interface {
	// EventType is the CloudEvents type the payload travels under.
	EventType() string
	// Validate returns an error naming every field that is missing or wrong.
	Validate() error
}

// KeyRotated says a root key has a new version.
type KeyRotated struct {
	KeyCRN     string `json:"key_crn"`
	OldVersion string `json:"old_version,omitempty"`
	// NewVersion is empty only for a rotation a Cloud Logs alert reported without one.
	NewVersion string    `json:"new_version,omitempty"`
	RotatedAt  time.Time `json:"rotated_at"`
	// DetectedBy is poll, cloud-logs, managed, or keystore: a Db2 native-encryption master key
	// rotation (ADMIN_ROTATE_MASTER_KEY) seen by the runner as a changed keystore; versions are
	// then keystore digests.
	DetectedBy string `json:"detected_by"`
	// ResumeAfter marks a continuation (see ResumeAfter).
	ResumeAfter ResumeAfter `json:"resume_after,omitempty"`
}

// ResumeAfter, on a key event, says the databases of the key up to and including this name (in
// name order) already have the event applied: set on the continuation the rotation function
// publishes when a key protects more databases than one delivery's budget reaches.
type ResumeAfter = string

// DetectedByKeystore marks a master-key rotation found in a self-managed database's keystore.
const DetectedByKeystore = "keystore"

// KeyStateChanged says a root key changed state (disabled, enabled, deleted, restored).
type KeyStateChanged struct {
	KeyCRN    string    `json:"key_crn"`
	State     KeyState  `json:"state"`
	Previous  KeyState  `json:"previous,omitempty"`
	ChangedAt time.Time `json:"changed_at"`
	// ResumeAfter marks a continuation (see ResumeAfter).
	ResumeAfter ResumeAfter `json:"resume_after,omitempty"`
}

// TickShard asks the scheduler to tick one shard of the fleet: the databases whose key hashes
// to Shard of Shards (config.Fleet.Shard), so that every key is polled by one shard. A shard
// that cannot finish within one delivery's budget publishes itself again with ResumeAfter, the
// last database (in shard order) it decided.
type TickShard struct {
	// Tick is the time of the tick that split the fleet.
	Tick        time.Time `json:"tick"`
	Shard       int       `json:"shard"`
	Shards      int       `json:"shards"`
	ResumeAfter string    `json:"resume_after,omitempty"`
}

// Preflight is a deployment preflight's probe. Every function it reaches (through any of its
// routes) records its receipt as preflight/<run_id>/<function>.json, create-only, and answers
// at once, so the preflight that published it learns which routes deliver. With Mode "run", the
// scheduler also runs the preflight's checks itself and logs the report (on demand, e.g. from
// an operator with only Event Notifications at hand); the probes that run publishes are of mode
// "probe", so a run never starts another.
type Preflight struct {
	// RunID names the preflight run: 1-64 of [A-Za-z0-9._-], since it is part of object keys.
	RunID       string `json:"run_id"`
	RequestedBy string `json:"requested_by"`
	// Mode is "probe" (default when empty) or "run".
	Mode string `json:"mode,omitempty"`
}

// Preflight modes.
const (
	PreflightProbe = "probe"
	PreflightRun   = "run"
)

// ValidRunID reports whether s can name a preflight run (and so be part of an object key).
func ValidRunID(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RotationSettled says a database's rotation window closed.
type RotationSettled struct {
	Database   string    `json:"database"`
	KeyCRN     string    `json:"key_crn"`
	KeyVersion string    `json:"key_version"`
	OpenedAt   time.Time `json:"opened_at"`
	ClosedAt   time.Time `json:"closed_at"`
	// Confirmed is true when every registration reported the new version; false when the window
	// closed at its maximum without confirmation.
	Confirmed bool   `json:"confirmed"`
	Reason    string `json:"reason"`
}

// BackupRequested asks for a backup now (operator, managed rotation).
type BackupRequested struct {
	Database    string     `json:"database"`
	Type        BackupType `json:"type"`
	Mode        Mode       `json:"mode,omitempty"`
	RequestedBy string     `json:"requested_by"`
	Reason      string     `json:"reason,omitempty"`
}

// BackupStarted says the scheduler started a run.
type BackupStarted struct {
	Database   string     `json:"database"`
	RunID      string     `json:"run_id"`
	Type       BackupType `json:"type"`
	Mode       Mode       `json:"mode"`
	Slot       time.Time  `json:"slot"`
	StartedAt  time.Time  `json:"started_at"`
	LeaseUntil time.Time  `json:"lease_until"`
	KeyCRN     string     `json:"key_crn"`
	KeyVersion string     `json:"key_version,omitempty"`
	Executor   string     `json:"executor"`
	// Scope is "tablespace" for a run of the table space schedule (a full table space backup
	// of the table spaces the fleet policy lists); empty or "database" otherwise.
	Scope string `json:"scope,omitempty"`
}

// BackupCompleted says a run produced a verified image.
type BackupCompleted struct {
	Database       string     `json:"database"`
	RunID          string     `json:"run_id"`
	Type           BackupType `json:"type"`
	Mode           Mode       `json:"mode"`
	StartedAt      time.Time  `json:"started_at"`
	EndedAt        time.Time  `json:"ended_at"`
	ImageTimestamp string     `json:"image_timestamp"`
	Location       string     `json:"location,omitempty"`
	SizeBytes      int64      `json:"size_bytes"`
	SHA256         string     `json:"sha256,omitempty"`
	KeyCRN         string     `json:"key_crn"`
	KeyVersion     string     `json:"key_version,omitempty"`
	Verified       bool       `json:"verified"`
	CatalogKey     string     `json:"catalog_key,omitempty"`
	// Note says how the backup differs from what was asked and why (e.g. a full taken instead
	// of a delta because Db2 would have built the delta on a discarded image), as the catalog
	// entry's notes record it; at most 4096 bytes.
	Note string `json:"note,omitempty"`
}

// BackupFailed says a run failed, with a classified reason.
type BackupFailed struct {
	Database  string       `json:"database"`
	RunID     string       `json:"run_id"`
	Type      BackupType   `json:"type"`
	Mode      Mode         `json:"mode,omitempty"`
	StartedAt time.Time    `json:"started_at"`
	EndedAt   time.Time    `json:"ended_at"`
	Class     FailureClass `json:"class"`
	Code      string       `json:"code,omitempty"`
	Message   string       `json:"message"`
	// DiscardedImage is the timestamp (yyyymmddhhmmss) of the image Db2 wrote before the run
	// failed and that keyguard discarded. Db2's history still counts it, so its next delta or
	// incremental would build on it: the next backup must be a full (need_full).
	DiscardedImage string `json:"discarded_image,omitempty"`
}

// RestoreRequested asks for a restore run: of Database's images, by default its newest
// restorable point rolled forward to the end of logs, in place.
type RestoreRequested struct {
	Database string `json:"database"`
	// Target, when set, is the image (timestamp) to restore, or none newer.
	Target      string    `json:"target,omitempty"`
	PointInTime time.Time `json:"point_in_time,omitzero"`
	RequestedBy string    `json:"requested_by"`
	// ID names the restore (its record in the catalog); derived from the event when empty.
	ID string `json:"id,omitempty"`
	// Into is the Db2 alias of a new database to restore into (RESTORE ... INTO); empty
	// restores in place. An existing database of that name is replaced only with Replace.
	Into    string `json:"into,omitempty"`
	Replace bool   `json:"replace,omitempty"`
	// StoragePaths redirect the restored database's storage group (a redirected restore).
	StoragePaths []string `json:"storage_paths,omitempty"`
	// Force disconnects the applications of a database restored in place (QUIESCE ... FORCE
	// CONNECTIONS); without it a restore refuses while applications are connected.
	Force bool `json:"force,omitempty"`
	// WithoutRollForward restores an offline image as it is (WITHOUT ROLLING FORWARD).
	WithoutRollForward bool `json:"without_roll_forward,omitempty"`
	// Probe is an SQL query run on the restored database; Drop drops it afterwards (a drill).
	Probe string `json:"probe,omitempty"`
	Drop  bool   `json:"drop,omitempty"`
	// Drill marks a scheduled restore drill.
	Drill bool `json:"drill,omitempty"`
	// Tablespaces, when set, restores only these table spaces of the database, in place and
	// online, from the newest image that holds them (a table space or a database image), then
	// rolls them forward to the end of the logs.
	Tablespaces []string `json:"tablespaces,omitempty"`
}

// RestoreCompleted says a restore finished.
type RestoreCompleted struct {
	Database string   `json:"database"`
	Images   []string `json:"images"`
	Success  bool     `json:"success"`
	Message  string   `json:"message,omitempty"`
	// ID is the restore's id (its record in the catalog); Into the database restored into
	// (empty: in place); Drill marks a restore drill.
	ID    string `json:"id,omitempty"`
	Into  string `json:"into,omitempty"`
	Drill bool   `json:"drill,omitempty"`
	// Class and Code classify a failure (Db2's message identifier, e.g. SQL4970N).
	Class FailureClass `json:"class,omitempty"`
	Code  string       `json:"code,omitempty"`
	// Seconds is the measured restore time: from the first download to the database usable.
	Seconds float64 `json:"seconds,omitempty"`
	// ProbeResult is the first row the probe query returned.
	ProbeResult string `json:"probe_result,omitempty"`
}

// Alert is what keyguard tells a person.
type Alert struct {
	Severity Severity `json:"severity"`
	Database string   `json:"database,omitempty"`
	KeyCRN   string   `json:"key_crn,omitempty"`
	// Reason is a short machine-readable cause, e.g. backup-failures, key-state, unrestorable.
	Reason   string   `json:"reason"`
	Message  string   `json:"message"`
	RunID    string   `json:"run_id,omitempty"`
	Failures int      `json:"failures,omitempty"`
	Related  []string `json:"related,omitempty"`
}

// EventType implementations.
func (KeyRotated) EventType() string       { return TypeKeyRotated }
func (KeyStateChanged) EventType() string  { return TypeKeyStateChanged }
func (RotationSettled) EventType() string  { return TypeRotationSettled }
func (BackupRequested) EventType() string  { return TypeBackupRequested }
func (BackupStarted) EventType() string    { return TypeBackupStarted }
func (BackupCompleted) EventType() string  { return TypeBackupCompleted }
func (BackupFailed) EventType() string     { return TypeBackupFailed }
func (RestoreRequested) EventType() string { return TypeRestoreRequested }
func (RestoreCompleted) EventType() string { return TypeRestoreCompleted }
func (Alert) EventType() string            { return TypeAlert }
func (TickShard) EventType() string        { return TypeTickShard }
func (Preflight) EventType() string        { return TypePreflight }

// problems collects validation messages.
type problems []string

func (p *problems) need(ok bool, format string, args ...any) {
	if !ok {
		*p = append(*p, fmt.Sprintf(format, args...))
	}
}

func (p problems) err(typ string) error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalid, typ, strings.Join(p, "; "))
}

const maxField = 1024

func text(s string) bool { return s != "" && len(s) <= maxField }

// Validate implementations.

func (e KeyRotated) Validate() error {
	var p problems
	p.need(text(e.KeyCRN), "key_crn is required")
	p.need(text(e.NewVersion) || (e.NewVersion == "" && e.DetectedBy == "cloud-logs"), "new_version is required (only a Cloud Logs alert may lack it)")
	p.need(e.OldVersion == "" || e.OldVersion != e.NewVersion, "old_version equals new_version")
	p.need(!e.RotatedAt.IsZero(), "rotated_at is required")
	p.need(e.DetectedBy == "poll" || e.DetectedBy == "cloud-logs" || e.DetectedBy == "managed" || e.DetectedBy == DetectedByKeystore,
		"detected_by must be poll, cloud-logs, managed or keystore")
	return p.err(TypeKeyRotated)
}

func (e KeyStateChanged) Validate() error {
	var p problems
	p.need(text(e.KeyCRN), "key_crn is required")
	p.need(e.State.Valid(), "state must be active, suspended, deactivated or destroyed")
	p.need(e.Previous == "" || e.Previous.Valid(), "previous is not a key state")
	p.need(!e.ChangedAt.IsZero(), "changed_at is required")
	return p.err(TypeKeyStateChanged)
}

func (e RotationSettled) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(text(e.KeyCRN), "key_crn is required")
	p.need(text(e.KeyVersion), "key_version is required")
	p.need(!e.OpenedAt.IsZero() && !e.ClosedAt.IsZero(), "opened_at and closed_at are required")
	p.need(!e.ClosedAt.Before(e.OpenedAt), "closed_at is before opened_at")
	return p.err(TypeRotationSettled)
}

func (e BackupRequested) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(e.Type.Valid(), "type must be full, incremental or delta")
	p.need(e.Mode == "" || e.Mode.Valid(), "mode must be online or offline")
	p.need(text(e.RequestedBy), "requested_by is required")
	return p.err(TypeBackupRequested)
}

func (e BackupStarted) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(text(e.RunID), "run_id is required")
	p.need(e.Type.Valid(), "type must be full, incremental or delta")
	p.need(e.Mode.Valid(), "mode must be online or offline")
	p.need(!e.StartedAt.IsZero(), "started_at is required")
	p.need(e.LeaseUntil.After(e.StartedAt), "lease_until must be after started_at")
	p.need(text(e.KeyCRN), "key_crn is required")
	p.need(text(e.Executor), "executor is required")
	p.need(e.Scope == "" || e.Scope == ScopeDatabase || e.Scope == ScopeTablespace, "scope must be database or tablespace")
	p.need(e.Scope != ScopeTablespace || e.Type == Full, "a table space run is a full backup")
	return p.err(TypeBackupStarted)
}

func (e BackupCompleted) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(text(e.RunID), "run_id is required")
	p.need(e.Type.Valid(), "type must be full, incremental or delta")
	p.need(e.Mode.Valid(), "mode must be online or offline")
	p.need(!e.StartedAt.IsZero() && !e.EndedAt.IsZero(), "started_at and ended_at are required")
	p.need(!e.EndedAt.Before(e.StartedAt), "ended_at is before started_at")
	p.need(validImageTimestamp(e.ImageTimestamp), "image_timestamp must be 14 digits (yyyymmddhhmmss)")
	p.need(e.SizeBytes >= 0, "size_bytes is negative")
	p.need(e.SHA256 == "" || validHex(e.SHA256, 64), "sha256 must be 64 hex digits")
	p.need(text(e.KeyCRN), "key_crn is required")
	p.need(len(e.Note) <= 4*maxField, "note is longer than 4096 bytes")
	return p.err(TypeBackupCompleted)
}

func (e BackupFailed) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(text(e.RunID), "run_id is required")
	p.need(e.Type.Valid(), "type must be full, incremental or delta")
	p.need(e.Mode == "" || e.Mode.Valid(), "mode must be online or offline")
	p.need(!e.EndedAt.IsZero(), "ended_at is required")
	p.need(e.Class.Valid(), "class must be transient, rotation, configuration or permanent")
	p.need(e.Message != "" && len(e.Message) <= 4*maxField, "message is required (at most 4096 bytes)")
	p.need(e.DiscardedImage == "" || validImageTimestamp(e.DiscardedImage), "discarded_image must be 14 digits (yyyymmddhhmmss)")
	return p.err(TypeBackupFailed)
}

func (e RestoreRequested) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(text(e.RequestedBy), "requested_by is required")
	p.need(e.Target == "" || validImageTimestamp(e.Target), "target must be 14 digits (yyyymmddhhmmss)")
	p.need(len(e.ID) <= 64, "id is at most 64 characters")
	p.need(len(e.Into) <= 8, "into is a Db2 alias (at most 8 characters)")
	p.need(len(e.StoragePaths) <= 16, "at most 16 storage paths")
	p.need(len(e.Probe) <= maxField, "probe is at most 1024 bytes")
	p.need(!e.WithoutRollForward || e.PointInTime.IsZero(), "without_roll_forward and point_in_time exclude each other")
	p.need(!e.Drop || e.Into != "", "drop needs into: only a database restored into may be dropped")
	p.need(len(e.Tablespaces) <= 64, "at most 64 table spaces")
	for _, ts := range e.Tablespaces {
		p.need(text(ts) && len(ts) <= 128, "table space names are 1-128 bytes")
	}
	p.need(len(e.Tablespaces) == 0 || e.Into == "" && e.PointInTime.IsZero() && !e.WithoutRollForward && !e.Drill,
		"a table space restore is in place, to the end of the logs")
	return p.err(TypeRestoreRequested)
}

func (e RestoreCompleted) Validate() error {
	var p problems
	p.need(text(e.Database), "database is required")
	p.need(len(e.Images) > 0, "images must name at least one image")
	p.need(e.Class == "" || e.Class.Valid(), "class must be transient, rotation, configuration or permanent")
	p.need(e.Seconds >= 0, "seconds is negative")
	return p.err(TypeRestoreCompleted)
}

func (e Alert) Validate() error {
	var p problems
	p.need(e.Severity.Valid(), "severity must be critical, warning or info")
	p.need(text(e.Reason), "reason is required")
	p.need(e.Message != "" && len(e.Message) <= 4*maxField, "message is required (at most 4096 bytes)")
	p.need(e.Failures >= 0, "failures is negative")
	return p.err(TypeAlert)
}

func (e TickShard) Validate() error {
	var p problems
	p.need(!e.Tick.IsZero(), "tick is required")
	p.need(e.Shards >= 1 && e.Shards <= MaxShards, "shards must be 1-%d", MaxShards)
	p.need(e.Shard >= 0 && e.Shard < e.Shards, "shard must be 0 to shards-1")
	p.need(len(e.ResumeAfter) <= maxField, "resume_after is at most 1024 bytes")
	return p.err(TypeTickShard)
}

func (e Preflight) Validate() error {
	var p problems
	p.need(ValidRunID(e.RunID), "run_id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
	p.need(text(e.RequestedBy), "requested_by is required")
	p.need(e.Mode == "" || e.Mode == PreflightProbe || e.Mode == PreflightRun, "mode must be probe or run")
	return p.err(TypePreflight)
}

// MaxShards bounds how many shards a tick may split a fleet into.
const MaxShards = 4096

func validImageTimestamp(s string) bool {
	if len(s) != 14 {
		return false
	}
	_, err := time.Parse("20060102150405", s)
	return err == nil
}

func validHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Errors returned by the decoders. Callers map ErrInvalid, ErrUnknownType and ErrTooLarge to a 4xx.
var (
	ErrInvalid     = errors.New("invalid event")
	ErrUnknownType = errors.New("unknown event type")
	ErrTooLarge    = errors.New("event too large")
)

// newPayload returns a pointer to the zero payload for a keyguard event type.
func newPayload(typ string) (Payload, bool) {
	switch typ {
	case TypeKeyRotated:
		return &KeyRotated{}, true
	case TypeKeyStateChanged:
		return &KeyStateChanged{}, true
	case TypeRotationSettled:
		return &RotationSettled{}, true
	case TypeBackupRequested:
		return &BackupRequested{}, true
	case TypeBackupStarted:
		return &BackupStarted{}, true
	case TypeBackupCompleted:
		return &BackupCompleted{}, true
	case TypeBackupFailed:
		return &BackupFailed{}, true
	case TypeRestoreRequested:
		return &RestoreRequested{}, true
	case TypeRestoreCompleted:
		return &RestoreCompleted{}, true
	case TypeAlert:
		return &Alert{}, true
	case TypeTickShard:
		return &TickShard{}, true
	case TypePreflight:
		return &Preflight{}, true
	}
	return nil, false
}

// Types lists keyguard's own event types with payloads, in a stable order.
func Types() []string {
	return []string{TypeKeyRotated, TypeKeyStateChanged, TypeRotationSettled, TypeBackupRequested,
		TypeBackupStarted, TypeBackupCompleted, TypeBackupFailed, TypeRestoreRequested,
		TypeRestoreCompleted, TypeAlert, TypeTickShard, TypePreflight}
}

// DecodeData parses the data of a keyguard event of type typ, rejecting unknown fields, and
// validates it. It returns a pointer to the payload type (e.g. *BackupCompleted).
func DecodeData(typ string, data []byte) (Payload, error) {
	p, ok := newPayload(typ)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s: data is empty", ErrInvalid, typ)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, typ, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s: trailing data after the JSON object", ErrInvalid, typ)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}
