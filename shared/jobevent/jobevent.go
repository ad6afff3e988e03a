package jobevent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// Names of the variables a runner job run is started with.
const (
	// VarEvent holds the Event Notifications notification JSON (what EN sets for a job).
	VarEvent = "ibmendata"
	// VarRunID holds the run id, so a runner can name its run before it parses anything.
	VarRunID = "KEYGUARD_RUN_ID"
)

// DefaultSource is the CloudEvents source of the notification when Origin.Source is empty.
const DefaultSource = "keyguard/scheduler"

// DefaultSourceID is the ibmensourceid when Origin.SourceID is empty.
const DefaultSourceID = "keyguard-executor"

// Origin says who the notification claims to come from. The zero value means the defaults.
type Origin struct {
	// Source is the CloudEvents source (receivers de-duplicate on source plus id).
	Source string
	// SourceID is the Event Notifications source id (ibmensourceid).
	SourceID string
}

// Var is one environment variable.
type Var struct {
	Name  string
	Value string
}

// String formats v as NAME=VALUE, the form os/exec takes.
func (v Var) String() string { return v.Name + "=" + v.Value }

// EventID is the CloudEvents id of the backup.started event of a run.
func EventID(runID string) string { return runID + "/started" }

// notification is the Event Notifications notification shape (what EN puts in ibmendata).
type notification struct {
	SpecVersion       string          `json:"specversion"`
	ID                string          `json:"id"`
	Source            string          `json:"source"`
	Type              string          `json:"type"`
	Time              string          `json:"time"`
	Subject           string          `json:"subject,omitempty"`
	DataContentType   string          `json:"datacontenttype"`
	Data              json.RawMessage `json:"data"`
	IBMENSourceID     string          `json:"ibmensourceid"`
	IBMENDefaultShort string          `json:"ibmendefaultshort"`
	IBMENDefaultLong  string          `json:"ibmendefaultlong"`
	IBMENSeverity     string          `json:"ibmenseverity"`
	NotificationID    string          `json:"notification_id"`
}

// Notification returns the Event Notifications notification JSON of run's backup.started event.
// It fails (wrapping events.ErrInvalid) when run does not validate.
func Notification(run events.BackupStarted, o Origin) ([]byte, error) {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.SourceID == "" {
		o.SourceID = DefaultSourceID
	}
	id := EventID(run.RunID)
	ev, err := events.Encode(id, o.Source, run.StartedAt, run)
	if err != nil {
		return nil, fmt.Errorf("job event for run %q: %w", run.RunID, err)
	}
	n := notification{
		SpecVersion:       "1.0",
		ID:                ev.ID,
		Source:            ev.Source,
		Type:              ev.Type,
		Time:              ev.Time.UTC().Format(time.RFC3339Nano),
		Subject:           run.Database,
		DataContentType:   "application/json",
		Data:              ev.Data,
		IBMENSourceID:     o.SourceID,
		IBMENDefaultShort: "Backup started for " + run.Database,
		IBMENDefaultLong: fmt.Sprintf("keyguard started a %s %s backup of %s (run %s)",
			run.Type, run.Mode, run.Database, run.RunID),
		IBMENSeverity:  "LOW",
		NotificationID: notificationID(ev.Source, ev.ID),
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("job event for run %q: encode: %w", run.RunID, err)
	}
	if len(b) > events.MaxBodyBytes {
		return nil, fmt.Errorf("%w: job event for run %q is %d bytes, more than %d", events.ErrTooLarge, run.RunID, len(b), events.MaxBodyBytes)
	}
	return b, nil
}

// Env returns the variables a runner job run is started with: VarEvent, then VarRunID.
func Env(run events.BackupStarted, o Origin) ([]Var, error) {
	body, err := Notification(run, o)
	if err != nil {
		return nil, err
	}
	return []Var{{VarEvent, string(body)}, {VarRunID, run.RunID}}, nil
}

// notificationID is a stable UUID-shaped id (version 8, RFC 9562 variant) for source and id, in
// the form Event Notifications gives its notification_id.
func notificationID(source, id string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + id))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
