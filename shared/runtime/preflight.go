package runtime

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/codeengine"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/cosconfig"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/iampolicy"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

// TickRecordEvery bounds how often the scheduler records the tick it received
// (preflight.RecordTick): once an hour keeps an idle tick at one read per database, plus this
// one write an hour. The preflight allows for it when it judges the last tick's age.
const TickRecordEvery = time.Hour

// WithPreflight wraps the handlers of function fn (path -> handler) so that a deployment
// preflight's probe (events.TypePreflight), on whatever route it arrives, records its receipt
// (preflight.RecordReceipt) and goes no further; a probe of mode "run" also starts d.Preflight
// when it is set (the scheduler). The tick route also records the last tick, at most once per
// TickRecordEvery. job says the handlers serve a job run (the receipt's path is "job"). Routes
// and Run apply it; wrapping twice wraps once.
func WithPreflight(fn string, d Deps, routes map[string]edge.Handler, job bool) map[string]edge.Handler {
	out := make(map[string]edge.Handler, len(routes))
	var ticks *tickRecorder
	for path, h := range routes {
		if _, done := h.(*preflightRoute); done {
			out[path] = h
			continue
		}
		p := &preflightRoute{fn: fn, path: path, d: d, next: h}
		if job {
			p.path = "job"
		}
		if path == config.PathTick && !job {
			if ticks == nil {
				ticks = &tickRecorder{}
			}
			p.ticks = ticks
		}
		out[path] = p
	}
	return out
}

type preflightRoute struct {
	fn, path string
	d        Deps
	next     edge.Handler
	ticks    *tickRecorder
}

type tickRecorder struct {
	mu   sync.Mutex
	last time.Time
}

func (h *preflightRoute) log() *slog.Logger {
	if h.d.Log != nil {
		return h.d.Log
	}
	return slog.Default()
}

// Handle records a probe's receipt, or passes the event on.
func (h *preflightRoute) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	now := clock.Or(h.d.Clock).Now()
	if e.Type != events.TypePreflight {
		res, err := h.next.Handle(ctx, e)
		if h.ticks != nil {
			h.recordTick(ctx, e, now)
		}
		return res, err
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil {
		return edge.Result{}, err
	}
	probe := *p.(*events.Preflight)
	created, err := preflight.RecordReceipt(ctx, h.d.Objects, h.fn, h.path, e, probe, now)
	if err != nil {
		return edge.Result{}, err
	}
	res := edge.Result{Outcome: "preflight", Detail: "receipt of " + probe.RunID + " recorded"}
	if !created {
		res.Detail = "receipt of " + probe.RunID + " already recorded"
	}
	if probe.Mode == events.PreflightRun && created && h.d.Preflight != nil {
		h.d.Preflight(probe.RequestedBy)
		res.Detail += "; the preflight runs, its report goes to the log"
	}
	return res, nil
}

func (h *preflightRoute) recordTick(ctx context.Context, e events.Event, now time.Time) {
	h.ticks.mu.Lock()
	due := h.ticks.last.IsZero() || now.Sub(h.ticks.last) >= TickRecordEvery || now.Before(h.ticks.last)
	if due {
		h.ticks.last = now
	}
	h.ticks.mu.Unlock()
	if !due {
		return
	}
	if err := preflight.RecordTick(ctx, h.d.Objects, e, now); err != nil {
		h.log().Warn("record tick for the preflight", "err", err)
		h.ticks.mu.Lock()
		h.ticks.last = time.Time{} // try again on the next tick
		h.ticks.mu.Unlock()
	}
}

// LoadOperator reads the configuration of an operator's command (keyguard preflight): the
// runner job's variables (runtime.Load with config.FnRunner, no bearer token) and, as the
// scheduler reads them, the Code Engine project and runner job and the Db2 on Cloud URL.
func LoadOperator(getenv func(string) string) (Config, error) {
	c, err := Load(config.FnRunner, getenv)
	if err != nil {
		return c, err
	}
	c.CEProjectID, c.CERegion, c.CERunnerJob = getenv(config.EnvCEProjectID), getenv(config.EnvCERegion), getenv(config.EnvCERunnerJob)
	c.Db2SaaSURL = getenv(config.EnvDb2SaaSURL)
	c.CEURL = getenv(config.EnvCEURL)
	if c.CEProjectID != "" && (c.CERegion == "" || c.CERunnerJob == "") {
		return c, fmt.Errorf("configuration: %s needs %s and %s", config.EnvCEProjectID, config.EnvCERegion, config.EnvCERunnerJob)
	}
	return c, nil
}

