package sim

import (
	"slices"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// The baseline: the cron script of shared/requirements/01-rotation-aware-backup-script.txt,
// played over the same trace. Each schedule line of a database is a cron entry (all of them
// skipping the first three days of January, April, July and October, the "immediate
// workaround"); each run of the script
//
//   - asks Key Protect for lastRotateDate (when the call fails the variable is empty and the
//     comparison is false: the script goes on);
//   - exits 0 (the backup is skipped; nobody is told) when the key rotated after the last
//     successful backup and less than ROTATION_WAIT_HOURS ago: 4 h, 8 h for databases above
//     1 TiB;
//   - runs `db2 backup`, up to 3 attempts, sleeping 30, then 60 minutes after a failure;
//   - writes the date of a success to its file. It verifies nothing (an image Db2 wrote but
//     that would fail verification counts as a success), keeps no catalog, prunes nothing and
//     alerts nobody.
//
// A backup attempt does what the trace says it does at that minute: it fails while the
// database re-wraps its keys, during a configuration episode, or by the luck of the draw; a hung
// backup is killed after jobMaxTime.

type cronDB struct {
	attempts, failures, rewrapFail  int
	skippedRotation, skippedQuarter int
	// missedAlerts counts the streaks of consecutive failures that reached the alert threshold
	// (2): each deserved an alert, and the script raises none.
	missedAlerts int
	images       []cronImage
}

type cronImage struct {
	start, end time.Time
	typ        events.BackupType
	bad        bool // Db2 wrote it, but it would not verify
	restorable bool
}

// quarterSkip reports whether the cron lines of the requirement skip t: days 1-3 of the first
// month of a quarter.
func quarterSkip(t time.Time) bool {
	switch t.Month() {
	case time.January, time.April, time.July, time.October:
		return t.Day() <= 3
	}
	return false
}

type fire struct {
	at  time.Time
	typ events.BackupType
}

// runCron plays the script for every database of the trace.
func runCron(tr *Trace) map[string]*cronDB {
	out := map[string]*cronDB{}
	for _, d := range tr.DBs {
		pol, _ := tr.Fleet.Database(d.Name)
		var fires []fire
		for _, t := range []events.BackupType{events.Full, events.Incremental, events.Delta} {
			sched, ok := pol.Schedule(t)
			if !ok {
				continue
			}
			for x := sched.Next(tr.Start.Add(-time.Second)); x.Before(tr.End); x = sched.Next(x) {
				fires = append(fires, fire{x, t})
			}
		}
		slices.SortFunc(fires, func(a, b fire) int { return a.at.Compare(b.at) })
		wait := 4 * time.Hour
		if d.Size > tib {
			wait = 8 * time.Hour
		}
		c := &cronDB{}
		var lastSuccess time.Time
		streak := 0
		for _, f := range fires {
			if quarterSkip(f.at) {
				c.skippedQuarter++
				continue
			}
			kpAnswered := !tr.KPOutages.at(f.at) && hash01(tr.Seed, "cron-kp", d.Name, f.at.Unix()) >= tr.P.KP429
			if kpAnswered && !lastSuccess.IsZero() {
				if lr := d.Key.lastRotated(f.at); lr.After(lastSuccess) && f.at.Sub(lr) < wait {
					c.skippedRotation++
					continue
				}
			}
			at := f.at
			for a := 1; a <= 3; a++ {
				att := tr.Attempt(d, f.typ, at)
				c.attempts++
				if att.Rewrap {
					c.rewrapFail++
				}
				end := at.Add(att.Duration)
				if !att.Hang && (att.Class == "" || att.Discard) {
					c.images = append(c.images, cronImage{start: at, end: end, typ: f.typ, bad: att.Discard})
					lastSuccess, streak = end, 0
					break
				}
				c.failures++
				if streak++; streak == 2 {
					c.missedAlerts++
				}
				at = end.Add(time.Duration(a) * 30 * time.Minute)
			}
		}
		// Restorability, as Db2 builds images: an incremental on the latest full before it, a
		// delta on the latest image; an image is restorable when it is good and so is its base.
		slices.SortStableFunc(c.images, func(a, b cronImage) int { return a.start.Compare(b.start) })
		lastFull, last := -1, -1
		for i := range c.images {
			im := &c.images[i]
			base := -1
			switch im.typ {
			case events.Incremental:
				base = lastFull
			case events.Delta:
				base = last
			}
			im.restorable = !im.bad && (im.typ == events.Full || (base >= 0 && c.images[base].restorable))
			if im.typ == events.Full {
				lastFull = i
			}
			last = i
		}
		out[d.Name] = c
	}
	return out
}
