package jobevent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// EventNotification returns the Event Notifications notification JSON of any keyguard event p,
// under id and time at, as Event Notifications puts it in ibmendata: what the deployment
// preflight starts the runner's no-op job run with.
func EventNotification(id string, at time.Time, p events.Payload, o Origin) ([]byte, error) {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.SourceID == "" {
		o.SourceID = DefaultSourceID
	}
	ev, err := events.Encode(id, o.Source, at, p)
	if err != nil {
		return nil, fmt.Errorf("job event %q: %w", id, err)
	}
	b, err := json.Marshal(notification{
		SpecVersion: "1.0", ID: ev.ID, Source: ev.Source, Type: ev.Type, Time: ev.Time.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json", Data: ev.Data, IBMENSourceID: o.SourceID,
		IBMENDefaultShort: "keyguard event " + ev.Type, IBMENDefaultLong: "keyguard event " + ev.Type + " " + ev.ID,
		IBMENSeverity: "LOW", NotificationID: notificationID(ev.Source, ev.ID),
	})
	if err != nil {
		return nil, fmt.Errorf("job event %q: encode: %w", id, err)
	}
	if len(b) > events.MaxBodyBytes {
		return nil, fmt.Errorf("%w: job event %q is %d bytes, more than %d", events.ErrTooLarge, id, len(b), events.MaxBodyBytes)
	}
	return b, nil
}
