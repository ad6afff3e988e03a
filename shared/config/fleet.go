package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/keyguard-dev/keyguard/events"
)

// MaxFleetBytes bounds the fleet policy file: about 170,000 databases with Db2 on Cloud CRNs
// (a 50,000-database policy is some 18 MB and loads in about a second).
const MaxFleetBytes = 64 << 20

// Executors a database can be backed up by in a deployment. Every database names one: there
// is no default, and test executors (the local stack's simulated Db2) exist only where the
// loader is told of them (WithExecutors).
const (
	ExecDb2CLI  = "db2cli"  // self-managed Db2 through its command line, in the runner job or host agent
	ExecDb2SaaS = "db2saas" // Db2 on Cloud REST API
)

// Where a db2cli database's runner runs.
const (
	RunnerJob  = "job"  // a Code Engine job run per backup
	RunnerHost = "host" // an agent on the Db2 host pulls runs from the state
)

// ExecutorKey names the executor the scheduler starts d's backups with: the executor name, and
// for db2cli databases run by a host agent, "db2cli-host".
func (d Database) ExecutorKey() string {
	if d.Executor == ExecDb2CLI && d.Runner == RunnerHost {
		return ExecDb2CLI + "-" + RunnerHost
	}
	return d.Executor
}

// Fleet is the whole policy. Treat a loaded Fleet as read-only: Load indexes it by database
// and by key (a Fleet whose Databases were changed afterwards is searched without the index).
type Fleet struct {
	Version   int         `yaml:"version"`
	Defaults  Defaults    `yaml:"defaults"`
	Databases []Database  `yaml:"databases"`
	Keys      []KeyPolicy `yaml:"keys"`

	idx *fleetIndex
}

// fleetIndex finds databases by name and by key without a scan of the fleet.
type fleetIndex struct {
	n      int
	byName map[string]int
	byKey  map[string][]int
	keys   []string // distinct key CRNs in first-use order
}

func (f *Fleet) index() {
	ix := &fleetIndex{n: len(f.Databases), byName: make(map[string]int, len(f.Databases)), byKey: map[string][]int{}}
	for i, d := range f.Databases {
		if _, dup := ix.byName[d.Name]; !dup {
			ix.byName[d.Name] = i
		}
		if _, seen := ix.byKey[d.KeyCRN]; !seen {
			ix.keys = append(ix.keys, d.KeyCRN)
		}
		ix.byKey[d.KeyCRN] = append(ix.byKey[d.KeyCRN], i)
	}
	f.idx = ix
}

// indexed returns the index when it still describes f.Databases.
func (f *Fleet) indexed() *fleetIndex {
	if f.idx != nil && f.idx.n == len(f.Databases) {
		return f.idx
	}
	return nil
}

// KeyPolicy holds per-key settings. Keys not listed are watched with defaults (no managed
// rotation).
type KeyPolicy struct {
	CRN string `yaml:"crn"`
	// ManagedRotation, when Every is set, makes keyguard rotate the key itself at that cadence,
	// right after verified full backups of every database it protects and never with a run in
	// flight; Key Protect's own rotation policy should then be off.
	ManagedRotation ManagedRotation `yaml:"managed_rotation"`
}

// ManagedRotation is keyguard-coordinated key rotation.
type ManagedRotation struct {
	Every time.Duration `yaml:"every"`
}

// RetentionPolicy says which images to keep. Retention never breaks a kept restore chain and
// never drops below KeepFulls full chains.
type RetentionPolicy struct {
	KeepFulls int `yaml:"keep_fulls"`
	KeepDays  int `yaml:"keep_days"`
}

// Defaults apply to every database that does not set the field itself.
type Defaults struct {
	Mode           events.Mode     `yaml:"mode"`
	Executor       string          `yaml:"executor"`
	Lease          time.Duration   `yaml:"lease"`
	CatchUp        time.Duration   `yaml:"catch_up"`
	AlertThreshold int             `yaml:"alert_threshold"`
	Rotation       RotationPolicy  `yaml:"rotation"`
	Retry          RetryPolicy     `yaml:"retry"`
	Retention      RetentionPolicy `yaml:"retention"`
	BackupDir      string          `yaml:"backup_dir"`
	// KeystoreKeyCRN is the Key Protect root key that wraps the data key of every keystore copy
	// (each database's key_crn when empty).
	KeystoreKeyCRN string `yaml:"keystore_key_crn"`
	Check          Check  `yaml:"check"`
}

