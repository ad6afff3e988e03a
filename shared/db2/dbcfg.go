package db2

import (
	"regexp"
	"strconv"
	"strings"
)

// DBConfig is what PlanBackup needs from `db2 get db cfg for <db>`.
type DBConfig struct {
	// Database is the name from the heading "Database Configuration for Database <name>".
	Database string `json:"database"`
	// LogArchMeth1 and LogArchMeth2 are the archive methods as printed: OFF, LOGRETAIN, USEREXIT,
	// DISK:<path>, TSM:<mgmt class>, VENDOR:<library>.
	LogArchMeth1 string `json:"logarchmeth1"`
	LogArchMeth2 string `json:"logarchmeth2,omitempty"`
	// TrackMod is TRACKMOD (YES, or ON in old releases): incremental and delta backups possible.
	TrackMod bool `json:"trackmod"`
	// BackupPending, RollforwardPending and RestorePending are the status lines of the same names.
	BackupPending      bool `json:"backup_pending"`
	RollforwardPending bool `json:"rollforward_pending"`
	// Rollforward is the raw value (NO, DATABASE, TABLESPACE).
	Rollforward    string `json:"rollforward,omitempty"`
	RestorePending bool   `json:"restore_pending"`
	// Encrypted is the "Encrypted database" status line (Db2 11.1 and later; false when absent).
	Encrypted bool `json:"encrypted"`
	// LogPrimary, LogSecond (-1: infinite logging) and LogFilSiz (4 KiB pages) size the active log.
	LogPrimary int `json:"logprimary"`
	LogSecond  int `json:"logsecond"`
	LogFilSiz  int `json:"logfilsiz"`
	// FirstActiveLog is the "First active log file" status line (S0000123.LOG): archived log
	// files are below it, the active log path holds it and the later ones. Empty when absent.
	FirstActiveLog string `json:"first_active_log,omitempty"`
	// AutoDelRecObj is AUTO_DEL_REC_OBJ=ON: Db2 deletes archived logs, backup images and
	// load copies with the recovery history entries it prunes (NUM_DB_BACKUPS,
	// REC_HIS_RETENTN). False when absent.
	AutoDelRecObj bool `json:"auto_del_rec_obj,omitempty"`
	// Params holds every parameter with a name in parentheses, keyed by that name in upper case.
	Params map[string]string `json:"params"`
}

// Recoverable reports whether the database archives its logs (LOGARCHMETH1 or LOGARCHMETH2 not
// OFF), which online and table space backups need.
func (c DBConfig) Recoverable() bool {
	return archiving(c.LogArchMeth1) || archiving(c.LogArchMeth2)
}

func archiving(m string) bool { return m != "" && !strings.EqualFold(m, "OFF") }

// ActiveLogBytes is the most space the active log can take: (LOGPRIMARY + LOGSECOND) files of
// LOGFILSIZ 4 KiB pages; with infinite logging (LOGSECOND -1) only the primary files count.
func (c DBConfig) ActiveLogBytes() int64 {
	files := int64(max(c.LogPrimary, 0))
	if c.LogSecond > 0 {
		files += int64(c.LogSecond)
	}
	return files * int64(max(c.LogFilSiz, 0)) * 4096
}

var (
	cfgHeading = regexp.MustCompile(`Database Configuration for Database\s+(\S+)`)
)

// maxOutput bounds the command output the parsers look at; Db2's listings are far smaller.
const maxOutput = 1 << 20

