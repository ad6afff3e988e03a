package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// sender is what consumers of notify declare; the adapter must satisfy it.
type sender interface {
	Send(ctx context.Context, id string, p events.Payload) error
}

var _ sender = (*notify.Client)(nil)

const (
	apiKey     = "notify-test-key"
	instanceID = "instance-1"
	sourceID   = "src-keyguard"
)

var now = time.Date(2026, 4, 1, 10, 30, 0, 0, time.UTC)

// fakeEN is an EN endpoint whose answers the test scripts; it records bodies and attempts.
type fakeEN struct {
	iam      *iamemu.Emulator
	mu       sync.Mutex
	bodies   []map[string]any
	attempts atomic.Int32
	answer   func(attempt int) (status int, header http.Header)
	delay    time.Duration
}

func (f *fakeEN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == iamemu.TokenPath {
		f.iam.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != "/v1/instances/"+instanceID+"/notifications" || r.Method != http.MethodPost {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
		return
	}
	n := int(f.attempts.Add(1))
	if !f.iam.Valid(r.Header.Get("Authorization")) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	status, header := http.StatusAccepted, http.Header{}
	if f.answer != nil {
		status, header = f.answer(n)
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusAccepted {
		_, _ = io.WriteString(w, `{"notification_id":"n-1"}`)
		return
	}
	_, _ = fmt.Fprintf(w, `{"errors":[{"code":"x","message":"scripted"}],"status_code":%d}`, status)
}

func (f *fakeEN) lastBody(t *testing.T) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		t.Fatal("no notification reached the server")
	}
	return f.bodies[len(f.bodies)-1]
}

