package keyprotect_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/test/iamemu"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

// What a rotation watcher and a rotator need; the adapter must satisfy both.
type watcher interface {
	Key(ctx context.Context, keyRef string) (keyprotect.KeyInfo, error)
	Versions(ctx context.Context, keyRef string) ([]keyprotect.Version, error)
	Registrations(ctx context.Context, keyRef string) ([]keyprotect.Registration, error)
	RotationPolicy(ctx context.Context, keyRef string) (keyprotect.Policy, error)
}

type rotator interface {
	Key(ctx context.Context, keyRef string) (keyprotect.KeyInfo, error)
	Rotate(ctx context.Context, keyRef string) error
	Disable(ctx context.Context, keyRef string) error
	Enable(ctx context.Context, keyRef string) error
}

var (
	_ watcher = (*keyprotect.Client)(nil)
	_ rotator = (*keyprotect.Client)(nil)
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func newClient(t *testing.T, e *kpemu.Emulator, edit func(*keyprotect.Options)) *keyprotect.Client {
	t.Helper()
	o := keyprotect.Options{
		URL: e.URL(), InstanceID: e.InstanceID(), APIKey: e.APIKey(), TokenURL: e.TokenURL(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&o)
	}
	c, err := keyprotect.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func asError(t *testing.T, err error) *keyprotect.Error {
	t.Helper()
	var e *keyprotect.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *keyprotect.Error", err, err)
	}
	return e
}

func TestKeyMetadata(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, crn := e.AddKey("db2-root")
	c := newClient(t, e, nil)
	ctx := context.Background()
	v1, _ := e.CurrentVersion(id)

	want := keyprotect.KeyInfo{ID: id, CRN: crn, Name: "db2-root", State: events.KeyActive, StateCode: 1,
		Created: t0, Version: v1, VersionCreated: t0}
	for _, ref := range []string{id, crn} {
		got, err := c.Key(ctx, ref)
		if err != nil {
			t.Fatalf("Key(%s): %v", ref, err)
		}
		if got != want {
			t.Fatalf("Key(%s) = %+v\nwant %+v", ref, got, want)
		}
	}
	if n := e.IAM().TokenRequests(); n != 1 {
		t.Fatalf("token requests %d, want 1 (cached)", n)
	}

	e.ResetCalls()
	for ref, class := range map[string]keyprotect.Class{
		"crn:v1:bluemix:public:kms:us-south:a/acc:11111111-2222-3333-4444-555555555555:key:" + id: keyprotect.Configuration, // other instance
		"crn:v1:bluemix:public:kms:us-south:a/acc:" + e.InstanceID() + ":bucket:" + id:            keyprotect.Invalid,       // not a key
		"../../other": keyprotect.Invalid, "": keyprotect.Invalid, "id with space": keyprotect.Invalid,
	} {
		_, err := c.Key(ctx, ref)
		if ke := asError(t, err); ke.Class != class || !errkind.IsPermanent(err) {
			t.Errorf("Key(%q): %v, want a %s error", ref, err, class)
		}
	}
	if n := e.Requests(); n != 0 {
		t.Fatalf("bad key references reached the service %d times", n)
	}
}

func TestVersionsNewestFirstAcrossPages(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	ctx := context.Background()

	v1, _ := e.CurrentVersion(id)
	clk.Advance(time.Hour)
	v2, _ := e.Rotate(id)
	got, err := c.Versions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []keyprotect.Version{{ID: v2, CreatedAt: t0.Add(time.Hour)}, {ID: v1, CreatedAt: t0}}
	if !slices.Equal(got, want) {
		t.Fatalf("versions %+v, want %+v", got, want)
	}

	// More versions than one page holds: 2 + 448 = 450 = 3 pages of 200.
	for range 448 {
		clk.Advance(time.Minute)
		if _, err := e.Rotate(id); err != nil {
			t.Fatal(err)
		}
	}
	e.ResetCalls()
	got, err = c.Versions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 450 || got[449].ID != v1 || got[448].ID != v2 {
		t.Fatalf("%d versions, oldest %v", len(got), got[len(got)-2:])
	}
	cur, _ := e.CurrentVersion(id)
	if got[0].ID != cur || !slices.IsSortedFunc(got, func(a, b keyprotect.Version) int { return b.CreatedAt.Compare(a.CreatedAt) }) {
		t.Fatal("versions not newest first")
	}
	if n := e.Calls(kpemu.RouteVersions); n != 3 {
		t.Fatalf("version list calls %d, want 3 pages", n)
	}
}

func TestRegistrationsWithVersionsAcrossPages(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, _ := e.AddKey("k")
	other, _ := e.AddKey("other")
	c := newClient(t, e, nil)
	ctx := context.Background()

	regs, err := c.Registrations(ctx, id)
	if err != nil || len(regs) != 0 {
		t.Fatalf("no registrations: %+v, %v", regs, err)
	}
	db := func(i int) string {
		return fmt.Sprintf("crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/acc:db%03d::", i)
	}
	for i := range 401 {
		if err := e.AddRegistration(id, db(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AddRegistration(other, "crn:v1:bluemix:public:db:us-south:a/acc:elsewhere::"); err != nil {
		t.Fatal(err)
	}
	v1, _ := e.CurrentVersion(id)
	clk.Advance(time.Hour)
	v2, _ := e.Rotate(id)
	if err := e.SetRegistrationVersion(id, db(7), v2); err != nil {
		t.Fatal(err)
	}

	e.ResetCalls()
	regs, err = c.Registrations(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 401 {
		t.Fatalf("%d registrations, want 401", len(regs))
	}
	for i, r := range regs {
		wantV, wantT := v1, t0
		if i == 7 {
			wantV, wantT = v2, t0.Add(time.Hour)
		}
		if r.ResourceCRN != db(i) || r.KeyID != id || r.KeyVersion != wantV || !r.KeyVersionCreated.Equal(wantT) || !r.Created.Equal(t0) {
			t.Fatalf("registration %d: %+v", i, r)
		}
	}
	if n := e.Calls(kpemu.RouteKeyRegistrations); n != 3 {
		t.Fatalf("registration list calls %d, want 3 pages", n)
	}
}

func TestRotationPolicy(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	for _, tc := range []struct {
		name string
		set  func() error
		want keyprotect.Policy
	}{
		{"none", func() error { return nil }, keyprotect.Policy{}},
		{"enabled", func() error { return e.SetRotationPolicy(id, true, 3) }, keyprotect.Policy{Enabled: true, IntervalMonths: 3}},
		{"disabled", func() error { return e.SetRotationPolicy(id, false, 6) }, keyprotect.Policy{IntervalMonths: 6}},
	} {
		if err := tc.set(); err != nil {
			t.Fatal(err)
		}
		got, err := c.RotationPolicy(context.Background(), id)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestRotate(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, crn := e.AddKey("k")
	c := newClient(t, e, nil)
	ctx := context.Background()

	before, err := c.Key(ctx, id)
	if err != nil || !before.LastRotateDate.IsZero() {
		t.Fatalf("before: %+v, %v", before, err)
	}
	clk.Advance(10 * time.Minute)
	if err := c.Rotate(ctx, crn); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	after, err := c.Key(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(10 * time.Minute)
	if after.Version == before.Version || after.Version == "" || !after.LastRotateDate.Equal(at) || !after.VersionCreated.Equal(at) {
		t.Fatalf("after rotate: %+v (before %+v)", after, before)
	}
	vs, err := c.Versions(ctx, id)
	if err != nil || len(vs) != 2 || vs[0].ID != after.Version || vs[1].ID != before.Version {
		t.Fatalf("versions after rotate: %+v, %v", vs, err)
	}

	// A second rotation within the hour is refused, permanently, without retries.
	clk.Advance(59 * time.Minute)
	e.ResetCalls()
	err = c.Rotate(ctx, id)
	ke := asError(t, err)
	if !keyprotect.IsRotationTooSoon(err) || keyprotect.IsTransient(err) || keyprotect.IsNotFound(err) ||
		ke.Class != keyprotect.Permanent || ke.StatusCode != http.StatusConflict || ke.Attempts != 1 || ke.KeyID != id {
		t.Fatalf("second rotation: %+v", ke)
	}
	if n := e.Calls(kpemu.RouteRotate); n != 1 {
		t.Fatalf("rotate calls %d, want 1", n)
	}
	if k, _ := c.Key(ctx, id); k.Version != after.Version {
		t.Fatal("refused rotation changed the version")
	}
	clk.Advance(time.Minute)
	if err := c.Rotate(ctx, id); err != nil {
		t.Fatalf("rotation an hour later: %v", err)
	}
}

func TestDisableEnable(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	ctx := context.Background()
	state := func() events.KeyState {
		k, err := c.Key(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k.State
	}
	if err := c.Disable(ctx, id); err != nil || state() != events.KeySuspended {
		t.Fatalf("disable: %v", err)
	}
	for name, err := range map[string]error{"disable again": c.Disable(ctx, id), "rotate disabled": c.Rotate(ctx, id)} {
		if ke := asError(t, err); ke.Class != keyprotect.Permanent || ke.StatusCode != 409 || ke.Reason != keyprotect.ReasonInvalidState {
			t.Errorf("%s: %+v", name, ke)
		}
	}
	if err := c.Enable(ctx, id); err != nil || state() != events.KeyActive {
		t.Fatalf("enable: %v", err)
	}
}

func TestKeyStateMapping(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	for _, tc := range []struct {
		code kpemu.State
		want events.KeyState
	}{
		{kpemu.StatePreActivation, keyprotect.StatePreActivation},
		{kpemu.StateActive, events.KeyActive},
		{kpemu.StateSuspended, events.KeySuspended},
		{kpemu.StateDeactivated, events.KeyDeactivated},
		{kpemu.StateDestroyed, events.KeyDestroyed},
	} {
		if err := e.SetState(id, tc.code); err != nil {
			t.Fatal(err)
		}
		k, err := c.Key(context.Background(), id)
		if err != nil || k.State != tc.want || k.StateCode != int(tc.code) {
			t.Errorf("state %d: %+v, %v; want %s", tc.code, k, err, tc.want)
		}
	}
}

func TestStateFromCode(t *testing.T) {
	for _, tc := range []struct {
		code int
		want events.KeyState
		ok   bool
	}{
		{0, keyprotect.StatePreActivation, true},
		{1, events.KeyActive, true},
		{2, events.KeySuspended, true},
		{3, events.KeyDeactivated, true},
		{4, "", false},
		{5, events.KeyDestroyed, true},
		{6, "", false},
		{-1, "", false},
	} {
		got, ok := keyprotect.StateFromCode(tc.code)
		if got != tc.want || ok != tc.ok {
			t.Errorf("StateFromCode(%d) = %q, %v; want %q, %v", tc.code, got, ok, tc.want, tc.ok)
		}
		if ok && got.Usable() != (tc.code == 1) {
			t.Errorf("state %d usable = %v", tc.code, got.Usable())
		}
	}
}

func TestNotFoundAndGone(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	ctx := context.Background()

	_, err := c.Key(ctx, "0badc0de-0000-4000-8000-000000000000")
	if ke := asError(t, err); !keyprotect.IsNotFound(err) || keyprotect.IsTransient(err) || ke.StatusCode != 404 || ke.Attempts != 1 {
		t.Fatalf("unknown key: %+v", ke)
	}
	if _, err := c.Registrations(ctx, "0badc0de-0000-4000-8000-000000000000"); !keyprotect.IsNotFound(err) {
		t.Fatalf("registrations of an unknown key: %v", err)
	}

	// A 410 for the metadata reads as a destroyed key.
	e.FailNext(1, http.StatusGone)
	k, err := c.Key(ctx, id)
	if err != nil || k.State != events.KeyDestroyed || k.ID != id {
		t.Fatalf("gone key: %+v, %v", k, err)
	}

	if err := e.SetState(id, kpemu.StateDestroyed); err != nil {
		t.Fatal(err)
	}
	if k, err := c.Key(ctx, id); err != nil || k.State != events.KeyDestroyed {
		t.Fatalf("destroyed key: %+v, %v", k, err)
	}
	if err := c.Rotate(ctx, id); !keyprotect.IsNotFound(err) || asError(t, err).StatusCode != 410 {
		t.Fatalf("rotate destroyed key: %v", err)
	}
}

func TestTransientRetriedWithinBudget(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := kpemu.Start(t, kpemu.Options{})
			id, _ := e.AddKey("k")
			c := newClient(t, e, nil)
			e.FailNext(2, status)
			start := time.Now()
			k, err := c.Key(context.Background(), id)
			if err != nil || k.ID != id {
				t.Fatalf("after 2 injected %d: %+v, %v", status, k, err)
			}
			if d := time.Since(start); d > keyprotect.DefaultTimeout {
				t.Fatalf("took %v", d)
			}
			if n := e.Calls(kpemu.RouteMetadata); n != 3 {
				t.Fatalf("metadata calls %d, want 3", n)
			}
		})
	}
}

func TestPermanentStatusNotRetried(t *testing.T) {
	for status, class := range map[int]keyprotect.Class{
		400: keyprotect.Permanent, 401: keyprotect.Configuration, 403: keyprotect.Configuration,
		409: keyprotect.Permanent, 422: keyprotect.Permanent, 501: keyprotect.Permanent,
	} {
		e := kpemu.Start(t, kpemu.Options{})
		id, _ := e.AddKey("k")
		c := newClient(t, e, nil)
		e.FailNext(1, status)
		_, err := c.Key(context.Background(), id)
		if ke := asError(t, err); ke.Class != class || !errkind.IsPermanent(err) || ke.StatusCode != status || ke.Attempts != 1 ||
			e.Calls(kpemu.RouteMetadata) != 1 {
			t.Errorf("%d: %+v after %d calls", status, ke, e.Calls(kpemu.RouteMetadata))
		}
	}
}

func TestTransientAfterBudget(t *testing.T) {
	const margin = 750 * time.Millisecond
	for _, tc := range []struct {
		name    string
		setup   func(e *kpemu.Emulator)
		opts    func(o *keyprotect.Options)
		budget  time.Duration
		maxCall int
	}{
		{"503 forever, default options", func(e *kpemu.Emulator) { e.FailNext(1000, 503) }, nil, keyprotect.DefaultTimeout, keyprotect.DefaultRetries + 1},
		{"429 forever, many retries, short budget", func(e *kpemu.Emulator) { e.FailNext(1000, 429) },
			func(o *keyprotect.Options) { o.Timeout, o.Retries = time.Second, 100 }, time.Second, 100},
		{"service hangs", func(e *kpemu.Emulator) { e.SetLatency(10 * time.Second) },
			func(o *keyprotect.Options) { o.Timeout, o.AttemptTimeout = time.Second, 300*time.Millisecond }, time.Second, 4},
		{"IAM fails", func(e *kpemu.Emulator) { e.IAM().FailNext(1000, 503) }, nil, keyprotect.DefaultTimeout, 0},
		{"no retries", func(e *kpemu.Emulator) { e.FailNext(1000, 503) },
			func(o *keyprotect.Options) { o.Retries = keyprotect.NoRetries }, keyprotect.DefaultTimeout, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := kpemu.Start(t, kpemu.Options{})
			id, _ := e.AddKey("k")
			c := newClient(t, e, tc.opts)
			tc.setup(e)
			start := time.Now()
			_, err := c.Key(context.Background(), id)
			elapsed := time.Since(start)
			if !keyprotect.IsTransient(err) || keyprotect.IsNotFound(err) {
				t.Fatalf("error %v, want transient", err)
			}
			if elapsed > tc.budget+margin {
				t.Fatalf("gave up after %v, budget %v", elapsed, tc.budget)
			}
			if n := e.Calls(kpemu.RouteMetadata); n > tc.maxCall {
				t.Fatalf("%d metadata calls, at most %d expected", n, tc.maxCall)
			}
			t.Logf("gave up after %v: %v", elapsed, err)
		})
	}
}

func TestUnreachableIsTransient(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for name, edit := range map[string]func(*keyprotect.Options){
		"key protect": func(o *keyprotect.Options) { o.URL = closed.URL },
		"iam":         func(o *keyprotect.Options) { o.TokenURL = closed.URL + iamemu.TokenPath },
	} {
		c := newClient(t, e, edit)
		start := time.Now()
		_, err := c.Key(context.Background(), id)
		if ke := asError(t, err); ke.Class != keyprotect.Transient || ke.StatusCode != 0 || ke.Attempts != keyprotect.DefaultRetries+1 {
			t.Errorf("%s unreachable: %+v", name, ke)
		}
		if d := time.Since(start); d > keyprotect.DefaultTimeout {
			t.Errorf("%s unreachable: gave up after %v", name, d)
		}
	}
}

func TestIAMTransientRetried(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	e.IAM().FailNext(2, http.StatusServiceUnavailable)
	if _, err := c.Key(context.Background(), id); err != nil {
		t.Fatalf("after 2 IAM failures: %v", err)
	}
	if n := e.IAM().TokenRequests(); n != 3 {
		t.Fatalf("token requests %d, want 3", n)
	}
}

func TestWrongAPIKeyIsPermanent(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, func(o *keyprotect.Options) { o.APIKey = "not-the-key" })
	start := time.Now()
	_, err := c.Key(context.Background(), id)
	ke := asError(t, err)
	if ke.Class != keyprotect.Configuration || !errkind.IsPermanent(err) || ke.StatusCode != http.StatusBadRequest || ke.Attempts != 1 {
		t.Fatalf("wrong api key: %+v", ke)
	}
	if time.Since(start) > time.Second || e.IAM().TokenRequests() != 1 || e.Requests() != 0 {
		t.Fatalf("took %v, %d token requests, %d API requests", time.Since(start), e.IAM().TokenRequests(), e.Requests())
	}
}

func TestWrongInstanceIsPermanent(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, func(o *keyprotect.Options) { o.InstanceID = "11111111-2222-3333-4444-555555555555" })
	_, err := c.Key(context.Background(), id)
	if ke := asError(t, err); ke.Class != keyprotect.Configuration || !errkind.IsPermanent(err) || ke.StatusCode != 401 {
		t.Fatalf("other instance: %+v", ke)
	}
}

func TestTrustedProfileAuthenticator(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	crFile := filepath.Join(t.TempDir(), "cr-token")
	if err := os.WriteFile(crFile, []byte("compute-resource-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.IAM().TrustProfile("compute-resource-token", "Profile-keyguard")
	auth, err := core.NewContainerAuthenticatorBuilder().SetCRTokenFilename(crFile).
		SetIAMProfileID("Profile-keyguard").SetURL(e.URL()).Build()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, func(o *keyprotect.Options) { o.APIKey, o.TokenURL, o.Authenticator = "", "", auth })
	if k, err := c.Key(context.Background(), id); err != nil || k.ID != id {
		t.Fatalf("trusted profile: %+v, %v", k, err)
	}
}

func TestRetryWaitFollowsTheClock(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	clk := clock.NewFake(t0)
	c := newClient(t, e, func(o *keyprotect.Options) { o.Clock, o.RetryWait = clk, time.Hour })
	e.FailNext(1, 503)
	done := make(chan error, 1)
	go func() { _, err := c.Key(context.Background(), id); done <- err }()
	// The wait before the retry (an hour asked, capped at MaxRetryWait, less its jitter) ends only
	// when the fake clock passes it.
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("after one injected failure: %v", err)
			}
			if clk.Now().Sub(t0) < time.Duration(float64(keyprotect.MaxRetryWait)*(1-keyprotect.RetryJitter)) {
				t.Fatalf("the retry did not wait on the clock (advanced %v)", clk.Now().Sub(t0))
			}
			return
		case <-deadline:
			t.Fatal("call did not finish")
		case <-time.After(5 * time.Millisecond):
			clk.Advance(100 * time.Millisecond)
		}
	}
}

func TestSDKPanicBecomesError(t *testing.T) {
	// A service answering 200 with no resources makes the SDK index an empty slice.
	iam := iamemu.New("k")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == iamemu.TokenPath {
			iam.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"metadata":{"collectionType":"application/vnd.ibm.kms.key+json","collectionTotal":0},"resources":[]}`)
	}))
	t.Cleanup(srv.Close)
	c, err := keyprotect.New(keyprotect.Options{URL: srv.URL, InstanceID: "inst", APIKey: "k", TokenURL: srv.URL + iamemu.TokenPath})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Key(context.Background(), "some-key")
	if ke := asError(t, err); ke.Class != keyprotect.Permanent {
		t.Fatalf("empty answer: %+v", ke)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    keyprotect.Options
	}{
		{"no url", keyprotect.Options{InstanceID: "i", APIKey: "k"}},
		{"relative url", keyprotect.Options{URL: "kms.example", InstanceID: "i", APIKey: "k"}},
		{"ftp url", keyprotect.Options{URL: "ftp://kms.example", InstanceID: "i", APIKey: "k"}},
		{"no instance", keyprotect.Options{URL: "https://kms.example", APIKey: "k"}},
		{"bad instance", keyprotect.Options{URL: "https://kms.example", InstanceID: "a/b", APIKey: "k"}},
		{"no credentials", keyprotect.Options{URL: "https://kms.example", InstanceID: "i"}},
	} {
		if _, err := keyprotect.New(tc.o); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	c, err := keyprotect.New(keyprotect.Options{URL: "https://us-south.kms.cloud.ibm.com/", InstanceID: "i", APIKey: "k"})
	if err != nil || c.InstanceID() != "i" {
		t.Fatalf("valid options: %v", err)
	}
}

// Every error answers errkind.Of, so retry and the edge decide without knowing this package.
func TestErrorKinds(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	ctx := context.Background()
	fast := func(o *keyprotect.Options) { o.Retries = keyprotect.NoRetries }
	c := newClient(t, e, fast)
	wrongKey := newClient(t, e, func(o *keyprotect.Options) { fast(o); o.APIKey = "not-the-key" })
	for _, tc := range []struct {
		name string
		call func() error
		want errkind.Kind
	}{
		{"503", func() error { e.FailNext(1, 503); _, err := c.Key(ctx, id); return err }, errkind.Transient},
		{"429", func() error { e.FailNext(1, 429); _, err := c.Key(ctx, id); return err }, errkind.Transient},
		{"no such key", func() error { _, err := c.Key(ctx, "0badc0de-0000-4000-8000-000000000000"); return err }, errkind.Permanent},
		{"conflict", func() error { e.FailNext(1, 409); return c.Rotate(ctx, id) }, errkind.Permanent},
		{"api key refused by IAM", func() error { _, err := wrongKey.Key(ctx, id); return err }, errkind.Configuration},
		{"403", func() error { e.FailNext(1, 403); _, err := c.Key(ctx, id); return err }, errkind.Configuration},
		{"malformed key id", func() error { _, err := c.Key(ctx, "id with space"); return err }, errkind.Invalid},
		{"empty data key", func() error { _, _, err := c.Wrap(ctx, id, nil, nil); return err }, errkind.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := errkind.Of(fmt.Errorf("in a handler: %w", err)); got != tc.want {
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
			e := kpemu.Start(t, kpemu.Options{})
			id, _ := e.AddKey("k")
			target, err := url.Parse(e.URL())
			if err != nil {
				t.Fatal(err)
			}
			proxy := httputil.NewSingleHostReverseProxy(target)
			var requests atomic.Int32
			throttler := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) == 1 {
					w.Header().Set("Retry-After", tc.retryAfter)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprint(w, `{"metadata":{"collectionType":"application/vnd.ibm.kms.error+json","collectionTotal":1},"resources":[{"errorMsg":"Too Many Requests"}]}`)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			t.Cleanup(throttler.Close)
			clk := &stepClock{Fake: clock.NewFake(t0)}
			c := newClient(t, e, func(o *keyprotect.Options) { o.URL, o.Clock = throttler.URL, clk })
			_, err = c.Key(context.Background(), id)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !tc.ok {
				if ke := asError(t, err); ke.Class != keyprotect.Transient || ke.StatusCode != 429 || ke.Attempts != 1 || ke.RetryAfter() != 30*time.Second {
					t.Fatalf("err = %+v, want a transient 429 after one attempt, asking for 30 s", ke)
				}
			}
			if n := int(requests.Load()); n != tc.requests || !slices.Equal(clk.waits, tc.waits) {
				t.Fatalf("%d requests, waits %v; want %d and %v", n, clk.waits, tc.requests, tc.waits)
			}
		})
	}
}