// RotationPolicy bounds the hold on backups after a key rotation.
type RotationPolicy struct {
	// Settle is the minimum time a window stays open even when re-wrap is confirmed.
	Settle time.Duration `yaml:"settle"`
	// MaxWindow is the latest close for databases below LargeSize; MaxWindowLarge at or above it.
	MaxWindow      time.Duration `yaml:"max_window"`
	MaxWindowLarge time.Duration `yaml:"max_window_large"`
	LargeSize      Size          `yaml:"large_size"`
}

// RetryPolicy is exponential backoff for failed runs: Base * Factor^(n-1), at most Max, for at
// most MaxAttempts consecutive failures.
type RetryPolicy struct {
	Base        time.Duration `yaml:"base"`
	Factor      float64       `yaml:"factor"`
	Max         time.Duration `yaml:"max"`
	MaxAttempts int           `yaml:"max_attempts"`
}

// Database is one database's policy, complete after Load (defaults merged).
type Database struct {
	Name     string `yaml:"name"`
	Instance string `yaml:"instance"`
	KeyCRN   string `yaml:"key_crn"`
	// KeystoreKeyCRN is the Key Protect root key (of the instance keyguard's Key Protect client
	// serves) that wraps the data key encrypting each copy of the database's native-encryption
	// keystore: defaults.keystore_key_crn, else KeyCRN.
	KeystoreKeyCRN string `yaml:"keystore_key_crn"`
	Size           Size   `yaml:"size"`
	Executor       string `yaml:"executor"`
	// Mode is the default backup mode; offline databases are backed up offline.
	Mode events.Mode `yaml:"mode"`
	// Schedules maps a backup type to a cron expression (5 fields or @descriptor) in UTC; a
	// CRON_TZ= or TZ= prefix is refused.
	Schedules      map[events.BackupType]string `yaml:"schedules"`
	Lease          time.Duration                `yaml:"lease"`
	CatchUp        time.Duration                `yaml:"catch_up"`
	AlertThreshold int                          `yaml:"alert_threshold"`
	Rotation       RotationPolicy               `yaml:"rotation"`
	Retry          RetryPolicy                  `yaml:"retry"`
	Retention      RetentionPolicy              `yaml:"retention"`
	// BackupDir is where the Db2 command line writes images before upload (db2cli executor).
	BackupDir string `yaml:"backup_dir"`
	// Alias is the Db2 database alias the command line uses (db2cli); the upper-cased name when
	// empty.
	Alias string `yaml:"alias"`
	// Runner says where a db2cli database's runner runs: "job" (a Code Engine job run the
	// scheduler starts; the default) or "host" (an agent on the Db2 host, `runner` with
	// KEYGUARD_RUNNER_POLL set, that pulls runs from the state: for images written on the host).
	Runner string `yaml:"runner"`
	// Tablespaces are the table spaces the table space schedule (schedules.tablespace) backs
	// up, each time in one table space backup beside the database's own backups (which stay
	// whole-database backups). Required with schedules.tablespace, refused without it.
	Tablespaces []string `yaml:"tablespaces"`
	// Partitioned marks a partitioned (DPF) database: each backup is one single-system-view
	// backup of all its database partitions (BACKUP DATABASE ... ON ALL DBPARTITIONNUMS: one
	// timestamp, one image per partition), and a restore restores the catalog partition first.
	Partitioned bool `yaml:"partitioned"`
	// LogArchive says where the runner lists the database's archived logs, and whether
	// keyguard's retention deletes those no kept chain needs.
	LogArchive LogArchive `yaml:"log_archive"`
	// IncludeLogs adds the logs needed to restore an online image to it (default true).
	IncludeLogs *bool `yaml:"include_logs"`
	// Drill, when set, has keyguard prove the backups restorable on a schedule.
	Drill *Drill `yaml:"drill"`
	// Check holds the thresholds keyguard check (and the scheduler) judge the database by.
	Check Check `yaml:"check"`

	schedules map[events.BackupType]cron.Schedule
	drill     cron.Schedule
}

