package db2

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/keyguard-dev/keyguard/events"
)

// DefaultInstance is the instance name PlanBackup assumes when Request.Instance is empty: the
// conventional first instance owner. It only matters for the image name (see ImageName).
const DefaultInstance = "db2inst1"

// Request is what the scheduler asked for.
type Request struct {
	// Database is the database alias (1-8 characters: letters, digits, @ # $ _).
	Database string
	// Instance is the Db2 instance name that appears in image names; DefaultInstance if empty.
	Instance string
	Type     events.BackupType
	Mode     events.Mode
	// TargetDir is the absolute directory the image is written to (no white space or quotes:
	// the CLP would split or mangle it).
	TargetDir string
	// Tablespaces, when not empty, asks for a table space level backup of those table spaces.
	Tablespaces []string
	// IncludeLogs asks an online backup to carry the log files it needs (INCLUDE LOGS).
	IncludeLogs bool
	Compress    bool
	// Partitioned asks for one single-system-view backup of every database partition
	// (ON ALL DBPARTITIONNUMS): one timestamp, one image per partition.
	Partitioned bool
	// AllowOffline is the policy switch for an online request on a database without archive
	// logging: true takes an offline backup instead (a note says so); false refuses with a
	// configuration error. It never turns an offline request online.
	AllowOffline bool
}

// Plan is what to run. Commands run in order; today a plan holds one `db2 backup` command. The
// verification command needs the timestamp the backup prints, so it comes from VerifyCommand.
type Plan struct {
	Database    string            `json:"database"`
	Instance    string            `json:"instance"`
	TargetDir   string            `json:"target_dir"`
	Type        events.BackupType `json:"type"`
	Mode        events.Mode       `json:"mode"`
	Tablespaces []string          `json:"tablespaces,omitempty"`
	IncludeLogs bool              `json:"include_logs"`
	Compress    bool              `json:"compress"`
	Partitioned bool              `json:"partitioned,omitempty"`
	Commands    [][]string        `json:"commands"`
	// Notes say, in words, every way the plan differs from the request and every check skipped.
	Notes []string `json:"notes,omitempty"`
}

// ImageName is the file name of the image this plan's backup writes at timestamp ts.
func (p Plan) ImageName(ts string) string {
	return ImageName(p.Database, p.Instance, len(p.Tablespaces) > 0, ts)
}

// ImagePath is ImageName inside TargetDir.
func (p Plan) ImagePath(ts string) string { return filepath.Join(p.TargetDir, p.ImageName(ts)) }

// PartitionImagePath is the path of the image of database partition part that a partitioned
// backup writes at timestamp ts (DBPARTnnn in its name).
func (p Plan) PartitionImagePath(ts string, part int) string {
	typ := ImageDatabase
	if len(p.Tablespaces) > 0 {
		typ = ImageTablespace
	}
	name := Image{Alias: strings.ToUpper(p.Database), Type: typ, Instance: p.Instance, Partition: part, Catalog: -1, Timestamp: ts, Sequence: 1}.String()
	return filepath.Join(p.TargetDir, name)
}

// VerifyCommand is the db2ckbkp command that checks the image written at timestamp ts.
func (p Plan) VerifyCommand(ts string) []string { return []string{"db2ckbkp", p.ImagePath(ts)} }

// RequiredSpace is a conservative estimate of the bytes a backup needs in its target directory:
// the database size (compression only makes the image smaller), plus the active log when an
// online backup includes logs. It is -1 when the size is unknown.
func RequiredSpace(size DBSize, cfg DBConfig, includeLogs bool, mode events.Mode) int64 {
	if size.Size < 0 {
		return -1
	}
	need := size.Size
	if includeLogs && mode == events.Online {
		need += cfg.ActiveLogBytes()
	}
	return need
}

var (
	dbAlias   = regexp.MustCompile(`^[A-Za-z@#$][A-Za-z0-9@#$_]{0,7}$`)
	instName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,7}$`)
	tsName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_@#$]{0,127}$`)
	unsafeDir = regexp.MustCompile(`[\s"'(),;\x00-\x1f]`)
)

