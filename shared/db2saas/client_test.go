package db2saas_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/test/db2saasemu"
)

const (
	apiKey  = "db2saas-test-key"
	crnA    = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:11111111-2222-4333-8444-555555555555::"
	crnB    = "crn:v1:bluemix:public:dashdb-for-transactions:eu-de:a/0123456789abcdef0123456789abcdef:66666666-7777-4888-9999-000000000000::"
	backupD = 10 * time.Minute
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

type stack struct {
	clk    *clock.Fake
	emu    *db2saasemu.Emulator
	client *db2saas.Client
}

// newStack starts the emulator (one known instance, crnA, on a fake clock) and a client of it
// with test timing. opts may adjust the client's options.
func newStack(t *testing.T, opts ...func(*db2saas.Options)) *stack {
	t.Helper()
	clk := clock.NewFake(t0)
	emu := db2saasemu.Start(t, db2saasemu.Options{APIKey: apiKey, Clock: clk, Duration: backupD, Instances: []string{crnA}})
	return &stack{clk: clk, emu: emu, client: newClient(t, emu.ServiceURL(), emu.URL(), apiKey, opts...)}
}

func newClient(t *testing.T, serviceURL, iamURL, key string, opts ...func(*db2saas.Options)) *db2saas.Client {
	t.Helper()
	auth, err := db2saas.NewIAMAuthenticator(key, iamURL)
	if err != nil {
		t.Fatal(err)
	}
	o := db2saas.Options{URL: serviceURL, Authenticator: auth, RetryWait: time.Millisecond, MaxRetryWait: 5 * time.Millisecond,
		Timeout: 2 * time.Second, AttemptTimeout: time.Second}
	for _, f := range opts {
		f(&o)
	}
	c, err := db2saas.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func countRequests(emu *db2saasemu.Emulator, method string) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}

func TestClientCreateAndList(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	list, err := s.client.ListBackups(ctx, crnA)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("first list = %v, %v; want empty", list, err)
	}
	task, err := s.client.CreateBackup(ctx, crnA)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(task.ID, ":task:") {
		t.Errorf("task id %q", task.ID)
	}
	s.clk.Advance(time.Minute)
	list, err = s.client.ListBackups(ctx, crnA)
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	b := list[0]
	if b.Status != db2saas.StatusRunning || b.Type != "on_demand" || !b.CreatedAt.Equal(t0) || b.SizeBytes != 0 || b.Duration != time.Minute {
		t.Errorf("running backup %+v", b)
	}
	s.clk.Advance(backupD)
	list, err = s.client.ListBackups(ctx, crnA)
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if b := list[0]; b.Status != db2saas.StatusCompleted || b.SizeBytes != db2saasemu.DefaultSize || b.Duration != backupD || !b.EndedAt().Equal(t0.Add(backupD)) {
		t.Errorf("completed backup %+v", b)
	}
}

func TestClientHeaders(t *testing.T) {
	s := newStack(t)
	if _, err := s.client.CreateBackup(context.Background(), crnA); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.ListBackups(context.Background(), crnA); err != nil {
		t.Fatal(err)
	}
	reqs := s.emu.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests %+v", reqs)
	}
	for _, r := range reqs {
		// The emulator answers 401 without a valid bearer token, so 200 proves the token was sent.
		if r.Status != http.StatusOK || r.Profile != url.QueryEscape(crnA) || !strings.Contains(r.Profile, "%3A") || !strings.Contains(r.Profile, "%2F") {
			t.Errorf("request %+v", r)
		}
	}
	if reqs[0].Method != "POST" || reqs[0].Path != "/dbapi/v4/manage/backups/backup" || reqs[1].Method != "GET" || reqs[1].Path != "/dbapi/v4/manage/backups" {
		t.Errorf("routes %+v", reqs)
	}
	if n := s.emu.IAM().TokensIssued(); n != 1 {
		t.Errorf("%d tokens issued for two calls, want 1 (cached)", n)
	}
}

func TestClientPermanentFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, s *stack) *db2saas.Client
		crn      string
		class    events.FailureClass
		status   int
		requests int // API requests that reached the emulator
	}{
		{name: "wrong API key", class: events.Configuration, status: http.StatusBadRequest, requests: 0, crn: crnA,
			setup: func(t *testing.T, s *stack) *db2saas.Client {
				return newClient(t, s.emu.ServiceURL(), s.emu.URL(), "not-the-key")
			}},
		{name: "revoked token", class: events.Configuration, status: http.StatusUnauthorized, requests: 2, crn: crnA,
			setup: func(t *testing.T, s *stack) *db2saas.Client {
				if _, err := s.client.ListBackups(context.Background(), crnA); err != nil {
					t.Fatal(err)
				}
				s.emu.IAM().RevokeAll()
				return s.client
			}},
		{name: "unknown instance", class: events.Permanent, status: http.StatusNotFound, requests: 1, crn: crnB},
		{name: "not a CRN", class: events.Configuration, requests: 0, crn: "db1"},
		{name: "injected 400", class: events.Permanent, status: http.StatusBadRequest, requests: 1, crn: crnA,
			setup: func(_ *testing.T, s *stack) *db2saas.Client {
				s.emu.FailNext(1, http.StatusBadRequest)
				return s.client
			}},
		{name: "501 is not retried", class: events.Permanent, status: http.StatusNotImplemented, requests: 1, crn: crnA,
			setup: func(_ *testing.T, s *stack) *db2saas.Client {
				s.emu.FailNext(3, http.StatusNotImplemented)
				return s.client
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			c := s.client
			if tc.setup != nil {
				c = tc.setup(t, s)
			}
			_, err := c.ListBackups(context.Background(), tc.crn)
			var e *db2saas.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *db2saas.Error", err)
			}
			if e.Class != tc.class || db2saas.ClassOf(err) != tc.class || db2saas.IsTransient(err) || e.StatusCode != tc.status {
				t.Fatalf("err = %v (class %s, status %d), want class %s status %d", err, e.Class, e.StatusCode, tc.class, tc.status)
			}
			if n := len(s.emu.Requests()); n != tc.requests {
				t.Fatalf("%d API requests, want %d (permanent failures are not retried)", n, tc.requests)
			}
			if strings.Contains(err.Error(), apiKey) {
				t.Fatal("the error message carries the API key")
			}
		})
	}
}

