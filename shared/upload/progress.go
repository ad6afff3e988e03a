package upload

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
)

// DefaultProgressEvery is how often a long Upload or Download logs its progress by default.
const DefaultProgressEvery = 30 * time.Second

// Progress counts the bytes of one transfer as they pass and reports how far it is, how fast it
// goes and when it should end. It is an io.Writer that counts what it is given (put it in an
// io.MultiWriter or an io.TeeReader). Safe concurrently: one goroutine writes, any may Report.
type Progress struct {
	total int64 // -1: unknown
	start time.Time
	n     atomic.Int64
}

// NewProgress starts counting a transfer of total bytes (-1 when unknown) that began at start.
func NewProgress(total int64, start time.Time) *Progress {
	if total < 0 {
		total = -1
	}
	return &Progress{total: total, start: start}
}

// Write counts len(b) bytes. It never fails.
func (p *Progress) Write(b []byte) (int, error) {
	p.n.Add(int64(len(b)))
	return len(b), nil
}

// Report is a snapshot of a Progress.
type Report struct {
	// Bytes moved so far, of Total (-1 when unknown).
	Bytes, Total int64
	Elapsed      time.Duration
	// Rate is the mean rate since the start, in bytes per second (0 before any time passed).
	Rate float64
	// ETA is the time left at Rate; -1 when unknown (no total, or nothing moved yet).
	ETA time.Duration
}

// Report returns the progress at now.
func (p *Progress) Report(now time.Time) Report {
	r := Report{Bytes: p.n.Load(), Total: p.total, Elapsed: max(now.Sub(p.start), 0), ETA: -1}
	if s := r.Elapsed.Seconds(); s > 0 {
		r.Rate = float64(r.Bytes) / s
	}
	if r.Total >= 0 && r.Rate > 0 {
		left := max(r.Total-r.Bytes, 0)
		r.ETA = time.Duration(float64(left) / r.Rate * float64(time.Second)).Round(time.Second)
	}
	return r
}

// Percent is Bytes of Total in percent, or -1 when the total is unknown.
func (r Report) Percent() float64 {
	switch {
	case r.Total < 0:
		return -1
	case r.Total == 0:
		return 100
	}
	return 100 * float64(r.Bytes) / float64(r.Total)
}

// String is one human line: "1.2 GiB of 2.6 GiB (46%), 85.0 MiB/s, 17s left".
func (r Report) String() string {
	s := Size(r.Bytes)
	if r.Total >= 0 {
		s += fmt.Sprintf(" of %s (%.0f%%)", Size(r.Total), r.Percent())
	}
	s += fmt.Sprintf(", %s/s", Size(int64(r.Rate)))
	if r.ETA >= 0 {
		s += fmt.Sprintf(", %s left", r.ETA)
	}
	return s
}

// Attrs are the report's log attributes: bytes, total, percent, rate and ETA in plain numbers.
func (r Report) Attrs() []any {
	a := []any{"bytes", r.Bytes}
	if r.Total >= 0 {
		a = append(a, "total", r.Total, "percent", int(r.Percent()))
	}
	a = append(a, "mib_per_s", float64(int(r.Rate/(1<<20)*10))/10)
	if r.ETA >= 0 {
		a = append(a, "eta_s", int(r.ETA.Seconds()))
	}
	return a
}

// Size formats n bytes in binary units ("14.0 MiB").
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// track counts a transfer and logs its progress at INFO every Options.ProgressEvery until the
// returned stop is called. Nothing is logged for a transfer shorter than one interval.
func (u *Uploader) track(op, key string, total int64) (*Progress, func()) {
	clk := clock.Or(u.opt.Clock)
	p := NewProgress(total, clk.Now())
	every := u.opt.ProgressEvery
	if every < 0 {
		return p, func() {}
	}
	var (
		mu      sync.Mutex
		timer   clock.Timer
		stopped bool
	)
	var tick func()
	tick = func() {
		r := p.Report(clk.Now())
		u.opt.Logger.Info(op+" progress", append([]any{"key", u.prefix + key}, r.Attrs()...)...)
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = clk.AfterFunc(every, tick)
		}
	}
	mu.Lock()
	timer = clk.AfterFunc(every, tick)
	mu.Unlock()
	return p, func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
	}
}
