package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// MaxBodyBytes is the largest event body any function accepts (256 KiB).
const MaxBodyBytes = 256 << 10

// Shape says how an event reached a function.
type Shape string

// Shapes of inbound events.
const (
	ShapeBinary     Shape = "binary-cloudevent"     // ce-* headers, data in the body
	ShapeStructured Shape = "structured-cloudevent" // application/cloudevents+json body
	ShapeEN         Shape = "event-notifications"   // plain EN notification JSON (ibmen* fields)
	ShapeJobEN      Shape = "job-ibmendata"         // Code Engine job, EN notification in ibmendata
	ShapeJobCE      Shape = "job-ce-env"            // Code Engine job, CE_* variables
)

// Event is one inbound event, whatever its shape. Data is the raw JSON data (may be empty for a
// tick).
type Event struct {
	ID      string          `json:"id"`
	Source  string          `json:"source"`
	Type    string          `json:"type"`
	Subject string          `json:"subject,omitempty"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data,omitempty"`
	Shape   Shape           `json:"-"`
	// NotificationID is EN's notification_id when the event came through Event Notifications.
	NotificationID string `json:"-"`
}

// Key identifies an event for de-duplication: the same source and id are the same event.
func (e Event) Key() string { return e.Source + "\x00" + e.ID }

// Digest is a short fixed-size form of Key, for the bounded list of seen events in a state.
func (e Event) Digest() string {
	sum := sha256.Sum256([]byte(e.Key()))
	return hex.EncodeToString(sum[:12])
}
