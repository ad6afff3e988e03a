package codeengine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/codeengine"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/jobevent"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/test/ceemu"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// The scheduler starts runs through the Client.
var _ scheduler.Executor = (*codeengine.Client)(nil)

const (
	apiKey  = "ce-test-api-key"
	project = "4e49b3e0-27a8-48d2-a784-c7ee48bb863b"
	job     = "keyguard-runner"
)

func sampleRun(id string) events.BackupStarted {
	start := time.Date(2026, 3, 2, 2, 0, 5, 0, time.UTC)
	return events.BackupStarted{
		Database: "sales-prod", RunID: id, Type: events.Full, Mode: events.Online,
		Slot: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC), StartedAt: start, LeaseUntil: start.Add(4 * time.Hour),
		KeyCRN: "crn:v1:bluemix:public:kms:us-south:a/0123:inst:key:aaaa", KeyVersion: "v2", Executor: "db2cli",
	}
}

type setup struct {
	emu    *ceemu.Emulator
	client *codeengine.Client
}

func start(t *testing.T, mod func(*codeengine.Options)) setup {
	t.Helper()
	emu := ceemu.Start(t, ceemu.Options{APIKey: apiKey, ProjectID: project, Jobs: []string{job}})
	o := codeengine.Options{URL: emu.APIURL(), ProjectID: project, JobName: job,
		Authenticator: &core.IamAuthenticator{ApiKey: apiKey, URL: emu.URL()},
		Log:           slog.New(slog.NewTextHandler(t.Output(), nil))}
	if mod != nil {
		mod(&o)
	}
	c, err := codeengine.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return setup{emu, c}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStartCreatesJobRunCarryingTheEvent(t *testing.T) {
	s := start(t, nil)
	run := sampleRun("sales-prod-full-20260302T020000Z-a0")
	if err := s.client.Start(ctx(t), run); err != nil {
		t.Fatal(err)
	}
	runs := s.emu.JobRuns()
	if len(runs) != 1 {
		t.Fatalf("%d job runs, want 1", len(runs))
	}
	jr := runs[0]
	if jr.Name != codeengine.JobRunName(run.RunID) || jr.JobName != job || jr.ProjectID != project || jr.ArraySpec != "0" {
		t.Fatalf("job run %+v", jr)
	}
	for _, v := range jr.EnvVars {
		if v.Type != "literal" {
			t.Errorf("variable %s has type %q, want literal", v.Name, v.Type)
		}
	}
	if got := jr.Getenv(jobevent.VarRunID); got != run.RunID {
		t.Errorf("KEYGUARD_RUN_ID = %q", got)
	}
	// The runner's view: exactly what it would read had Event Notifications started it.
	e, err := events.FromJobEnv(jr.Getenv)
	if err != nil {
		t.Fatalf("FromJobEnv: %v", err)
	}
	p, err := events.Parse(e)
	if err != nil {
		t.Fatal(err)
	}
	if e.Shape != events.ShapeJobEN || e.ID != jobevent.EventID(run.RunID) || !reflect.DeepEqual(p, &run) {
		t.Fatalf("runner reads %+v / %#v", e, p)
	}
}

func TestStartIsIdempotent(t *testing.T) {
	s := start(t, nil)
	run := sampleRun("run-1")
	for i := range 3 {
		if err := s.client.Start(ctx(t), run); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
	if n := len(s.emu.JobRuns()); n != 1 {
		t.Fatalf("%d job runs, want 1", n)
	}
	if n := s.emu.Requests(); n != 3 {
		t.Fatalf("%d API requests, want 3 (two answered 409)", n)
	}
	if err := s.client.Start(ctx(t), sampleRun("run-2")); err != nil || len(s.emu.JobRuns()) != 2 {
		t.Fatalf("a second run id: %v, %d runs", err, len(s.emu.JobRuns()))
	}
}

func TestStatusPhases(t *testing.T) {
	s := start(t, nil)
	run := sampleRun("run-status")
	if err := s.client.Start(ctx(t), run); err != nil {
		t.Fatal(err)
	}
	name := codeengine.JobRunName(run.RunID)
	tests := []struct {
		status, reason string
		want           codeengine.Phase
		detail         string
	}{
		{ceemu.StatusPending, "", codeengine.Pending, "pending 1"},
		{ceemu.StatusRunning, "", codeengine.Running, "running 1"},
		{ceemu.StatusCompleted, "", codeengine.Succeeded, "succeeded 1"},
		{ceemu.StatusFailed, "OOMKilled", codeengine.Failed, "failed 1 of 1 (indices 0): OOMKilled"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			if err := s.emu.SetStatus(name, tt.status, tt.reason); err != nil {
				t.Fatal(err)
			}
			st, err := s.client.Status(ctx(t), run.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Known || st.Name != name || st.Phase != tt.want || !strings.Contains(st.Detail, tt.detail) {
				t.Fatalf("status %+v, want phase %s and detail containing %q", st, tt.want, tt.detail)
			}
		})
	}
}

func TestStatusOfUnknownRun(t *testing.T) {
	s := start(t, nil)
	st, err := s.client.Status(ctx(t), "never-started")
	if err != nil || st.Known || st.Name != codeengine.JobRunName("never-started") {
		t.Fatalf("status %+v, err %v; want unknown and no error", st, err)
	}
	// A deleted job run is unknown again, and Start creates it anew.
	run := sampleRun("run-deleted")
	if err := s.client.Start(ctx(t), run); err != nil {
		t.Fatal(err)
	}
	s.emu.Delete(codeengine.JobRunName(run.RunID))
	if st, err := s.client.Status(ctx(t), run.RunID); err != nil || st.Known {
		t.Fatalf("after delete: %+v, %v", st, err)
	}
}

func TestAuthFailuresArePermanent(t *testing.T) {
	t.Run("api key refused by IAM", func(t *testing.T) {
		s := start(t, func(o *codeengine.Options) {
			o.Authenticator = &core.IamAuthenticator{ApiKey: "wrong-key", URL: strings.TrimSuffix(o.URL, ceemu.APIPrefix)}
		})
		err := s.client.Start(ctx(t), sampleRun("run-auth"))
		var ce *codeengine.Error
		if !errors.As(err, &ce) || ce.Transient || !ce.Auth || ce.StatusCode != http.StatusBadRequest || ce.Attempts != 1 {
			t.Fatalf("err %#v (%v), want a permanent IAM 400 after one attempt", ce, err)
		}
		if s.emu.Requests() != 0 || s.emu.IAM().TokenRequests() != 1 {
			t.Fatalf("API requests %d, token requests %d", s.emu.Requests(), s.emu.IAM().TokenRequests())
		}
		if _, err := s.client.Status(ctx(t), "run-auth"); err == nil || codeengine.IsTransient(err) {
			t.Fatalf("status with a refused key: %v", err)
		}
	})
	t.Run("token refused by the API", func(t *testing.T) {
		s := start(t, nil)
		if err := s.client.Start(ctx(t), sampleRun("run-a")); err != nil {
			t.Fatal(err)
		}
		s.emu.IAM().RevokeAll() // the client's cached token is no longer accepted
		err := s.client.Start(ctx(t), sampleRun("run-b"))
		var ce *codeengine.Error
		if !errors.As(err, &ce) || ce.Transient || ce.Auth || ce.StatusCode != http.StatusUnauthorized {
			t.Fatalf("err %v, want a permanent 401", err)
		}
	})
}

func TestTransientFailuresAreRetriedWithinBudget(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			s := start(t, nil)
			s.emu.FailNext(2, code)
			begin := time.Now()
			if err := s.client.Start(ctx(t), sampleRun("run-retry")); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(begin); took > codeengine.DefaultTimeout {
				t.Fatalf("took %s", took)
			}
			if s.emu.Requests() != 3 || len(s.emu.JobRuns()) != 1 {
				t.Fatalf("requests %d runs %d, want 3 and 1", s.emu.Requests(), len(s.emu.JobRuns()))
			}
		})
	}
	t.Run("status", func(t *testing.T) {
		s := start(t, nil)
		s.emu.FailNext(1, http.StatusInternalServerError)
		if st, err := s.client.Status(ctx(t), "nothing"); err != nil || st.Known {
			t.Fatalf("%+v %v", st, err)
		}
	})
}