// TablespaceSchedule is the key of the table space schedule in Database.Schedules: table
// space backups (full) of Database.Tablespaces, beside the database's full, incremental and
// delta schedules, retained as chains of their own.
const TablespaceSchedule = events.Tablespace

// LogArchive locates a database's archived logs for the runner's log chain check (db2cli).
// With neither field the runner lists LOGARCHMETH1's DISK:<path> directory as Db2 reports it.
type LogArchive struct {
	// Dir overrides the DISK:<path> of LOGARCHMETH1 (where the runner sees that directory);
	// the runner lists <dir>/<instance>/<DATABASE>/NODEnnnn/LOGSTREAMnnnn/Cnnnnnnn/.
	Dir string `yaml:"dir"`
	// COSPrefix is the key prefix, in keyguard's bucket, of a DB2REMOTE archive
	// (LOGARCHMETH1 DB2REMOTE://<alias>//<path> with a storage alias on this bucket).
	COSPrefix string `yaml:"cos_prefix"`
	// Prune lets retention delete archived logs older than the first log every cataloged
	// image needs (never when Db2's AUTO_DEL_REC_OBJ is ON: Db2 deletes them then). Off by
	// default: the check then only reports.
	Prune bool `yaml:"prune"`
}

// TablespaceBackups reports whether d has a table space schedule.
func (d Database) TablespaceBackups() bool { return d.Schedules[TablespaceSchedule] != "" }

// Drill is a scheduled restore drill: at each slot of Cron (UTC) the newest restorable point is
// restored by the restore job (runner: job) or the runner agent on the Db2 host (runner: host,
// which pulls the drill from the state) into the scratch database Target (never the database),
// the Probe query is run on it, and it is dropped; the outcome and the measured restore time are
// recorded in the catalog, and a failed drill alerts. Drills wait out rotation windows and never
// run beside a backup of the same database.
type Drill struct {
	Cron string `yaml:"cron"`
	// Target is the Db2 alias of the scratch database (replaced at each drill).
	Target string `yaml:"target"`
	// Instance names the Db2 instance the scratch database is on, for the record (the restore
	// job restores on the instance it runs against); the database's own when empty.
	Instance string `yaml:"instance"`
	// Probe is an SQL query run on the restored database (e.g. SELECT COUNT(*) FROM APP.ORDERS).
	Probe string `yaml:"probe"`
	// StoragePaths redirect the scratch database's storage (a redirected restore).
	StoragePaths []string `yaml:"storage_paths"`
}

// Check holds what keyguard check judges a database by. Zero fields take their defaults.
type Check struct {
	// MaxAge is the recovery point objective: the last good backup older than this warns,
	// older than twice this is critical (default: the longest gap between two slots of the
	// database's schedules, plus its lease).
	MaxAge time.Duration `yaml:"max_age"`
	// MinChains is the fewest restorable full chains expected (default: retention.keep_fulls).
	MinChains int `yaml:"min_chains"`
	// DrillMaxAge is how old the last drill may be (default: twice the drill schedule's gap).
	DrillMaxAge time.Duration `yaml:"drill_max_age"`
	// TickInterval is the periodic timer's interval: no tick for twice this is the dead-man
	// alarm (default 15m).
	TickInterval time.Duration `yaml:"tick_interval"`
}

// DrillSchedule returns the parsed drill schedule, if the database has a drill.
func (d Database) DrillSchedule() (cron.Schedule, bool) { return d.drill, d.drill != nil }

// Schedule returns the parsed schedule of type t, if the database has one.
func (d Database) Schedule(t events.BackupType) (cron.Schedule, bool) {
	s, ok := d.schedules[t]
	return s, ok
}

// MaxWindow returns the rotation window's maximum for this database's size.
func (d Database) MaxWindow() time.Duration {
	if d.Rotation.LargeSize > 0 && d.Size >= d.Rotation.LargeSize {
		return d.Rotation.MaxWindowLarge
	}
	return d.Rotation.MaxWindow
}

// Database returns the policy of the named database.
func (f *Fleet) Database(name string) (Database, bool) {
	if ix := f.indexed(); ix != nil {
		i, ok := ix.byName[name]
		if ok && f.Databases[i].Name == name {
			return f.Databases[i], true
		}
		if !ok {
			return Database{}, false
		}
	}
	for _, d := range f.Databases {
		if d.Name == name {
			return d, true
		}
	}
	return Database{}, false
}

