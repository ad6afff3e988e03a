package sim

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
)

// Report is what one run did: its violations and, side by side, what keyguard and the cron
// script achieved over the same year.
type Report struct {
	Seed       uint64      `json:"seed"`
	Days       int         `json:"days"`
	Databases  int         `json:"databases"`
	Faults     string      `json:"faults"`
	Tick       string      `json:"tick"`
	Start      time.Time   `json:"start"`
	End        time.Time   `json:"end"`
	WallSecs   float64     `json:"wall_seconds"`
	Steps      int64       `json:"steps"`
	Digest     string      `json:"digest"`
	Violations []Violation `json:"violations"`
	// Stopped is true when the run stopped at its first violation.
	Stopped  bool     `json:"stopped"`
	Keyguard Totals   `json:"keyguard"`
	Cron     Totals   `json:"cron_script"`
	Platform Platform `json:"platform"`
	PerDB    []DBRow  `json:"databases_detail"`

	timelines []timeline
}

// Totals add a model's figures over the fleet.
type Totals struct {
	SlotsDue int `json:"slots_due"`
	// Taken are the usable images (cataloged, not discarded; for the script, every image it
	// believed good, Unusable of them would not verify).
	Taken    int `json:"backups_taken"`
	Unusable int `json:"unusable_images_counted_good"`
	Attempts int `json:"attempts"`
	Failed   int `json:"attempts_failed"`
	// FailedRewrap are the attempts that failed because the database was re-wrapping its keys.
	FailedRewrap int `json:"failed_during_rewrap"`
	// Lost are the slots after which no usable backup began before the next slot.
	Lost int `json:"slots_lost"`
	// Worst and P99 are the largest of the databases' worst and 99th-percentile RPO (hourly
	// samples of the age of the newest restorable point), in hours; P99Median the median
	// database's 99th percentile.
	WorstRPO     float64 `json:"worst_rpo_hours"`
	P99RPO       float64 `json:"p99_rpo_hours"`
	P99RPOMedian float64 `json:"p99_rpo_median_db_hours"`
	AlertsRaised int     `json:"alerts_raised"`
	// AlertsMissed are alerts raised and never delivered (keyguard) or failure streaks that
	// reached the alert threshold and told nobody (the script).
	AlertsMissed int `json:"alerts_missed"`
	// RestorableAtEnd are the restorable images that ended within each database's
	// point-in-time window (keep_days) before the end of the run.
	RestorableAtEnd int `json:"restorable_points_at_end"`
	SkippedRotation int `json:"skipped_rotation_wait,omitempty"`
	SkippedQuarter  int `json:"skipped_quarter_start,omitempty"`
}

// Platform counts what the platform did to keyguard.
type Platform struct {
	Rotations         int `json:"key_rotations"`
	TicksLost         int `json:"ticks_lost_en_outage"`
	NotificationsLost int `json:"notifications_lost"`
	Crashes           int `json:"crashes"`
	Invocations       int `json:"invocations"`
	Restores          int `json:"restores"`
	RestoresFailed    int `json:"restores_failed"`
	Deletes           int `json:"operator_deletes"`
	COSOutages        int `json:"cos_outages"`
	KPOutages         int `json:"kp_outages"`
	ENOutages         int `json:"en_outages"`
}

// DBRow is one database's figures.
type DBRow struct {
	Name     string   `json:"name"`
	SizeGiB  int64    `json:"size_gib"`
	Schedule string   `json:"schedule"`
	Keyguard ModelRow `json:"keyguard"`
	Cron     ModelRow `json:"cron_script"`
}

// ModelRow is one model's figures for one database.
type ModelRow struct {
	SlotsDue        int     `json:"slots_due"`
	Taken           int     `json:"backups_taken"`
	FailedRewrap    int     `json:"failed_during_rewrap"`
	Lost            int     `json:"slots_lost"`
	WorstRPO        float64 `json:"worst_rpo_hours"`
	P99RPO          float64 `json:"p99_rpo_hours"`
	AlertsRaised    int     `json:"alerts_raised"`
	AlertsMissed    int     `json:"alerts_missed"`
	RestorableAtEnd int     `json:"restorable_points_at_end"`
}

// keepWindow is how far back "restorable points at the end" count for a database: its
// point-in-time window, keep_days (14 days when it has none).
func keepWindow(days int) time.Duration {
	if days <= 0 {
		days = 14
	}
	return time.Duration(days) * 24 * time.Hour
}

