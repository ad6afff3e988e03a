package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/test/cosgate"
	"github.com/keyguard-dev/keyguard/test/enemu"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// preflightStack is the local stack with the dev fleet (the simulated Db2, Db2 on Cloud, a
// self-managed database run as runner job runs), wired for the preflight, after one tick.
func preflightStack(t *testing.T) (*stack.Stack, context.Context) {
	t.Helper()
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.EnablePreflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	return st, ctx
}

func runPreflight(t *testing.T, ctx context.Context, st *stack.Stack) preflight.Report {
	t.Helper()
	pd, err := st.PreflightDeployment(15 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r := preflight.Run(ctx, pd, preflight.Options{Budget: 30 * time.Second, AppWait: 2 * time.Second, JobWait: 2 * time.Second, Poll: 20 * time.Millisecond})
	var buf bytes.Buffer
	_ = r.WriteTable(&buf)
	t.Log("\n" + buf.String())
	return r
}

func result(t *testing.T, r preflight.Report, check string) preflight.Result {
	t.Helper()
	for _, x := range r.Results {
		if strings.HasPrefix(x.Check, check) {
			return x
		}
	}
	t.Fatalf("no check %q in the report", check)
	return preflight.Result{}
}

// The preflight passes on the local stack, every check run through the real clients against
// the emulators and versitygw; then each failure class, made one at a time, fails its check with
// the reason and a fix, and nothing else.
func TestPreflightOnTheLocalStack(t *testing.T) {
	st, ctx := preflightStack(t)
	r := runPreflight(t, ctx, st)
	if !r.OK() {
		t.Fatalf("the preflight failed on the local stack: %+v", r.Failed())
	}
	for _, c := range []string{"iam token", "bucket", "versioning", "object round trip", "least privilege", "key ", "cos ",
		"db2 proddb", "db2 ledger", "event-notifications -> codeengine", "source", "route scheduler /events", "route rotation /events", "route completion /events",
		"route restore job", "route scheduler /tick", "alerts", "runner job", "db2 on cloud ledger", "executors"} {
		if x := result(t, r, c); x.Status != preflight.OK {
			t.Errorf("%s: %s %s", c, x.Status, x.Detail)
		}
	}

	ledger, _ := st.Fleet.Database("ledger")
	_, keyID, err := keyprotect.KeyIDFromCRN(ledger.KeyCRN)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		brk         func(t *testing.T) (restore func())
		check, want string
	}{
		{name: "denied COS write", check: "object round trip", want: "was refused",
			brk: func(*testing.T) func() {
				return st.Gate.Deny(cosgate.Rule{Method: http.MethodPut, Subresource: "-", KeyPrefix: "keyguard/" + preflight.Prefix})
			}},
		{name: "missing key registration", check: "key " + keyID, want: "not registered to the key: ledger",
			brk: func(t *testing.T) func() {
				if err := st.KP.RemoveRegistration(keyID, ledger.Instance); err != nil {
					t.Fatal(err)
				}
				return func() { _ = st.KP.AddRegistration(keyID, ledger.Instance) }
			}},
		{name: "EN route that delivers nowhere", check: "route rotation /events", want: "none has a subscription to a destination delivering to rotation /events",
			brk: func(t *testing.T) func() {
				sub := rotationSubscription(t, st)
				st.EN.Unsubscribe(sub.Name)
				return func() { _ = st.EN.Subscribe(sub) }
			}},
		{name: "missing alert subscription", check: "alerts", want: "no critical alert reaches a person",
			brk: func(t *testing.T) func() {
				st.EN.Unsubscribe(stack.AlertSubscription)
				return func() { _ = st.EN.Subscribe(stack.AlertsByEmail()) }
			}},
		{name: "runner job absent", check: "runner job", want: "job " + stack.RunnerJob + " does not exist",
			brk: func(*testing.T) func() {
				st.CE.RemoveJob(stack.RunnerJob)
				return func() { st.CE.AddJob(stack.RunnerJob) }
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			restore := tc.brk(t)
			r := runPreflight(t, ctx, st)
			restore()
			x := result(t, r, tc.check)
			if x.Status != preflight.Fail || !strings.Contains(x.Detail, tc.want) || x.Fix == "" {
				t.Fatalf("%s: want FAIL with %q and a fix, got %s: %s (fix: %s)", tc.check, tc.want, x.Status, x.Detail, x.Fix)
			}
			if failed := r.Failed(); len(failed) != 1 {
				t.Errorf("one break failed %d checks: %+v", len(failed), failed)
			}
		})
	}
	if r := runPreflight(t, ctx, st); !r.OK() {
		t.Fatalf("the stack did not pass again once repaired: %+v", r.Failed())
	}

	// The scheduler runs the same checks with its own identity, whose custom role reads no
	// bucket configuration and deletes nothing: what it cannot read is skipped, and the refusals
	// prove its least privilege.
	t.Run("the scheduler's own identity", func(t *testing.T) {
		for _, rule := range []cosgate.Rule{{Method: http.MethodGet, Subresource: "versioning"}, {Method: http.MethodGet, Subresource: "object-lock"},
			{Method: http.MethodDelete, Subresource: "-"}} {
			defer st.Gate.Deny(rule)()
		}
		pd, err := st.PreflightDeployment(15 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		pd.Operator, pd.CanDelete, pd.Topology, pd.Authorizations = false, false, nil, nil
		r := preflight.Run(ctx, pd, preflight.Options{Budget: 30 * time.Second, AppWait: 2 * time.Second, JobWait: 2 * time.Second})
		if !r.OK() {
			t.Fatalf("the scheduler's preflight failed: %+v", r.Failed())
		}
		if x := result(t, r, "least privilege"); x.Status != preflight.OK {
			t.Errorf("least privilege: %s %s", x.Status, x.Detail)
		}
		if x := result(t, r, "object round trip"); !strings.Contains(x.Detail, "delete refused") {
			t.Errorf("round trip: %s", x.Detail)
		}
	})
}

// rotationSubscription is the stack's subscription of the rotation route.
func rotationSubscription(t *testing.T, st *stack.Stack) enemu.Subscription {
	t.Helper()
	for _, r := range config.Routes {
		if r.Function == config.FnRotation && r.Path == config.PathEvents {
			return st.RouteSubscription(r)
		}
	}
	t.Fatal("no rotation route")
	return enemu.Subscription{}
}
