package retry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/retry"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// stepClock is a fake clock whose waits end at once: each AfterFunc moves the time to the wait's
// end, so Do never blocks, and the waits asked for are recorded.
type stepClock struct {
	*clock.Fake
	waits []time.Duration
}

func newStepClock() *stepClock { return &stepClock{Fake: clock.NewFake(t0)} }

func (c *stepClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.waits = append(c.waits, d)
	t := c.Fake.AfterFunc(d, f)
	c.Advance(d)
	return t
}

// delayed is a transient error carrying a server's Retry-After.
type delayed struct{ after time.Duration }

func (e delayed) Error() string             { return fmt.Sprintf("throttled, retry after %s", e.after) }
func (e delayed) Kind() errkind.Kind        { return errkind.Transient }
func (e delayed) RetryAfter() time.Duration { return e.after }

var _ retry.RetryAfterError = delayed{}

var (
	errBase      = errors.New("boom")
	errTransient = errkind.With(errkind.Transient, errBase)
)

// script returns f that answers errs in turn, then nil, and counts its calls.
func script(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func repeat(err error, n int) []error { return slices.Repeat([]error{err}, n) }

func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func TestDo(t *testing.T) {
	tests := []struct {
		name   string
		policy retry.Policy
		errs   []error // what f answers, in turn; then nil
		want   error   // Do's result (errors.Is)
		calls  int
		waits  []time.Duration
	}{
		{name: "success at once", calls: 1},
		{name: "transient twice, then success", errs: repeat(errTransient, 2), calls: 3, waits: ms(100, 200)},
		{name: "permanent is not retried", errs: []error{errkind.With(errkind.Permanent, errBase)}, want: errBase, calls: 1},
		{name: "configuration is not retried", errs: []error{errkind.With(errkind.Configuration, errBase)}, want: errBase, calls: 1},
		{name: "invalid is not retried", errs: []error{errkind.With(errkind.Invalid, errBase)}, want: errBase, calls: 1},
		{name: "an error without a kind is not retried", errs: []error{errBase}, want: errBase, calls: 1},
		{name: "a wrapped transient error is retried", errs: []error{fmt.Errorf("list: %w", errTransient)}, calls: 2, waits: ms(100)},
		{name: "final ends at once", errs: []error{retry.Final(errTransient)}, want: errTransient, calls: 1},
		{name: "the attempts run out", policy: retry.Policy{Attempts: 4}, errs: repeat(errTransient, 10), want: errTransient, calls: 4, waits: ms(100, 200, 400)},
		{name: "one attempt", policy: retry.Policy{Attempts: 1}, errs: repeat(errTransient, 10), want: errTransient, calls: 1},
		{name: "waits double up to the maximum", policy: retry.Policy{Attempts: 6, FirstWait: 50 * time.Millisecond, MaxWait: 300 * time.Millisecond},
			errs: repeat(errTransient, 10), want: errTransient, calls: 6, waits: ms(50, 100, 200, 300, 300)},
		{name: "a first wait above the maximum is the maximum", policy: retry.Policy{Attempts: 3, FirstWait: time.Hour, MaxWait: time.Second},
			errs: repeat(errTransient, 10), want: errTransient, calls: 3, waits: ms(1000, 1000)},
		{name: "a longer Retry-After replaces the wait", errs: []error{delayed{2 * time.Second}, delayed{0}}, calls: 3, waits: ms(2000, 200)},
		{name: "a shorter Retry-After does not", errs: []error{delayed{10 * time.Millisecond}}, calls: 2, waits: ms(100)},
		{name: "Retry-After seen through wrapping", errs: []error{fmt.Errorf("get: %w", delayed{3 * time.Second})}, calls: 2, waits: ms(3000)},
		{name: "Retry-After capped", policy: retry.Policy{MaxRetryAfter: 500 * time.Millisecond}, errs: []error{delayed{time.Hour}}, calls: 2, waits: ms(500)},
		{name: "jitter takes a random share", policy: retry.Policy{Jitter: 0.5, Rand: func() float64 { return 0.5 }},
			errs: repeat(errTransient, 3), calls: 4, waits: ms(75, 150, 300)},
		{name: "jitter with the smallest draw", policy: retry.Policy{Jitter: 0.5, Rand: func() float64 { return 0 }},
			errs: repeat(errTransient, 2), calls: 3, waits: ms(100, 200)},
		{name: "jitter is clamped to 1", policy: retry.Policy{Jitter: 7, Rand: func() float64 { return 0.25 }},
			errs: repeat(errTransient, 1), calls: 2, waits: ms(75)},
		{name: "jitter does not shorten a Retry-After", policy: retry.Policy{Jitter: 1, Rand: func() float64 { return 0.9 }},
			errs: []error{delayed{time.Second}}, calls: 2, waits: ms(1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newStepClock()
			p := tc.policy
			p.Clock = clk
			calls := 0
			err := retry.Do(context.Background(), p, script(&calls, tc.errs...))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Do = %v, want %v", err, tc.want)
			}
			if calls != tc.calls {
				t.Errorf("%d calls, want %d", calls, tc.calls)
			}
			if !slices.Equal(clk.waits, tc.waits) {
				t.Errorf("waits %v, want %v", clk.waits, tc.waits)
			}
			if got, want := clk.Now().Sub(t0), sum(tc.waits); got != want {
				t.Errorf("the clock moved %v, want %v", got, want)
			}
		})
	}
}

