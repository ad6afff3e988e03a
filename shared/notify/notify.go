package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/IBM/event-notifications-go-admin-sdk/eventnotificationsv1"
	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
)

// Defaults of Options.
const (
	DefaultTimeout        = 5 * time.Second
	DefaultAttemptTimeout = 2 * time.Second
	DefaultMaxRetries     = 2
	DefaultMaxRetryWait   = 500 * time.Millisecond
	// NoRetries, as Options.MaxRetries, disables the SDK's retries.
	NoRetries = -1
	// MaxIDLength is the longest notification id Send accepts.
	MaxIDLength = 256
)

// Options configure a Client. URL, InstanceID, SourceID and Authenticator are required.
type Options struct {
	// URL is the EN instance endpoint, e.g.
	// https://us-south.event-notifications.cloud.ibm.com/event-notifications.
	URL string
	// InstanceID is the EN instance GUID.
	InstanceID string
	// SourceID is the EN API source id (ibmensourceid) created for keyguard.
	SourceID string
	// Source is the CloudEvents source; empty means "keyguard/" + SourceID. Functions that share
	// one EN source and might reuse an id should set their own (e.g. "keyguard/scheduler").
	Source string
	// Authenticator authenticates to EN (NewIAMAuthenticator, core.ContainerAuthenticator, ...).
	Authenticator core.Authenticator
	// HTTPClient carries the requests; nil means go-sdk-core's default client. It is copied,
	// with its Timeout set to AttemptTimeout.
	HTTPClient *http.Client
	// Timeout bounds a whole Send, retries included (default 5 s).
	Timeout time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 2 s).
	AttemptTimeout time.Duration
	// MaxRetries is how many times the SDK retries a transient failure (default 2; NoRetries
	// for none). MaxRetryWait caps the wait between retries (default 500 ms); a Retry-After
	// longer than what is left of Timeout ends the Send with a transient error.
	MaxRetries   int
	MaxRetryWait time.Duration
	// Clock stamps notification times (wall clock when nil).
	Clock clock.Clock
	// Logger gets a debug line per notification sent (slog.Default when nil).
	Logger *slog.Logger
}

// Client sends keyguard events to Event Notifications. It is safe for concurrent use.
type Client struct {
	svc        *eventnotificationsv1.EventNotificationsV1
	instanceID string
	sourceID   string
	source     string
	timeout    time.Duration
	clock      clock.Clock
	log        *slog.Logger
}

// New validates o and returns a Client. It does not contact EN or IAM.
func New(o Options) (*Client, error) {
	var missing []string
	for name, v := range map[string]string{"URL": o.URL, "InstanceID": o.InstanceID, "SourceID": o.SourceID} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if core.IsNil(o.Authenticator) {
		missing = append(missing, "Authenticator")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("notify: missing options %v", missing)
	}
	if o.Source == "" {
		o.Source = "keyguard/" + o.SourceID
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = DefaultMaxRetryWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	svc, err := eventnotificationsv1.NewEventNotificationsV1(&eventnotificationsv1.EventNotificationsV1Options{
		URL:           o.URL,
		Authenticator: o.Authenticator,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: event notifications client: %w", err)
	}
	var hc http.Client
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	} else {
		hc = *core.DefaultHTTPClient()
	}
	hc.Timeout = o.AttemptTimeout
	svc.Service.SetHTTPClient(&hc)
	if o.MaxRetries > 0 {
		svc.Service.EnableRetries(o.MaxRetries, o.MaxRetryWait)
	}
	return &Client{
		svc:        svc,
		instanceID: o.InstanceID,
		sourceID:   o.SourceID,
		source:     o.Source,
		timeout:    o.Timeout,
		clock:      clock.Or(o.Clock),
		log:        o.Logger.With("component", "notify"),
	}, nil
}

// NewIAMAuthenticator returns an API key authenticator whose token request goes to
// <iamURL>/identity/token (iamURL empty: IBM Cloud IAM). Its token requests time out after 5 s
// (go-sdk-core gives them no context).
func NewIAMAuthenticator(apiKey, iamURL string) (*core.IamAuthenticator, error) {
	b := core.NewIamAuthenticatorBuilder().SetApiKey(apiKey).SetClient(&http.Client{Timeout: 5 * time.Second})
	if iamURL != "" {
		b = b.SetURL(iamURL)
	}
	a, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("notify: iam authenticator: %w", err)
	}
	return a, nil
}