// PreflightDeployment builds what a preflight checks from the configuration and the clients in
// d. operator says the identity is an operator's, which may read the Event Notifications
// topology and IAM policies and is meant to delete objects; a function's identity holds only
// what its code uses (the Terraform grants), so those checks are skipped, its refused bucket
// configuration reads prove its least privilege, and only the completion function is expected to
// delete. It contacts nothing.
func (c Config) PreflightDeployment(d Deps, operator bool) (preflight.Deployment, error) {
	pd := preflight.Deployment{
		Fleet: d.Fleet, Objects: d.Objects, BucketName: c.COSBucket, COSInstanceCRN: c.COSInstanceCRN,
		Publisher: d.Send, SourceID: c.ENSourceID, ENInstanceID: c.ENInstanceID,
		CEProjectID: c.CEProjectID, RunnerJob: c.CERunnerJob, CanDelete: operator || c.Function == config.FnCompletion,
		RequestedBy: "keyguard/" + c.Function, Clock: d.Clock,
	}
	if operator {
		pd.RequestedBy = "keyguard preflight"
	}
	var auth core.Authenticator
	if c.APIKey.IsSet() || c.TrustedProfile != "" {
		a, err := c.Authenticator()
		if err != nil {
			return pd, err
		}
		auth = a
		pd.Credentials = tokenSource{auth}
	}
	client, err := c.COSClient()
	if err != nil {
		return pd, err
	}
	b := cosconfig.New(client, c.COSBucket)
	pd.Bucket, pd.BucketConfig, pd.Operator = b, b, operator
	kp, err := c.Keys()
	if err != nil {
		return pd, err
	}
	if kp != nil {
		pd.Keys = preflightKeys{kp}
	}
	if operator && auth != nil {
		if pd.Authorizations, err = iampolicy.New(c.IAMURL, auth, 0); err != nil {
			return pd, err
		}
		if t, ok := d.Send.(preflight.Topology); ok {
			pd.Topology = t
		}
	}
	if c.CEProjectID != "" && auth != nil {
		url := c.CEURL
		if url == "" {
			url = codeengine.RegionURL(c.CERegion)
		}
		ce, err := codeengine.New(codeengine.Options{URL: url, ProjectID: c.CEProjectID, JobName: c.CERunnerJob, Authenticator: auth, Log: d.Log})
		if err != nil {
			return pd, err
		}
		pd.Jobs = ce
	}
	if c.Db2SaaSURL != "" && auth != nil {
		client, err := db2saas.New(db2saas.Options{URL: c.Db2SaaSURL, Authenticator: auth, Logger: d.Log})
		if err != nil {
			return pd, err
		}
		pd.Db2 = db2Backups{client}
	}
	return pd, nil
}

// preflightRunner returns what runs the preflight in the scheduler: in the background, one at a
// time, with the scheduler's own identity, its report to the log.
func (c Config) preflightRunner(d Deps) func(requestedBy string) {
	var running atomic.Bool
	return func(requestedBy string) {
		if !running.CompareAndSwap(false, true) {
			d.Log.Info("a preflight is already running; this request is not run again", "requested_by", requestedBy)
			return
		}
		go func() {
			defer running.Store(false)
			pd, err := c.PreflightDeployment(d, false)
			if err != nil {
				d.Log.Error("preflight not run", "err", err)
				return
			}
			pd.RequestedBy = requestedBy
			LogReport(d.Log, preflight.Run(context.Background(), pd, preflight.Options{}))
		}()
	}
}

