package events

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	ceevent "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// MaxAttrBytes bounds the id, source, type and subject of an inbound event: event keys are kept in
// the small state object, so a longer attribute is refused with ErrTooLarge.
const MaxAttrBytes = 1024

// ErrNoEvent is returned by FromJobEnv when the job was started without an event (neither
// ibmendata nor CE_* event variables are set). It wraps ErrInvalid.
var ErrNoEvent = fmt.Errorf("%w: no event in the environment: neither ibmendata nor CE_ID/CE_SOURCE/CE_TYPE/CE_SPECVERSION is set", ErrInvalid)

// FromHTTP decodes the event in an HTTP request, reading at most MaxBodyBytes of its body
// (ErrTooLarge beyond, also when the caller's http.MaxBytesReader trips). It accepts:
//   - a binary CloudEvent (ce-specversion header; data in the body), Shape ShapeBinary;
//   - a structured CloudEvent (Content-Type application/cloudevents+json), Shape ShapeStructured;
//   - a plain Event Notifications notification (application/json or no content type; the JSON
//     carries specversion, id, source, type, optional time, subject, data or data_base64, ibmen*
//     and notification_id), Shape ShapeEN. A body that is such a notification (it has specversion
//     and notification_id) is decoded as one even if ce-* headers came along with it.
//
// specversion, id, source and type are required; a missing time gives the zero time. Data is
// always JSON: JSON data is kept as it is, any other data (a Knative ping's text, say) is wrapped
// as {"body":"<text>"}, which is what Code Engine itself puts in CE_DATA for a job. Every error
// wraps ErrInvalid or ErrTooLarge (except a failure to read the body) and says what is wrong.
// The event type is not checked: callers decide which types they handle.
func FromHTTP(r *http.Request) (Event, error) {
	if r == nil {
		return Event{}, fmt.Errorf("%w: no request", ErrInvalid)
	}
	body, err := readBody(r.Body)
	if err != nil {
		return Event{}, err
	}
	msg := cehttp.NewMessage(r.Header, io.NopCloser(bytes.NewReader(body)))
	switch msg.ReadEncoding() {
	case binding.EncodingBinary:
		if looksLikeEN(body) {
			return fromENJSON(body, ShapeEN)
		}
		return fromSDK(msg, ShapeBinary)
	case binding.EncodingStructured:
		if !json.Valid(body) {
			return Event{}, fmt.Errorf("%w: %s: body is not valid JSON", ErrInvalid, ShapeStructured)
		}
		return fromSDK(msg, ShapeStructured)
	case binding.EncodingBatch:
		return Event{}, fmt.Errorf("%w: batched CloudEvents are not accepted: send one event per request", ErrInvalid)
	}
	if v := r.Header.Get("Ce-Specversion"); v != "" {
		return Event{}, fmt.Errorf("%w: ce-specversion %q is not a supported CloudEvents version (want 1.0)", ErrInvalid, clip(v))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return Event{}, fmt.Errorf("%w: content type %q is neither a CloudEvent (ce-specversion header, "+
				"application/cloudevents+json) nor an Event Notifications notification (application/json)", ErrInvalid, clip(ct))
		}
	}
	return fromENJSON(body, ShapeEN)
}

// FromJobEnv decodes the event that started a Code Engine job run, reading variables through
// getenv (os.Getenv in a job). ibmendata, when set, holds an Event Notifications notification
// (Shape ShapeJobEN). Otherwise the CloudEvent attributes come from CE_SPECVERSION, CE_ID,
// CE_SOURCE, CE_TYPE and optionally CE_SUBJECT, CE_TIME, CE_DATA (Shape ShapeJobCE); these are the
// names Code Engine documents for event subscriptions of jobs. Without either it returns an error
// matching ErrNoEvent. Values larger than MaxBodyBytes give ErrTooLarge.
func FromJobEnv(getenv func(string) string) (Event, error) {
	if getenv == nil {
		return Event{}, fmt.Errorf("%w: no environment", ErrInvalid)
	}
	if v := getenv("ibmendata"); v != "" {
		if len(v) > MaxBodyBytes {
			return Event{}, fmt.Errorf("%w: ibmendata is %d bytes, more than %d", ErrTooLarge, len(v), MaxBodyBytes)
		}
		e, err := fromENJSON([]byte(v), ShapeJobEN)
		if err != nil {
			return Event{}, fmt.Errorf("ibmendata: %w", err)
		}
		return e, nil
	}
	names := []string{"CE_SPECVERSION", "CE_ID", "CE_SOURCE", "CE_TYPE", "CE_SUBJECT", "CE_TIME", "CE_DATA"}
	vals := make(map[string]string, len(names))
	present := false
	for _, n := range names {
		v := getenv(n)
		if len(v) > MaxBodyBytes {
			return Event{}, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrTooLarge, n, len(v), MaxBodyBytes)
		}
		vals[n] = v
		present = present || (v != "" && n != "CE_SUBJECT" && n != "CE_TIME" && n != "CE_DATA")
	}
	if !present {
		return Event{}, ErrNoEvent
	}
	e := Event{ID: vals["CE_ID"], Source: vals["CE_SOURCE"], Type: vals["CE_TYPE"], Subject: vals["CE_SUBJECT"], Shape: ShapeJobCE}
	if err := required(ShapeJobCE, vals["CE_SPECVERSION"], e); err != nil {
		return Event{}, err
	}
	var err error
	if e.Time, err = parseTime(vals["CE_TIME"]); err != nil {
		return Event{}, fmt.Errorf("%w: %s: CE_TIME: %v", ErrInvalid, ShapeJobCE, err)
	}
	e.Data = normaliseData([]byte(vals["CE_DATA"]))
	return e, checkAttrs(e)
}