// PlanBackup decides how to back the database up, as a pure function of the request and what
// was observed: cfg from `get db cfg`, apps the number of connected applications, whether a full
// backup exists that an incremental or delta backup can build on, and the free and needed bytes
// in the target directory (free < 0 or needed <= 0: unknown, the check is skipped with a note).
//
// Decisions, in order (each refusal is an *Error):
//  1. A malformed request is permanent (invalid-request).
//  2. Rollforward or restore pending: configuration; only an operator can finish that recovery.
//  3. Backup pending: the plan is an offline full database backup whatever was asked, because
//     nothing else can run and that backup clears the state; the requested backup waits for the
//     next slot (a note says so).
//  4. Online without archive logging (LOGARCHMETH1 and LOGARCHMETH2 OFF): offline instead when
//     AllowOffline, else configuration (archive-logging-off). Table space backups need archive
//     logging in either mode: configuration.
//  5. Incremental or delta without TRACKMOD: configuration (trackmod-off); upgrading would hide a
//     misconfiguration behind a full backup every night. Without a full predecessor: upgraded to
//     a full backup with a note, because a full is the only way to start a chain and Db2 would
//     refuse the incremental anyway.
//  6. INCLUDE LOGS only goes with online backups; dropped with a note otherwise.
//  7. free < needed: configuration (insufficient-space).
//  8. Offline with connected applications: transient (applications-connected).
//
// The command is
//
//	db2 backup database <DB> [on all dbpartitionnums] [tablespace (<ts>,...)] [online] [incremental [delta]] to <dir>
//	    [compress] [include logs | exclude logs] without prompting
//
// in the order of Db2's syntax diagram; online backups always say include or exclude logs so
// the image's content does not depend on the release's default.
func PlanBackup(req Request, cfg DBConfig, apps int, hasFullPredecessor bool, free, needed int64) (Plan, error) {
	if err := validate(req); err != nil {
		return Plan{}, err
	}
	p := Plan{
		Database: strings.ToUpper(req.Database), Instance: req.Instance, TargetDir: filepath.Clean(req.TargetDir),
		Type: req.Type, Mode: req.Mode, Tablespaces: append([]string(nil), req.Tablespaces...),
		IncludeLogs: req.IncludeLogs, Compress: req.Compress, Partitioned: req.Partitioned,
	}
	if p.Instance == "" {
		p.Instance = DefaultInstance
	}
	note := func(format string, args ...any) { p.Notes = append(p.Notes, fmt.Sprintf(format, args...)) }

	switch {
	case cfg.RollforwardPending:
		return Plan{}, &Error{Class: events.Configuration, Reason: ReasonRollforwardPending,
			Msg: fmt.Sprintf("database %s is in rollforward pending state (%s); finish the rollforward before backing up", p.Database, cfg.Rollforward)}
	case cfg.RestorePending:
		return Plan{}, &Error{Class: events.Configuration, Reason: ReasonRestorePending,
			Msg: fmt.Sprintf("database %s is in restore pending state; finish the restore before backing up", p.Database)}
	}

	if cfg.BackupPending {
		if p.Type != events.Full || p.Mode != events.Offline || len(p.Tablespaces) > 0 {
			note("backup pending: taking an offline full database backup instead of the requested %s %s backup, which waits for the next slot", req.Mode, req.Type)
		}
		p.Type, p.Mode, p.Tablespaces = events.Full, events.Offline, nil
	} else {
		if p.Mode == events.Online && !cfg.Recoverable() {
			if !req.AllowOffline {
				return Plan{}, &Error{Class: events.Configuration, Reason: ReasonArchiveLoggingOff,
					Msg: fmt.Sprintf("online backup of %s needs archive logging, but LOGARCHMETH1 is %s", p.Database, orOff(cfg.LogArchMeth1))}
			}
			p.Mode = events.Offline
			note("archive logging is off (LOGARCHMETH1 %s): taking an offline backup as the policy allows", orOff(cfg.LogArchMeth1))
		}
		if len(p.Tablespaces) > 0 && !cfg.Recoverable() {
			return Plan{}, &Error{Class: events.Configuration, Reason: ReasonTablespaceNotLogged,
				Msg: fmt.Sprintf("table space backup of %s needs archive logging, but LOGARCHMETH1 is %s", p.Database, orOff(cfg.LogArchMeth1))}
		}
		if p.Type != events.Full {
			if !cfg.TrackMod {
				return Plan{}, &Error{Class: events.Configuration, Reason: ReasonTrackModOff,
					Msg: fmt.Sprintf("%s backup of %s needs TRACKMOD YES", p.Type, p.Database)}
			}
			if !hasFullPredecessor {
				note("no full backup to build a %s backup on: taking a full backup", p.Type)
				p.Type = events.Full
			}
		}
	}
	if p.IncludeLogs && p.Mode != events.Online {
		p.IncludeLogs = false
		note("include logs dropped: only online backups carry logs")
	}

	switch {
	case free < 0 || needed <= 0:
		note("free space not checked: free or needed size unknown")
	case free < needed:
		return Plan{}, &Error{Class: events.Configuration, Reason: ReasonInsufficientSpace,
			Msg: fmt.Sprintf("insufficient space in %s: %d bytes free, %d needed", p.TargetDir, free, needed)}
	}
	if p.Mode == events.Offline && apps > 0 {
		return Plan{}, &Error{Class: events.Transient, Reason: ReasonApplications,
			Msg: fmt.Sprintf("offline backup of %s needs no connected applications, %d connected", p.Database, apps)}
	}

	p.Commands = [][]string{p.backupCommand()}
	return p, nil
}

