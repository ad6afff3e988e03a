package codeengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/jobevent"
	"github.com/keyguard-dev/keyguard/shared/retry"
)

// DefaultTimeout is the total budget of one Start or Status call, retries included.
const DefaultTimeout = 5 * time.Second

// Backoff between attempts: the first wait, doubled each time up to the maximum, each shortened
// at random by up to retryJitter of it; a longer Retry-After replaces it.
const (
	firstWait   = 100 * time.Millisecond
	maxWait     = time.Second
	retryJitter = 0.5
)

// RegionURL returns the Code Engine API v2 endpoint of a region, e.g. us-south.
func RegionURL(region string) string {
	return "https://api." + region + ".codeengine.cloud.ibm.com/v2"
}

// Options configure a Client.
type Options struct {
	// URL is the API endpoint, e.g. https://api.us-south.codeengine.cloud.ibm.com/v2.
	URL string
	// ProjectID is the Code Engine project (a GUID).
	ProjectID string
	// JobName is the runner job every run is created from.
	JobName string
	// Authenticator authenticates API calls: an IAM API key or a trusted profile.
	Authenticator core.Authenticator
	// HTTPClient, when set, sends the requests (go-sdk-core's default client otherwise).
	HTTPClient *http.Client
	// Timeout is the total budget of one call, retries included (DefaultTimeout when zero).
	Timeout time.Duration
	// Version, when set, is sent as the API's version query parameter (YYYY-MM-DD).
	Version string
	// Origin names the source of the event in ibmendata (jobevent defaults when zero).
	Origin jobevent.Origin
	// Clock times the waits between attempts and, from the call's start, what is left of the
	// budget for them (wall clock when nil). The budget's end is a context deadline, in wall
	// time: with a fake clock that is not advanced, a wait ends when the budget does.
	Clock clock.Clock
	// Log receives a line per created job run (slog.Default when nil).
	Log *slog.Logger
}

// Client creates and reads job runs of one job in one project.
type Client struct {
	svc       *core.BaseService
	auth      core.Authenticator
	projectID string
	jobName   string
	timeout   time.Duration
	version   string
	origin    jobevent.Origin
	clock     clock.Clock
	log       *slog.Logger
}

// New returns a Client, or an error when an option is missing or malformed.
func New(o Options) (*Client, error) {
	var problems []string
	u, err := url.Parse(o.URL)
	if o.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("URL %q is not an http(s) URL", o.URL))
	}
	if o.ProjectID == "" || strings.ContainsAny(o.ProjectID, "/?#% ") {
		problems = append(problems, fmt.Sprintf("project id %q is empty or not a plain id", o.ProjectID))
	}
	if !ValidName(o.JobName) {
		problems = append(problems, fmt.Sprintf("job name %q is not a Code Engine name", o.JobName))
	}
	if core.IsNil(o.Authenticator) {
		problems = append(problems, "no authenticator")
	} else if err := o.Authenticator.Validate(); err != nil {
		problems = append(problems, "authenticator: "+err.Error())
	}
	if o.Timeout < 0 {
		problems = append(problems, "negative timeout")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("codeengine: %s", strings.Join(problems, "; "))
	}
	svc, err := core.NewBaseService(&core.ServiceOptions{URL: strings.TrimRight(o.URL, "/"), Authenticator: o.Authenticator})
	if err != nil {
		return nil, fmt.Errorf("codeengine: %w", err)
	}
	if o.HTTPClient != nil {
		svc.SetHTTPClient(o.HTTPClient)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Client{svc: svc, auth: o.Authenticator, projectID: o.ProjectID, jobName: o.JobName, timeout: o.Timeout,
		version: o.Version, origin: o.Origin, clock: clock.Or(o.Clock), log: o.Log}, nil
}

