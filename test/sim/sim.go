package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Options of a run.
type Options struct {
	Seed      uint64
	Days      int
	Databases int
	// Faults names the fault profile (Profiles); Profile, when set, is used instead.
	Faults  string
	Profile *Profile
	// Tick is the Event Notifications periodic timer's interval.
	Tick time.Duration
	// Start is the first instant of the run (UTC).
	Start time.Time
	// KeepGoing plays the whole run after a violation; by default it stops at the first.
	KeepGoing bool
	// Trace, when set, gets one line per step (an invocation, a write, a start, a delivery).
	Trace io.Writer
	// CrashAt, when set, decides the crashes instead of the profile: it is asked before and
	// after every effectful step of every invocation (named as in the trace, e.g. "runner
	// db01-full-20260101T020000Z-a1 end", "before writing catalog/db01/runs/..."), so that a
	// scenario can crash one handler at one point.
	CrashAt func(invocation, step string) bool
	// FailAt, when set, is asked before every call an invocation makes to the object store
	// (except reads of catalog entries, which may run on other goroutines), to Key Protect, to
	// Event Notifications and to Code Engine, named like "put <key>", "list <prefix>", "kp get key
	// <crn>", "publish <id>", "start <run>": true fails the call as a 503 would.
	FailAt func(invocation, call string) bool
}

// Defaults of Options.
const (
	DefaultDays      = 365
	DefaultDatabases = 50
	DefaultFaults    = "typical"
	DefaultTick      = 15 * time.Minute
)

