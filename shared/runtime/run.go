package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Deps are the clients a function's handlers are built from. Build makes them from the
// configuration; the local stack makes them from its emulators. Routes turns them into handlers.
type Deps struct {
	Config  Config
	Log     *slog.Logger
	Objects objstore.Store
	States  state.Store
	Send    outbox.Sender
	Fleet   config.Source
	// Keys polls Key Protect (nil when it is not configured); Execs start backups (scheduler).
	Keys  scheduler.Keys
	Execs map[string]scheduler.Executor
	// Clock is the wall clock when nil.
	Clock clock.Clock
	// Workers and Timer tune the scheduler's and the rotation function's fan-out: the
	// databases handled at once (their default when 0; 1 handles them in turn in the caller's
	// goroutine, as the simulator needs) and the clock a delivery's budget is measured on (the
	// wall clock when nil).
	Workers int
	Timer   clock.Clock
	// Budget bounds one delivery's work (the handlers' default when 0).
	Budget time.Duration
	// Rand is the source of the catalog's random names (crypto/rand when nil).
	Rand io.Reader
	// Preflight, when set (the scheduler, by Run), starts a deployment preflight in the
	// background and logs its report; a probe of mode "run" calls it (WithPreflight).
	Preflight func(requestedBy string)
}

// NewLogger is a function's one logger: JSON lines on w at level, each carrying the function's
// name once ("fn"). Handlers and the edge add their own attributes ("database", "run", ...) and
// never "fn" again.
func NewLogger(w io.Writer, fn string, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("fn", fn)
}

// Build makes every client from the configuration. It contacts nothing. An error names the
// variables at fault.
func Build(c Config) (Deps, error) {
	log := NewLogger(os.Stderr, c.Function, c.LogLevel)
	objs, err := c.Objects()
	if err != nil {
		return Deps{}, fmt.Errorf("object storage (%s, %s): %w", config.EnvCOSEndpoint, config.EnvCOSBucket, err)
	}
	send, err := c.Sender(log)
	if err != nil {
		return Deps{}, fmt.Errorf("event notifications (%s, %s): %w", config.EnvENURL, config.EnvENInstanceID, err)
	}
	fleet, err := c.Fleet(objs)
	if err != nil {
		return Deps{}, err
	}
	if cf, ok := fleet.(*COSFleet); ok {
		cf.Log = log
	}
	d := Deps{Config: c, Log: log, Objects: objs, States: state.NewObjectStore(objs), Send: send, Fleet: fleet}
	kp, err := c.Keys()
	if err != nil {
		return Deps{}, fmt.Errorf("key protect (%s, %s): %w", config.EnvKPURL, config.EnvKPInstanceID, err)
	}
	if kp != nil {
		d.Keys = KeyWatcher{C: kp}
	}
	return d, nil
}

// Run is a function process's whole life: load the configuration for fn, build the clients and
// handlers, then either handle the one event of a Code Engine job run (ibmendata / CE_*) or
// serve HTTP on PORT until ctx ends. handlers may instead do the whole work itself (an agent
// loop) and return a nil map. Errors do not name fn: the function's main prints "<fn>: " once
// before them.
func Run(ctx context.Context, fn string, getenv func(string) string, handlers func(Deps) (map[string]edge.Handler, error)) error {
	c, err := Load(fn, getenv)
	if err != nil {
		return err
	}
	d, err := Build(c)
	if err != nil {
		return err
	}
	job := edge.IsJob(getenv)
	if fn == config.FnScheduler && !job {
		d.Preflight = c.preflightRunner(d)
	}
	routes, err := handlers(d)
	if err != nil {
		return err
	}
	if routes == nil {
		return nil // the function ran to completion itself (an agent loop that ctx ended)
	}
	routes = WithPreflight(fn, d, routes, job)
	if job {
		return edge.RunJob(ctx, JobHandler(routes), getenv, d.Log, 10*time.Minute)
	}
	if d.Preflight != nil {
		// The scheduler proves its deployment once at start, once it serves: its own route is
		// one the probe must reach.
		t := time.AfterFunc(StartPreflightAfter, func() { d.Preflight("keyguard/scheduler at start") })
		defer t.Stop()
	}
	return Serve(ctx, net.JoinHostPort("", c.Port), edge.Mux(edge.Options{Token: c.Token, Logger: d.Log}, routes), d.Log)
}

// StartPreflightAfter is how long after it starts serving the scheduler runs its preflight.
const StartPreflightAfter = 3 * time.Second

// Serve serves h on addr until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "addr", addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// JobHandler routes a job run's one event as the HTTP paths would: ticks (Code Engine cron's
// Knative ping, keyguard's tick, the EN periodic timer) to the tick handler when there is one,
// everything else to the events handler.
func JobHandler(routes map[string]edge.Handler) edge.Handler {
	return edge.HandlerFunc(func(ctx context.Context, e events.Event) (edge.Result, error) {
		if t, ok := routes[config.PathTick]; ok && (events.IsTick(e) || routes[config.PathEvents] == nil) {
			return t.Handle(ctx, e)
		}
		if h, ok := routes[config.PathEvents]; ok {
			return h.Handle(ctx, e)
		}
		return edge.Result{}, edge.Reject("no handler for %q in this job", e.Type)
	})
}