// LogReport logs a preflight report: one line per failure with its fix, then the summary.
func LogReport(log *slog.Logger, r preflight.Report) {
	for _, x := range r.Failed() {
		log.Warn("preflight check failed", "run", r.RunID, "area", x.Area, "check", x.Check, "detail", x.Detail, "fix", x.Fix)
	}
	ok, failed, skipped := r.Counts()
	level := slog.LevelInfo
	if failed > 0 {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "preflight", "run", r.RunID, "ok", ok, "failed", failed, "skipped", skipped, "took", r.Took.String(), "summary", r.Summary())
}

// tokenSource gets an IAM token through an authenticator and reads who it is for.
type tokenSource struct{ auth core.Authenticator }

// Token fetches a token (go-sdk-core caches it) and decodes its claims, without verifying
// them: they only name the identity in the report.
func (t tokenSource) Token(ctx context.Context) (preflight.Identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://preflight.invalid/", nil)
	if err != nil {
		return preflight.Identity{}, err
	}
	done := make(chan error, 1)
	go func() { done <- t.auth.Authenticate(req) }() // the token fetch takes no context
	select {
	case err = <-done:
	case <-ctx.Done():
		return preflight.Identity{}, ctx.Err()
	}
	if err != nil {
		return preflight.Identity{}, err
	}
	token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return preflight.Identity{}, errors.New("the authenticator set no bearer token")
	}
	return claims(token), nil
}

// claims reads the identity an IAM access token (a JWT) names; fields it lacks stay empty.
func claims(token string) preflight.Identity {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return preflight.Identity{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return preflight.Identity{}
	}
	var c struct {
		IAMID   string `json:"iam_id"`
		Sub     string `json:"sub"`
		Exp     int64  `json:"exp"`
		Account struct {
			BSS string `json:"bss"`
		} `json:"account"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return preflight.Identity{}
	}
	id := preflight.Identity{Subject: c.IAMID, Account: c.Account.BSS}
	if id.Subject == "" {
		id.Subject = c.Sub
	}
	if c.Exp > 0 {
		id.Expires = time.Unix(c.Exp, 0).UTC()
	}
	return id
}

// preflightKeys adapts the Key Protect client to the preflight.
type preflightKeys struct{ c *keyprotect.Client }

var _ preflight.Keys = preflightKeys{}

func notFound(err error) error {
	var e *keyprotect.Error
	if errors.As(err, &e) && e.Class == keyprotect.NotFound {
		return fmt.Errorf("%w: %w", preflight.ErrNotFound, err)
	}
	return err
}

func (k preflightKeys) Key(ctx context.Context, crn string) (preflight.Key, error) {
	info, err := k.c.Key(ctx, crn)
	if err != nil {
		return preflight.Key{}, notFound(err)
	}
	return preflight.Key{State: info.State, Version: info.Version}, nil
}

func (k preflightKeys) Versions(ctx context.Context, crn string) ([]string, error) {
	vs, err := k.c.Versions(ctx, crn)
	if err != nil {
		return nil, notFound(err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out, nil
}

func (k preflightKeys) Registrations(ctx context.Context, crn string) ([]preflight.Registration, error) {
	regs, err := k.c.Registrations(ctx, crn)
	if err != nil {
		return nil, notFound(err)
	}
	out := make([]preflight.Registration, len(regs))
	for i, r := range regs {
		out[i] = preflight.Registration{ResourceCRN: r.ResourceCRN, KeyVersion: r.KeyVersion}
	}
	return out, nil
}

// db2Backups adapts the Db2 on Cloud client to the preflight.
type db2Backups struct{ c *db2saas.Client }

var _ preflight.Db2 = db2Backups{}

func (b db2Backups) Backups(ctx context.Context, instanceCRN string) (int, error) {
	list, err := b.c.ListBackups(ctx, instanceCRN)
	return len(list), err
}

// MetricsHandler exposes the wrapped handler's figures (edge.MetricsSource), so that wrapping a
// route for the preflight does not hide the scheduler's /metrics.
func (h *preflightRoute) MetricsHandler() http.Handler {
	if m, ok := h.next.(edge.MetricsSource); ok {
		return m.MetricsHandler()
	}
	return nil
}
