package db2saas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/retry"
)

// Service paths, relative to the service URL (which ends in /dbapi/v4).
const (
	PathBackups      = "/manage/backups"
	PathCreateBackup = "/manage/backups/backup"
	// HeaderProfile carries the URL-encoded instance CRN.
	HeaderProfile = "x-db-profile"
)

// DefaultURL is the Db2 on Cloud API in us-south; other regions replace the host's first label.
const DefaultURL = "https://us-south.db2.saas.ibm.com/dbapi/v4"

// Defaults of Options.
const (
	DefaultTimeout        = 3 * time.Second
	DefaultAttemptTimeout = 2 * time.Second
	DefaultMaxRetries     = 2
	DefaultRetryWait      = 100 * time.Millisecond
	DefaultMaxRetryWait   = time.Second
	// NoRetries, as Options.MaxRetries, disables retries.
	NoRetries = -1
	// RetryJitter is the largest share of a wait between retries taken away at random, so that
	// instances throttled together do not retry together.
	RetryJitter = 0.5
)

// Options configure a Client. Authenticator is required.
type Options struct {
	// URL is the service URL including the context root; empty means DefaultURL.
	URL string
	// Authenticator authenticates every request (NewIAMAuthenticator, core.ContainerAuthenticator).
	Authenticator core.Authenticator
	// HTTPClient carries the requests; nil means go-sdk-core's default. It is copied, with its
	// Timeout set to AttemptTimeout.
	HTTPClient *http.Client
	// Timeout bounds a whole call, retries and waits included (default 3 s).
	Timeout time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 2 s).
	AttemptTimeout time.Duration
	// MaxRetries is how many times a transient failure is retried (default 2; NoRetries for none).
	MaxRetries int
	// RetryWait is the first wait between attempts, doubled each time up to MaxRetryWait
	// (defaults 100 ms and 1 s), each wait shortened at random by up to RetryJitter of it. A
	// longer Retry-After answer replaces the wait, capped by MaxRetryWait; a wait that does not
	// fit in what is left of Timeout ends the call with the last error.
	RetryWait    time.Duration
	MaxRetryWait time.Duration
	// Clock times the waits between attempts and, from the call's start, what is left of
	// Timeout for them (wall clock when nil).
	Clock clock.Clock
	// Logger gets a debug line per retry (slog.Default when nil).
	Logger *slog.Logger
}

// Client calls the backup operations of the Db2 on Cloud API. It is safe for concurrent use.
type Client struct {
	svc     *core.BaseService
	timeout time.Duration
	retry   retry.Policy
	log     *slog.Logger
}

