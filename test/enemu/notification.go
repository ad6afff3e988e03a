package enemu

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SpecVersion is the only notification specification version EN accepts.
const SpecVersion = "1.0"

// Notification is one EN notification: what SendNotifications accepts and, with NotificationID
// set, what EN delivers to a Code Engine app.
type Notification struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time,omitzero"`
	Subject         string          `json:"subject,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	SourceID        string          `json:"ibmensourceid"`
	DefaultShort    string          `json:"ibmendefaultshort"`
	DefaultLong     string          `json:"ibmendefaultlong"`
	Severity        string          `json:"ibmenseverity,omitempty"`
	// NotificationID is assigned by the emulator when it accepts the notification.
	NotificationID string `json:"notification_id,omitempty"`
	// Extra holds every other top-level field (other ibmen* attributes, extensions), kept and
	// delivered unchanged.
	Extra map[string]json.RawMessage `json:"-"`
}

// notificationFields is Notification without its methods, for the default JSON coding.
type notificationFields Notification

// known lists the JSON names of Notification's own fields.
var known = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "time": true, "subject": true,
	"data": true, "datacontenttype": true, "ibmensourceid": true, "ibmendefaultshort": true,
	"ibmendefaultlong": true, "ibmenseverity": true, "notification_id": true,
}

// MarshalJSON writes the notification as one flat JSON object, Extra fields included.
func (n Notification) MarshalJSON() ([]byte, error) {
	own, err := json.Marshal(notificationFields(n))
	if err != nil || len(n.Extra) == 0 {
		return own, err
	}
	m := map[string]json.RawMessage{}
	for k, v := range n.Extra {
		if !known[k] {
			m[k] = v
		}
	}
	if err := json.Unmarshal(own, &m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a flat JSON object; unknown fields go to Extra.
func (n *Notification) UnmarshalJSON(b []byte) error {
	var f notificationFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k, v := range all {
		if known[k] {
			continue
		}
		if f.Extra == nil {
			f.Extra = map[string]json.RawMessage{}
		}
		f.Extra[k] = v
	}
	*n = Notification(f)
	return nil
}

// Validate returns an error naming every required field that is missing or wrong, as EN's 400
// would. It does not look at NotificationID.
func (n Notification) Validate() error {
	var p []string
	need := func(ok bool, msg string) {
		if !ok {
			p = append(p, msg)
		}
	}
	need(n.SpecVersion == SpecVersion, `specversion must be "1.0"`)
	need(strings.TrimSpace(n.ID) != "", "id is required")
	need(strings.TrimSpace(n.Source) != "", "source is required")
	need(strings.TrimSpace(n.Type) != "", "type is required")
	need(strings.TrimSpace(n.SourceID) != "", "ibmensourceid is required")
	need(strings.TrimSpace(n.DefaultShort) != "", "ibmendefaultshort is required")
	need(strings.TrimSpace(n.DefaultLong) != "", "ibmendefaultlong is required")
	if len(n.Data) > 0 {
		var obj map[string]json.RawMessage
		need(json.Unmarshal(n.Data, &obj) == nil && obj != nil, "data must be a JSON object")
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("invalid notification: %s", strings.Join(p, "; "))
}