func TestTransientFailureOutlastingTheBudget(t *testing.T) {
	const budget = 700 * time.Millisecond
	s := start(t, func(o *codeengine.Options) { o.Timeout = budget })
	s.emu.FailNext(1000, http.StatusServiceUnavailable)
	begin := time.Now()
	err := s.client.Start(ctx(t), sampleRun("run-budget"))
	took := time.Since(begin)
	var ce *codeengine.Error
	if !errors.As(err, &ce) || !ce.Transient || ce.StatusCode != http.StatusServiceUnavailable || ce.Attempts < 2 {
		t.Fatalf("err %v, want a transient 503 after several attempts", err)
	}
	if took > budget+300*time.Millisecond {
		t.Fatalf("took %s, budget %s", took, budget)
	}
	if len(s.emu.JobRuns()) != 0 {
		t.Fatal("a job run was created")
	}
}

func TestHangingServerIsCutAtTheBudget(t *testing.T) {
	iam := iamemu.New(apiKey)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == iamemu.TokenPath {
			iam.ServeHTTP(w, r)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := codeengine.New(codeengine.Options{URL: srv.URL + "/v2", ProjectID: project, JobName: job,
		Authenticator: &core.IamAuthenticator{ApiKey: apiKey, URL: srv.URL}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = c.Status(ctx(t), "run-hang")
	if !codeengine.IsTransient(err) || time.Since(begin) > time.Second {
		t.Fatalf("err %v after %s, want transient within the budget", err, time.Since(begin))
	}
}

func TestPermanentFailuresAreNotRetried(t *testing.T) {
	tests := []struct {
		name string
		fail int // injected status, or 0
		mod  func(*codeengine.Options)
		want int
	}{
		{name: "400", fail: http.StatusBadRequest, want: http.StatusBadRequest},
		{name: "403", fail: http.StatusForbidden, want: http.StatusForbidden},
		{name: "501", fail: http.StatusNotImplemented, want: http.StatusNotImplemented},
		{name: "unknown job", mod: func(o *codeengine.Options) { o.JobName = "no-such-job" }, want: http.StatusNotFound},
		{name: "unknown project", mod: func(o *codeengine.Options) { o.ProjectID = "other-project" }, want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.mod)
			if tt.fail != 0 {
				s.emu.FailNext(1, tt.fail)
			}
			err := s.client.Start(ctx(t), sampleRun("run-perm"))
			var ce *codeengine.Error
			if !errors.As(err, &ce) || ce.Transient || ce.StatusCode != tt.want || ce.Attempts != 1 {
				t.Fatalf("err %v, want permanent %d after one attempt", err, tt.want)
			}
			if s.emu.Requests() != 1 || len(s.emu.JobRuns()) != 0 {
				t.Fatalf("requests %d runs %d", s.emu.Requests(), len(s.emu.JobRuns()))
			}
		})
	}
}

func TestNetworkFailureIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/v2"
	_ = l.Close()
	s := start(t, func(o *codeengine.Options) { o.URL = dead; o.Timeout = 500 * time.Millisecond })
	err = s.client.Start(ctx(t), sampleRun("run-net"))
	var ce *codeengine.Error
	if !errors.As(err, &ce) || !ce.Transient || ce.StatusCode != 0 {
		t.Fatalf("err %v, want transient without status", err)
	}
}