func startFake(t *testing.T) (*fakeEN, *httptest.Server) {
	t.Helper()
	f := &fakeEN{iam: iamemu.New(apiKey)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func newClient(t *testing.T, url string, mod func(*notify.Options)) *notify.Client {
	t.Helper()
	auth, err := notify.NewIAMAuthenticator(apiKey, url)
	if err != nil {
		t.Fatal(err)
	}
	o := notify.Options{
		URL: url, InstanceID: instanceID, SourceID: sourceID, Authenticator: auth,
		MaxRetryWait: 5 * time.Millisecond, Clock: clock.NewFake(now),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := notify.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func completed() events.BackupCompleted {
	return events.BackupCompleted{
		Database: "salesdb", RunID: "run-42", Type: events.Full, Mode: events.Online,
		StartedAt: now.Add(-time.Hour), EndedAt: now, ImageTimestamp: "20260401093000",
		SizeBytes: 9007199254740993, KeyCRN: "crn:v1:kp:key-1", KeyVersion: "v2", Verified: true,
	}
}

func TestSendBuildsNotification(t *testing.T) {
	f, srv := startFake(t)
	c := newClient(t, srv.URL, nil)
	p := completed()
	if err := c.Send(context.Background(), "backup.completed/salesdb/run-42", &p); err != nil {
		t.Fatalf("send: %v", err)
	}
	b := f.lastBody(t)
	want := map[string]any{
		"specversion":     "1.0",
		"id":              "backup.completed/salesdb/run-42",
		"source":          "keyguard/" + sourceID,
		"type":            events.TypeBackupCompleted,
		"time":            "2026-04-01T10:30:00.000Z",
		"ibmensourceid":   sourceID,
		"ibmenseverity":   "LOW",
		"subject":         "salesdb",
		"datacontenttype": "application/json",
	}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("%s = %v, want %v", k, b[k], v)
		}
	}
	if s, _ := b["ibmendefaultshort"].(string); !strings.Contains(s, "full backup completed for salesdb") {
		t.Errorf("short summary %q", s)
	}
	if s, _ := b["ibmendefaultlong"].(string); !strings.Contains(s, "run-42") || !strings.Contains(s, "20260401093000") {
		t.Errorf("long summary %q", s)
	}
	// data is the payload as an object, and decodes back to the same payload, big numbers exact.
	raw, _ := json.Marshal(b["data"])
	got, err := events.DecodeData(events.TypeBackupCompleted, raw)
	if err != nil {
		t.Fatalf("data does not decode: %v (%s)", err, raw)
	}
	if g := *got.(*events.BackupCompleted); g.RunID != p.RunID || !g.EndedAt.Equal(p.EndedAt) || g.SizeBytes != p.SizeBytes {
		t.Fatalf("data round trip: %+v", g)
	}
}

func TestAlertSummaries(t *testing.T) {
	tests := []struct {
		sev      events.Severity
		wantSev  string
		wantPart string
	}{
		{events.Critical, "HIGH", "keyguard CRITICAL: backup-failures (salesdb)"},
		{events.Warning, "MEDIUM", "keyguard WARNING: backup-failures (salesdb)"},
		{events.Info, "LOW", "keyguard INFO: backup-failures (salesdb)"},
	}
	f, srv := startFake(t)
	c := newClient(t, srv.URL, nil)
	for _, tt := range tests {
		t.Run(string(tt.sev), func(t *testing.T) {
			a := events.Alert{Severity: tt.sev, Database: "salesdb", Reason: "backup-failures",
				Message: "2 consecutive backups failed", Failures: 2}
			if err := c.Send(context.Background(), "alert-"+string(tt.sev), a); err != nil {
				t.Fatal(err)
			}
			b := f.lastBody(t)
			if b["ibmenseverity"] != tt.wantSev || b["ibmendefaultshort"] != tt.wantPart {
				t.Fatalf("severity %v short %v", b["ibmenseverity"], b["ibmendefaultshort"])
			}
			if long, _ := b["ibmendefaultlong"].(string); !strings.Contains(long, "2 consecutive backups failed") {
				t.Fatalf("long %q", long)
			}
		})
	}
}

func TestSeverityOfEvents(t *testing.T) {
	f, srv := startFake(t)
	c := newClient(t, srv.URL, nil)
	tests := []struct {
		name string
		p    events.Payload
		want string
	}{
		{"failed backup", events.BackupFailed{Database: "d", RunID: "r", Type: events.Full, EndedAt: now,
			Class: events.Transient, Message: "SQL2062N"}, "MEDIUM"},
		{"key destroyed", events.KeyStateChanged{KeyCRN: "crn:k", State: events.KeyDestroyed, ChangedAt: now}, "HIGH"},
		{"key active", events.KeyStateChanged{KeyCRN: "crn:k", State: events.KeyActive, ChangedAt: now}, "LOW"},
		{"key rotated", events.KeyRotated{KeyCRN: "crn:k", NewVersion: "v2", RotatedAt: now, DetectedBy: "poll"}, "LOW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Send(context.Background(), "id-"+tt.name, tt.p); err != nil {
				t.Fatal(err)
			}
			if got := f.lastBody(t)["ibmenseverity"]; got != tt.want {
				t.Fatalf("severity %v, want %s", got, tt.want)
			}
		})
	}
}

