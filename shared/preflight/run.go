package preflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
)

// Defaults of Options.
const (
	DefaultBudget      = 90 * time.Second
	DefaultAppWait     = 20 * time.Second
	DefaultJobWait     = 60 * time.Second
	DefaultConcurrency = 8
	DefaultMaxPerKind  = 50
)

// Options tune a run. The zero value means the defaults.
type Options struct {
	// RunID names the run (a fresh one when empty).
	RunID string
	// Budget bounds the whole run: a check that has not finished by then fails.
	Budget time.Duration
	// AppWait is how long the receipts of the apps may take (Event Notifications retries a
	// delivery over about 10 s); JobWait, those of job runs (a job run starts a container).
	AppWait, JobWait time.Duration
	// Concurrency bounds the checks running at once.
	Concurrency int
	// MaxPerKind bounds the keys and Db2 instances checked one by one; beyond it the report says
	// how many were left out.
	MaxPerKind int
	// Poll is how often receipts are looked for (default 200 ms).
	Poll time.Duration
}

func (o Options) withDefaults() Options {
	if o.RunID == "" {
		o.RunID = NewRunID(time.Now())
	}
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if o.AppWait <= 0 {
		o.AppWait = DefaultAppWait
	}
	if o.JobWait <= 0 {
		o.JobWait = DefaultJobWait
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxPerKind <= 0 {
		o.MaxPerKind = DefaultMaxPerKind
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	return o
}

// NewRunID returns a run id: pf-<UTC time>-<random>.
func NewRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "pf-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Check is one check: its area and name, and the function that runs it. A check may report
// more than one result (one per route, per key).
type Check struct {
	Area, Name string
	Run        func(ctx context.Context) []Result
}

// Run runs every check of d concurrently within o.Budget and returns the report, results in
// the order of Checks. It never fails: whatever goes wrong is a result.
func Run(ctx context.Context, d Deployment, o Options) Report {
	o = o.withDefaults()
	clk := clock.Or(d.Clock)
	start := time.Now()
	rep := Report{RunID: o.RunID, Started: clk.Now().UTC()}
	ctx, cancel := context.WithTimeout(ctx, o.Budget)
	defer cancel()
	p := &run{d: d, o: o, clk: clk}
	checks := p.checks(ctx)
	out := make([][]Result, len(checks))
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				out[i] = []Result{{Area: c.Area, Check: c.Name, Status: Fail, Detail: "not started within the budget of " + o.Budget.String(),
					Fix: "raise the budget (-budget), or look at the checks that took longest"}}
				return
			}
			out[i] = runOne(ctx, c, o.Budget)
		}()
	}
	wg.Wait()
	for _, rs := range out {
		rep.Results = append(rep.Results, rs...)
	}
	rep.Identity = p.identity()
	rep.Took = time.Since(start)
	return rep
}

// runOne runs c, turning a panic into a failure and a check still running at the budget's end
// into one.
func runOne(ctx context.Context, c Check, budget time.Duration) []Result {
	start := time.Now()
	done := make(chan []Result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- []Result{{Area: c.Area, Check: c.Name, Status: Fail, Detail: fmt.Sprintf("the check panicked: %v", r),
					Fix: "report this as a keyguard bug"}}
			}
		}()
		done <- c.Run(ctx)
	}()
	var rs []Result
	select {
	case rs = <-done:
	case <-ctx.Done():
		select {
		case rs = <-done:
		case <-time.After(50 * time.Millisecond):
			rs = []Result{{Area: c.Area, Check: c.Name, Status: Fail, Detail: "no answer within the budget of " + budget.String(),
				Fix: "the service did not answer in time: check the endpoint and the network, or raise the budget (-budget)"}}
		}
	}
	took := time.Since(start)
	rs = slices.Clone(rs)
	for i := range rs {
		if rs[i].Area == "" {
			rs[i].Area = c.Area
		}
		if rs[i].Check == "" {
			rs[i].Check = c.Name
		}
		if rs[i].Took == 0 {
			rs[i].Took = took
		}
	}
	return rs
}

// run is one preflight run in progress.
type run struct {
	d   Deployment
	o   Options
	clk clock.Clock

	mu   sync.Mutex
	id   Identity
	topo topologyOnce
}

func (p *run) setIdentity(id Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.id = id
}

func (p *run) identity() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id.Subject
}

func ok(detail string) []Result { return []Result{{Status: OK, Detail: detail}} }

func skip(detail string) []Result { return []Result{{Status: Skip, Detail: detail}} }

func fail(detail, fix string) []Result { return []Result{{Status: Fail, Detail: detail, Fix: fix}} }
