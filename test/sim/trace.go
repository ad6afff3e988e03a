package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
)

// Trace is one seed's world, drawn before anything runs and shared by keyguard and the cron
// script: the fleet, every key rotation and how long each database takes to re-wrap, the
// outages of COS, Key Protect and Event Notifications, the episodes during which a database's
// backups fail, and what operators do. What one backup attempt does is a pure function of the
// trace, the database and the minute it starts (Attempt), so both models meet the same faults.
type Trace struct {
	Seed       uint64
	Start, End time.Time
	P          Profile
	Fleet      *config.Fleet
	FleetYAML  string
	DBs        []*DBTrace // by name
	Keys       []*KeyTrace
	byName     map[string]*DBTrace
	byKey      map[string]*KeyTrace

	COSOutages, COSBursts, KPOutages, ENOutages spans
	Ops                                         []OpAction
}

// DBTrace is one database of the scenario.
type DBTrace struct {
	Name     string
	Size     int64 // bytes
	Key      *KeyTrace
	Instance string
	// Config are the episodes during which every backup fails for want of configuration (log
	// archive or backup disk full).
	Config spans
	// rewrapEnd[k] is when the database has re-wrapped its keys to version k of its key
	// (registered in Key Protect); never for a rotation overtaken by the next before it ended.
	rewrapEnd []time.Time
}

// KeyTrace is one root key: its rotations (version k+1 made at Rotations[k]) and suspensions.
type KeyTrace struct {
	CRN       string
	ID        string
	Created   time.Time
	Rotations []Rotation
	Suspended spans
	DBs       []*DBTrace
}

// Rotation is one rotation of a key.
type Rotation struct {
	At     time.Time
	Manual bool
	// CloudLogs is when the Cloud Logs alert on it reaches Event Notifications (zero: none);
	// NoVersion when the alert does not carry the new version.
	CloudLogs time.Time
	NoVersion bool
}

// OpAction is an operator's action.
type OpAction struct {
	At   time.Time
	Kind string // request, restore, delete
	DB   string
	// For is how long a restore holds its images, Oldest whether it restores the oldest point
	// the catalog holds (else the latest); Type is a request's backup type.
	For    time.Duration
	Oldest bool
	Type   events.BackupType
}

type span struct{ from, to time.Time }

// spans are sorted and disjoint.
type spans []span

// at reports whether t falls in one of the spans.
func (sp spans) at(t time.Time) bool {
	i := sort.Search(len(sp), func(i int) bool { return sp[i].to.After(t) })
	return i < len(sp) && !t.Before(sp[i].from)
}

// overlaps reports whether [from, to) meets one of the spans.
func (sp spans) overlaps(from, to time.Time) bool {
	i := sort.Search(len(sp), func(i int) bool { return sp[i].to.After(from) })
	return i < len(sp) && sp[i].from.Before(to)
}

