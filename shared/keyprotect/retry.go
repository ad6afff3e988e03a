package keyprotect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/keyguard-dev/keyguard/shared/retry"
)

// call runs f until it succeeds, fails for good, runs out of retries or the budget (ctx's
// deadline) would be passed by the next wait (shared/retry). Each attempt gets a fresh token in
// its context. The error is the last attempt's, as an *Error counting the attempts.
func (c *Client) call(ctx context.Context, op, keyID string, f func(context.Context) error) error {
	p := c.retry
	p.OnRetry = func(attempt int, err error, wait time.Duration) {
		var e *Error
		if errors.As(err, &e) {
			c.log.Debug("retrying Key Protect call", "op", op, "key_id", keyID, "attempt", attempt,
				"status", e.StatusCode, "reason", e.Reason, "wait", wait, "error", e.Err)
		}
	}
	attempts := 0
	return retry.Do(ctx, p, func(ctx context.Context) error {
		attempts++
		hint := new(retryHint)
		err := c.attempt(context.WithValue(ctx, hintKey{}, hint), f)
		if err == nil {
			return nil
		}
		e := classify(op, keyID, err)
		e.Attempts = attempts
		e.retryAfter = time.Duration(hint.Load())
		return e
	})
}

// attempt makes one try of f with a bearer token from the authenticator. A panic inside the SDK
// (it indexes answers without checking them) becomes a permanent error.
func (c *Client) attempt(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errSDKPanic, r)
		}
	}()
	token, err := c.token(ctx)
	if err != nil {
		return err
	}
	return f(kp.NewContextWithAuth(ctx, token))
}

// token returns an Authorization header value. go-sdk-core authenticators take no context, so
// the fetch runs aside and the call stops waiting for it when ctx ends (the fetch itself is
// bounded by the authenticator's HTTP client timeout).
func (c *Client) token(ctx context.Context) (string, error) {
	type result struct {
		header string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, c.authURL, nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		err = c.auth.Authenticate(req)
		done <- result{req.Header.Get("Authorization"), err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", r.err
		}
		if r.header == "" {
			return "", errors.New("authenticator set no Authorization header")
		}
		return r.header, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", errTokenWait, ctx.Err())
	}
}

// pageKey carries a page request from a method down to pagingTransport.
type pageKey struct{}

type page struct{ limit, offset int }

func withPage(ctx context.Context, limit, offset int) context.Context {
	return context.WithValue(ctx, pageKey{}, page{limit, offset})
}

// pagingTransport adds limit and offset query parameters to requests whose context carries a
// page. keyprotect-go-client v0.17.3's ListRegistrations offers no paging options, while the
// service pages registrations (200 by default).
type pagingTransport struct{ next http.RoundTripper }

func (t pagingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	p, ok := r.Context().Value(pageKey{}).(page)
	if !ok {
		return t.next.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	q := r2.URL.Query()
	q.Set("limit", strconv.Itoa(p.limit))
	q.Set("offset", strconv.Itoa(p.offset))
	r2.URL.RawQuery = q.Encode()
	return t.next.RoundTrip(r2)
}

// hintKey carries an attempt's *retryHint from call down to hintTransport.
type hintKey struct{}

// retryHint receives the Retry-After of an attempt's last answer (keyprotect-go-client does not
// expose the headers of an error answer).
type retryHint struct{ atomic.Int64 }

// hintTransport records the Retry-After of answers whose request context carries a *retryHint.
type hintTransport struct{ next http.RoundTripper }

func (t hintTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if h, ok := r.Context().Value(hintKey{}).(*retryHint); ok && resp != nil {
		h.Store(int64(retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())))
	}
	return resp, err
}