// DefaultStart is the default first instant: a Thursday, the first day of a quarter.
var DefaultStart = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func (o *Options) defaults() {
	if o.Days <= 0 {
		o.Days = DefaultDays
	}
	if o.Databases <= 0 {
		o.Databases = DefaultDatabases
	}
	if o.Faults == "" {
		o.Faults = DefaultFaults
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	o.Start = o.Start.UTC()
}

// Sim is one run: the trace, the virtual clock and the event queue, the simulated platform, and
// keyguard's handlers composed by shared/runtime.Routes over them. One goroutine runs it.
type Sim struct {
	o  Options
	p  Profile
	tr *Trace

	clk     *clock.Fake
	rng     *rand.Rand
	q       eventQueue
	seq     uint64
	depth   int
	steps   int64
	invID   uint64
	cur     *invocation
	stopped bool
	names   []string

	cos    *cos
	states *states
	en     *bus
	db2    *db2
	ops    *operator
	or     *oracle

	m          counters
	violations []Violation
	digest     hash.Hash
}

type counters struct {
	enLost, ticksLost, restores, restoresFailed, deletes, crashes, invocations int
}

// Run plays one seed and returns its report. Its error is about the options or the scenario;
// broken invariants are in the report.
func Run(o Options) (*Report, error) {
	o.defaults()
	p, err := ProfileNamed(o.Faults)
	if o.Profile != nil {
		p, err = *o.Profile, nil
	}
	if err != nil {
		return nil, err
	}
	tr, err := NewTrace(o.Seed, o.Start, o.Days, o.Databases, p)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	s, err := newSim(o, p, tr)
	if err != nil {
		return nil, err
	}
	s.schedule()
	s.runUntil(tr.End, 0)
	if s.clk.Now().Before(tr.End) && !s.stopped {
		s.clk.Set(tr.End)
	}
	if !s.stopped {
		s.or.audit()
	}
	return s.report(time.Since(began)), nil
}

func newSim(o Options, p Profile, tr *Trace) (*Sim, error) {
	s := &Sim{o: o, p: p, tr: tr, clk: clock.NewFake(tr.Start), rng: rand.New(rand.NewPCG(o.Seed, 0xc0ffee)), digest: sha256.New()}
	for _, d := range tr.DBs {
		s.names = append(s.names, d.Name)
	}
	s.cos = newCOS(s)
	s.states = newStates(s)
	s.or = newOracle(s)
	s.db2 = newDb2(s)
	s.en = &bus{s: s}
	s.ops = &operator{s: s, cat: catalog.NewWithOptions(s.cos, catalog.Options{Clock: s.clk}), send: sender{s: s, source: "keyguard/ops"}}
	quiet := slog.New(slog.DiscardHandler)
	routes := map[string]map[string]edge.Handler{}
	for _, fn := range config.Apps {
		d := runtime.Deps{Log: quiet, Objects: s.cos, States: s.states, Send: sender{s: s, source: "keyguard/" + fn},
			Fleet: config.Static{F: tr.Fleet}, Clock: s.clk, Execs: map[string]scheduler.Executor{Executor: s.db2},
			Workers: 1, Timer: s.clk, Budget: time.Hour} // one goroutine; a budget no simulated delivery reaches
		if fn == config.FnScheduler {
			d.Keys = keyProtect{s: s}
		}
		r, err := runtime.Routes(fn, d)
		if err != nil {
			return nil, err
		}
		routes[fn] = r
	}
	if err := s.en.subscribe(routes); err != nil {
		return nil, err
	}
	return s, nil
}

// schedule puts the run's first events in the queue: the periodic timer, the Cloud Logs alerts
// on rotations, and the operators' actions. Rotations, re-wraps, outages and failures need no
// event: the simulated services read them from the trace.
func (s *Sim) schedule() {
	s.at(s.tr.Start, "tick", s.en.tick)
	for _, k := range s.tr.Keys {
		for n, r := range k.Rotations {
			if !r.CloudLogs.IsZero() {
				s.at(r.CloudLogs, "cloud logs "+k.ID, func() { s.en.cloudLogs(k, n) })
			}
		}
	}
	for _, a := range s.tr.Ops {
		s.at(a.At, a.Kind+" "+a.DB, func() { s.ops.act(a) })
	}
}

// violate records a broken invariant; the run stops unless told to keep going.
func (s *Sim) violate(inv, db, detail string) {
	v := Violation{Invariant: inv, Seed: s.o.Seed, Step: s.steps, At: s.now(), Database: db, Detail: detail}
	s.violations = append(s.violations, v)
	s.trace("VIOLATION", v.String())
	if !s.o.KeepGoing {
		s.stopped = true
	}
}

// trace adds a step to the run's digest (and to the trace output, when asked).
func (s *Sim) trace(kind, detail string) {
	line := fmt.Sprintf("%s %s %s\n", s.now().Format("2006-01-02T15:04:05.000"), kind, detail)
	io.WriteString(s.digest, line)
	if s.o.Trace != nil {
		io.WriteString(s.o.Trace, line)
	}
}

// wrote is called after every write the object store applied.
func (s *Sim) wrote(key string, prev, o *object) {
	if o.st != nil {
		s.trace("put", key+" "+o.etag+" "+summary(o.st))
	} else {
		s.trace("put", key+" "+o.etag)
	}
	kind, db, name := classify(key)
	d := s.or.db(db)
	if d == nil {
		return
	}
	switch kind {
	case "state":
		var old *state.State
		if prev != nil {
			old = prev.st
		}
		s.or.stateWritten(db, old, o.st, len(o.body))
		s.setView(db, &viewedState{window: o.st.Window != nil, blocked: o.st.Key.Blocked})
	case "run":
		if _, ok := d.recorded[name]; !ok {
			d.recorded[name] = s.now()
		}
	case "entry":
		e, err := catalog.Decode(o.body)
		if err != nil {
			s.violate(InvChains, db, fmt.Sprintf("catalog entry %s does not decode: %v", key, err))
			return
		}
		s.or.entryWritten(db, e)
	}
}

// deleted is called after every deletion the object store applied.
func (s *Sim) deleted(key string, old *object) {
	s.trace("delete", key)
	kind, db, name := classify(key)
	d := s.or.db(db)
	if d == nil {
		return
	}
	if kind == "entry" {
		s.or.entryDeleted(db, strings.SplitN(name, "-", 2)[0])
	}
}

// published is called for every notification Event Notifications accepted.
func (s *Sim) published(ev events.Event) {
	s.trace("publish", ev.Source+" "+ev.Type+" "+ev.ID)
	if ev.Type == events.TypeAlert {
		s.or.alertSent(ev.ID)
	}
}

// classify names what an object key holds: state, entry, run (record), lease, or "".
func classify(key string) (kind, db, name string) {
	parts := strings.Split(key, "/")
	switch {
	case len(parts) == 2 && parts[0] == "state":
		return "state", strings.TrimSuffix(parts[1], ".json"), ""
	case len(parts) == 4 && parts[0] == "catalog" && parts[2] == "runs":
		return "run", parts[1], strings.TrimSuffix(parts[3], ".json")
	case len(parts) == 3 && parts[0] == "catalog":
		return "entry", parts[1], strings.TrimSuffix(parts[2], ".json")
	case len(parts) == 3 && parts[0] == "leases":
		return "lease", parts[1], parts[2]
	}
	return "", "", ""
}

// Digest is the hex SHA-256 of every step of the run: two runs of one seed give the same.
func (s *Sim) Digest() string { return hex.EncodeToString(s.digest.Sum(nil)) }

// summary is what the trace says of a state: revision, key version, window, run in flight.
func summary(st *state.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev %d key %s", st.Revision, st.Key.Version)
	if st.Key.Blocked {
		b.WriteString(" blocked")
	}
	if w := st.Window; w != nil {
		fmt.Fprintf(&b, " window(to %s until %s)", w.ToVersion, w.MaxCloseAt.Format("01-02T15:04"))
	}
	if r := st.Run; r != nil {
		fmt.Fprintf(&b, " run %s", r.ID)
		if r.Started {
			b.WriteString(" started")
		}
		if r.Suspect {
			b.WriteString(" suspect")
		}
	}
	if st.NeedFull {
		b.WriteString(" need-full")
	}
	return b.String()
}