// Parse decodes and validates the data of a keyguard event (see DecodeData). Platform events
// (ticks, Cloud Logs alerts) give ErrUnknownType: use IsTick and ParseCloudLogsRotation for them.
func Parse(e Event) (Payload, error) {
	p, err := DecodeData(e.Type, e.Data)
	if err != nil {
		return nil, fmt.Errorf("event %q from %q: %w", e.ID, e.Source, err)
	}
	return p, nil
}

// IsTick reports whether e looks like a scheduler tick: keyguard's own TypeTick, a Code Engine
// cron (Knative ping), or an Event Notifications periodic-timer notification, recognised by a type
// containing "periodic-timer" (or periodic_timer, periodic.timer, PeriodicTimer, any case) because
// EN does not document that type. Advisory only: the scheduler's tick route treats any
// authenticated, well-formed event as a tick and logs the type it saw.
func IsTick(e Event) bool {
	if e.Type == TypeTick || e.Type == TypeKnativePing {
		return true
	}
	t := strings.NewReplacer("-", "", "_", "", ".", "").Replace(strings.ToLower(e.Type))
	return strings.Contains(t, "periodictimer")
}

// Encode builds an outbound event from a keyguard payload, validating the payload first. The
// time is kept in UTC; Shape is left empty.
func Encode(id, source string, t time.Time, p Payload) (Event, error) {
	if p == nil || (reflect.ValueOf(p).Kind() == reflect.Pointer && reflect.ValueOf(p).IsNil()) {
		return Event{}, fmt.Errorf("%w: no payload", ErrInvalid)
	}
	typ := p.EventType()
	if _, ok := newPayload(typ); !ok {
		return Event{}, fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	if err := p.Validate(); err != nil {
		return Event{}, err
	}
	e := Event{ID: id, Source: source, Type: typ, Time: t.UTC()}
	if err := required("encode", "1.0", e); err != nil {
		return Event{}, err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Event{}, fmt.Errorf("%w: encode %s: %v", ErrInvalid, typ, err)
	}
	e.Data = data
	return e, checkAttrs(e)
}

// readBody reads at most MaxBodyBytes; one byte more means the body is too large.
func readBody(body io.Reader) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: body is larger than %d bytes", ErrTooLarge, mbe.Limit)
		}
		return nil, fmt.Errorf("read event body: %w", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: body is larger than %d bytes", ErrTooLarge, MaxBodyBytes)
	}
	return b, nil
}

// fromSDK converts a binary or structured CloudEvent with the CloudEvents SDK.
func fromSDK(msg binding.Message, shape Shape) (Event, error) {
	ev, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %s: %s", ErrInvalid, shape, sdkReason(err))
	}
	e := Event{ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Subject: ev.Subject(), Shape: shape}
	if err := required(shape, ev.SpecVersion(), e); err != nil {
		return Event{}, err
	}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %s: %s", ErrInvalid, shape, sdkReason(err))
	}
	if t := ev.Time(); !t.IsZero() {
		e.Time = t.UTC()
	}
	e.Data = normaliseData(ev.Data())
	return e, checkAttrs(e)
}

// sdkReason renders an SDK error deterministically (its validation errors are a map).
func sdkReason(err error) string {
	var ve ceevent.ValidationError
	if !errors.As(err, &ve) {
		return clip(err.Error())
	}
	parts := make([]string, 0, len(ve))
	for k, v := range ve {
		parts = append(parts, k+": "+v.Error())
	}
	slices.Sort(parts)
	return clip(strings.Join(parts, "; "))
}

