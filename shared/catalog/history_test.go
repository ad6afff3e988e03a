package catalog_test

import (
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// Key versions of the week history: v1 until the rotation on Wednesday 2024-03-13, v2 after.
const (
	keyV1 = catalogtest.KeyV1
	keyV2 = "4d3c2b1a-0000-4000-8000-0000000000v2"
)

// builder appends backups the way the scheduler takes them, with parents set as Db2 records
// them: an incremental builds on the last full, a delta on the previous backup of its line.
// discard records an image Db2 wrote and keyguard discarded: Db2 builds on it all the same. With
// stale set, backups name the last image the catalog holds as usable instead (what a runner that
// trusts the catalog over Db2's history records, making chains that Db2 cannot restore).
type builder struct {
	db          string
	entries     []catalog.Entry
	keyVersion  string
	log         int
	scope       catalog.Scope
	tablespaces []string
	stale       bool
	dbLine      line
	tsLine      line
}

// line is where the next backups of one scope build on: in Db2's history (last, lastFull) and
// among the catalog's usable images (okLast, okLastFull).
type line struct {
	last, lastFull, okLast, okLastFull string
}

func (b *builder) line() *line {
	if b.scope == catalog.ScopeTablespace {
		return &b.tsLine
	}
	return &b.dbLine
}

func (b *builder) backup(at time.Time, typ events.BackupType, dur time.Duration, gib int64) catalog.Entry {
	return b.add(at, typ, dur, gib, "")
}

func (b *builder) discard(at time.Time, typ events.BackupType, dur time.Duration, reason string) catalog.Entry {
	return b.add(at, typ, dur, 1, reason)
}

func (b *builder) add(at time.Time, typ events.BackupType, dur time.Duration, gib int64, discarded string) catalog.Entry {
	ts := catalog.Timestamp(at)
	l := b.line()
	last, lastFull := l.last, l.lastFull
	if b.stale {
		last, lastFull = l.okLast, l.okLastFull
	}
	parent := ""
	switch typ {
	case events.Incremental:
		parent = lastFull
	case events.Delta:
		parent = last
	}
	e := catalogtest.Sample(b.db, ts, typ, parent)
	e.Scope = catalog.ScopeDatabase
	if b.scope == catalog.ScopeTablespace {
		e.Scope, e.Tablespaces = catalog.ScopeTablespace, b.tablespaces
	}
	e.EndedAt = at.Add(dur)
	e.Verification.At = e.EndedAt.Add(2 * time.Minute)
	e.Images[0].Size = gib << 30
	e.SizeBytes = gib << 30
	e.KeyVersion = b.keyVersion
	b.log += 3
	e.LogRange = catalog.LogRange{First: fmt.Sprintf("S%07d.LOG", b.log), Last: fmt.Sprintf("S%07d.LOG", b.log+1)}
	if discarded != "" {
		e = catalogtest.Discard(e, discarded)
	}
	b.entries = append(b.entries, e)
	l.last = ts
	if typ == events.Full {
		l.lastFull = ts
	}
	if discarded == "" {
		l.okLast = ts
		if typ == events.Full {
			l.okLastFull = ts
		}
	}
	return e
}

var weekStart = time.Date(2024, 3, 3, 0, 0, 0, 0, time.UTC) // a Sunday

// weekHistory is three weeks of one database: a full every Sunday at 01:00, an incremental on
// the other days at 01:00, deltas at 09:00 and 17:00. On Wednesday 2024-03-13 the root key
// rotates at 05:00 (v1 -> v2): the 09:00 delta is deferred by the rotation window and the 17:00
// slot takes a full under v2. On Tuesday 2024-03-19 the 09:00 delta fails (no entry).
func weekHistory() []catalog.Entry {
	b := &builder{db: "sales", keyVersion: keyV1, scope: catalog.ScopeDatabase}
	for d := range 21 {
		day := weekStart.AddDate(0, 0, d)
		if day.Weekday() == time.Sunday {
			b.backup(day.Add(time.Hour), events.Full, 45*time.Minute, 120)
		} else {
			b.backup(day.Add(time.Hour), events.Incremental, 12*time.Minute, 4*int64(day.Weekday()))
		}
		rotation := day.Equal(time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC))
		failed := day.Equal(time.Date(2024, 3, 19, 0, 0, 0, 0, time.UTC))
		if !rotation && !failed {
			b.backup(day.Add(9*time.Hour), events.Delta, 4*time.Minute, 2)
		}
		if rotation {
			b.keyVersion = keyV2
			b.backup(day.Add(17*time.Hour), events.Full, 45*time.Minute, 121)
			continue
		}
		b.backup(day.Add(17*time.Hour), events.Delta, 4*time.Minute, 2)
	}
	return b.entries
}

// without returns entries minus those with the given timestamps.
func without(entries []catalog.Entry, timestamps ...string) []catalog.Entry {
	drop := map[string]bool{}
	for _, ts := range timestamps {
		drop[ts] = true
	}
	var out []catalog.Entry
	for _, e := range entries {
		if !drop[e.ImageTimestamp] {
			out = append(out, e)
		}
	}
	return out
}