func sum(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

func TestDoReturnsTheLastErrorAsIs(t *testing.T) {
	type myErr struct{ error }
	last := &myErr{errkind.With(errkind.Transient, errors.New("third"))}
	calls := 0
	err := retry.Do(context.Background(), retry.Policy{Attempts: 3, Clock: newStepClock()}, script(&calls, errTransient, errTransient, last))
	if err != error(last) {
		t.Fatalf("Do = %#v, want the third error itself", err)
	}
	if err := retry.Do(context.Background(), retry.Policy{Clock: newStepClock()}, func(context.Context) error { return retry.Final(last) }); err != error(last) {
		t.Fatalf("Do with Final = %#v, want the error without the mark", err)
	}
	if retry.Final(nil) != nil {
		t.Fatal("Final(nil) is not nil")
	}
}

func TestDoHonoursTheBudget(t *testing.T) {
	tests := []struct {
		name   string
		budget time.Duration
		policy retry.Policy
		errs   []error
		calls  int
		waits  []time.Duration
	}{
		// 100 + 200 + 400 ms fit in 1 s; the next wait, 800 ms, would end at 1.5 s.
		{name: "the next wait would pass the deadline", budget: time.Second, errs: repeat(errTransient, 100), calls: 4, waits: ms(100, 200, 400)},
		// A 4 s budget (under Event Notifications' 10 s): 0.5 + 1 + 1 + 1 s fit, a fifth wait would not.
		{name: "a handler's budget", budget: 4 * time.Second, policy: retry.Policy{FirstWait: 500 * time.Millisecond, MaxWait: time.Second},
			errs: repeat(errTransient, 100), calls: 5, waits: ms(500, 1000, 1000, 1000)},
		{name: "a Retry-After past the deadline ends it", budget: 5 * time.Second, errs: []error{errTransient, delayed{10 * time.Second}}, calls: 2, waits: ms(100)},
		{name: "success within the budget", budget: time.Second, errs: repeat(errTransient, 3), calls: 4, waits: ms(100, 200, 400)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newStepClock()
			p := tc.policy
			p.Clock = clk
			ctx, cancel := context.WithTimeout(context.Background(), tc.budget)
			defer cancel()
			calls := 0
			err := retry.Do(ctx, p, script(&calls, tc.errs...))
			if calls != tc.calls || !slices.Equal(clk.waits, tc.waits) {
				t.Fatalf("%d calls, waits %v; want %d and %v (err %v)", calls, clk.waits, tc.calls, tc.waits, err)
			}
			if spent := clk.Now().Sub(t0); spent > tc.budget {
				t.Fatalf("spent %v of a %v budget", spent, tc.budget)
			}
			if len(tc.errs) > tc.calls && err == nil {
				t.Fatal("Do succeeded though every attempt failed")
			}
		})
	}
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	t.Run("during a wait", func(t *testing.T) {
		clk := clock.NewFake(t0) // never advanced: only the context ends the wait
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		done := make(chan error, 1)
		go func() { done <- retry.Do(ctx, retry.Policy{Clock: clk}, script(&calls, repeat(errTransient, 10)...)) }()
		time.Sleep(10 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, errTransient) || calls != 1 {
				t.Fatalf("Do = %v after %d calls, want the first error after 1", err, calls)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Do did not stop when its context ended")
		}
	})
	t.Run("during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := retry.Do(ctx, retry.Policy{Clock: newStepClock()}, func(context.Context) error {
			calls++
			cancel()
			return errTransient
		})
		if !errors.Is(err, errTransient) || calls != 1 {
			t.Fatalf("Do = %v after %d calls", err, calls)
		}
	})
}