// clip shortens input quoted in an error, which goes back to the sender in a 4xx.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "..."
}

// enNotification is the JSON Event Notifications delivers to an app (body) or a job (ibmendata).
// ibmen* fields are ignored.
type enNotification struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64"`
	NotificationID  string          `json:"notification_id"`
}

// looksLikeEN reports whether body is an EN notification rather than the data of a binary event.
func looksLikeEN(body []byte) bool {
	var probe struct {
		SpecVersion    *json.RawMessage `json:"specversion"`
		NotificationID *json.RawMessage `json:"notification_id"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.SpecVersion != nil && probe.NotificationID != nil
}

func fromENJSON(body []byte, shape Shape) (Event, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return Event{}, fmt.Errorf("%w: %s: body is empty", ErrInvalid, shape)
	}
	var n enNotification
	if err := json.Unmarshal(body, &n); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return Event{}, fmt.Errorf("%w: %s: %s must be a %s, not %s", ErrInvalid, shape, ute.Field, ute.Type, ute.Value)
		}
		return Event{}, fmt.Errorf("%w: %s: body is not a JSON object: %v", ErrInvalid, shape, err)
	}
	e := Event{ID: n.ID, Source: n.Source, Type: n.Type, Subject: n.Subject, Shape: shape, NotificationID: n.NotificationID}
	if err := required(shape, n.SpecVersion, e); err != nil {
		return Event{}, err
	}
	var err error
	if e.Time, err = parseTime(n.Time); err != nil {
		return Event{}, fmt.Errorf("%w: %s: time: %v", ErrInvalid, shape, err)
	}
	hasData := len(n.Data) > 0 && string(n.Data) != "null"
	switch {
	case hasData && n.DataBase64 != "":
		return Event{}, fmt.Errorf("%w: %s: data and data_base64 are both set", ErrInvalid, shape)
	case n.DataBase64 != "":
		raw, err := base64.StdEncoding.DecodeString(n.DataBase64)
		if err != nil {
			return Event{}, fmt.Errorf("%w: %s: data_base64: %v", ErrInvalid, shape, err)
		}
		e.Data = normaliseData(raw)
	case hasData && n.Data[0] == '"' && !jsonMedia(n.DataContentType):
		var text string
		if err := json.Unmarshal(n.Data, &text); err != nil {
			return Event{}, fmt.Errorf("%w: %s: data: %v", ErrInvalid, shape, err)
		}
		e.Data = normaliseData([]byte(text))
	case hasData:
		e.Data = n.Data
	}
	return e, checkAttrs(e)
}

// required checks the CloudEvents attributes every shape must carry.
func required(shape Shape, specversion string, e Event) error {
	var missing []string
	for _, a := range [][2]string{{"specversion", specversion}, {"id", e.ID}, {"source", e.Source}, {"type", e.Type}} {
		if a[1] == "" {
			missing = append(missing, a[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: missing %s", ErrInvalid, shape, strings.Join(missing, ", "))
	}
	if specversion != "1.0" {
		return fmt.Errorf("%w: %s: specversion %q is not supported (want 1.0)", ErrInvalid, shape, clip(specversion))
	}
	return nil
}

// checkAttrs bounds the attributes that end up in state (see MaxAttrBytes).
func checkAttrs(e Event) error {
	for _, a := range [][2]string{{"id", e.ID}, {"source", e.Source}, {"type", e.Type}, {"subject", e.Subject}} {
		if len(a[1]) > MaxAttrBytes {
			return fmt.Errorf("%w: %s: %s is %d bytes, more than %d", ErrTooLarge, e.Shape, a[0], len(a[1]), MaxAttrBytes)
		}
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", clip(s))
	}
	return t.UTC(), nil
}

// normaliseData keeps JSON data and wraps anything else as {"body":"<text>"} (invalid UTF-8 is
// replaced by U+FFFD).
func normaliseData(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(bytes.Clone(b))
	}
	w, _ := json.Marshal(struct {
		Body string `json:"body"`
	}{string(b)}) // marshalling a string cannot fail
	return w
}

func jsonMedia(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"))
}

// Activity Tracker event action of a Key Protect key rotation.
const actionRotate = "kms.secrets.rotate"

// ParseCloudLogsRotation reads an IBM Cloud Logs alert notification (IsCloudLogsAlert) and, when
// the log that triggered it is a successful Key Protect kms.secrets.rotate activity event, returns
// the rotation with DetectedBy "cloud-logs" and ok true. The activity event is looked for in the
// alert's data.log_example (an object, a JSON string, or an array of them, also one wrapper level
// down); its target.id is the key CRN and eventTime the rotation time (else the alert's
// latest_event_timestamp, else the event time). NewVersion comes from responseData.keyVersionId
// when present; Key Protect documents no version field for rotate events, so it is often empty and
// the caller must read the key's newest version from Key Protect before emitting key.rotated.
// An alert about something else gives ok false and no error. A type that is not a Cloud Logs alert
// gives ErrUnknownType; malformed data, or a truncated log example, gives ErrInvalid.
func ParseCloudLogsRotation(e Event) (KeyRotated, bool, error) {
	if !IsCloudLogsAlert(e.Type) {
		return KeyRotated{}, false, fmt.Errorf("%w: %q is not a Cloud Logs alert", ErrUnknownType, clip(e.Type))
	}
	var d struct {
		LatestEventTimestamp json.RawMessage `json:"latest_event_timestamp"`
		LogExample           json.RawMessage `json:"log_example"`
		Truncated            bool            `json:"log_example_truncated"`
	}
	if len(e.Data) == 0 {
		return KeyRotated{}, false, fmt.Errorf("%w: cloud logs alert %q has no data", ErrInvalid, e.ID)
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return KeyRotated{}, false, fmt.Errorf("%w: cloud logs alert %q: data is not an alert object: %v", ErrInvalid, e.ID, err)
	}
	act, found := findRotation(d.LogExample, 0)
	if !found {
		if d.Truncated {
			return KeyRotated{}, false, fmt.Errorf("%w: cloud logs alert %q: log_example is truncated; cannot tell whether it is a key rotation", ErrInvalid, e.ID)
		}
		return KeyRotated{}, false, nil
	}
	var target struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(act["target"], &target) != nil || target.ID == "" {
		return KeyRotated{}, false, fmt.Errorf("%w: cloud logs alert %q: %s event has no target.id (key CRN)", ErrInvalid, e.ID, actionRotate)
	}
	if len(target.ID) > maxField {
		return KeyRotated{}, false, fmt.Errorf("%w: cloud logs alert %q: target.id is longer than %d bytes", ErrInvalid, e.ID, maxField)
	}
	kr := KeyRotated{KeyCRN: target.ID, DetectedBy: "cloud-logs"}
	var resp struct {
		KeyVersionID string `json:"keyVersionId"`
	}
	if raw := unwrapString(act["responseData"]); json.Unmarshal(raw, &resp) == nil && len(resp.KeyVersionID) <= maxField {
		kr.NewVersion = resp.KeyVersionID
	}
	kr.RotatedAt = activityTime(jsonString(act["eventTime"]), d.LatestEventTimestamp, e.Time)
	if kr.RotatedAt.IsZero() {
		return KeyRotated{}, false, fmt.Errorf("%w: cloud logs alert %q: no time for the rotation", ErrInvalid, e.ID)
	}
	return kr, true, nil
}

// findRotation returns the first successful kms.secrets.rotate activity event in raw.
func findRotation(raw json.RawMessage, depth int) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if depth > 3 || len(raw) == 0 {
		return nil, false
	}
	switch raw[0] {
	case '"':
		return findRotation(unwrapString(raw), depth+1)
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil, false
		}
		for _, it := range items {
			if a, ok := findRotation(it, depth+1); ok {
				return a, true
			}
		}
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil, false
		}
		if jsonString(m["action"]) == actionRotate {
			out := jsonString(m["outcome"])
			return m, out == "" || strings.EqualFold(out, "success")
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if a, ok := findRotation(m[k], depth+1); ok {
				return a, true
			}
		}
	}
	return nil, false
}

// jsonString returns the string in raw, or "" when raw is not a JSON string.
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// unwrapString returns the text of a JSON string (JSON encoded as a string), else raw itself.
func unwrapString(raw json.RawMessage) json.RawMessage {
	if s := jsonString(raw); s != "" {
		return json.RawMessage(s)
	}
	return raw
}

// activityTime picks the best known rotation time.
func activityTime(eventTime string, latestMillis json.RawMessage, fallback time.Time) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700"} {
		if t, err := time.Parse(layout, eventTime); err == nil {
			return t.UTC()
		}
	}
	if ms, err := strconv.ParseInt(strings.Trim(string(latestMillis), `"`), 10, 64); err == nil && ms > 0 && ms < 1<<53 {
		return time.UnixMilli(ms).UTC()
	}
	return fallback.UTC()
}