// New validates o and returns a Client. It contacts neither IAM nor the service.
func New(o Options) (*Client, error) {
	if core.IsNil(o.Authenticator) {
		return nil, errors.New("db2saas: missing option Authenticator")
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.RetryWait <= 0 {
		o.RetryWait = DefaultRetryWait
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = DefaultMaxRetryWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	svc, err := core.NewBaseService(&core.ServiceOptions{URL: strings.TrimRight(o.URL, "/"), Authenticator: o.Authenticator})
	if err != nil {
		return nil, fmt.Errorf("db2saas: service: %w", err)
	}
	var hc http.Client
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	} else {
		hc = *core.DefaultHTTPClient()
	}
	hc.Timeout = o.AttemptTimeout
	svc.SetHTTPClient(&hc)
	return &Client{
		svc:     svc,
		timeout: o.Timeout,
		retry: retry.Policy{Attempts: o.MaxRetries + 1, FirstWait: o.RetryWait, MaxWait: o.MaxRetryWait,
			MaxRetryAfter: o.MaxRetryWait, Jitter: RetryJitter, Clock: o.Clock},
		log: o.Logger.With("component", "db2saas"),
	}, nil
}

// NewIAMAuthenticator returns an API key authenticator whose token requests go to
// <iamURL>/identity/token (iamURL empty: IBM Cloud IAM) and time out after 5 s (go-sdk-core gives
// them no context; the Client's Timeout still bounds the call that waits for them).
func NewIAMAuthenticator(apiKey, iamURL string) (*core.IamAuthenticator, error) {
	b := core.NewIamAuthenticatorBuilder().SetApiKey(apiKey).SetClient(&http.Client{Timeout: 5 * time.Second})
	if iamURL != "" {
		b = b.SetURL(iamURL)
	}
	a, err := b.Build()
	if err != nil {
		// The builder's message may quote the key's shape, never the key; keep only the kind.
		return nil, errors.New("db2saas: iam authenticator: invalid API key or IAM URL")
	}
	return a, nil
}

// CreateBackup asks for an on-demand backup of the instance. It is not idempotent (the service
// keeps no request id): a second call while the first backup runs fails with
// ErrBackupInProgress, a call after it has ended starts another backup. Use Executor.Start for
// once-only semantics. Every error is an *Error.
func (c *Client) CreateBackup(ctx context.Context, instanceCRN string) (Task, error) {
	const op = "create backup"
	var task Task
	err := c.call(ctx, op, core.POST, PathCreateBackup, instanceCRN, func(body []byte) error {
		t, err := ParseTask(body)
		task = t
		return err
	})
	return task, err
}

// ListBackups lists the instance's backups, in the service's order. It is read-only and safe to
// repeat. Every error is an *Error.
func (c *Client) ListBackups(ctx context.Context, instanceCRN string) ([]Backup, error) {
	const op = "list backups"
	var list []Backup
	err := c.call(ctx, op, core.GET, PathBackups, instanceCRN, func(body []byte) error {
		l, err := ParseBackupList(body)
		list = l
		return err
	})
	return list, err
}

// call runs one operation with retries inside the time budget; parse reads a success body.
func (c *Client) call(ctx context.Context, op, method, path, instanceCRN string, parse func([]byte) error) error {
	if !strings.HasPrefix(instanceCRN, "crn:") || len(instanceCRN) > maxText {
		return newError(op, events.Configuration, fmt.Errorf("instance %q is not a CRN", clip(instanceCRN)))
	}
	op = op + " " + instanceCRN
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p := c.retry
	p.OnRetry = func(attempt int, err error, wait time.Duration) {
		c.log.Debug("retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
	}
	return retry.Do(ctx, p, func(ctx context.Context) error {
		body, err := c.attempt(ctx, op, method, path, instanceCRN)
		switch {
		case errors.Is(err, ErrBackupInProgress):
			// Transient, but the running backup takes minutes: not worth a retry within the call.
			return retry.Final(err)
		case err != nil:
			return err
		}
		if perr := parse(body); perr != nil {
			return newError(op, events.Permanent, perr)
		}
		return nil
	})
}

// attempt makes one HTTP request. It returns the success body, or an *Error carrying any
// Retry-After.
func (c *Client) attempt(ctx context.Context, op, method, path, instanceCRN string) ([]byte, error) {
	b := core.NewRequestBuilder(method).WithContext(ctx)
	if _, err := b.ResolveRequestURL(c.svc.GetServiceURL(), path, nil); err != nil {
		return nil, newError(op, events.Configuration, fmt.Errorf("service URL: %w", err))
	}
	b.AddHeader("Accept", "application/json")
	b.AddHeader(HeaderProfile, EncodeProfile(instanceCRN))
	req, err := b.Build()
	if err != nil {
		return nil, newError(op, events.Permanent, fmt.Errorf("build request: %w", err))
	}
	type result struct {
		resp *core.DetailedResponse
		body []byte
		err  error
		auth bool // err is IAM's (resp, when set, is IAM's answer)
	}
	done := make(chan result, 1)
	// The request runs aside so that an IAM token fetch, which go-sdk-core runs without a
	// context, cannot hold the call past its budget.
	go func() {
		// Authenticate first, on its own, so that an IAM refusal is told apart from the service's
		// answers (an IAM 404 or 409 must not read as an unknown instance or a running backup).
		// The token is cached: Request reuses it.
		if err := c.svc.Options.Authenticator.Authenticate(req); err != nil {
			var ae *core.AuthenticationError
			var resp *core.DetailedResponse
			if errors.As(err, &ae) {
				resp = ae.Response
			}
			done <- result{resp: resp, err: err, auth: true}
			return
		}
		var rc io.ReadCloser
		resp, err := c.svc.Request(req, &rc)
		var body []byte
		if err == nil && rc != nil {
			body, err = io.ReadAll(io.LimitReader(rc, MaxResponseBytes+1))
			_ = rc.Close()
			if err == nil && len(body) > MaxResponseBytes {
				err = fmt.Errorf("%w: body exceeds %d bytes", ErrMalformedResponse, MaxResponseBytes)
				resp = nil
			}
		}
		done <- result{resp: resp, body: body, err: err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, newError(op, events.Transient, fmt.Errorf("no answer in time: %w", ctx.Err()))
	}
	if r.err == nil {
		return r.body, nil
	}
	if errors.Is(r.err, ErrMalformedResponse) {
		return nil, newError(op, events.Permanent, r.err)
	}
	e := classify(op, r.resp, r.err, r.auth)
	e.retryAfter = retryAfter(r.resp)
	return nil, e
}

// classify turns an SDK failure into an *Error: by HTTP status when there was an answer, else
// transient. An answer from IAM (auth) is transient or, when IAM refused the credentials,
// configuration.
func classify(op string, resp *core.DetailedResponse, err error, auth bool) *Error {
	code := 0
	if resp != nil {
		code = resp.StatusCode
	}
	switch {
	case code == 0:
		return &Error{Op: op, Class: events.Transient, Err: err}
	case auth && TransientStatus(code):
		return &Error{Op: op, StatusCode: code, Class: events.Transient, Err: err}
	case auth:
		return &Error{Op: op, StatusCode: code, Class: events.Configuration, Err: err}
	case code == http.StatusConflict:
		err = fmt.Errorf("%w: %v", ErrBackupInProgress, err)
	}
	return &Error{Op: op, StatusCode: code, Class: statusClass(code), Err: err}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(resp *core.DetailedResponse) time.Duration {
	if resp == nil || resp.Headers == nil {
		return 0
	}
	return retry.ParseRetryAfter(resp.Headers.Get("Retry-After"), time.Now())
}