func (s *Sim) report(wall time.Duration) *Report {
	tr := s.tr
	r := &Report{Seed: s.o.Seed, Days: s.o.Days, Databases: s.o.Databases, Faults: s.p.Name, Tick: s.o.Tick.String(), Start: tr.Start, End: tr.End,
		WallSecs: wall.Seconds(), Steps: s.steps, Digest: s.Digest(), Violations: s.violations, Stopped: s.stopped}
	if r.Violations == nil {
		r.Violations = []Violation{}
	}
	for _, k := range tr.Keys {
		r.Platform.Rotations += k.latest(tr.End)
	}
	r.Platform.TicksLost, r.Platform.NotificationsLost, r.Platform.Crashes = s.m.ticksLost, s.m.enLost, s.m.crashes
	r.Platform.Invocations, r.Platform.Restores, r.Platform.Deletes = s.m.invocations, s.m.restores, s.m.deletes
	r.Platform.RestoresFailed = s.m.restoresFailed
	r.Platform.COSOutages, r.Platform.KPOutages, r.Platform.ENOutages = len(tr.COSOutages), len(tr.KPOutages), len(tr.ENOutages)
	cron := runCron(tr)
	end := s.now()
	var kgP99, cronP99 []float64
	for _, name := range s.names {
		d := s.or.dbs[name]
		c := cron[name]
		slots := slotTimes(d.pol, tr.Start, end)
		row := DBRow{Name: name, SizeGiB: d.tr.Size / gib, Schedule: schedule(d.pol.Schedules)}
		// keyguard
		kg := ModelRow{SlotsDue: len(slots), Taken: len(d.taken), FailedRewrap: d.rewrapFail}
		kg.Lost = lostSlots(slots, d.taken, end)
		kg.WorstRPO, kg.P99RPO = rpo(tr.Start, end, d.restorable)
		for _, id := range sortedKeys(s.or.alerts) {
			a := s.or.alerts[id]
			if a.db != name {
				continue
			}
			kg.AlertsRaised++
			if !a.sent && !a.coalesced {
				kg.AlertsMissed++
			}
		}
		list := d.list()
		for _, e := range list {
			if e.IsDiscarded() || e.EndedAt.Before(end.Add(-keepWindow(d.pol.Retention.KeepDays))) {
				continue
			}
			if _, err := catalog.Chain(list, e.ImageTimestamp); err == nil {
				kg.RestorableAtEnd++
			}
		}
		// the script
		var taken, good []time.Time
		unusable := 0
		for _, im := range c.images {
			if im.start.After(end) {
				continue
			}
			if im.bad {
				unusable++
				continue
			}
			taken = append(taken, im.start)
			if im.restorable && !im.end.After(end) {
				good = append(good, im.end)
			}
		}
		slices.SortFunc(good, func(a, b time.Time) int { return a.Compare(b) })
		cr := ModelRow{SlotsDue: len(slots), Taken: len(taken), FailedRewrap: c.rewrapFail, Lost: lostSlots(slots, taken, end), AlertsMissed: c.missedAlerts}
		cr.WorstRPO, cr.P99RPO = rpo(tr.Start, end, good)
		for _, g := range good {
			if !g.Before(end.Add(-keepWindow(d.pol.Retention.KeepDays))) {
				cr.RestorableAtEnd++
			}
		}
		row.Keyguard, row.Cron = kg, cr
		r.PerDB = append(r.PerDB, row)
		add(&r.Keyguard, kg)
		add(&r.Cron, cr)
		r.Keyguard.Attempts += d.attempts
		r.Keyguard.Failed += d.failures
		r.Cron.Attempts += c.attempts
		r.Cron.Failed += c.failures
		r.Cron.Unusable += unusable
		r.Cron.SkippedRotation += c.skippedRotation
		r.Cron.SkippedQuarter += c.skippedQuarter
		kgP99 = append(kgP99, kg.P99RPO)
		cronP99 = append(cronP99, cr.P99RPO)
		r.timelines = append(r.timelines, s.timeline(name, c))
	}
	r.Keyguard.P99RPOMedian, r.Cron.P99RPOMedian = median(kgP99), median(cronP99)
	return r
}

func add(t *Totals, m ModelRow) {
	t.SlotsDue += m.SlotsDue
	t.Taken += m.Taken
	t.FailedRewrap += m.FailedRewrap
	t.Lost += m.Lost
	t.WorstRPO = math.Max(t.WorstRPO, m.WorstRPO)
	t.P99RPO = math.Max(t.P99RPO, m.P99RPO)
	t.AlertsRaised += m.AlertsRaised
	t.AlertsMissed += m.AlertsMissed
	t.RestorableAtEnd += m.RestorableAtEnd
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[len(s)/2]
}

func schedule(m map[events.BackupType]string) string {
	var parts []string
	for _, t := range []events.BackupType{events.Full, events.Incremental, events.Delta} {
		if x, ok := m[t]; ok {
			parts = append(parts, fmt.Sprintf("%s %q", t, x))
		}
	}
	return strings.Join(parts, ", ")
}

// lostSlots counts the slots after which no backup in taken began before the next slot.
func lostSlots(slots, taken []time.Time, end time.Time) int {
	sorted := slices.Clone(taken)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	lost := 0
	for i, s := range slots {
		next := end
		if i+1 < len(slots) {
			next = slots[i+1]
		}
		j := sort.Search(len(sorted), func(k int) bool { return !sorted[k].Before(s) })
		if j == len(sorted) || !sorted[j].Before(next) {
			lost++
		}
	}
	return lost
}