// Send publishes p as a notification with the given id. It validates p first; it is safe to
// call again with the same id (receivers treat it as a duplicate). Every error is an *Error.
func (c *Client) Send(ctx context.Context, id string, p events.Payload) error {
	p, err := normalize(p)
	if err != nil {
		return permanent("send", id, err)
	}
	typ := p.EventType()
	if err := p.Validate(); err != nil {
		return permanent("send "+typ, id, err)
	}
	data, err := dataObject(p)
	if err != nil {
		return permanent("send "+typ, id, err)
	}
	s := summarize(p)
	return c.send(ctx, typ, id, c.source, c.clock.Now(), s, data)
}

// SendEvent publishes an already built event (e.g. one being forwarded). A keyguard type's data
// is decoded and validated like Send's payload; another type is sent with generic summaries and
// its data, which must be a JSON object or empty. Empty Source means the client's source; zero
// Time means now.
func (c *Client) SendEvent(ctx context.Context, ev events.Event) error {
	if ev.Type == "" {
		return permanent("send event", ev.ID, errors.New("type is required"))
	}
	source, at := ev.Source, ev.Time
	if source == "" {
		source = c.source
	}
	if at.IsZero() {
		at = c.clock.Now()
	}
	var s summary
	var data map[string]any
	p, err := events.DecodeData(ev.Type, ev.Data)
	switch {
	case err == nil:
		p, _ = normalize(p)
		s = summarize(p)
		data, err = dataObject(p)
	case errors.Is(err, events.ErrUnknownType):
		s = summary{short: "keyguard event " + ev.Type, long: "keyguard event " + ev.Type + " (" + ev.ID + ")",
			severity: "LOW", subject: ev.Subject}
		data, err = rawObject(ev.Data)
	}
	if err != nil {
		return permanent("send "+ev.Type, ev.ID, err)
	}
	if ev.Subject != "" {
		s.subject = ev.Subject
	}
	return c.send(ctx, ev.Type, ev.ID, source, at, s, data)
}

func (c *Client) send(ctx context.Context, typ, id, source string, at time.Time, s summary, data map[string]any) error {
	op := "send " + typ
	if id == "" || len(id) > MaxIDLength {
		return permanent(op, id, fmt.Errorf("id must be 1 to %d characters", MaxIDLength))
	}
	when, err := core.ParseDateTime(at.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return permanent(op, id, fmt.Errorf("time: %w", err))
	}
	body := &eventnotificationsv1.NotificationCreate{
		Specversion:       core.StringPtr("1.0"),
		ID:                core.StringPtr(id),
		Source:            core.StringPtr(source),
		Type:              core.StringPtr(typ),
		Time:              &when,
		Ibmensourceid:     core.StringPtr(c.sourceID),
		Ibmendefaultshort: core.StringPtr(s.short),
		Ibmendefaultlong:  core.StringPtr(s.long),
		Ibmenseverity:     core.StringPtr(s.severity),
		Data:              data,
		Datacontenttype:   core.StringPtr("application/json"),
	}
	if s.subject != "" {
		body.Subject = core.StringPtr(s.subject)
	}
	opts := c.svc.NewSendNotificationsOptions(c.instanceID).SetBody(body)

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	type result struct {
		nid  string
		resp *core.DetailedResponse
		err  error
	}
	done := make(chan result, 1)
	// The SDK call runs aside so that an IAM token fetch, which go-sdk-core runs without a
	// context, cannot hold Send past its budget; cancel() then aborts the EN request.
	go func() {
		r, resp, err := c.svc.SendNotificationsWithContext(ctx, opts)
		var nid string
		if r != nil && r.NotificationID != nil {
			nid = *r.NotificationID
		}
		done <- result{nid, resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		select {
		case r = <-done:
		default:
			return &Error{Op: op, ID: id, Transient: true, Err: fmt.Errorf("no answer within %s: %w", c.timeout, ctx.Err())}
		}
	}
	if r.err != nil {
		return classify(op, id, r.resp, r.err)
	}
	c.log.Debug("notification sent", "type", typ, "id", id, "notification_id", r.nid)
	return nil
}

// normalize dereferences a pointer payload and refuses a nil one.
func normalize(p events.Payload) (events.Payload, error) {
	if p == nil {
		return nil, errors.New("payload is nil")
	}
	v := reflect.ValueOf(p)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, errors.New("payload is nil")
		}
		if q, ok := v.Elem().Interface().(events.Payload); ok {
			return q, nil
		}
	}
	return p, nil
}

// dataObject turns a payload into the JSON object EN carries as data, numbers kept exact.
func dataObject(p events.Payload) (map[string]any, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return rawObject(raw)
}

func rawObject(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("data must be a JSON object")
	}
	return m, nil
}