// ByKey returns the databases protected by the key CRN.
func (f *Fleet) ByKey(keyCRN string) []Database {
	var out []Database
	if ix := f.indexed(); ix != nil {
		for _, i := range ix.byKey[keyCRN] {
			out = append(out, f.Databases[i])
		}
		return out
	}
	for _, d := range f.Databases {
		if d.KeyCRN == keyCRN {
			out = append(out, d)
		}
	}
	return out
}

// KeyCRNs returns the distinct key CRNs in use, in first-use order.
func (f *Fleet) KeyCRNs() []string {
	if ix := f.indexed(); ix != nil {
		return slices.Clone(ix.keys)
	}
	var out []string
	for _, d := range f.Databases {
		if !slices.Contains(out, d.KeyCRN) {
			out = append(out, d.KeyCRN)
		}
	}
	return out
}

// BuiltinDefaults are used where the file sets nothing.
func BuiltinDefaults() Defaults {
	return Defaults{
		Mode:           events.Online,
		Lease:          6 * time.Hour,
		CatchUp:        24 * time.Hour,
		AlertThreshold: 2,
		Rotation: RotationPolicy{
			Settle: 15 * time.Minute, MaxWindow: 4 * time.Hour, MaxWindowLarge: 8 * time.Hour,
			LargeSize: 1 << 40,
		},
		Retry:     RetryPolicy{Base: 30 * time.Minute, Factor: 2, Max: 2 * time.Hour, MaxAttempts: 5},
		Retention: RetentionPolicy{KeepFulls: 2, KeepDays: 14},
		BackupDir: "/db2backup",
	}
}

// ErrInvalidFleet wraps every fleet validation failure.
var ErrInvalidFleet = errors.New("invalid fleet policy")

// LoadOption adjusts Load.
type LoadOption func(*loadOptions)

type loadOptions struct{ executors []string }

// WithExecutors lets the policy name executors beyond db2cli and db2saas: the local stack's
// simulated Db2, which only the local stack registers. Deployed functions never pass it, so a
// deployed fleet naming a test executor is refused at load.
func WithExecutors(names ...string) LoadOption {
	return func(o *loadOptions) { o.executors = append(o.executors, names...) }
}