func (p Plan) backupCommand() []string {
	argv := []string{"db2", "backup", "database", p.Database}
	if p.Partitioned {
		argv = append(argv, "on", "all", "dbpartitionnums")
	}
	if len(p.Tablespaces) > 0 {
		argv = append(argv, "tablespace", "("+strings.Join(p.Tablespaces, ",")+")")
	}
	if p.Mode == events.Online {
		argv = append(argv, "online")
	}
	switch p.Type {
	case events.Incremental:
		argv = append(argv, "incremental")
	case events.Delta:
		argv = append(argv, "incremental", "delta")
	}
	argv = append(argv, "to", p.TargetDir)
	if p.Compress {
		argv = append(argv, "compress")
	}
	if p.Mode == events.Online {
		if p.IncludeLogs {
			argv = append(argv, "include", "logs")
		} else {
			argv = append(argv, "exclude", "logs")
		}
	}
	return append(argv, "without", "prompting")
}

func orOff(m string) string {
	if m == "" {
		return "OFF"
	}
	return m
}

func validate(r Request) error {
	var p []string
	if !dbAlias.MatchString(r.Database) {
		p = append(p, fmt.Sprintf("database %q is not a Db2 alias (1-8 characters)", truncate(r.Database)))
	}
	if r.Instance != "" && !instName.MatchString(r.Instance) {
		p = append(p, fmt.Sprintf("instance %q is not a Db2 instance name", truncate(r.Instance)))
	}
	if !r.Type.Valid() {
		p = append(p, fmt.Sprintf("type %q is not full, incremental or delta", truncate(string(r.Type))))
	}
	if !r.Mode.Valid() {
		p = append(p, fmt.Sprintf("mode %q is not online or offline", truncate(string(r.Mode))))
	}
	if !filepath.IsAbs(r.TargetDir) || unsafeDir.MatchString(r.TargetDir) {
		p = append(p, fmt.Sprintf("target directory %q must be absolute, without white space, quotes, commas or parentheses", truncate(r.TargetDir)))
	}
	seen := map[string]bool{}
	for _, ts := range r.Tablespaces {
		if !tsName.MatchString(ts) || seen[strings.ToUpper(ts)] {
			p = append(p, fmt.Sprintf("table space %q is not a valid or unique name", truncate(ts)))
		}
		seen[strings.ToUpper(ts)] = true
	}
	if len(p) == 0 {
		return nil
	}
	return &Error{Class: events.Permanent, Reason: ReasonInvalidRequest, Msg: strings.Join(p, "; ")}
}
