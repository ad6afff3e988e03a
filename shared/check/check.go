// Package check says, per database, whether it is restorable now, in the manner of barman check
// and pgbackrest check: the age of the last good backup against the recovery point objective,
// the restorable full chains, the newest restorable point with every image present in COS at
// its size and every key version usable in Key Protect, the last drill, a rotation window open
// past its maximum, failures in a row, and whether ticks still arrive (dead man). Evaluate is a
// pure function of what Gather observed; Table, JSON and Nagios format the results. The operator
// command (keyguard check) and the scheduler (each tick, the checks its state answers) use it.
package check

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Level is a check's verdict, ordered by gravity; its value is the Nagios exit code.
type Level int

// Levels.
const (
	OK       Level = 0
	Warning  Level = 1
	Critical Level = 2
	Unknown  Level = 3
)

func (l Level) String() string {
	switch l {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	case Critical:
		return "CRITICAL"
	}
	return "UNKNOWN"
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Names of the checks, stable: alerts and tests match on them.
const (
	BackupAge    = "backup age"
	Chains       = "restorable chains"
	NewestPoint  = "newest restorable point"
	Drill        = "drill"
	Window       = "rotation window"
	Failures     = "failures in a row"
	Ticks        = "ticks"
	KeyState     = "key"
	CatalogCheck = "catalog"
	ArchivedLogs = "archived logs"
)

// Item is one check of one database.
type Item struct {
	Name    string `json:"name"`
	Level   Level  `json:"level"`
	Message string `json:"message"`
}

// Result is every check of one database; Level is the gravest.
type Result struct {
	Database string `json:"database"`
	Level    Level  `json:"level"`
	Items    []Item `json:"checks"`
	// NewestPoint is the end of the newest restorable image (zero: none).
	NewestPoint time.Time `json:"newest_restorable_point,omitzero"`
}

// Object is what the store said of one stored file.
type Object struct {
	Size    int64
	Missing bool
}

// Observation is what was gathered about one database. Fields left nil were not observed and
// the checks that need them are skipped (the scheduler observes only its state).
type Observation struct {
	DB    config.Database
	State *state.State
	// Listing is the catalog as read (nil: not read); CatalogErr a failure reading it.
	Listing    *catalog.Listing
	CatalogErr error
	// Objects holds what the store said of each file of the newest restorable chain, by key
	// (nil: not looked at).
	Objects map[string]Object
	// Keys says, by key CRN and version, why a key version is unusable ("" when usable); nil:
	// Key Protect was not asked.
	Keys map[[2]string]string
	// Heartbeat is the newest tick the scheduler recorded (zero: none recorded); Beats says
	// whether heartbeats were read at all.
	Heartbeat time.Time
	Beats     bool
	// Logs is the runner's last log chain report (nil: none written, or not read); LogsErr a
	// report that could not be read.
	Logs    *logchain.Report
	LogsErr error
	Now     time.Time
}

// DefaultTickInterval is the interval of the periodic timer when the policy does not say.
const DefaultTickInterval = 15 * time.Minute

// Thresholds are a database's check thresholds with the defaults filled in.
type Thresholds struct {
	MaxAge, DrillMaxAge, TickInterval time.Duration
	MinChains                         int
}

// ThresholdsOf returns db's thresholds: max_age defaults to the longest gap between two slots
// of its schedules plus its lease, min_chains to retention.keep_fulls, drill_max_age to twice
// the drill schedule's longest gap plus the lease, tick_interval to DefaultTickInterval. The
// gaps are measured once per distinct schedule (the scheduler asks for every database on every
// tick).
func ThresholdsOf(db config.Database) Thresholds {
	t := Thresholds{MaxAge: db.Check.MaxAge, MinChains: db.Check.MinChains, DrillMaxAge: db.Check.DrillMaxAge, TickInterval: db.Check.TickInterval}
	if t.TickInterval == 0 {
		t.TickInterval = DefaultTickInterval
	}
	if t.MinChains == 0 {
		t.MinChains = db.Retention.KeepFulls
	}
	if t.MaxAge == 0 {
		var key []string
		var scheds []cron.Schedule
		for _, typ := range []events.BackupType{events.Full, events.Incremental, events.Delta} {
			if s, ok := db.Schedule(typ); ok {
				scheds = append(scheds, s)
				key = append(key, db.Schedules[typ])
			}
		}
		t.MaxAge = gap(strings.Join(key, "|"), scheds) + db.Lease
	}
	if s, ok := db.DrillSchedule(); ok && t.DrillMaxAge == 0 {
		t.DrillMaxAge = 2*gap("drill|"+db.Drill.Cron, []cron.Schedule{s}) + db.Lease
	}
	return t
}

// gaps memoizes maxGap by schedule expressions; a fleet has a few distinct ones.
var gaps struct {
	sync.Mutex
	m map[string]time.Duration
}

// gapReference is the start of the weeks over which a schedule's gaps are measured (a Monday).
var gapReference = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func gap(key string, scheds []cron.Schedule) time.Duration {
	gaps.Lock()
	defer gaps.Unlock()
	if g, ok := gaps.m[key]; ok {
		return g
	}
	if gaps.m == nil || len(gaps.m) >= 4096 {
		gaps.m = map[string]time.Duration{}
	}
	g := maxGap(scheds, gapReference)
	gaps.m[key] = g
	return g
}

// maxGap is the longest time between consecutive slots of the union of scheds over the 35
// days after from (a month of weekly and monthly schedules); 24 h when there is none.
func maxGap(scheds []cron.Schedule, from time.Time) time.Duration {
	end := from.Add(35 * 24 * time.Hour)
	var slots []time.Time
	for _, s := range scheds {
		for t, i := s.Next(from), 0; !t.IsZero() && t.Before(end) && i < 10000; t, i = s.Next(t), i+1 {
			slots = append(slots, t)
		}
	}
	if len(slots) < 2 {
		return 24 * time.Hour
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(slots); i++ {
		gap = max(gap, slots[i].Sub(slots[i-1]))
	}
	return gap
}

// Evaluate judges one database from what was observed. Pure.
func Evaluate(o Observation) Result {
	r := Result{Database: o.DB.Name}
	th := ThresholdsOf(o.DB)
	add := func(name string, l Level, format string, args ...any) {
		r.Items = append(r.Items, Item{Name: name, Level: l, Message: fmt.Sprintf(format, args...)})
	}
	st := o.State
	age := func(t time.Time) string { return o.Now.Sub(t).Round(time.Minute).String() }

	// The last good backup, from the state or the catalog, whichever is newer.
	var last time.Time
	if st != nil && st.LastSuccess != nil {
		last = st.LastSuccess.At
	}
	if o.Listing != nil {
		for _, e := range o.Listing.Entries {
			if !e.IsDiscarded() && e.EndedAt.After(last) {
				last = e.EndedAt
			}
		}
	}
	switch {
	case last.IsZero() && o.Listing == nil:
		add(BackupAge, Warning, "no good backup recorded in the state")
	case last.IsZero():
		add(BackupAge, Critical, "no good backup recorded")
	case o.Now.Sub(last) > 2*th.MaxAge:
		add(BackupAge, Critical, "last good backup %s ago, more than twice max_age %s", age(last), th.MaxAge)
	case o.Now.Sub(last) > th.MaxAge:
		add(BackupAge, Warning, "last good backup %s ago, more than max_age %s", age(last), th.MaxAge)
	default:
		add(BackupAge, OK, "last good backup %s ago (max_age %s)", age(last), th.MaxAge)
	}

	if o.CatalogErr != nil {
		add(CatalogCheck, Unknown, "catalog not readable: %v", o.CatalogErr)
	} else if o.Listing != nil {
		if n := len(o.Listing.Skipped); n > 0 {
			add(CatalogCheck, Warning, "%d catalog object(s) unreadable, first %s: %s", n, o.Listing.Skipped[0].Key, o.Listing.Skipped[0].Reason)
		}
		chains(o, th, &r, add)
	}

	archivedLogs(o, th, add)

	if o.DB.Drill != nil {
		switch d := st; {
		case d == nil || d.LastDrill == nil:
			add(Drill, Warning, "no drill recorded yet (drill %q into %s)", o.DB.Drill.Cron, o.DB.Drill.Target)
		case !d.LastDrill.Success:
			add(Drill, Critical, "last drill %s failed %s ago (%s): its restore record in the catalog says why", d.LastDrill.ID, age(d.LastDrill.At), d.LastDrill.Code)
		case o.Now.Sub(d.LastDrill.At) > th.DrillMaxAge:
			add(Drill, Warning, "last drill %s ago, more than %s (restored in %.3fs)", age(d.LastDrill.At), th.DrillMaxAge, d.LastDrill.Seconds)
		default:
			add(Drill, OK, "last drill %s ago restored in %.3fs", age(d.LastDrill.At), d.LastDrill.Seconds)
		}
	}
	if st != nil {
		switch w := st.Window; {
		case w != nil && o.Now.After(w.MaxCloseAt.Add(th.TickInterval)):
			add(Window, Critical, "rotation window to key version %s open since %s, past its maximum %s", orText(w.ToVersion, "(unknown)"),
				w.OpenedAt.UTC().Format(time.RFC3339), w.MaxCloseAt.UTC().Format(time.RFC3339))
		case w != nil:
			add(Window, OK, "rotation window open until at most %s", w.MaxCloseAt.UTC().Format(time.RFC3339))
		}
		switch n := st.ConsecutiveFailures; {
		case n >= o.DB.Retry.MaxAttempts:
			add(Failures, Critical, "%d backups failed in a row (retries exhausted at %d)", n, o.DB.Retry.MaxAttempts)
		case n >= o.DB.AlertThreshold:
			add(Failures, Warning, "%d backups failed in a row", n)
		case n > 0:
			add(Failures, OK, "%d backup failed, retry planned", n)
		}
		if st.Key.Blocked {
			add(KeyState, Critical, "key %s is %s: backups are blocked", st.Key.CRN, st.Key.State)
		}
	}
	if o.Beats {
		switch {
		case o.Heartbeat.IsZero():
			add(Ticks, Critical, "no tick recorded: the scheduler never ran, or its heartbeats are gone")
		case o.Now.Sub(o.Heartbeat) > 2*th.TickInterval:
			add(Ticks, Critical, "the newest tick is %s old, more than two tick intervals (%s): the scheduler has stopped", age(o.Heartbeat), 2*th.TickInterval)
		default:
			add(Ticks, OK, "the newest tick is %s old", age(o.Heartbeat))
		}
	}
	for _, it := range r.Items {
		r.Level = max(r.Level, it.Level)
	}
	return r
}

// archivedLogs judges the runner's last log chain check: a file missing inside the restorable
// range is critical (a restore across it fails), an archive log_archive points at that could
// not be listed, or whose newest file is older than max_age (archiving stalled), warns; the
// newest archived log's age is reported either way.
func archivedLogs(o Observation, th Thresholds, add func(string, Level, string, ...any)) {
	switch {
	case o.LogsErr != nil:
		add(ArchivedLogs, Warning, "log chain report not readable: %v", o.LogsErr)
		return
	case o.Logs == nil:
		return
	}
	r := *o.Logs
	newest := "no archived log"
	if r.Newest >= 0 {
		newest = "newest archived log " + logchain.Name(r.Newest)
		if !r.NewestAt.IsZero() {
			newest += fmt.Sprintf(" written %s ago", o.Now.Sub(r.NewestAt).Round(time.Minute))
		}
	}
	checked := fmt.Sprintf("checked %s ago", o.Now.Sub(r.CheckedAt).Round(time.Minute))
	deleter := ""
	if r.Deleter == "db2" {
		deleter = "; AUTO_DEL_REC_OBJ is ON: Db2 deletes archived logs"
	}
	// An archive the policy does not point at (LOGARCHMETH1's DISK path, which may be on the Db2
	// host only) not being listable is said, not warned about; one it points at is warned about.
	configured := o.DB.LogArchive.Dir != "" || o.DB.LogArchive.COSPrefix != "" || o.DB.LogArchive.Prune
	switch {
	case r.Error != "" && !configured:
		add(ArchivedLogs, OK, "archived logs not checked: archive %s not listed where the runner runs (%s): %s; set log_archive to check them", r.Archive, checked, r.Error)
	case r.Error != "":
		add(ArchivedLogs, Warning, "archive %s not listed (%s): %s", r.Archive, checked, r.Error)
	case r.Broken:
		var gaps []string
		for _, g := range r.Gaps {
			if g.Kind == logchain.Missing {
				gaps = append(gaps, g.String())
			}
		}
		add(ArchivedLogs, Critical, "gap in the restorable range (from %s): %s; %s (%s)%s", logchain.Name(max(r.From, 0)), strings.Join(gaps, ", "), newest, checked, deleter)
	case r.Newest >= 0 && !r.NewestAt.IsZero() && o.Now.Sub(r.NewestAt) > th.MaxAge:
		add(ArchivedLogs, Warning, "%s, more than max_age %s: is archiving stalled? (%s)%s", newest, th.MaxAge, checked, deleter)
	default:
		add(ArchivedLogs, OK, "%s; %d files, no gap (%s)%s", newest, r.Files, checked, deleter)
	}
}

// chains checks the restorable full chains and the newest restorable point.
func chains(o Observation, th Thresholds, r *Result, add func(string, Level, string, ...any)) {
	entries := o.Listing.Entries
	n := 0
	for _, e := range entries {
		if e.Type != events.Full || e.Scope != catalog.ScopeDatabase || e.IsDiscarded() {
			continue
		}
		if _, err := catalog.Chain(entries, e.ImageTimestamp); err == nil {
			n++
		}
	}
	switch {
	case n == 0:
		add(Chains, Critical, "no restorable full chain")
	case n < th.MinChains:
		add(Chains, Warning, "%d restorable full chain(s), fewer than %d", n, th.MinChains)
	default:
		add(Chains, OK, "%d restorable full chain(s)", n)
	}
	plan, err := catalog.PlanRestore(entries, time.Time{}, nil)
	if err != nil {
		add(NewestPoint, Critical, "nothing restorable: %v", err)
		return
	}
	target := plan.Images[len(plan.Images)-1]
	r.NewestPoint = target.EndedAt
	var bad []string
	checked := o.Objects != nil
	for _, e := range plan.Images {
		files := slices.Clone(e.Images)
		if e.Keystore != nil {
			files = append(files, *e.Keystore)
		}
		for _, f := range files {
			if f.External() || !checked {
				continue
			}
			switch got, ok := o.Objects[f.Key]; {
			case !ok || got.Missing:
				bad = append(bad, fmt.Sprintf("%s of %s is missing from COS", f.Key, e.Name()))
			case f.Size > 0 && got.Size != f.Size:
				bad = append(bad, fmt.Sprintf("%s of %s is %d bytes in COS, the catalog says %d", f.Key, e.Name(), got.Size, f.Size))
			}
		}
		if o.Keys != nil {
			if why, ok := o.Keys[[2]string{e.KeyCRN, e.KeyVersion}]; !ok || why != "" {
				bad = append(bad, fmt.Sprintf("key version %s of %s (needed by %s) is unusable: %s", orText(e.KeyVersion, "(unrecorded)"), e.KeyCRN, e.Name(), orText(why, "not checked")))
			}
		}
	}
	at := target.EndedAt.UTC().Format(time.RFC3339)
	switch {
	case len(bad) > 0:
		add(NewestPoint, Critical, "%s (image %s) cannot be restored: %s", at, plan.Target, strings.Join(bad, "; "))
	case checked && o.Keys != nil:
		add(NewestPoint, OK, "%s (image %s, %d image(s)): every image in COS at its size, every key version usable", at, plan.Target, len(plan.Images))
	case checked:
		add(NewestPoint, OK, "%s (image %s, %d image(s)): every image in COS at its size; key versions not checked (Key Protect not configured)", at, plan.Target, len(plan.Images))
	default:
		add(NewestPoint, OK, "%s (image %s, %d image(s)); COS and Key Protect not asked", at, plan.Target, len(plan.Images))
	}
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// Worst is the gravest level of results (OK for none).
func Worst(results []Result) Level {
	l := OK
	for _, r := range results {
		l = max(l, r.Level)
	}
	return l
}

// Critical returns r's critical checks, sorted by name.
func (r Result) Critical() []Item {
	var out []Item
	for _, it := range r.Items {
		if it.Level == Critical {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b Item) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AlertsElsewhere are the checks whose causes alert through their own path (a failed drill,
// failures at the alert threshold, a key that is not active): the scheduler does not alert
// on them twice.
var AlertsElsewhere = []string{Drill, Failures, KeyState}