// Load parses and validates a fleet policy. The error lists every problem found.
func Load(data []byte, opts ...LoadOption) (*Fleet, error) {
	var lo loadOptions
	for _, o := range opts {
		o(&lo)
	}
	if len(data) > MaxFleetBytes {
		return nil, fmt.Errorf("%w: file is %d bytes, limit %d", ErrInvalidFleet, len(data), MaxFleetBytes)
	}
	// Pass 1: strict shape (unknown fields are errors).
	var strict Fleet
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&strict); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFleet, err)
	}
	// Pass 2: defaults first, then each database decoded over a copy of them.
	var raw struct {
		Version   int         `yaml:"version"`
		Defaults  yaml.Node   `yaml:"defaults"`
		Databases []yaml.Node `yaml:"databases"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFleet, err)
	}
	f := &Fleet{Version: raw.Version, Defaults: BuiltinDefaults(), Keys: strict.Keys}
	if raw.Defaults.Kind != 0 {
		if err := raw.Defaults.Decode(&f.Defaults); err != nil {
			return nil, fmt.Errorf("%w: defaults: %v", ErrInvalidFleet, err)
		}
	}
	for i := range raw.Databases {
		d := Database{
			Mode: f.Defaults.Mode, Executor: f.Defaults.Executor, Lease: f.Defaults.Lease,
			CatchUp: f.Defaults.CatchUp, AlertThreshold: f.Defaults.AlertThreshold,
			Rotation: f.Defaults.Rotation, Retry: f.Defaults.Retry, Retention: f.Defaults.Retention, BackupDir: f.Defaults.BackupDir,
			KeystoreKeyCRN: f.Defaults.KeystoreKeyCRN, Check: f.Defaults.Check,
		}
		if err := raw.Databases[i].Decode(&d); err != nil {
			return nil, fmt.Errorf("%w: databases[%d]: %v", ErrInvalidFleet, i, err)
		}
		f.Databases = append(f.Databases, d)
	}
	if err := f.validate(lo); err != nil {
		return nil, err
	}
	f.index()
	return f, nil
}

var (
	nameRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	aliasRE      = regexp.MustCompile(`^[A-Z@#$][A-Z0-9@#$_]{0,7}$`)
	tablespaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_#@$]{0,127}$`)
	keyCRNRE     = regexp.MustCompile(`^crn:v1:[a-z0-9-]+:[a-z0-9-]+:(kms|hs-crypto):[a-z0-9-]*:a/[0-9a-f]+:[0-9a-f-]+:key:[0-9a-f-]+$`)
)

// cronParser accepts standard 5-field expressions and @descriptors. validate refuses the
// CRON_TZ= / TZ= prefix the parser also knows: schedules are UTC, whose days all have 24 hours, so
// no slot is skipped on a spring-forward day nor run twice on a fall-back day.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (f *Fleet) validate(lo loadOptions) error {
	executors := append([]string{ExecDb2CLI, ExecDb2SaaS}, lo.executors...)
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if f.Version != 1 {
		add("version must be 1 (got %d)", f.Version)
	}
	if len(f.Databases) == 0 {
		add("databases: at least one database is required")
	}
	seen := map[string]bool{}
	for i := range f.Databases {
		d := &f.Databases[i]
		at := fmt.Sprintf("databases[%d]", i)
		if d.Name != "" {
			at = fmt.Sprintf("database %q", d.Name)
		}
		switch {
		case !nameRE.MatchString(d.Name):
			add("%s: name must match %s", at, nameRE)
		case seen[d.Name]:
			add("%s: name is used twice", at)
		}
		seen[d.Name] = true
		if !keyCRNRE.MatchString(d.KeyCRN) {
			add("%s: key_crn %q is not a Key Protect or HPCS key CRN (crn:v1:...:kms:<region>:a/<account>:<instance>:key:<key id>)", at, d.KeyCRN)
		}
		if d.KeystoreKeyCRN == "" {
			d.KeystoreKeyCRN = d.KeyCRN
		}
		if d.KeystoreKeyCRN != d.KeyCRN && !keyCRNRE.MatchString(d.KeystoreKeyCRN) {
			add("%s: keystore_key_crn %q is not a Key Protect or HPCS key CRN (crn:v1:...:kms:<region>:a/<account>:<instance>:key:<key id>)", at, d.KeystoreKeyCRN)
		}
		if d.Instance == "" {
			add("%s: instance is required (Db2 instance CRN or host)", at)
		}
		if d.Size < 0 {
			add("%s: size is negative", at)
		}
		switch {
		case d.Executor == "":
			add("%s: executor is required: db2cli (self-managed Db2, through its command line) or db2saas (Db2 on Cloud)", at)
		case d.Executor == "simulated" && !slices.Contains(executors, d.Executor):
			add("%s: executor simulated is the local stack's simulated Db2 and cannot back up a deployed database: use db2cli or db2saas", at)
		case !slices.Contains(executors, d.Executor):
			add("%s: executor must be one of %s (got %q)", at, strings.Join(executors, ", "), d.Executor)
		}
		if !d.Mode.Valid() {
			add("%s: mode must be online or offline (got %q)", at, d.Mode)
		}
		if d.Executor == ExecDb2SaaS && d.Mode == events.Offline {
			add("%s: Db2 on Cloud takes online backups only", at)
		}
		if len(d.Schedules) == 0 {
			add("%s: schedules: at least one schedule is required", at)
		}
		d.schedules = map[events.BackupType]cron.Schedule{}
		for t, expr := range d.Schedules {
			if !t.Valid() && t != TablespaceSchedule {
				add("%s: schedules: unknown backup type %q (full, incremental, delta, or tablespace)", at, t)
				continue
			}
			if strings.Contains(expr, "=") {
				add("%s: schedules.%s: %q: schedules are UTC: a CRON_TZ= or TZ= prefix is not accepted (a local clock skips or repeats slots when daylight saving time changes); write the UTC time", at, t, expr)
				continue
			}
			s, err := cronParser.Parse(expr)
			if err != nil {
				add("%s: schedules.%s: %q: %v", at, t, expr, err)
				continue
			}
			d.schedules[t] = s
		}
		if _, ok := d.Schedules[events.Full]; !ok && len(d.Schedules) > 0 {
			add("%s: schedules: a full schedule is required (incremental and delta backups need a full one before them)", at)
		}
		if (d.Schedules[events.Incremental] != "" || d.Schedules[events.Delta] != "") && d.Executor == ExecDb2SaaS {
			add("%s: Db2 on Cloud takes full backups only", at)
		}
		if d.Lease <= 0 {
			add("%s: lease must be positive", at)
		}
		if d.CatchUp <= 0 {
			add("%s: catch_up must be positive", at)
		}
		if d.AlertThreshold < 1 {
			add("%s: alert_threshold must be at least 1", at)
		}
		r := d.Rotation
		if r.Settle < 0 || r.MaxWindow <= 0 || r.MaxWindowLarge <= 0 {
			add("%s: rotation: settle must be >= 0 and max_window, max_window_large > 0", at)
		}
		if r.Settle > r.MaxWindow || r.Settle > r.MaxWindowLarge {
			add("%s: rotation: settle exceeds the maximum window", at)
		}
		if d.Retention.KeepFulls < 2 {
			add("%s: retention.keep_fulls must be at least 2 (keep two full images with their logs)", at)
		}
		if d.Retention.KeepDays < 0 {
			add("%s: retention.keep_days is negative", at)
		}
		if d.Executor == ExecDb2CLI && !strings.HasPrefix(d.BackupDir, "/") {
			add("%s: backup_dir must be an absolute path for the db2cli executor", at)
		}
		if d.Alias == "" {
			d.Alias = strings.ToUpper(d.Name)
		}
		if d.Runner == "" && d.Executor == ExecDb2CLI {
			d.Runner = RunnerJob
		}
		if d.Executor == ExecDb2CLI && d.Runner != RunnerJob && d.Runner != RunnerHost {
			add("%s: runner must be job or host (got %q)", at, d.Runner)
		}
		if d.Executor != ExecDb2CLI && d.Runner != "" {
			add("%s: runner applies to the db2cli executor only", at)
		}
		if d.Executor == ExecDb2CLI && !aliasRE.MatchString(d.Alias) {
			add("%s: alias %q is not a Db2 database alias (1-8 letters, digits, @ # $ _; set alias: when the name does not fit)", at, d.Alias)
		}
		if len(d.Tablespaces) > 0 && d.Executor == ExecDb2SaaS || d.TablespaceBackups() && d.Executor == ExecDb2SaaS {
			add("%s: Db2 on Cloud takes database backups only, not table space backups", at)
		}
		if d.TablespaceBackups() != (len(d.Tablespaces) > 0) {
			add("%s: schedules.tablespace and tablespaces go together: the table space schedule backs up the listed table spaces beside the database's backups", at)
		}
		if d.TablespaceBackups() && d.Mode == events.Offline {
			add("%s: table space backups need archive logging (online mode)", at)
		}
		if d.Partitioned && d.Executor != ExecDb2CLI {
			add("%s: partitioned: partitioned databases are backed up through the Db2 command line (db2cli)", at)
		}
		if la := d.LogArchive; la.Dir != "" && !strings.HasPrefix(la.Dir, "/") {
			add("%s: log_archive.dir %q must be an absolute path", at, la.Dir)
		} else if la.Dir != "" && la.COSPrefix != "" {
			add("%s: log_archive: dir or cos_prefix, not both", at)
		}
		for _, ts := range d.Tablespaces {
			if !tablespaceRE.MatchString(ts) {
				add("%s: table space name %q is not a Db2 identifier", at, ts)
			}
		}
		q := d.Retry
		if q.Base <= 0 || q.Max < q.Base || q.Factor < 1 || q.MaxAttempts < 1 {
			add("%s: retry: need base > 0, max >= base, factor >= 1, max_attempts >= 1", at)
		}
		if dr := d.Drill; dr != nil {
			switch {
			case d.Executor != ExecDb2CLI:
				add("%s: drill: drills restore through the Db2 command line, for db2cli databases", at)
			case !aliasRE.MatchString(dr.Target) || dr.Target == d.Alias:
				add("%s: drill.target %q must be a Db2 alias (1-8 upper-case letters, digits, @ # $ _) other than the database's own", at, dr.Target)
			}
			if strings.Contains(dr.Cron, "=") {
				add("%s: drill.cron %q: schedules are UTC: no CRON_TZ= or TZ= prefix", at, dr.Cron)
			} else if sc, err := cronParser.Parse(dr.Cron); err != nil {
				add("%s: drill.cron %q: %v", at, dr.Cron, err)
			} else {
				d.drill = sc
			}
			if len(dr.Probe) > 1024 {
				add("%s: drill.probe is longer than 1024 bytes", at)
			}
			for _, p := range dr.StoragePaths {
				if !strings.HasPrefix(p, "/") {
					add("%s: drill.storage_paths: %q is not an absolute path", at, p)
				}
			}
		}
		if d.Check.MaxAge < 0 || d.Check.MinChains < 0 || d.Check.DrillMaxAge < 0 || d.Check.TickInterval < 0 {
			add("%s: check: thresholds must not be negative", at)
		}
	}
	used := map[string]bool{}
	for _, d := range f.Databases {
		used[d.KeyCRN] = true
	}
	seenKey := map[string]bool{}
	for i, k := range f.Keys {
		switch {
		case !used[k.CRN]:
			add("keys[%d]: %q protects no database in this policy", i, k.CRN)
		case seenKey[k.CRN]:
			add("keys[%d]: %q is listed twice", i, k.CRN)
		}
		seenKey[k.CRN] = true
		if e := k.ManagedRotation.Every; e != 0 && e < 24*time.Hour {
			add("keys[%d]: managed_rotation.every must be at least 24h (Key Protect allows one manual rotation per hour; Db2 needs time to re-wrap)", i)
		}
	}
	if len(p) > 0 {
		return fmt.Errorf("%w:\n  - %s", ErrInvalidFleet, strings.Join(p, "\n  - "))
	}
	return nil
}