func TestDoWaitsOnTheClock(t *testing.T) {
	clk := clock.NewFake(t0)
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- retry.Do(context.Background(), retry.Policy{Clock: clk, FirstWait: time.Minute, MaxWait: time.Hour}, script(&calls, errTransient))
	}()
	for {
		select {
		case err := <-done:
			if err != nil || calls != 2 {
				t.Fatalf("Do = %v after %d calls", err, calls)
			}
			if clk.Now().Sub(t0) < time.Minute {
				t.Fatalf("the retry came after %v of a 1 minute wait", clk.Now().Sub(t0))
			}
			return
		case <-time.After(time.Millisecond):
			clk.Advance(10 * time.Second)
		}
	}
}

func TestOnRetry(t *testing.T) {
	type call struct {
		attempt int
		err     error
		wait    time.Duration
	}
	var got []call
	p := retry.Policy{Attempts: 3, Clock: newStepClock(), OnRetry: func(attempt int, err error, wait time.Duration) {
		got = append(got, call{attempt, err, wait})
	}}
	calls := 0
	_ = retry.Do(context.Background(), p, script(&calls, repeat(errTransient, 5)...))
	want := []call{{1, errTransient, 100 * time.Millisecond}, {2, errTransient, 200 * time.Millisecond}}
	if !slices.Equal(got, want) {
		t.Fatalf("OnRetry got %v, want %v (no call after the last attempt)", got, want)
	}
}

func TestDoOnTheWallClock(t *testing.T) {
	calls := 0
	start := time.Now()
	err := retry.Do(context.Background(), retry.Policy{FirstWait: time.Millisecond, MaxWait: 2 * time.Millisecond}, script(&calls, repeat(errTransient, 3)...))
	if err != nil || calls != 4 {
		t.Fatalf("Do = %v after %d calls", err, calls)
	}
	if took := time.Since(start); took < 5*time.Millisecond {
		t.Fatalf("three waits of 1, 2 and 2 ms took %v", took)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                               0,
		"0":                              0,
		"-3":                             0,
		" 2 ":                            2 * time.Second,
		"120":                            2 * time.Minute,
		"99999999999999":                 24 * time.Hour,
		"1.5":                            0,
		"soon":                           0,
		"Mon, 02 Mar 2026 10:00:30 GMT":  30 * time.Second,
		"Mon, 02 Mar 2026 09:59:00 GMT":  0,
		"Monday, 02-Mar-26 10:01:00 GMT": time.Minute,
	} {
		if got := retry.ParseRetryAfter(v, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