// envVar is one literal entry of run_env_variables.
type envVar struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Start creates the job run of run (named JobRunName(run.RunID)) and returns once Code Engine
// has accepted it; it does not wait for the runner. A job run of that name that already exists
// counts as started. An invalid run is refused before anything is sent (permanent).
func (c *Client) Start(ctx context.Context, run events.BackupStarted) error {
	name := JobRunName(run.RunID)
	const op = "create job run"
	vars, err := jobevent.Env(run, c.origin)
	if err != nil {
		return &Error{Op: op, Name: name, Err: err}
	}
	env := make([]envVar, len(vars))
	for i, v := range vars {
		env[i] = envVar{Type: "literal", Name: v.Name, Value: v.Value}
	}
	body := map[string]any{"job_name": c.jobName, "name": name, "run_env_variables": env, "scale_array_spec": "0"}
	var created struct {
		ID string `json:"id"`
	}
	status, err := c.call(ctx, op, name, core.POST, "/projects/{project_id}/job_runs", nil, body, &created)
	switch {
	case err == nil:
		c.log.Info("job run created", "job", c.jobName, "name", name, "id", created.ID, "run", run.RunID, "database", run.Database)
		return nil
	case status == http.StatusConflict:
		c.log.Debug("job run already exists", "job", c.jobName, "name", name, "run", run.RunID)
		return nil
	}
	return err
}

// Phase is where a job run stands.
type Phase string

// Phases.
const (
	Pending   Phase = "pending"
	Running   Phase = "running"
	Succeeded Phase = "succeeded"
	Failed    Phase = "failed"
)

// Status is what Code Engine says of a run's job run.
type Status struct {
	// Known is false when no job run of that name exists (never created, or deleted).
	Known bool
	// Name is the job run name.
	Name  string
	Phase Phase
	// Detail summarises status_details, e.g. "failed 1 of 1 (indices 0): OOMKilled".
	Detail string
}

// jobRun is the part of the API's job run Status reads.
type jobRun struct {
	Name          string `json:"name"`
	Status        string `json:"status"`
	StatusDetails *struct {
		Requested      int64  `json:"requested"`
		Pending        int64  `json:"pending"`
		Running        int64  `json:"running"`
		Succeeded      int64  `json:"succeeded"`
		Failed         int64  `json:"failed"`
		FailedIndices  string `json:"failed_indices"`
		IndicesDetails map[string]struct {
			LastFailureReason string `json:"last_failure_reason"`
		} `json:"indices_details"`
	} `json:"status_details"`
}

// Status returns the state of the job run of runID. A job run that does not exist gives Known
// false and no error.
func (c *Client) Status(ctx context.Context, runID string) (Status, error) {
	name := JobRunName(runID)
	var jr jobRun
	code, err := c.call(ctx, "get job run", name, core.GET, "/projects/{project_id}/job_runs/{name}", map[string]string{"name": name}, nil, &jr)
	if code == http.StatusNotFound {
		return Status{Name: name}, nil
	}
	if err != nil {
		return Status{}, err
	}
	return status(name, jr), nil
}

func status(name string, jr jobRun) Status {
	s := Status{Known: true, Name: name}
	d := jr.StatusDetails
	switch jr.Status {
	case "pending":
		s.Phase = Pending
	case "running":
		s.Phase = Running
	case "completed":
		s.Phase = Succeeded
	case "failed":
		s.Phase = Failed
	default:
		// An unknown or missing status counts as still in flight; the run's lease bounds it.
		s.Phase = Pending
		if d != nil && d.Failed > 0 {
			s.Phase = Failed
		} else if d != nil && d.Running > 0 {
			s.Phase = Running
		}
	}
	if d == nil {
		s.Detail = "status " + strconv.Quote(jr.Status)
		return s
	}
	switch s.Phase {
	case Failed:
		s.Detail = fmt.Sprintf("failed %d of %d", d.Failed, d.Requested)
		if d.FailedIndices != "" {
			s.Detail += " (indices " + d.FailedIndices + ")"
		}
		var reasons []string
		for _, idx := range sortedKeys(d.IndicesDetails) {
			if r := d.IndicesDetails[idx].LastFailureReason; r != "" {
				reasons = append(reasons, r)
			}
		}
		if len(reasons) > 0 {
			s.Detail += ": " + strings.Join(reasons, ", ")
		}
	default:
		s.Detail = fmt.Sprintf("requested %d, pending %d, running %d, succeeded %d, failed %d",
			d.Requested, d.Pending, d.Running, d.Succeeded, d.Failed)
	}
	return s
}

