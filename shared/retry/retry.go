package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/errkind"
)

// Defaults of Policy.
const (
	DefaultFirstWait = 100 * time.Millisecond
	DefaultMaxWait   = time.Second
)

// Policy says how Do retries. The zero Policy retries transient errors with no limit on the
// number of attempts, waiting 100, 200, 400 and 800 ms, then 1 s each time, until the next wait
// would pass the context's deadline.
type Policy struct {
	// Attempts is the most attempts Do makes, the first included. 0 or less means no limit: the
	// context's deadline then bounds Do, so give it one.
	Attempts int
	// FirstWait is the wait after the first failed attempt (DefaultFirstWait when zero). Each
	// next wait is twice the one before, up to MaxWait (DefaultMaxWait when zero).
	FirstWait time.Duration
	MaxWait   time.Duration
	// Jitter is the largest share of each wait taken away at random: 0 (the default) takes
	// nothing, 0.5 keeps every wait between half of it and all of it, 1 between nothing and all
	// of it. Values outside [0, 1] are clamped.
	Jitter float64
	// MaxRetryAfter, when above zero, caps a server's Retry-After.
	MaxRetryAfter time.Duration
	// Clock times the waits and measures the budget (the wall clock when nil).
	Clock clock.Clock
	// Rand returns a number in [0, 1) for the jitter (math/rand/v2's Float64 when nil).
	Rand func() float64
	// OnRetry, when set, is called before each wait with the number of the attempt that failed
	// (1 for the first), its error and the wait: the place for a debug log line.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// RetryAfterError is an error that carries how long the server asked to wait before trying
// again (an HTTP Retry-After); 0 means the server did not say. Do finds it in the error's chain.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// Final marks err as the end of Do: Do returns err (without the mark) at once, whatever its kind.
// It is for an error that is transient for the caller but cannot pass within this call (e.g. a
// backup already running, which ends in minutes). f must return Final's result itself, not wrap
// it. Final(nil) is nil.
func Final(err error) error {
	if err == nil {
		return nil
	}
	return &final{err}
}

type final struct{ err error }

func (e *final) Error() string { return e.err.Error() }
func (e *final) Unwrap() error { return e.err }

// Do calls f, with ctx, until it returns nil, an error that is not transient (errkind), a Final
// error, or until the attempts run out, ctx ends, or the next wait would end past ctx's deadline.
// It returns nil or f's last error as f returned it. f is called at least once.
//
// The budget is ctx's deadline. Do reads what is left of it when it starts and measures it on
// the policy's clock from then on: with the wall clock that is the deadline itself; with a fake
// clock the waits spend the budget and the attempts take no time. ctx still cancels a wait in
// wall time.
func Do(ctx context.Context, p Policy, f func(context.Context) error) error {
	clk := clock.Or(p.Clock)
	deadline, bounded := ctx.Deadline()
	var end time.Time
	if bounded {
		end = clk.Now().Add(time.Until(deadline))
	}
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if fin, ok := err.(*final); ok {
			return fin.err
		}
		if !errkind.IsTransient(err) || attempt == p.Attempts || ctx.Err() != nil {
			return err
		}
		wait := p.wait(attempt)
		if ra := p.retryAfter(err); ra > wait {
			wait = ra
		}
		if bounded && clk.Now().Add(wait).After(end) {
			return err
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		if !sleep(ctx, clk, wait) {
			return err
		}
	}
}

// wait returns the wait after the failed attempt n (1 for the first): FirstWait doubled n-1
// times, at most MaxWait, less the jitter.
func (p Policy) wait(n int) time.Duration {
	first, most := p.FirstWait, p.MaxWait
	if first <= 0 {
		first = DefaultFirstWait
	}
	if most <= 0 {
		most = DefaultMaxWait
	}
	w := min(first, most)
	for i := 1; i < n && w < most; i++ {
		w = min(2*w, most)
	}
	j := min(max(p.Jitter, 0), 1)
	if j == 0 {
		return w
	}
	r := rand.Float64
	if p.Rand != nil {
		r = p.Rand
	}
	return w - time.Duration(float64(w)*j*r())
}

// retryAfter returns the Retry-After carried by err, capped by MaxRetryAfter.
func (p Policy) retryAfter(err error) time.Duration {
	var ra RetryAfterError
	if !errors.As(err, &ra) {
		return 0
	}
	d := ra.RetryAfter()
	if p.MaxRetryAfter > 0 {
		d = min(d, p.MaxRetryAfter)
	}
	return d
}

// sleep waits d on clk; it reports false when ctx ended first.
func sleep(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	fired := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// maxRetryAfter bounds what ParseRetryAfter returns.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After header value: a number of seconds, or an HTTP date
// taken relative to now. An empty, malformed or negative value, or a date not after now, gives 0;
// anything beyond a day gives a day.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return min(t.Sub(now), maxRetryAfter)
}
