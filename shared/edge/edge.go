package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/secret"
)

// Handler handles one inbound event. It must be idempotent: the same event (source + id) may
// arrive twice, late, or out of order. Errors wrapping ErrRejected (or events.ErrInvalid,
// ErrUnknownType, ErrTooLarge), and errors whose kind (shared/errkind) is permanent,
// configuration or invalid, are not retried; any other error is treated as transient. See Status.
type Handler interface {
	Handle(ctx context.Context, e events.Event) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, e events.Event) (Result, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, e events.Event) (Result, error) { return f(ctx, e) }

// Result says what a handler did, for the response body and the log.
type Result struct {
	Outcome string `json:"outcome"`          // e.g. started, deferred, duplicate, closed
	Detail  string `json:"detail,omitempty"` // human-readable
}

// ErrRejected marks an event the handler refuses for good (e.g. a type this route does not take,
// a database not in the fleet). It maps to 422.
var ErrRejected = errors.New("event rejected")

// Reject returns an error wrapping ErrRejected.
func Reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// Options configure the HTTP edge.
type Options struct {
	// Token is the shared bearer secret every request must carry.
	Token secret.Secret
	// Timeout bounds one event's handling (default 8 s, under Event Notifications' 10 s).
	Timeout time.Duration
	// Logger gets a line per request; it carries the function's name ("fn"), which the edge does
	// not add again. slog.Default() when nil.
	Logger *slog.Logger
}

// Status maps a handler or decoder error to an HTTP status. A 5xx makes Event Notifications
// deliver the event again; a 4xx ends its delivery, so it is kept for errors that a redelivery
// would meet again (no poison loops). In order:
//
//   - the event sentinels: events.ErrTooLarge 413, events.ErrInvalid 400, events.ErrUnknownType,
//     ErrRejected and config.ErrUnknownDatabase 422;
//   - context.DeadlineExceeded: 504 (the work may finish on the next delivery);
//   - the error's kind (errkind.Of): invalid 400; permanent and configuration 422 (the reason
//     says what an operator must fix); transient 503;
//   - anything else: 503, since an error that does not say its kind may pass.
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, events.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, events.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, events.ErrUnknownType), errors.Is(err, ErrRejected), errors.Is(err, config.ErrUnknownDatabase):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	switch errkind.Of(err) {
	case errkind.Invalid:
		return http.StatusBadRequest
	case errkind.Permanent, errkind.Configuration:
		return http.StatusUnprocessableEntity
	}
	return http.StatusServiceUnavailable
}

// MetricsSource is a handler that also has figures to expose (the scheduler); a nil
// MetricsHandler means it has none.
type MetricsSource interface {
	MetricsHandler() http.Handler
}

// Mux serves routes (path -> handler) plus an unauthenticated GET /healthz, and, when a route's
// handler is a MetricsSource, its Prometheus exposition on GET /metrics behind the same bearer
// token as the routes: the figures name databases and their backup times, and the app is
// reachable from the internet (Prometheus sends the token with authorization.credentials).
func Mux(o Options, routes map[string]Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	metrics := false
	for _, path := range sortedPaths(routes) {
		h := routes[path]
		mux.Handle("POST "+path, Serve(o, h))
		if m, ok := h.(MetricsSource); ok && !metrics {
			if mh := m.MetricsHandler(); mh != nil {
				metrics = true
				mux.Handle("GET "+config.PathMetrics, authOnly(o, mh))
			}
		}
	}
	return mux
}

func sortedPaths(routes map[string]Handler) []string {
	paths := make([]string, 0, len(routes))
	for p := range routes {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// authOnly serves h to requests that carry the bearer token.
func authOnly(o Options, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(o.Token, r) {
			reply(w, http.StatusUnauthorized, Result{Outcome: "rejected", Detail: "missing or wrong bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Serve returns the HTTP handler for one route.
func Serve(o Options, h Handler) http.Handler {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 8 * time.Second
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !authorized(o.Token, r) {
			log.Warn("unauthenticated request", "path", r.URL.Path, "remote", r.RemoteAddr)
			reply(w, http.StatusUnauthorized, Result{Outcome: "rejected", Detail: "missing or wrong bearer token"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, events.MaxBodyBytes+1)
		e, err := events.FromHTTP(r)
		if err != nil {
			log.Warn("bad event", "err", err)
			reply(w, Status(err), Result{Outcome: "rejected", Detail: err.Error()})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		res, err := h.Handle(ctx, e)
		attrs := []any{"type", e.Type, "id", e.ID, "source", e.Source, "shape", e.Shape, "ms", time.Since(start).Milliseconds()}
		if err != nil {
			// A refused or malformed event (4xx) is the sender's problem and expected: WARN;
			// a failure worth redelivering (5xx) is ours: ERROR.
			code, level := Status(err), slog.LevelError
			if code < http.StatusInternalServerError {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "event failed", append(attrs, "status", code, "kind", errkind.Of(err), "err", err)...)
			reply(w, code, Result{Outcome: "error", Detail: err.Error()})
			return
		}
		log.Info("event handled", append(attrs, "outcome", res.Outcome, "detail", res.Detail)...)
		reply(w, http.StatusOK, res)
	})
}

func authorized(token secret.Secret, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return false
	}
	return token.Equal(h[len(p):])
}

func reply(w http.ResponseWriter, code int, res Result) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(res)
}

// RunJob handles the one event of a Code Engine job run, read from its environment (ibmendata or
// CE_*). The returned error is non-nil when the job should exit non-zero; it does not name the
// function (the caller's main does, once), and log carries the function's name.
func RunJob(ctx context.Context, h Handler, getenv func(string) string, log *slog.Logger, timeout time.Duration) error {
	if log == nil {
		log = slog.Default()
	}
	e, err := events.FromJobEnv(getenv)
	if err != nil {
		return fmt.Errorf("job: read event: %w", err)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := h.Handle(ctx, e)
	if err != nil {
		return fmt.Errorf("job: %s %s: %w", e.Type, e.ID, err)
	}
	log.Info("job event handled", "type", e.Type, "id", e.ID, "outcome", res.Outcome, "detail", res.Detail)
	return nil
}

// IsJob reports whether the environment carries a Code Engine job event.
func IsJob(getenv func(string) string) bool {
	return getenv("ibmendata") != "" || getenv("CE_TYPE") != ""
}
