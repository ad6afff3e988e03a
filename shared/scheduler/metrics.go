package scheduler

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// metrics are the figures this scheduler instance saw, per database, as of the last tick that
// decided it: what keyguard check says, in Prometheus form. An instance knows the databases of
// the deliveries it handled (scaled-out instances each serve their shards).
type metrics struct {
	reg       *prometheus.Registry
	backups   *prometheus.CounterVec
	deferrals *prometheus.CounterVec

	mu  sync.Mutex
	dbs map[string]figures
}

// figures are one database's gauges.
type figures struct {
	lastSuccess  time.Time
	failures     int
	window       bool
	drillAt      time.Time
	drillOK      bool
	drillSeconds float64
	seen         time.Time
}

var (
	descLastSuccess  = prometheus.NewDesc("keyguard_last_success_timestamp_seconds", "End of the last successful backup (Unix time).", []string{"database"}, nil)
	descPointAge     = prometheus.NewDesc("keyguard_restorable_point_age_seconds", "Age of the newest restorable point (the last successful backup) at the last tick.", []string{"database"}, nil)
	descFailures     = prometheus.NewDesc("keyguard_consecutive_failures", "Backups failed in a row.", []string{"database"}, nil)
	descWindow       = prometheus.NewDesc("keyguard_rotation_window_open", "1 while a key rotation window holds backups.", []string{"database"}, nil)
	descDrillOK      = prometheus.NewDesc("keyguard_last_drill_success", "1 when the last restore drill succeeded, 0 when it failed.", []string{"database"}, nil)
	descDrillSeconds = prometheus.NewDesc("keyguard_last_drill_duration_seconds", "Measured restore time (RTO) of the last restore drill.", []string{"database"}, nil)
	descDrillAt      = prometheus.NewDesc("keyguard_last_drill_timestamp_seconds", "End of the last restore drill (Unix time).", []string{"database"}, nil)
	descTick         = prometheus.NewDesc("keyguard_last_tick_timestamp_seconds", "When this instance last decided the database (Unix time).", []string{"database"}, nil)
)

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), dbs: map[string]figures{},
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyguard_backups_started_total", Help: "Backups started, by type."},
			[]string{"database", "type"}),
		deferrals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyguard_deferrals_total", Help: "Backups deferred, by reason (counted when the reason changes)."},
			[]string{"database", "reason"}),
	}
	m.reg.MustRegister(m, m.backups, m.deferrals)
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLastSuccess, descPointAge, descFailures, descWindow, descDrillOK, descDrillSeconds, descDrillAt, descTick} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := func(d *prometheus.Desc, v float64, db string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, db)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for db, f := range m.dbs {
		if !f.lastSuccess.IsZero() {
			g(descLastSuccess, float64(f.lastSuccess.Unix()), db)
			g(descPointAge, f.seen.Sub(f.lastSuccess).Seconds(), db)
		}
		g(descFailures, float64(f.failures), db)
		g(descWindow, b(f.window), db)
		if !f.drillAt.IsZero() {
			g(descDrillOK, b(f.drillOK), db)
			g(descDrillSeconds, f.drillSeconds, db)
			g(descDrillAt, float64(f.drillAt.Unix()), db)
		}
		g(descTick, float64(f.seen.Unix()), db)
	}
}

// observe records what a tick decided for db: before is the state as read, after as written.
func (m *metrics) observe(db string, before, after *state.State, res policy.TickResult, now time.Time) {
	if after == nil {
		return
	}
	f := figures{failures: after.ConsecutiveFailures, window: after.Window != nil, seen: now}
	if after.LastSuccess != nil {
		f.lastSuccess = after.LastSuccess.At
	}
	if d := after.LastDrill; d != nil {
		f.drillAt, f.drillOK, f.drillSeconds = d.At, d.Success, d.Seconds
	}
	m.mu.Lock()
	m.dbs[db] = f
	m.mu.Unlock()
	if res.Start != nil {
		m.backups.WithLabelValues(db, string(res.Start.Type)).Inc()
	}
	d := res.Decision
	if d.Action == policy.Defer && (before == nil || before.LastDecision == nil || before.LastDecision.Reason != d.Reason) {
		m.deferrals.WithLabelValues(db, deferReason(d.Reason)).Inc()
	}
}

// deferReason is the stable part of a deferral's reason (policy's Reason constants).
func deferReason(r string) string {
	for _, known := range []string{policy.ReasonRotationWindow, policy.ReasonRunInFlight, policy.ReasonBackoff, policy.ReasonKeyNotActive, policy.ReasonRestoreInFlight} {
		if strings.HasPrefix(r, known) {
			return known
		}
	}
	return "other"
}

// MetricsHandler serves the Prometheus exposition of this scheduler's figures (edge.Mux serves
// it on GET /metrics, behind the bearer token).
func (s *Scheduler) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.figures().reg, promhttp.HandlerOpts{})
}

func (s *Scheduler) figures() *metrics {
	s.metricsOnce.Do(func() { s.metrics = newMetrics() })
	return s.metrics
}
