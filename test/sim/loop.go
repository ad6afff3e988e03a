package sim

import (
	"container/heap"
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// maxDepth bounds how many invocations run inside one another. An invocation that reaches one of
// its steps lets the events due by then run first (they are concurrent with it); past this depth
// they wait until the stack unwinds, and run a little late.
const maxDepth = 3

// event is something that happens at a virtual instant: a delivery, a job's start or end, a
// rotation, an operator's action. Events due at the same instant run in a seeded order.
type event struct {
	at   time.Time
	tie  uint64
	seq  uint64
	name string
	fn   func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.tie != b.tie {
		return a.tie < b.tie
	}
	return a.seq < b.seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*q = old[:n-1]
	return e
}

// at schedules fn at t (now when t is past).
func (s *Sim) at(t time.Time, name string, fn func()) {
	s.seq++
	heap.Push(&s.q, &event{at: t, tie: s.rng.Uint64(), seq: s.seq, name: name, fn: fn})
}

// after schedules fn d from now.
func (s *Sim) after(d time.Duration, name string, fn func()) { s.at(s.now().Add(d), name, fn) }

func (s *Sim) now() time.Time { return s.clk.Now() }

// runUntil runs, in order, every event due by t, each at depth (0: the main loop). Events
// scheduled meanwhile run too if they fall due by t.
func (s *Sim) runUntil(t time.Time, depth int) {
	for s.q.Len() > 0 && !s.q[0].at.After(t) && !s.stopped {
		e := heap.Pop(&s.q).(*event)
		if e.at.After(s.now()) {
			s.clk.Set(e.at)
		}
		saved := s.depth
		s.depth = depth
		s.steps++
		e.fn()
		s.depth = saved
	}
}

// pause is a step of the running invocation that takes d of virtual time: the events due by its
// end run first, inside it (concurrently with it), then the clock moves on. Only code on the
// invocation's own goroutine may call it.
func (s *Sim) pause(d time.Duration) {
	s.steps++
	end := s.now().Add(d)
	if s.depth < maxDepth {
		s.runUntil(end, s.depth+1)
	}
	if end.After(s.now()) {
		s.clk.Set(end)
	}
}

// invocation is one run of a handler, a job or an operator's command: what it saw of each
// database's state (the hold invariant asks), and whether a fault was injected into it.
type invocation struct {
	id      uint64
	name    string
	kind    string
	started time.Time
	// faulted is set when a fault was injected into one of its calls (object store reads run on
	// several goroutines, hence atomic).
	faulted atomic.Bool
	// views is the last state of each database this invocation read or wrote.
	views map[string]*viewedState
}

type viewedState struct {
	window, blocked bool
}

// crashSignal unwinds an invocation that crashed between two of its steps.
type crashSignal struct {
	inv   *invocation
	where string
}

// outcome is how an invocation ended.
type outcome struct {
	err     error
	crashed bool
	faulted bool
	took    time.Duration
}

// invoke runs fn as one invocation: it may crash (the sim unwinds it with a crashSignal from one
// of its steps, leaving what it wrote) or panic (a defect, reported as the no-panic invariant).
func (s *Sim) invoke(kind, name string, fn func(ctx context.Context) error) (out outcome) {
	s.invID++
	s.m.invocations++
	inv := &invocation{id: s.invID, name: name, kind: kind, started: s.now()}
	prev := s.cur
	s.cur = inv
	defer func() {
		s.cur = prev
		out.faulted = inv.faulted.Load()
		out.took = s.now().Sub(inv.started)
	}()
	func() {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if c, ok := r.(crashSignal); ok && c.inv == inv {
				out.crashed = true
				s.m.crashes++
				s.trace("crash", name+" "+c.where)
				return
			}
			if _, ok := r.(crashSignal); ok {
				panic(r) // an outer invocation's crash (cannot happen: steps belong to s.cur)
			}
			out.crashed = true
			s.violate("no-panic", "", fmt.Sprintf("%s panicked: %v\n%s", name, r, debug.Stack()))
		}()
		out.err = fn(context.Background())
	}()
	return out
}

// maybeCrash crashes the running invocation, with the profile's probability, before or after an
// effectful step (a write, a delete, a start, a publish).
func (s *Sim) maybeCrash(where string) {
	switch {
	case s.cur == nil:
		return
	case s.o.CrashAt != nil:
		if !s.o.CrashAt(s.cur.name, where) {
			return
		}
	case s.p.Crash == 0 || s.rng.Float64() >= s.p.Crash:
		return
	}
	panic(crashSignal{inv: s.cur, where: where})
}

// failAt asks Options.FailAt whether to fail the running invocation's call.
func (s *Sim) failAt(call string) bool {
	if s.o.FailAt == nil || s.cur == nil || !s.o.FailAt(s.cur.name, call) {
		return false
	}
	s.fault()
	return true
}

// fault marks the running invocation as having had a fault injected.
func (s *Sim) fault() {
	if s.cur != nil {
		s.cur.faulted.Store(true)
	}
}

func (s *Sim) view(db string) *viewedState {
	if s.cur == nil {
		return nil
	}
	return s.cur.views[db]
}

func (s *Sim) setView(db string, v *viewedState) {
	if s.cur == nil {
		return
	}
	if s.cur.views == nil {
		s.cur.views = map[string]*viewedState{}
	}
	s.cur.views[db] = v
}

// jitter returns a duration in [lo, hi) from the run's seeded source.
func (s *Sim) jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}