func TestClientRetriesTransient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		fail     int
		retries  int
		ok       bool
		requests int
	}{
		{name: "503 twice then ok", status: http.StatusServiceUnavailable, fail: 2, retries: 2, ok: true, requests: 3},
		{name: "429 with Retry-After then ok", status: http.StatusTooManyRequests, fail: 1, retries: 2, ok: true, requests: 2},
		{name: "500 beyond the retries", status: http.StatusInternalServerError, fail: 5, retries: 2, ok: false, requests: 3},
		{name: "no retries", status: http.StatusBadGateway, fail: 1, retries: db2saas.NoRetries, ok: false, requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, func(o *db2saas.Options) { o.MaxRetries = tc.retries })
			s.emu.FailNext(tc.fail, tc.status)
			_, err := s.client.ListBackups(context.Background(), crnA)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !tc.ok {
				var e *db2saas.Error
				if !errors.As(err, &e) || !db2saas.IsTransient(err) || e.StatusCode != tc.status {
					t.Fatalf("err = %v, want transient with status %d", err, tc.status)
				}
			}
			if n := len(s.emu.Requests()); n != tc.requests {
				t.Fatalf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestClientCreateConflictIsInProgress(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if _, err := s.client.CreateBackup(ctx, crnA); err != nil {
		t.Fatal(err)
	}
	_, err := s.client.CreateBackup(ctx, crnA)
	if !errors.Is(err, db2saas.ErrBackupInProgress) || !db2saas.IsTransient(err) {
		t.Fatalf("err = %v, want transient ErrBackupInProgress", err)
	}
	if n := countRequests(s.emu, "POST"); n != 2 {
		t.Fatalf("%d creates sent, want 2 (a conflict is not retried)", n)
	}
	if n := len(s.emu.Backups(crnA)); n != 1 {
		t.Fatalf("%d backups", n)
	}
}

func TestClientBudget(t *testing.T) {
	t.Run("retries stop within the timeout", func(t *testing.T) {
		s := newStack(t, func(o *db2saas.Options) {
			o.Timeout, o.MaxRetries, o.RetryWait, o.MaxRetryWait = 300*time.Millisecond, 1000, 20*time.Millisecond, 40*time.Millisecond
		})
		s.emu.FailNext(10000, http.StatusServiceUnavailable)
		start := time.Now()
		_, err := s.client.ListBackups(context.Background(), crnA)
		if el := time.Since(start); el > time.Second {
			t.Fatalf("took %s with a 300ms budget", el)
		}
		if !db2saas.IsTransient(err) || len(s.emu.Requests()) < 3 {
			t.Fatalf("err = %v after %d requests", err, len(s.emu.Requests()))
		}
	})
	t.Run("a hanging service", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		c, err := db2saas.New(db2saas.Options{URL: srv.URL, Authenticator: &core.NoAuthAuthenticator{}, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.CreateBackup(context.Background(), crnA)
		if el := time.Since(start); el > time.Second {
			t.Fatalf("took %s with a 200ms budget", el)
		}
		if !db2saas.IsTransient(err) {
			t.Fatalf("err = %v, want transient", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		dead := srv.URL
		srv.Close()
		c, err := db2saas.New(db2saas.Options{URL: dead, Authenticator: &core.NoAuthAuthenticator{}, RetryWait: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListBackups(context.Background(), crnA); !db2saas.IsTransient(err) {
			t.Fatalf("err = %v, want transient", err)
		}
	})
}

func TestClientMalformedAnswer(t *testing.T) {
	for _, body := range []string{`{"items":[]}`, `not json`, `{"backups":[{"id":"x"}]}`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))
		c, err := db2saas.New(db2saas.Options{URL: srv.URL, Authenticator: &core.NoAuthAuthenticator{}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListBackups(context.Background(), crnA)
		srv.Close()
		if !errors.Is(err, db2saas.ErrMalformedResponse) || db2saas.ClassOf(err) != events.Permanent {
			t.Errorf("body %q: err = %v, want permanent ErrMalformedResponse", body, err)
		}
	}
}

func TestNewNeedsAuthenticator(t *testing.T) {
	if _, err := db2saas.New(db2saas.Options{}); err == nil {
		t.Fatal("New without an authenticator succeeded")
	}
	if _, err := db2saas.NewIAMAuthenticator("", ""); err == nil {
		t.Fatal("an empty API key was accepted")
	}
}

// Every error answers errkind.Of, so the scheduler and the edge decide without knowing this package.
func TestErrorKinds(t *testing.T) {
	invalid := newRun(t0)
	invalid.RunID = ""
	for _, tc := range []struct {
		name string
		call func(t *testing.T, s *stack) error
		want errkind.Kind
	}{
		{"503", func(_ *testing.T, s *stack) error {
			s.emu.FailNext(10, http.StatusServiceUnavailable)
			_, err := s.client.ListBackups(context.Background(), crnA)
			return err
		}, errkind.Transient},
		{"a backup in progress", func(_ *testing.T, s *stack) error {
			s.emu.FailNext(1, http.StatusConflict)
			_, err := s.client.CreateBackup(context.Background(), crnA)
			return err
		}, errkind.Transient},
		{"unknown instance", func(_ *testing.T, s *stack) error {
			_, err := s.client.ListBackups(context.Background(), crnB)
			return err
		}, errkind.Permanent},
		{"incremental backup", func(t *testing.T, s *stack) error {
			x, _ := newExecutor(t, s)
			run := newRun(t0)
			run.Type = events.Incremental
			return x.Start(context.Background(), run)
		}, errkind.Permanent},
		{"api key refused by IAM", func(t *testing.T, s *stack) error {
			_, err := newClient(t, s.emu.ServiceURL(), s.emu.URL(), "not-the-key").ListBackups(context.Background(), crnA)
			return err
		}, errkind.Configuration},
		{"403", func(_ *testing.T, s *stack) error {
			s.emu.FailNext(1, http.StatusForbidden)
			_, err := s.client.ListBackups(context.Background(), crnA)
			return err
		}, errkind.Configuration},
		{"instance is not a CRN", func(_ *testing.T, s *stack) error {
			_, err := s.client.ListBackups(context.Background(), "db1")
			return err
		}, errkind.Configuration},
		{"invalid run", func(t *testing.T, s *stack) error {
			x, _ := newExecutor(t, s)
			return x.Start(context.Background(), invalid)
		}, errkind.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t, newStack(t))
			if got := errkind.Of(fmt.Errorf("handler: %w", err)); got != tc.want {
				t.Fatalf("errkind.Of(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

// stepClock is a fake clock whose waits end at once (each AfterFunc moves the time to the wait's
// end); it records the waits asked for.
type stepClock struct {
	*clock.Fake
	waits []time.Duration
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.waits = append(c.waits, d)
	t := c.Fake.AfterFunc(d, f)
	c.Advance(d)
	return t
}

func TestClientRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxWait time.Duration
		want    time.Duration
	}{
		{"a longer Retry-After replaces the wait", 2 * time.Second, time.Second}, // the emulator's 429 says 1 s
		{"capped by MaxRetryWait", 500 * time.Millisecond, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &stepClock{Fake: clock.NewFake(t0)}
			s := newStack(t, func(o *db2saas.Options) { o.Clock, o.RetryWait, o.MaxRetryWait = clk, 100*time.Millisecond, tc.maxWait })
			s.emu.FailNext(1, http.StatusTooManyRequests)
			if _, err := s.client.ListBackups(context.Background(), crnA); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(clk.waits, []time.Duration{tc.want}) || len(s.emu.Requests()) != 2 {
				t.Fatalf("waits %v after %d requests, want [%v] and 2", clk.waits, len(s.emu.Requests()), tc.want)
			}
		})
	}
}