// rpo samples hourly, from the end of the warm-up, the age of the newest restorable point (ends
// sorted) and returns the worst and the 99th percentile, in hours.
func rpo(start, end time.Time, ends []time.Time) (worst, p99 float64) {
	var ages []float64
	j := -1
	for h := start.Add(rpoWarmup); !h.After(end); h = h.Add(time.Hour) {
		for j+1 < len(ends) && !ends[j+1].After(h) {
			j++
		}
		last := start
		if j >= 0 {
			last = ends[j]
		}
		ages = append(ages, h.Sub(last).Hours())
	}
	if len(ages) == 0 {
		return 0, 0
	}
	sort.Float64s(ages)
	return ages[len(ages)-1], ages[int(math.Ceil(0.99*float64(len(ages))))-1]
}

// WriteText writes the report as text: the run, its violations, the side-by-side table and the
// per-database table.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "keyguard simulate: seed %d, %d databases, %d days from %s, faults %s, tick %s\n", r.Seed, r.Databases, r.Days,
		r.Start.Format("2006-01-02"), r.Faults, r.Tick)
	p := r.Platform
	fmt.Fprintf(w, "platform: %d key rotations, COS/Key Protect/Event Notifications outages %d/%d/%d, %d ticks lost, %d notifications lost, %d crashes, %d restores (%d failed), %d operator deletes\n",
		p.Rotations, p.COSOutages, p.KPOutages, p.ENOutages, p.TicksLost, p.NotificationsLost, p.Crashes, p.Restores, p.RestoresFailed, p.Deletes)
	fmt.Fprintf(w, "%d steps in %.1fs; digest %s\n", r.Steps, r.WallSecs, r.Digest[:16])
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "invariants: all held")
	} else {
		fmt.Fprintf(w, "invariants: %d violation(s)\n", len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintln(w, "  "+v.String())
		}
		if r.Stopped {
			fmt.Fprintln(w, "  (stopped at the first violation; the figures below cover the run up to it)")
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	k, c := r.Keyguard, r.Cron
	rows := []struct {
		name string
		k, c string
	}{
		{"slots due", fmt.Sprint(k.SlotsDue), fmt.Sprint(c.SlotsDue)},
		{"backups taken (usable)", fmt.Sprint(k.Taken), fmt.Sprint(c.Taken)},
		{"unusable images counted good", fmt.Sprint(k.Unusable), fmt.Sprint(c.Unusable)},
		{"backup attempts", fmt.Sprint(k.Attempts), fmt.Sprint(c.Attempts)},
		{"attempts failed", fmt.Sprint(k.Failed), fmt.Sprint(c.Failed)},
		{"attempts failed during re-wrap", fmt.Sprint(k.FailedRewrap), fmt.Sprint(c.FailedRewrap)},
		{"slots lost (no backup before the next slot)", fmt.Sprint(k.Lost), fmt.Sprint(c.Lost)},
		{"  skipped: rotation wait / quarter start", "-", fmt.Sprintf("%d / %d", c.SkippedRotation, c.SkippedQuarter)},
		{"worst RPO, worst database (h)", hours1(k.WorstRPO), hours1(c.WorstRPO)},
		{"p99 RPO, worst database (h)", hours1(k.P99RPO), hours1(c.P99RPO)},
		{"p99 RPO, median database (h)", hours1(k.P99RPOMedian), hours1(c.P99RPOMedian)},
		{"alerts raised", fmt.Sprint(k.AlertsRaised), fmt.Sprint(c.AlertsRaised)},
		{"alerts missed", fmt.Sprint(k.AlertsMissed), fmt.Sprint(c.AlertsMissed)},
		{"restorable points in keep_days at the end", fmt.Sprint(k.RestorableAtEnd), fmt.Sprint(c.RestorableAtEnd)},
	}
	fmt.Fprintln(tw, "\tkeyguard\tcron script\t")
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", x.name, x.k, x.c)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "database\tGiB\tslots\ttaken kg/cron\tre-wrap fails kg/cron\tlost kg/cron\tworst RPO h kg/cron\tp99 RPO h kg/cron\talerts kg/missed cron\trestorable kg/cron\t")
	for _, d := range r.PerDB {
		k, c := d.Keyguard, d.Cron
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%d/%d\t%d/%d\t%s/%s\t%s/%s\t%d/%d\t%d/%d\t\n", d.Name, d.SizeGiB, k.SlotsDue, k.Taken, c.Taken, k.FailedRewrap,
			c.FailedRewrap, k.Lost, c.Lost, hours1(k.WorstRPO), hours1(c.WorstRPO), hours1(k.P99RPO), hours1(c.P99RPO), k.AlertsRaised, c.AlertsMissed,
			k.RestorableAtEnd, c.RestorableAtEnd)
	}
	return tw.Flush()
}

func hours1(h float64) string { return fmt.Sprintf("%.1f", h) }