// Static is a FleetSource that always returns the same policy.
type Static struct{ F *Fleet }

// Fleet returns the policy.
func (s Static) Fleet(context.Context) (*Fleet, error) { return s.F, nil }

// Key returns the policy of a key (zero value when the fleet does not list it).
func (f *Fleet) Key(crn string) KeyPolicy {
	for _, k := range f.Keys {
		if k.CRN == crn {
			return k
		}
	}
	return KeyPolicy{CRN: crn}
}

// WithLogs reports whether online backups of d include their logs.
func (d Database) WithLogs() bool { return d.IncludeLogs == nil || *d.IncludeLogs }

// Db2Instance is the Db2 instance name of a self-managed database: the part of Instance before
// "@" (db2inst1@host), or Instance itself.
func (d Database) Db2Instance() string {
	if i := strings.IndexByte(d.Instance, '@'); i > 0 {
		return d.Instance[:i]
	}
	return d.Instance
}

// ErrUnknownDatabase: an event names a database the fleet policy does not list. Handlers refuse
// such events for good (the edge answers 422).
var ErrUnknownDatabase = errors.New("database is not in the fleet policy")

// Source returns the current fleet policy (a local file, or config/fleet.yaml in COS).
type Source interface {
	Fleet(ctx context.Context) (*Fleet, error)
}

// Lookup reads the current policy from src and returns the named database's, or an error
// wrapping ErrUnknownDatabase.
func Lookup(ctx context.Context, src Source, name string) (Database, error) {
	f, err := src.Fleet(ctx)
	if err != nil {
		return Database{}, fmt.Errorf("load fleet policy: %w", err)
	}
	db, ok := f.Database(name)
	if !ok {
		return Database{}, fmt.Errorf("%w: %q", ErrUnknownDatabase, name)
	}
	return db, nil
}

// Shard says which of shards the databases of a key belong to (FNV-1a of the key CRN, modulo
// shards): a key's databases are all in one shard, so each key is polled by one shard.
func Shard(keyCRN string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(keyCRN))
	return int(h.Sum32() % uint32(shards))
}

// ShardDatabases returns the databases of shard (of shards), sorted by name: the order a tick
// decides them in, which a continuation resumes.
func (f *Fleet) ShardDatabases(shard, shards int) []Database {
	out := make([]Database, 0, len(f.Databases)/max(shards, 1)+1)
	for _, d := range f.Databases {
		if Shard(d.KeyCRN, shards) == shard {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Database) int { return strings.Compare(a.Name, b.Name) })
	return out
}