func TestInvalidInputIsPermanentAndNotSent(t *testing.T) {
	f, srv := startFake(t)
	c := newClient(t, srv.URL, nil)
	var nilAlert *events.Alert
	tests := []struct {
		name string
		id   string
		p    events.Payload
	}{
		{"invalid payload", "id", events.Alert{Severity: "loud", Reason: "r", Message: "m"}},
		{"nil payload", "id", nil},
		{"nil pointer payload", "id", nilAlert},
		{"empty id", "", events.Alert{Severity: events.Info, Reason: "r", Message: "m"}},
		{"long id", strings.Repeat("x", notify.MaxIDLength+1), events.Alert{Severity: events.Info, Reason: "r", Message: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Send(context.Background(), tt.id, tt.p)
			var ne *notify.Error
			if err == nil || notify.IsTransient(err) || !errors.As(err, &ne) {
				t.Fatalf("err %v, want a permanent *notify.Error", err)
			}
		})
	}
	if n := f.attempts.Load(); n != 0 {
		t.Fatalf("%d requests reached EN for invalid input", n)
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		retries      int
		wantAttempts int32
		wantTrans    bool
	}{
		{"400 permanent, not retried", 400, 2, 1, false},
		{"403 permanent", 403, 2, 1, false},
		{"404 permanent", 404, 2, 1, false},
		{"409 permanent", 409, 2, 1, false},
		{"501 permanent", 501, 2, 1, false},
		{"429 transient, retried", 429, 2, 3, true},
		{"500 transient, retried", 500, 2, 3, true},
		{"503 transient, no retries", 503, notify.NoRetries, 1, true},
		{"504 transient", 504, 1, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := startFake(t)
			f.answer = func(int) (int, http.Header) { return tt.status, nil }
			c := newClient(t, srv.URL, func(o *notify.Options) { o.MaxRetries = tt.retries })
			err := c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"})
			var ne *notify.Error
			if !errors.As(err, &ne) {
				t.Fatalf("err %v is not a *notify.Error", err)
			}
			if ne.StatusCode != tt.status || notify.IsTransient(err) != tt.wantTrans {
				t.Fatalf("status %d transient %t, want %d %t (%v)", ne.StatusCode, ne.Transient, tt.status, tt.wantTrans, err)
			}
			if got := f.attempts.Load(); got != tt.wantAttempts {
				t.Fatalf("attempts %d, want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestRetriedThenAccepted(t *testing.T) {
	f, srv := startFake(t)
	f.answer = func(n int) (int, http.Header) {
		if n < 3 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusAccepted, nil
	}
	c := newClient(t, srv.URL, nil)
	if err := c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"}); err != nil {
		t.Fatalf("send after two 503s: %v", err)
	}
	if got := f.attempts.Load(); got != 3 {
		t.Fatalf("attempts %d, want 3", got)
	}
}

func TestNetworkFailureIsTransient(t *testing.T) {
	_, srv := startFake(t)
	c := newClient(t, srv.URL, func(o *notify.Options) { o.MaxRetries = notify.NoRetries })
	// Get a token first, then take the server away.
	if err := c.Send(context.Background(), "warm", events.Alert{Severity: events.Info, Reason: "r", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	err := c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"})
	if err == nil || !notify.IsTransient(err) {
		t.Fatalf("err %v, want transient", err)
	}
}

func TestBudgetBoundsSend(t *testing.T) {
	alert := events.Alert{Severity: events.Info, Reason: "r", Message: "m"}
	tests := []struct {
		name  string
		setup func(*fakeEN)
	}{
		{"slow server", func(f *fakeEN) { f.delay = 5 * time.Second }},
		{"long retry-after", func(f *fakeEN) {
			f.answer = func(int) (int, http.Header) {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := startFake(t)
			tt.setup(f)
			c := newClient(t, srv.URL, func(o *notify.Options) { o.Timeout = 300 * time.Millisecond })
			start := time.Now()
			err := c.Send(context.Background(), "id", alert)
			if took := time.Since(start); took > time.Second {
				t.Fatalf("send took %s with a 300ms budget", took)
			}
			if !notify.IsTransient(err) {
				t.Fatalf("err %v, want transient", err)
			}
		})
	}
}

func TestSlowIAMBoundedByBudget(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := newClient(t, srv.URL, func(o *notify.Options) { o.Timeout = 200 * time.Millisecond })
	start := time.Now()
	err := c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"})
	if took := time.Since(start); took > time.Second {
		t.Fatalf("send took %s while IAM hung", took)
	}
	if !notify.IsTransient(err) {
		t.Fatalf("err %v, want transient", err)
	}
}

func TestBadAPIKeyIsPermanent(t *testing.T) {
	f, srv := startFake(t)
	auth, _ := notify.NewIAMAuthenticator("wrong-key", srv.URL)
	c, err := notify.New(notify.Options{URL: srv.URL, InstanceID: instanceID, SourceID: sourceID, Authenticator: auth})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"})
	var ne *notify.Error
	if !errors.As(err, &ne) || ne.Transient || ne.StatusCode != http.StatusBadRequest {
		t.Fatalf("err %v, want permanent with IAM's 400", err)
	}
	if strings.Contains(err.Error(), "wrong-key") {
		t.Fatal("the API key leaked into the error")
	}
	if f.attempts.Load() != 0 {
		t.Fatal("EN was called without a token")
	}
}

func TestIAMServerErrorIsTransient(t *testing.T) {
	f, srv := startFake(t)
	f.iam.FailNext(1, http.StatusInternalServerError)
	c := newClient(t, srv.URL, nil)
	err := c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"})
	if !notify.IsTransient(err) {
		t.Fatalf("err %v, want transient", err)
	}
	if err := c.Send(context.Background(), "id", events.Alert{Severity: events.Info, Reason: "r", Message: "m"}); err != nil {
		t.Fatalf("second send: %v", err)
	}
}

func TestSendEvent(t *testing.T) {
	f, srv := startFake(t)
	c := newClient(t, srv.URL, nil)
	data, _ := json.Marshal(completed())
	err := c.SendEvent(context.Background(), events.Event{ID: "fwd-1", Source: "keyguard/runner",
		Type: events.TypeBackupCompleted, Time: now.Add(-time.Minute), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	b := f.lastBody(t)
	if b["source"] != "keyguard/runner" || b["id"] != "fwd-1" || b["time"] != "2026-04-01T10:29:00.000Z" {
		t.Fatalf("body %v", b)
	}
	// A foreign type goes out with generic texts; its data must be an object.
	if err := c.SendEvent(context.Background(), events.Event{ID: "t-1", Type: "com.example.tick"}); err != nil {
		t.Fatal(err)
	}
	if b := f.lastBody(t); b["ibmendefaultshort"] != "keyguard event com.example.tick" || b["source"] != "keyguard/"+sourceID {
		t.Fatalf("body %v", b)
	}
	for name, ev := range map[string]events.Event{
		"no type":           {ID: "x"},
		"bad keyguard data": {ID: "x", Type: events.TypeBackupCompleted, Data: []byte(`{"database":""}`)},
		"array data":        {ID: "x", Type: "com.example.tick", Data: []byte(`[1]`)},
	} {
		if err := c.SendEvent(context.Background(), ev); err == nil || notify.IsTransient(err) {
			t.Errorf("%s: err %v, want permanent", name, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	auth := &core.NoAuthAuthenticator{}
	good := notify.Options{URL: "http://127.0.0.1:1", InstanceID: "i", SourceID: "s", Authenticator: auth}
	if _, err := notify.New(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, mod := range map[string]func(*notify.Options){
		"no url":         func(o *notify.Options) { o.URL = "" },
		"no instance":    func(o *notify.Options) { o.InstanceID = "" },
		"no source":      func(o *notify.Options) { o.SourceID = "" },
		"no auth":        func(o *notify.Options) { o.Authenticator = nil },
		"typed nil auth": func(o *notify.Options) { o.Authenticator = (*core.IamAuthenticator)(nil) },
	} {
		o := good
		mod(&o)
		if _, err := notify.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := notify.NewIAMAuthenticator("", "http://127.0.0.1:1"); err == nil {
		t.Error("empty API key accepted")
	}
}

func TestIsTransient(t *testing.T) {
	if notify.IsTransient(nil) || notify.IsTransient(io.EOF) {
		t.Fatal("foreign errors are not transient notify errors")
	}
	wrapped := fmt.Errorf("emit: %w", &notify.Error{Op: "send", ID: "x", Transient: true, Err: io.EOF})
	if !notify.IsTransient(wrapped) {
		t.Fatal("wrapped transient error not recognised")
	}
	for code, want := range map[int]bool{400: false, 401: false, 404: false, 408: true, 429: true, 500: true,
		501: false, 502: true, 503: true, 599: true} {
		if notify.TransientStatus(code) != want {
			t.Errorf("TransientStatus(%d) = %t", code, !want)
		}
	}
}