// call sends one API request with retries inside the client's budget and returns the HTTP status
// of the last answer (0 when none). result, when not nil, receives the JSON answer.
func (c *Client) call(ctx context.Context, op, name, method, path string, params map[string]string, body, result any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	type outcome struct {
		code int
		err  error
	}
	done := make(chan outcome, 1)
	// The attempts run aside so that an IAM token fetch, which go-sdk-core makes without a
	// context, cannot hold the call past its budget.
	go func() {
		code, err := c.retry(ctx, op, name, method, path, params, body, result)
		done <- outcome{code, err}
	}()
	select {
	case o := <-done:
		return o.code, o.err
	case <-ctx.Done():
		select {
		case o := <-done:
			return o.code, o.err
		default:
		}
		// No answer in time (or the caller gave up): the job run may or may not exist, so
		// trying again (idempotent by name) is the way to find out.
		return 0, &Error{Op: op, Name: name, Transient: true, Err: fmt.Errorf("no answer within %s: %w", c.timeout, ctx.Err())}
	}
}

// retry makes the request until it succeeds, fails for good or the next wait would pass the
// budget (shared/retry), and returns the last status.
func (c *Client) retry(ctx context.Context, op, name, method, path string, params map[string]string, body, result any) (int, error) {
	p := retry.Policy{FirstWait: firstWait, MaxWait: maxWait, Jitter: retryJitter, Clock: c.clock,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			c.log.Debug("retrying Code Engine call", "op", op, "name", name, "attempt", attempt, "wait", wait, "err", err)
		}}
	code, attempts := 0, 0
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		attempts++
		var e *Error
		code, e = c.once(ctx, method, path, params, body, result)
		if e == nil {
			return nil
		}
		e.Op, e.Name, e.Attempts = op, name, attempts
		return e
	})
	return code, err
}

// once makes one request. The *Error it returns has StatusCode, Auth, Transient, Err and the
// Retry-After set.
func (c *Client) once(ctx context.Context, method, path string, params map[string]string, body, result any) (int, *Error) {
	b := core.NewRequestBuilder(method).WithContext(ctx)
	pp := map[string]string{"project_id": c.projectID}
	for k, v := range params {
		pp[k] = v
	}
	if _, err := b.ResolveRequestURL(c.svc.Options.URL, path, pp); err != nil {
		return 0, &Error{Err: fmt.Errorf("build request: %w", err)}
	}
	b.AddHeader("Accept", "application/json")
	if c.version != "" {
		b.AddQuery("version", c.version)
	}
	if body != nil {
		b.AddHeader("Content-Type", "application/json")
		if _, err := b.SetBodyContentJSON(body); err != nil {
			return 0, &Error{Err: fmt.Errorf("build request: %w", err)}
		}
	}
	req, err := b.Build()
	if err != nil {
		return 0, &Error{Err: fmt.Errorf("build request: %w", err)}
	}
	// Authenticate first, on its own, so an IAM failure is told apart from an API answer (an IAM
	// 404 must not read as "no such job run"). The token is cached: Request reuses it.
	if err := c.auth.Authenticate(req); err != nil {
		code := 0
		var ae *core.AuthenticationError
		if errors.As(err, &ae) && ae.Response != nil {
			code = ae.Response.StatusCode
		}
		transient := code == 0 || TransientStatus(code)
		if code == http.StatusNotFound {
			code = 0 // keep the API's 404 meaning; the message says what IAM answered
		}
		return code, &Error{StatusCode: code, Auth: true, Transient: transient, Err: err}
	}
	resp, err := c.svc.Request(req, result)
	code := 0
	var retryAfter time.Duration
	if resp != nil {
		code = resp.StatusCode
		retryAfter = retry.ParseRetryAfter(resp.Headers.Get("Retry-After"), time.Now())
	}
	if err == nil {
		return code, nil
	}
	if code == 0 {
		return 0, &Error{Transient: true, Err: err} // no answer: network failure or timeout
	}
	return code, &Error{StatusCode: code, Transient: TransientStatus(code), Err: err, retryAfter: retryAfter}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