// draw makes count-per-year spans over [start, end), merged where they overlap.
func draw(r *rand.Rand, start, end time.Time, perYear float64, lo, hi time.Duration) spans {
	if perYear <= 0 {
		return nil
	}
	years := end.Sub(start).Hours() / (365 * 24)
	n := poisson(r, perYear*years)
	var out spans
	for range n {
		from := start.Add(time.Duration(r.Int64N(int64(end.Sub(start)))))
		d := lo
		if hi > lo {
			d += time.Duration(r.Int64N(int64(hi - lo)))
		}
		out = append(out, span{from, from.Add(d)})
	}
	slices.SortFunc(out, func(a, b span) int { return a.from.Compare(b.from) })
	var merged spans
	for _, s := range out {
		if k := len(merged); k > 0 && !s.from.After(merged[k-1].to) {
			if s.to.After(merged[k-1].to) {
				merged[k-1].to = s.to
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		n := int(math.Round(mean + math.Sqrt(mean)*r.NormFloat64()))
		return max(n, 0)
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// hash01 is a uniform number in [0, 1) that depends only on the seed and the parts: faults
// decided by it are the same whichever goroutine asks and in whatever order.
func hash01(seed uint64, parts ...any) float64 {
	h := fnv.New64a()
	fmt.Fprint(h, parts...)
	return float64(mix(h.Sum64()^mix(seed))>>11) / (1 << 53)
}

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const (
	gib = int64(1) << 30
	tib = int64(1) << 40
)

// NewTrace draws the world of one seed.
func NewTrace(seed uint64, start time.Time, days, databases int, p Profile) (*Trace, error) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	t := &Trace{Seed: seed, Start: start, End: start.Add(time.Duration(days) * 24 * time.Hour), P: p,
		byName: map[string]*DBTrace{}, byKey: map[string]*KeyTrace{}}
	nkeys := max(1, (databases+5)/6)
	for k := range nkeys {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", 0x6b000000+k, seed%0x1000000000000)
		kt := &KeyTrace{ID: id, CRN: "crn:v1:bluemix:public:kms:us-south:a/0a1b2c3d:7e57c0de-0000-4000-8000-000000000001:key:" + id,
			Created: start.Add(-time.Duration(r.Int64N(int64(80*24*time.Hour))) - 24*time.Hour)}
		t.Keys = append(t.Keys, kt)
		t.byKey[kt.CRN] = kt
	}
	var yaml strings.Builder
	yaml.WriteString("version: 1\ndefaults:\n  executor: " + Executor + "\n  mode: online\nkeys:\n")
	for _, k := range t.Keys {
		fmt.Fprintf(&yaml, "  - crn: %s\n", k.CRN)
	}
	yaml.WriteString("databases:\n")
	for i := range databases {
		name := fmt.Sprintf("db%02d", i+1)
		// Sizes are log-uniform from 20 GiB to 4 TiB.
		size := int64(float64(20*gib) * math.Pow(float64(4*tib)/float64(20*gib), r.Float64()))
		kt := t.Keys[i%nkeys]
		d := &DBTrace{Name: name, Size: size, Key: kt,
			Instance: fmt.Sprintf("crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0a1b2c3d:%08x-0000-4000-8000-00000000d%03d::", i, i)}
		kt.DBs = append(kt.DBs, d)
		t.DBs = append(t.DBs, d)
		t.byName[name] = d
		h, m := r.IntN(24), 15*r.IntN(4)
		fmt.Fprintf(&yaml, "  - name: %s\n    instance: %q\n    key_crn: %s\n    size: %dGiB\n    schedules:\n", name, d.Instance, kt.CRN, size/gib)
		keepDays := 7
		switch {
		case size < 500*gib:
			fmt.Fprintf(&yaml, "      full: \"%d %d * * *\"\n", m, h)
		case size < 1536*gib:
			fmt.Fprintf(&yaml, "      full: \"%d %d * * *\"\n      incremental: \"%d %s * * *\"\n", m, h, m, hours(h, 6, 12, 18))
		default:
			day := r.IntN(7)
			var others []string
			for x := range 7 {
				if x != day {
					others = append(others, fmt.Sprint(x))
				}
			}
			fmt.Fprintf(&yaml, "      full: \"%d %d * * %d\"\n      incremental: \"%d %d * * %s\"\n      delta: \"%d %s * * *\"\n",
				m, h, day, m, h, strings.Join(others, ","), m, hours(h, 6, 12, 18))
			keepDays = 14
		}
		fmt.Fprintf(&yaml, "    retention:\n      keep_fulls: 2\n      keep_days: %d\n", keepDays)
	}
	t.FleetYAML = yaml.String()
	fleet, err := config.Load([]byte(t.FleetYAML), config.WithExecutors(Executor))
	if err != nil {
		return nil, fmt.Errorf("scenario fleet: %w", err)
	}
	t.Fleet = fleet

	t.COSOutages = draw(r, t.Start, t.End, p.COSOutages, p.COSOutageLen[0], p.COSOutageLen[1])
	t.COSBursts = draw(r, t.Start, t.End, p.COSBursts*365, p.COSBurstLen[0], p.COSBurstLen[1])
	t.KPOutages = draw(r, t.Start, t.End, p.KPOutages, p.KPOutageLen[0], p.KPOutageLen[1])
	t.ENOutages = draw(r, t.Start, t.End, p.ENOutages, p.ENOutageLen[0], p.ENOutageLen[1])
	for _, k := range t.Keys {
		t.rotations(r, k)
		k.Suspended = draw(r, t.Start, t.End, p.Suspensions, p.SuspensionLen[0], p.SuspensionLen[1])
	}
	for _, d := range t.DBs {
		d.Config = draw(r, t.Start, t.End, p.ConfigEps, p.ConfigLen[0], p.ConfigLen[1])
		t.rewraps(r, d)
	}
	for _, d := range t.DBs {
		for _, op := range []struct {
			kind string
			rate float64
		}{{"request", p.Requests}, {"restore", p.Restores}, {"delete", p.Deletes}} {
			kind := op.kind
			for range poisson(r, op.rate*t.End.Sub(t.Start).Hours()/(365*24)) {
				a := OpAction{At: t.Start.Add(48*time.Hour + time.Duration(r.Int64N(int64(t.End.Sub(t.Start)-48*time.Hour)))), Kind: kind, DB: d.Name,
					For: 30*time.Minute + time.Duration(r.Int64N(int64(4*time.Hour))), Type: []events.BackupType{events.Full, events.Incremental}[r.IntN(2)],
					Oldest: r.IntN(2) == 0}
				t.Ops = append(t.Ops, a)
			}
		}
	}
	slices.SortFunc(t.Ops, func(a, b OpAction) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.DB+a.Kind, b.DB+b.Kind)
	})
	return t, nil
}

func hours(h int, offsets ...int) string {
	var hs []int
	for _, o := range offsets {
		hs = append(hs, (h+o)%24)
	}
	slices.Sort(hs)
	s := make([]string, len(hs))
	for i, x := range hs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// rotations draws a key's rotations: its Key Protect rotation policy (every PolicyMonths months
// from the key's creation; half of the keys were created at a quarter's start, which the cron
// script's quarter-start skip is meant for) and manual ones, at least an hour apart (Key
// Protect's limit).
func (t *Trace) rotations(r *rand.Rand, k *KeyTrace) {
	var at []Rotation
	if t.P.PolicyMonths > 0 {
		anchor := k.Created
		if r.IntN(2) == 0 {
			q := time.Date(t.Start.Year()-1, time.October, 1, 0, 0, 0, 0, time.UTC)
			anchor = q.Add(time.Duration(r.Int64N(int64(60 * time.Hour))))
		}
		for x := anchor; x.Before(t.End); x = x.AddDate(0, t.P.PolicyMonths, 0) {
			if !x.Before(t.Start) {
				at = append(at, Rotation{At: x})
			}
		}
	}
	for range poisson(r, t.P.Manual*t.End.Sub(t.Start).Hours()/(365*24)) {
		x := t.Start.Add(time.Duration(r.Int64N(int64(t.End.Sub(t.Start)))))
		at = append(at, Rotation{At: x, Manual: true})
		if r.Float64() < 0.2 { // a second rotation soon after: the window is extended
			at = append(at, Rotation{At: x.Add(time.Hour + time.Duration(r.Int64N(int64(3*time.Hour)))), Manual: true})
		}
	}
	slices.SortFunc(at, func(a, b Rotation) int { return a.At.Compare(b.At) })
	for _, x := range at {
		if n := len(k.Rotations); n > 0 && x.At.Sub(k.Rotations[n-1].At) < time.Hour {
			continue
		}
		if r.Float64() < t.P.CloudLogs {
			x.CloudLogs = x.At.Add(time.Minute + time.Duration(r.Int64N(int64(4*time.Minute))))
			x.NoVersion = r.Float64() < t.P.CloudLogsNoVer
		}
		k.Rotations = append(k.Rotations, x)
	}
}

// rewraps draws how long the database takes to re-wrap after each rotation of its key: longer
// the larger it is (about 20 minutes, plus 70 minutes per TiB), sometimes much longer than the
// maximum window.
func (t *Trace) rewraps(r *rand.Rand, d *DBTrace) {
	rots := d.Key.Rotations
	d.rewrapEnd = make([]time.Time, len(rots)+1) // index 0: the version the key was created with
	for i, rot := range rots {
		base := 20*time.Minute + time.Duration(float64(70*time.Minute)*float64(d.Size)/float64(tib))
		dur := time.Duration(float64(base) * math.Exp(0.4*r.NormFloat64()))
		if r.Float64() < t.P.SlowRewrap {
			dur = 9*time.Hour + time.Duration(r.Int64N(int64(4*time.Hour)))
		}
		d.rewrapEnd[i+1] = rot.At.Add(max(dur, 5*time.Minute))
	}
	// A rotation overtaken by the next before its re-wrap ended never completes on its own:
	// Db2 re-wraps to the newest version.
	for i := 1; i < len(d.rewrapEnd)-1; i++ {
		if !rots[i].At.After(d.rewrapEnd[i]) {
			d.rewrapEnd[i] = time.Time{}
		}
	}
}

// version is the version id of rotation index k of key (0: the version the key was created with).
func (k *KeyTrace) version(n int) string { return fmt.Sprintf("%s-v%d", k.ID[:8], n+1) }

// latest is the index of the key's newest version at t.
func (k *KeyTrace) latest(t time.Time) int {
	return sort.Search(len(k.Rotations), func(i int) bool { return k.Rotations[i].At.After(t) })
}

// lastRotated is when the key's newest version at t was made (its creation for the first).
func (k *KeyTrace) lastRotated(t time.Time) time.Time {
	if n := k.latest(t); n > 0 {
		return k.Rotations[n-1].At
	}
	return k.Created
}

// registered is the index of the version the database reports in Key Protect at t.
func (d *DBTrace) registered(t time.Time) int {
	for i := d.Key.latest(t); i > 0; i-- {
		if e := d.rewrapEnd[i]; !e.IsZero() && !e.After(t) {
			return i
		}
	}
	return 0
}

// Rewrapping reports whether the database is re-wrapping its keys at t: its registration lags
// its key's newest version, and backups fail.
func (d *DBTrace) Rewrapping(t time.Time) bool { return d.registered(t) < d.Key.latest(t) }

// Attempt is what one backup attempt of d started at t does: how long until its outcome, and
// its failure class ("" for a success). Hang: it never reports; Discard: Db2 wrote the image,
// then verification or upload failed.
type Attempt struct {
	Class    events.FailureClass
	Code     string
	Message  string
	Hang     bool
	Discard  bool
	Duration time.Duration
	Rewrap   bool // failed because the database was re-wrapping
}

// Attempt decides a backup attempt.
func (t *Trace) Attempt(d *DBTrace, typ events.BackupType, at time.Time) Attempt {
	u := hash01(t.Seed, "attempt", d.Name, at.Unix()/60)
	dur := t.duration(d, typ, at)
	switch {
	case d.Key.Suspended.at(at):
		return Attempt{Class: events.Configuration, Code: "SQL1728N", Message: "the keystore could not be accessed: the root key is not active", Duration: time.Minute}
	case d.Rewrapping(at):
		return Attempt{Class: events.Rotation, Code: "SQL1728N", Rewrap: true,
			Message:  "the keystore could not be accessed (key material is being re-wrapped after a root key rotation)",
			Duration: time.Minute + time.Duration(hash01(t.Seed, "rewrapfail", d.Name, at.Unix())*float64(2*time.Minute))}
	case d.Config.at(at):
		return Attempt{Class: events.Configuration, Code: "SQL2062N", Message: "the backup device is full", Duration: 2 * time.Minute}
	case u < t.P.Permanent:
		return Attempt{Class: events.Permanent, Code: "SQL2036N", Message: "the path for the backup is not valid", Duration: 3 * time.Minute}
	case u < t.P.Permanent+t.P.Transient:
		return Attempt{Class: events.Transient, Code: "SQL2079N", Message: "an error was reported by the storage", Duration: time.Duration(float64(dur) * hash01(t.Seed, "tfrac", d.Name, at.Unix()))}
	case u < t.P.Permanent+t.P.Transient+t.P.Hang:
		return Attempt{Hang: true, Duration: jobMaxTime}
	case u < t.P.Permanent+t.P.Transient+t.P.Hang+t.P.Discard:
		return Attempt{Class: events.Transient, Code: "DB2CKBKP", Message: "verification of the image failed", Discard: true, Duration: dur}
	}
	return Attempt{Duration: dur}
}

// duration is how long a backup of d takes: a full reads the database at about 400 MiB/s, an
// incremental about a fifth of it, a delta a twentieth; at least three minutes.
func (t *Trace) duration(d *DBTrace, typ events.BackupType, at time.Time) time.Duration {
	frac := map[events.BackupType]float64{events.Full: 1, events.Incremental: 0.2, events.Delta: 0.05}[typ]
	secs := float64(d.Size) * frac / (400 << 20)
	secs *= 0.8 + 0.4*hash01(t.Seed, "dur", d.Name, at.Unix()/60)
	return max(time.Duration(secs*float64(time.Second)), 3*time.Minute)
}

// jobMaxTime is how long Code Engine lets a job run before it kills it (the Terraform module's
// runner_timeout_seconds default).
const jobMaxTime = 8 * time.Hour