// ParseDBConfig parses `db2 get db cfg for <db>` output (without SHOW DETAIL): lines of the form
//
//	<description> [(<PARAMETER>)] = <value>
//
// LOGARCHMETH1, TRACKMOD and the "Backup pending" line are required; LOGPRIMARY, LOGSECOND and
// LOGFILSIZ are read when present. Output carrying a Db2 error message (e.g. SQL1013N, database
// not found) returns that message's *Error.
func ParseDBConfig(out string) (DBConfig, error) {
	if len(out) > maxOutput {
		return DBConfig{}, unrecognised("db cfg", "output larger than %d bytes", maxOutput)
	}
	if e := outputError(out); e != nil {
		return DBConfig{}, e
	}
	cfg := DBConfig{Params: map[string]string{}}
	if m := cfgHeading.FindStringSubmatch(out); m != nil {
		cfg.Database = m[1]
	}
	status := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		left, value, ok := cfgLine(line)
		if !ok {
			continue
		}
		if name, ok := paramName(left); ok {
			cfg.Params[name] = value
			continue
		}
		status[strings.ToLower(left)] = value
	}
	var missing []string
	need := func(v string, ok bool, name string) string {
		if !ok {
			missing = append(missing, name)
		}
		return v
	}
	meth1, ok1 := cfg.Params["LOGARCHMETH1"]
	cfg.LogArchMeth1 = need(meth1, ok1, "LOGARCHMETH1")
	cfg.LogArchMeth2 = cfg.Params["LOGARCHMETH2"]
	track, okT := cfg.Params["TRACKMOD"]
	need(track, okT, "TRACKMOD")
	pending, okP := status["backup pending"]
	need(pending, okP, `"Backup pending"`)
	if len(missing) > 0 {
		return DBConfig{}, unrecognised("db cfg", "missing %s", strings.Join(missing, ", "))
	}
	var err error
	if cfg.TrackMod, err = yesNo("TRACKMOD", track); err != nil {
		return DBConfig{}, err
	}
	if cfg.BackupPending, err = yesNo("Backup pending", pending); err != nil {
		return DBConfig{}, err
	}
	if v, ok := status["restore pending"]; ok {
		if cfg.RestorePending, err = yesNo("Restore pending", v); err != nil {
			return DBConfig{}, err
		}
	}
	if v, ok := status["encrypted database"]; ok {
		if cfg.Encrypted, err = yesNo("Encrypted database", v); err != nil {
			return DBConfig{}, err
		}
	}
	if v, ok := status["rollforward pending"]; ok {
		switch up := strings.ToUpper(v); up {
		case "NO":
		case "DATABASE", "TABLESPACE", "YES":
			cfg.RollforwardPending = true
		default:
			return DBConfig{}, unrecognised("db cfg", "Rollforward pending = %q", v)
		}
		cfg.Rollforward = strings.ToUpper(v)
	}
	if v, ok := status["first active log file"]; ok && v != "" {
		if !historyLog.MatchString(v) {
			return DBConfig{}, unrecognised("db cfg", "First active log file = %q", truncate(v))
		}
		cfg.FirstActiveLog = v
	}
	if v, ok := cfg.Params["AUTO_DEL_REC_OBJ"]; ok {
		switch strings.ToUpper(v) {
		case "ON":
			cfg.AutoDelRecObj = true
		case "OFF", "":
		default:
			return DBConfig{}, unrecognised("db cfg", "AUTO_DEL_REC_OBJ = %q", truncate(v))
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"LOGPRIMARY", &cfg.LogPrimary}, {"LOGSECOND", &cfg.LogSecond}, {"LOGFILSIZ", &cfg.LogFilSiz}} {
		name, dst := p.name, p.dst
		v, ok := cfg.Params[name]
		if !ok {
			continue
		}
		if *dst, err = cfgInt(name, v); err != nil {
			return DBConfig{}, err
		}
	}
	return cfg, nil
}

// cfgLine splits "<left> = <value>" (the value may be empty: "... (ALT_COLLATE) =").
func cfgLine(line string) (left, value string, ok bool) {
	line = strings.TrimRight(line, "\r \t")
	i := strings.Index(line, " =")
	for i >= 0 && i+2 < len(line) && line[i+2] != ' ' {
		j := strings.Index(line[i+2:], " =")
		if j < 0 {
			return "", "", false
		}
		i += 2 + j
	}
	if i < 0 {
		return "", "", false
	}
	left = strings.TrimSpace(line[:i])
	if left == "" {
		return "", "", false
	}
	return left, strings.TrimSpace(line[i+2:]), true
}

// paramName returns NAME from "<description> (NAME)".
func paramName(left string) (string, bool) {
	if !strings.HasSuffix(left, ")") {
		return "", false
	}
	i := strings.LastIndexByte(left, '(')
	if i < 0 {
		return "", false
	}
	name := left[i+1 : len(left)-1]
	if name == "" {
		return "", false
	}
	for j := 0; j < len(name); j++ {
		if c := name[j]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "", false
		}
	}
	return name, true
}

func yesNo(name, v string) (bool, error) {
	switch strings.ToUpper(v) {
	case "YES", "ON":
		return true, nil
	case "NO", "OFF":
		return false, nil
	}
	return false, unrecognised("db cfg", "%s = %q, want YES or NO", name, v)
}

// cfgInt reads an integer parameter, accepting AUTOMATIC(<n>).
func cfgInt(name, v string) (int, error) {
	s := v
	if rest, ok := strings.CutPrefix(strings.ToUpper(s), "AUTOMATIC("); ok {
		s = strings.TrimSuffix(rest, ")")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 || n > 1<<30 {
		return 0, unrecognised("db cfg", "%s = %q is not a number", name, v)
	}
	return n, nil
}

// ArchiveTarget splits a log archive method (LOGARCHMETH1 or 2) into its kind and target:
// "DISK:/db2/archive/" is ("DISK", "/db2/archive/"), "DB2REMOTE://alias//logs" is
// ("DB2REMOTE", "alias//logs"), "TSM:STANDARD" is ("TSM", "STANDARD"), "OFF" and "LOGRETAIN" are
// themselves with no target. The kind is in upper case.
func ArchiveTarget(method string) (kind, target string) {
	kind, target, _ = strings.Cut(method, ":")
	kind = strings.ToUpper(strings.TrimSpace(kind))
	if kind == "DB2REMOTE" {
		target = strings.TrimPrefix(target, "//")
	}
	return kind, target
}
