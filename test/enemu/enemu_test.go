package enemu_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/test/enemu"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

const (
	apiKey     = "en-test-key"
	instanceID = "en-instance"
	sourceID   = "keyguard-source"
	secret     = "delivery-secret"
)

var t0 = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

// receiver is a Code Engine app stand-in: it records what EN delivers and answers as scripted.
type receiver struct {
	mu       sync.Mutex
	got      []delivered
	attempts atomic.Int32
	answer   func(n int) int // status for the n-th request (1-based); nil means 200
	hold     chan struct{}   // when set, requests wait for it
	arrived  chan struct{}   // when set, signalled on every request
}

type delivered struct {
	header http.Header
	body   map[string]any
	raw    []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(rc.attempts.Add(1))
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	rc.mu.Lock()
	rc.got = append(rc.got, delivered{header: r.Header.Clone(), body: body, raw: raw})
	rc.mu.Unlock()
	if rc.arrived != nil {
		rc.arrived <- struct{}{}
	}
	if rc.hold != nil {
		select {
		case <-rc.hold:
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if rc.answer != nil {
		status = rc.answer(n)
	}
	w.WriteHeader(status)
}

func (rc *receiver) deliveries() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivered(nil), rc.got...)
}

func startReceiver(t testing.TB) (*receiver, string) {
	t.Helper()
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func newSender(t testing.TB, en *enemu.Emulator) *notify.Client {
	t.Helper()
	auth, err := notify.NewIAMAuthenticator(apiKey, en.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := notify.New(notify.Options{URL: en.URL(), InstanceID: instanceID, SourceID: sourceID,
		Authenticator: auth, Clock: clock.NewFake(t0), MaxRetryWait: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func subscribe(t testing.TB, en *enemu.Emulator, name, url string, mod func(*enemu.Subscription)) {
	t.Helper()
	s := enemu.Subscription{Name: name, URL: url, Headers: map[string]string{"Authorization": "Bearer " + secret}}
	if mod != nil {
		mod(&s)
	}
	if err := en.Subscribe(s); err != nil {
		t.Fatal(err)
	}
}

func waitIdle(t testing.TB, en *enemu.Emulator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := en.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

func failed() events.BackupFailed {
	return events.BackupFailed{Database: "salesdb", RunID: "run-7", Type: events.Full, Mode: events.Online,
		StartedAt: t0.Add(-time.Hour), EndedAt: t0, Class: events.Transient, Code: "SQL2062N", Message: "device full"}
}

func TestSDKSendIsDeliveredAsPlainENJSON(t *testing.T) {
	en := enemu.Start(t, apiKey)
	rc, url := startReceiver(t)
	subscribe(t, en, "completion", url, func(s *enemu.Subscription) { s.TypePrefix = events.Prefix + "backup." })
	c := newSender(t, en)

	if err := c.Send(context.Background(), "backup.failed/salesdb/run-7", failed()); err != nil {
		t.Fatalf("send: %v", err)
	}
	waitIdle(t, en)

	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("receiver got %d deliveries, want 1", len(got))
	}
	d := got[0]
	if d.header.Get("Content-Type") != "application/json" || d.header.Get("Authorization") != "Bearer "+secret {
		t.Fatalf("headers %v", d.header)
	}
	for k := range d.header {
		if strings.HasPrefix(strings.ToLower(k), "ce-") {
			t.Fatalf("EN does not send CloudEvents headers, got %s", k)
		}
	}
	recorded := en.Notifications()
	if len(recorded) != 1 || recorded[0].NotificationID == "" {
		t.Fatalf("recorded %+v", recorded)
	}
	want := map[string]any{
		"specversion": "1.0", "id": "backup.failed/salesdb/run-7", "source": "keyguard/" + sourceID,
		"type": events.TypeBackupFailed, "ibmensourceid": sourceID, "ibmenseverity": "MEDIUM",
		"datacontenttype": "application/json", "notification_id": recorded[0].NotificationID,
		"subject": "salesdb",
	}
	for k, v := range want {
		if d.body[k] != v {
			t.Errorf("%s = %v, want %v", k, d.body[k], v)
		}
	}
	for _, k := range []string{"time", "ibmendefaultshort", "ibmendefaultlong"} {
		if s, _ := d.body[k].(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}
	tm, err := time.Parse(time.RFC3339, d.body["time"].(string))
	if err != nil || !tm.Equal(t0) {
		t.Errorf("time %v (%v), want %s", d.body["time"], err, t0)
	}
	// The data decodes with keyguard's own contract.
	data, _ := json.Marshal(d.body["data"])
	p, err := events.DecodeData(events.TypeBackupFailed, data)
	if err != nil || p.(*events.BackupFailed).RunID != "run-7" {
		t.Fatalf("data %s: %v", data, err)
	}
	if got := en.NotificationsOfType(events.TypeBackupFailed); len(got) != 1 {
		t.Fatalf("NotificationsOfType = %d", len(got))
	}
	if got := en.NotificationsOfType(events.TypeAlert); len(got) != 0 {
		t.Fatalf("NotificationsOfType(alert) = %d", len(got))
	}
	ds := en.Deliveries()
	if len(ds) != 1 || ds[0].Outcome != enemu.Delivered || ds[0].Attempts != 1 || ds[0].LastStatus != 200 {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestMissingOrBadTokenIs401AndPermanent(t *testing.T) {
	en := enemu.Start(t, apiKey)
	alert := events.Alert{Severity: events.Info, Reason: "r", Message: "m"}
	for name, auth := range map[string]core.Authenticator{
		"no token":      &core.NoAuthAuthenticator{},
		"foreign token": mustBearer(t, "not-from-this-iam"),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := notify.New(notify.Options{URL: en.URL(), InstanceID: instanceID, SourceID: sourceID, Authenticator: auth})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Send(context.Background(), "id", alert)
			var ne *notify.Error
			if !errors.As(err, &ne) || ne.StatusCode != http.StatusUnauthorized || notify.IsTransient(err) {
				t.Fatalf("err %v, want permanent 401", err)
			}
		})
	}
	if n := len(en.Notifications()); n != 0 {
		t.Fatalf("%d notifications accepted without a token", n)
	}
}

func mustBearer(t *testing.T, tok string) core.Authenticator {
	t.Helper()
	a, err := core.NewBearerTokenAuthenticator(tok)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// token gets a real bearer token from the emulator's IAM endpoint.
func token(t *testing.T, en *enemu.Emulator) string {
	t.Helper()
	a, err := notify.NewIAMAuthenticator(apiKey, en.URL())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.GetToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func validBody() map[string]any {
	return map[string]any{
		"specversion": "1.0", "id": "n-1", "source": "keyguard/x", "type": events.TypeAlert,
		"ibmensourceid": sourceID, "ibmendefaultshort": "short", "ibmendefaultlong": "long",
		"data": map[string]any{"k": "v"},
	}
}

func TestRESTValidation(t *testing.T) {
	en := enemu.StartWithOptions(t, enemu.Options{APIKey: apiKey, InstanceID: instanceID})
	tok := token(t, en)
	without := func(k string) map[string]any { b := validBody(); delete(b, k); return b }
	with := func(k string, v any) map[string]any { b := validBody(); b[k] = v; return b }
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	tests := []struct {
		name        string
		instance    string
		contentType string
		body        []byte
		want        int
		reason      string
	}{
		{"valid", instanceID, "application/json", enc(validBody()), 202, ""},
		{"missing specversion", instanceID, "application/json", enc(without("specversion")), 400, "specversion"},
		{"wrong specversion", instanceID, "application/json", enc(with("specversion", "0.3")), 400, "specversion"},
		{"missing id", instanceID, "application/json", enc(without("id")), 400, "id is required"},
		{"missing source", instanceID, "application/json", enc(without("source")), 400, "source is required"},
		{"missing type", instanceID, "application/json", enc(without("type")), 400, "type is required"},
		{"missing ibmensourceid", instanceID, "application/json", enc(without("ibmensourceid")), 400, "ibmensourceid"},
		{"missing short", instanceID, "application/json", enc(without("ibmendefaultshort")), 400, "ibmendefaultshort"},
		{"missing long", instanceID, "application/json", enc(without("ibmendefaultlong")), 400, "ibmendefaultlong"},
		{"data not an object", instanceID, "application/json", enc(with("data", []int{1})), 400, "data must be a JSON object"},
		{"bad time", instanceID, "application/json", enc(with("time", "yesterday")), 400, "not a notification"},
		{"not json", instanceID, "application/json", []byte("{"), 400, "not a notification"},
		{"form body", instanceID, "application/x-www-form-urlencoded", enc(validBody()), 415, "application/json"},
		{"too large", instanceID, "application/json", enc(with("ibmendefaultlong", strings.Repeat("x", enemu.MaxBodyBytes))), 413, "too large"},
		{"other instance", "other", "application/json", enc(validBody()), 404, "instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, en.URL()+"/v1/instances/"+tt.instance+"/notifications", bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				NotificationID string `json:"notification_id"`
				Errors         []struct{ Message string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.want, out)
			}
			if tt.want == 202 {
				if out.NotificationID == "" {
					t.Fatal("no notification_id")
				}
				return
			}
			if len(out.Errors) == 0 || !strings.Contains(out.Errors[0].Message, tt.reason) {
				t.Fatalf("reason %+v, want it to mention %q", out.Errors, tt.reason)
			}
		})
	}
	if n := len(en.Notifications()); n != 1 {
		t.Fatalf("%d notifications recorded, want only the valid one", n)
	}
}

func TestGzipBodyAndRouting(t *testing.T) {
	en := enemu.Start(t, apiKey)
	tok := token(t, en)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_ = json.NewEncoder(zw).Encode(validBody())
	_ = zw.Close()
	req, _ := http.NewRequest(http.MethodPost, en.URL()+"/v1/instances/any/notifications", &buf)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("gzip body: %d", resp.StatusCode)
	}
	resp, err = http.Get(en.URL() + "/v1/instances/any/notifications")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET notifications: %d", resp.StatusCode)
	}
}

func TestFailingReceiverIsRetriedThenLost(t *testing.T) {
	en := enemu.Start(t, apiKey)
	rc, url := startReceiver(t)
	rc.answer = func(int) int { return http.StatusServiceUnavailable }
	subscribe(t, en, "completion", url, nil)
	c := newSender(t, en)

	if err := c.Send(context.Background(), "id-1", failed()); err != nil {
		t.Fatalf("send must succeed whatever the receiver does: %v", err)
	}
	waitIdle(t, en)
	if n := rc.attempts.Load(); n != 4 {
		t.Fatalf("receiver saw %d attempts, want 1 + 3 retries", n)
	}
	lost := en.Lost()
	if len(lost) != 1 || lost[0].Attempts != 4 || lost[0].LastStatus != 503 || lost[0].Dropped {
		t.Fatalf("lost %+v", lost)
	}
	time.Sleep(50 * time.Millisecond) // a lost notification is never tried again
	if n := rc.attempts.Load(); n != 4 {
		t.Fatalf("receiver saw %d attempts after the loss", n)
	}
	ids := map[any]bool{}
	for _, d := range rc.deliveries() {
		ids[d.body["notification_id"]] = true
	}
	if len(ids) != 1 {
		t.Fatalf("retries must carry the same notification_id, got %v", ids)
	}
}

func TestRecoveringReceiverGetsIt(t *testing.T) {
	en := enemu.Start(t, apiKey)
	rc, url := startReceiver(t)
	rc.answer = func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusAccepted
	}
	subscribe(t, en, "completion", url, nil)
	if _, err := en.Publish(enemu.Notification{ID: "x", Source: "s", Type: "t", SourceID: "src",
		DefaultShort: "s", DefaultLong: "l"}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, en)
	ds := en.Deliveries()
	if len(ds) != 1 || ds[0].Outcome != enemu.Delivered || ds[0].Attempts != 3 {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestAttemptTimeoutCountsAsFailure(t *testing.T) {
	en := enemu.StartWithOptions(t, enemu.Options{APIKey: apiKey, AttemptTimeout: 30 * time.Millisecond,
		RetryWait: time.Millisecond, Retries: 1})
	rc, url := startReceiver(t)
	rc.hold = make(chan struct{}) // never released: every attempt times out
	subscribe(t, en, "slow", url, nil)
	if _, err := en.Publish(enemu.Notification{ID: "x", Source: "s", Type: "t", SourceID: "src",
		DefaultShort: "s", DefaultLong: "l"}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, en)
	lost := en.Lost()
	if len(lost) != 1 || lost[0].Attempts != 2 || lost[0].LastStatus != 0 || lost[0].LastError == "" {
		t.Fatalf("lost %+v", lost)
	}
	if strings.Contains(lost[0].LastError, secret) {
		t.Fatal("a sensitive header leaked into the record")
	}
}

func tick(id string) enemu.Notification {
	return enemu.Notification{ID: id, Source: "periodic-timer", Type: "com.ibm.eventnotifications.periodic-timer",
		SourceID: "timer-src", DefaultShort: "tick", DefaultLong: "tick"}
}

func TestInjectedFaults(t *testing.T) {
	tests := []struct {
		name          string
		setup         func(*enemu.Emulator)
		sends         int
		wantReceived  int
		wantLost      int
		wantDelivered int
	}{
		{"drop next", func(e *enemu.Emulator) { e.DropNext(1) }, 2, 1, 1, 1},
		{"duplicate next", func(e *enemu.Emulator) { e.DuplicateNext(1) }, 2, 3, 0, 3},
		{"drop everything", func(e *enemu.Emulator) { e.SetRates(1, 0) }, 3, 0, 3, 0},
		{"duplicate everything", func(e *enemu.Emulator) { e.SetRates(0, 1) }, 2, 4, 0, 4},
		{"hook drops odd ids", func(e *enemu.Emulator) {
			e.SetFault(func(n enemu.Notification, _ enemu.Subscription) enemu.Fault {
				if strings.HasSuffix(n.ID, "1") || strings.HasSuffix(n.ID, "3") {
					return enemu.Drop
				}
				return enemu.Deliver
			})
		}, 4, 2, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			en := enemu.Start(t, apiKey)
			rc, url := startReceiver(t)
			subscribe(t, en, "scheduler", url, nil)
			tt.setup(en)
			for i := range tt.sends {
				if _, err := en.Publish(tick("tick-" + string(rune('0'+i)))); err != nil {
					t.Fatal(err)
				}
			}
			waitIdle(t, en)
			if n := int(rc.attempts.Load()); n != tt.wantReceived {
				t.Errorf("receiver got %d, want %d", n, tt.wantReceived)
			}
			if n := len(en.Lost()); n != tt.wantLost {
				t.Errorf("lost %d, want %d", n, tt.wantLost)
			}
			if n := len(en.DeliveriesWith(enemu.Delivered)); n != tt.wantDelivered {
				t.Errorf("delivered %d, want %d", n, tt.wantDelivered)
			}
			for _, d := range en.Lost() {
				if !d.Dropped || d.Attempts != 0 {
					t.Errorf("injected loss %+v", d)
				}
			}
		})
	}
}

func TestDuplicateCarriesSameIdentity(t *testing.T) {
	en := enemu.Start(t, apiKey)
	rc, url := startReceiver(t)
	subscribe(t, en, "scheduler", url, nil)
	en.DuplicateNext(1)
	id, err := en.Publish(tick("t-1"))
	if err != nil {
		t.Fatal(err)
	}
	waitIdle(t, en)
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("got %d deliveries", len(got))
	}
	for _, d := range got {
		if d.body["notification_id"] != id || d.body["id"] != "t-1" {
			t.Fatalf("duplicate differs: %v", d.body)
		}
	}
}

func TestSubscriptionFilters(t *testing.T) {
	en := enemu.Start(t, apiKey)
	byType, u1 := startReceiver(t)
	byPrefix, u2 := startReceiver(t)
	bySource, u3 := startReceiver(t)
	all, u4 := startReceiver(t)
	subscribe(t, en, "types", u1, func(s *enemu.Subscription) { s.Types = []string{events.TypeKeyRotated} })
	subscribe(t, en, "prefix", u2, func(s *enemu.Subscription) { s.TypePrefix = events.Prefix + "backup." })
	subscribe(t, en, "source", u3, func(s *enemu.Subscription) { s.SourceIDs = []string{"timer-src"} })
	subscribe(t, en, "all", u4, nil)
	for _, n := range []enemu.Notification{
		{ID: "1", Source: "s", Type: events.TypeKeyRotated, SourceID: sourceID, DefaultShort: "s", DefaultLong: "l"},
		{ID: "2", Source: "s", Type: events.TypeBackupCompleted, SourceID: sourceID, DefaultShort: "s", DefaultLong: "l"},
		{ID: "3", Source: "s", Type: events.TypeBackupFailed, SourceID: sourceID, DefaultShort: "s", DefaultLong: "l"},
		tick("4"),
	} {
		if _, err := en.Publish(n); err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, en)
	for name, tt := range map[string]struct {
		rc   *receiver
		want int32
	}{"types": {byType, 1}, "prefix": {byPrefix, 2}, "source": {bySource, 1}, "all": {all, 4}} {
		if got := tt.rc.attempts.Load(); got != tt.want {
			t.Errorf("%s received %d, want %d", name, got, tt.want)
		}
	}
	if !en.Unsubscribe("all") || en.Unsubscribe("all") {
		t.Fatal("unsubscribe")
	}
	if _, err := en.Publish(tick("5")); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, en)
	if got := all.attempts.Load(); got != 4 {
		t.Fatalf("unsubscribed receiver got %d", got)
	}
	for name, s := range map[string]enemu.Subscription{
		"no name":   {URL: u1},
		"bad url":   {Name: "x", URL: "127.0.0.1:80"},
		"duplicate": {Name: "types", URL: u1},
	} {
		if err := en.Subscribe(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPublish(t *testing.T) {
	en := enemu.Start(t, apiKey)
	rc, url := startReceiver(t)
	subscribe(t, en, "scheduler", url, nil)
	if _, err := en.Publish(enemu.Notification{ID: "x"}); err == nil {
		t.Fatal("invalid notification published")
	}
	alert := enemu.Notification{ID: "a-1", Source: "cloud-logs", Type: "com.ibm.cloud.logs.kp-rotate:AlertTriggered",
		SourceID: "logs-src", DefaultShort: "alert", DefaultLong: "alert", Data: json.RawMessage(`{"alert":"kp"}`),
		Extra: map[string]json.RawMessage{"ibmenpriority": json.RawMessage(`"P1"`)}}
	if _, err := en.Publish(alert); err != nil {
		t.Fatal(err)
	}
	// Over HTTP, as a tool on loopback would.
	resp, err := http.Post(en.URL()+enemu.PublishPath, "application/json", strings.NewReader(
		`{"id":"t-9","source":"timer","type":"tick","ibmensourceid":"timer-src","ibmendefaultshort":"t","ibmendefaultlong":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish over HTTP: %d", resp.StatusCode)
	}
	waitIdle(t, en)
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("got %d deliveries", len(got))
	}
	var sawAlert bool
	for _, d := range got {
		if d.body["id"] == "a-1" {
			sawAlert = true
			if d.body["ibmenpriority"] != "P1" || d.body["datacontenttype"] != "application/json" ||
				d.body["specversion"] != "1.0" || d.body["time"] == nil {
				t.Fatalf("published alert delivered as %s", d.raw)
			}
		}
	}
	if !sawAlert {
		t.Fatal("alert not delivered")
	}
	// The log endpoints answer JSON.
	resp, err = http.Get(en.URL() + enemu.DeliveriesLog)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ds []enemu.Delivery
	if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil || len(ds) != 2 {
		t.Fatalf("deliveries log: %d, %v", len(ds), err)
	}
}

func TestWaitIdleWaitsForSlowDelivery(t *testing.T) {
	en := enemu.Start(t, apiKey)
	rc, url := startReceiver(t)
	rc.hold = make(chan struct{})
	subscribe(t, en, "slow", url, nil)
	if _, err := en.Publish(tick("1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := en.WaitIdle(ctx); err == nil {
		t.Fatal("WaitIdle returned while a delivery was held")
	}
	close(rc.hold)
	waitIdle(t, en)
	if ds := en.Deliveries(); ds[0].Outcome != enemu.Delivered {
		t.Fatalf("delivery %+v", ds[0])
	}
}

func TestCloseAbandonsDeliveries(t *testing.T) {
	en := enemu.New(enemu.Options{APIKey: apiKey})
	rc, url := startReceiver(t)
	rc.hold = make(chan struct{})
	rc.arrived = make(chan struct{}, 1)
	defer close(rc.hold)
	subscribe(t, en, "slow", url, nil)
	if _, err := en.Publish(tick("1")); err != nil {
		t.Fatal(err)
	}
	<-rc.arrived
	en.Close()
	if ds := en.Deliveries(); ds[0].Outcome != enemu.Lost {
		t.Fatalf("delivery after close %+v", ds[0])
	}
	if _, err := en.Publish(tick("2")); !errors.Is(err, enemu.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

func TestRetryWaitsFollowTheClock(t *testing.T) {
	clk := clock.NewFake(t0)
	en := enemu.StartWithOptions(t, enemu.Options{APIKey: apiKey, Clock: clk, RetryWait: time.Minute})
	rc, url := startReceiver(t)
	rc.answer = func(int) int { return http.StatusBadGateway }
	rc.arrived = make(chan struct{}, 8)
	subscribe(t, en, "scheduler", url, nil)
	if _, err := en.Publish(tick("1")); err != nil {
		t.Fatal(err)
	}
	<-rc.arrived
	time.Sleep(30 * time.Millisecond)
	if n := rc.attempts.Load(); n != 1 {
		t.Fatalf("%d attempts before the clock moved", n)
	}
	for n := 2; n <= 4; n++ {
		// Advance until the pending wait fires (it may not be registered yet).
		deadline := time.Now().Add(5 * time.Second)
		for int(rc.attempts.Load()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("attempt %d never came", n)
			}
			clk.Advance(time.Minute)
			time.Sleep(time.Millisecond)
		}
	}
	waitIdle(t, en)
	lost := en.Lost()
	if len(lost) != 1 || lost[0].Attempts != 4 || !lost[0].Finished.After(t0) {
		t.Fatalf("lost %+v", lost)
	}
}

func TestNotificationJSONKeepsExtraFields(t *testing.T) {
	in := `{"specversion":"1.0","id":"1","source":"s","type":"t","ibmensourceid":"x","ibmendefaultshort":"a",` +
		`"ibmendefaultlong":"b","ibmenpushto":"{\"platforms\":[]}","time":"2026-04-01T10:00:00.000Z","data":{"n":1}}`
	var n enemu.Notification
	if err := json.Unmarshal([]byte(in), &n); err != nil {
		t.Fatal(err)
	}
	if !n.Time.Equal(t0) || string(n.Extra["ibmenpushto"]) != `"{\"platforms\":[]}"` || n.Validate() != nil {
		t.Fatalf("decoded %+v", n)
	}
	out, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	if len(a) != len(b) || b["ibmenpushto"] != a["ibmenpushto"] {
		t.Fatalf("round trip %s", out)
	}
	// Extra cannot override a known field.
	n.Extra["id"] = json.RawMessage(`"evil"`)
	out, _ = json.Marshal(n)
	if !strings.Contains(string(out), `"id":"1"`) {
		t.Fatalf("extra overrode id: %s", out)
	}
}

func TestSharedIAM(t *testing.T) {
	iam := iamemu.New(apiKey)
	en := enemu.StartWithOptions(t, enemu.Options{IAM: iam})
	if en.IAM() != iam {
		t.Fatal("IAM not shared")
	}
	c := newSender(t, en)
	for i := range 5 {
		if err := c.Send(context.Background(), "id-"+string(rune('a'+i)), failed()); err != nil {
			t.Fatal(err)
		}
	}
	if n := iam.TokenRequests(); n != 1 {
		t.Fatalf("token requests %d for 5 sends, want 1", n)
	}
}

// BenchmarkSendToDelivered measures one notification from notify.Send through the emulator to a
// receiver on loopback.
func BenchmarkSendToDelivered(b *testing.B) {
	en := enemu.Start(b, apiKey)
	rc := &receiver{arrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(rc)
	b.Cleanup(srv.Close)
	subscribe(b, en, "bench", srv.URL, nil)
	c := newSender(b, en)
	p := failed()
	ctx := context.Background()
	if err := c.Send(ctx, "warm", p); err != nil {
		b.Fatal(err)
	}
	<-rc.arrived
	for b.Loop() {
		if err := c.Send(ctx, "bench", p); err != nil {
			b.Fatal(err)
		}
		<-rc.arrived
	}
}

// TestDeliveryDecodesWithEventsContract checks the delivered shape against keyguard's own decoder.
func TestDeliveryDecodesWithEventsContract(t *testing.T) {
	en := enemu.Start(t, apiKey)
	got := make(chan events.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := events.FromHTTP(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- ev
	}))
	t.Cleanup(srv.Close)
	subscribe(t, en, "completion", srv.URL, nil)
	if err := newSender(t, en).Send(context.Background(), "backup.failed/salesdb/run-7", failed()); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, en)
	if d := en.Deliveries(); len(d) != 1 || d[0].Outcome != enemu.Delivered {
		t.Fatalf("deliveries %+v", d)
	}
	ev := <-got
	if ev.Shape != events.ShapeEN || ev.ID != "backup.failed/salesdb/run-7" || ev.Source != "keyguard/"+sourceID ||
		!ev.Time.Equal(t0) || ev.Subject != "salesdb" || ev.NotificationID != en.Notifications()[0].NotificationID {
		t.Fatalf("decoded %+v", ev)
	}
	p, err := events.Parse(ev)
	if err != nil || p.(*events.BackupFailed).Code != "SQL2062N" {
		t.Fatalf("parse: %v", err)
	}
}