func TestInvalidRunIsRefusedBeforeSending(t *testing.T) {
	s := start(t, nil)
	run := sampleRun("run-bad")
	run.KeyCRN = ""
	err := s.client.Start(ctx(t), run)
	if err == nil || codeengine.IsTransient(err) || !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("err %v, want permanent ErrInvalid", err)
	}
	if s.emu.Requests() != 0 {
		t.Fatal("an invalid run reached the API")
	}
}

func TestNewValidatesOptions(t *testing.T) {
	auth := &core.IamAuthenticator{ApiKey: apiKey, URL: "http://127.0.0.1:1"}
	good := codeengine.Options{URL: codeengine.RegionURL("us-south"), ProjectID: project, JobName: job, Authenticator: auth}
	tests := []struct {
		name string
		mod  func(*codeengine.Options)
		want string
	}{
		{"no url", func(o *codeengine.Options) { o.URL = "" }, "URL"},
		{"relative url", func(o *codeengine.Options) { o.URL = "/v2" }, "URL"},
		{"no project", func(o *codeengine.Options) { o.ProjectID = "" }, "project"},
		{"project with slash", func(o *codeengine.Options) { o.ProjectID = "a/b" }, "project"},
		{"bad job name", func(o *codeengine.Options) { o.JobName = "Runner_Job" }, "job name"},
		{"no authenticator", func(o *codeengine.Options) { o.Authenticator = nil }, "authenticator"},
		{"authenticator without key", func(o *codeengine.Options) { o.Authenticator = &core.IamAuthenticator{} }, "authenticator"},
		{"negative timeout", func(o *codeengine.Options) { o.Timeout = -time.Second }, "timeout"},
	}
	if _, err := codeengine.New(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.mod(&o)
			if _, err := codeengine.New(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRegionURL(t *testing.T) {
	if got := codeengine.RegionURL("eu-de"); got != "https://api.eu-de.codeengine.cloud.ibm.com/v2" {
		t.Fatal(got)
	}
}

func TestIsTransient(t *testing.T) {
	if codeengine.IsTransient(nil) || codeengine.IsTransient(errors.New("x")) {
		t.Fatal("foreign errors are not transient")
	}
	wrapped := errors.Join(errors.New("start"), &codeengine.Error{Op: "create job run", Transient: true, Err: errors.New("503")})
	if !codeengine.IsTransient(wrapped) {
		t.Fatal("wrapped transient error not recognised")
	}
	for code, want := range map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true, 501: false, 400: false, 401: false, 403: false, 404: false, 409: false} {
		if codeengine.TransientStatus(code) != want {
			t.Errorf("TransientStatus(%d) != %t", code, want)
		}
	}
}

func TestProbeReportsOnlyAFailedJobRun(t *testing.T) {
	s := start(t, nil)
	run := sampleRun("run-probe")
	if p, err := s.client.Probe(ctx(t), run); p != nil || err != nil {
		t.Fatalf("unknown run: %v %v", p, err)
	}
	if err := s.client.Start(ctx(t), run); err != nil {
		t.Fatal(err)
	}
	name := codeengine.JobRunName(run.RunID)
	for _, st := range []string{ceemu.StatusRunning, ceemu.StatusCompleted} {
		if err := s.emu.SetStatus(name, st, ""); err != nil {
			t.Fatal(err)
		}
		if p, err := s.client.Probe(ctx(t), run); p != nil || err != nil {
			t.Fatalf("%s: %v %v", st, p, err)
		}
	}
	if err := s.emu.SetStatus(name, ceemu.StatusFailed, "OOMKilled"); err != nil {
		t.Fatal(err)
	}
	p, err := s.client.Probe(ctx(t), run)
	f, ok := p.(events.BackupFailed)
	if err != nil || !ok || f.Class != events.Transient || !strings.Contains(f.Message, "OOMKilled") || f.Validate() != nil {
		t.Fatalf("failed run: %+v %v", p, err)
	}
}

func TestCancelDeletesTheJobRun(t *testing.T) {
	s := start(t, nil)
	run := sampleRun("run-cancel")
	if err := s.client.Start(ctx(t), run); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second finds it gone: still fine
		if err := s.client.Cancel(ctx(t), run); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.client.Status(ctx(t), run.RunID); err != nil || st.Known {
		t.Fatalf("after cancel: %+v %v", st, err)
	}
}

// Every error answers errkind.Of, so the scheduler and the edge decide without knowing this package.
func TestErrorKinds(t *testing.T) {
	invalid := sampleRun("run-kinds")
	invalid.KeyCRN = ""
	for _, tc := range []struct {
		name string
		mod  func(*codeengine.Options)
		fail int // injected status, or 0
		run  events.BackupStarted
		want errkind.Kind
	}{
		{name: "503 past the budget", mod: func(o *codeengine.Options) { o.Timeout = 200 * time.Millisecond }, fail: http.StatusServiceUnavailable, want: errkind.Transient},
		{name: "400", fail: http.StatusBadRequest, want: errkind.Permanent},
		{name: "unknown job", mod: func(o *codeengine.Options) { o.JobName = "no-such-job" }, want: errkind.Permanent},
		{name: "api key refused by IAM", mod: func(o *codeengine.Options) {
			o.Authenticator = &core.IamAuthenticator{ApiKey: "wrong-key", URL: strings.TrimSuffix(o.URL, ceemu.APIPrefix)}
		}, want: errkind.Configuration},
		{name: "403", fail: http.StatusForbidden, want: errkind.Configuration},
		{name: "invalid run", run: invalid, want: errkind.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.mod)
			if tc.fail != 0 {
				s.emu.FailNext(1000, tc.fail)
			}
			run := tc.run
			if run.RunID == "" {
				run = sampleRun("run-kinds")
			}
			err := s.client.Start(ctx(t), run)
			if got := errkind.Of(fmt.Errorf("start: %w", err)); got != tc.want {
				t.Fatalf("errkind.Of(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

// stepClock is a fake clock whose waits end at once (each AfterFunc moves the time to the wait's
// end); it records the waits asked for.
type stepClock struct {
	*clock.Fake
	mu    sync.Mutex
	waits []time.Duration
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	t := c.Fake.AfterFunc(d, f)
	c.Advance(d)
	return t
}

func (c *stepClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		ok         bool
		requests   int
		waits      []time.Duration
	}{
		{"a longer Retry-After replaces the wait", "2", true, 2, []time.Duration{2 * time.Second}},
		{"a Retry-After past the budget ends the call", "30", false, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iam := iamemu.New(apiKey)
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == iamemu.TokenPath {
					iam.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				if requests.Add(1) == 1 {
					w.Header().Set("Retry-After", tc.retryAfter)
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = w.Write([]byte(`{"errors":[{"code":"too_many_requests"}]}`))
					return
				}
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte(`{"id":"jr-1"}`))
			}))
			t.Cleanup(srv.Close)
			clk := &stepClock{Fake: clock.NewFake(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC))}
			c, err := codeengine.New(codeengine.Options{URL: srv.URL + "/v2", ProjectID: project, JobName: job,
				Authenticator: &core.IamAuthenticator{ApiKey: apiKey, URL: srv.URL}, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Start(ctx(t), sampleRun("run-throttled"))
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			var ce *codeengine.Error
			if !tc.ok && (!errors.As(err, &ce) || !ce.Transient || ce.StatusCode != http.StatusTooManyRequests || ce.Attempts != 1) {
				t.Fatalf("err = %v, want a transient 429 after one attempt", err)
			}
			if n := int(requests.Load()); n != tc.requests || !slices.Equal(clk.Waits(), tc.waits) {
				t.Fatalf("%d requests, waits %v; want %d and %v", n, clk.Waits(), tc.requests, tc.waits)
			}
		})
	}
}
