package db2

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/keyguard-dev/keyguard/events"
)

// Operations and objects of the recovery history file, as LIST HISTORY prints them (Op, Obj).
const (
	OpBackup  = "B"
	OpRestore = "R"

	ObjDatabase   = "D"
	ObjTablespace = "P"
)

// maxHistoryEntries bounds what ParseHistory accepts (output is at most maxOutput bytes anyway).
const maxHistoryEntries = 100000

// HistoryEntry is one entry of the recovery history file as `db2 list history` prints it:
//
//	Op Obj Timestamp+Sequence Type Dev Earliest Log Current Log  Backup ID
//	-- --- ------------------ ---- --- ------------ ------------ --------------
//	 B  D  20261124020009001    N    D  S0000101.LOG S0000101.LOG
//	----------------------------------------------------------------------------
//	 Contains 2 tablespace(s):
//	00001 SYSCATSPACE
//	00002 USERSPACE1
//	----------------------------------------------------------------------------
//	   Comment: DB2 BACKUP SALES ONLINE
//	Start Time: 20261124020009
//	  End Time: 20261124024107
//	    Status: A
//	----------------------------------------------------------------------------
//	 EID: 211 Location: /db2backup
//
// followed, for an operation that failed, by an "SQLCA Information" block whose sqlcode is
// negative.
type HistoryEntry struct {
	// Op is the operation: B backup, R restore, L load, G reorg, ... (one letter).
	Op string `json:"op"`
	// Object is what it acted on: D database, P table space, T table, ... (one letter).
	Object string `json:"object"`
	// Timestamp is the operation's timestamp (yyyymmddhhmmss, the server's local time): for a
	// backup, the image timestamp. Sequence numbers the files of one backup (0 when printed
	// without one).
	Timestamp string `json:"timestamp"`
	Sequence  int    `json:"sequence,omitempty"`
	// TypeCode is the Type column: for backups and restores F offline, N online, I incremental
	// offline, O incremental online, D delta offline, E delta online (R rebuild for restores).
	TypeCode string `json:"type_code,omitempty"`
	// Type and Mode are TypeCode read for a backup or restore; empty when it is none of the six.
	Type     events.BackupType `json:"type,omitempty"`
	Mode     events.Mode       `json:"mode,omitempty"`
	Device   string            `json:"device,omitempty"`
	FirstLog string            `json:"first_log,omitempty"`
	LastLog  string            `json:"last_log,omitempty"`
	// BackupID is, for a restore, the timestamp of the image restored.
	BackupID    string   `json:"backup_id,omitempty"`
	Tablespaces []string `json:"tablespaces,omitempty"`
	Comment     string   `json:"comment,omitempty"`
	Start       string   `json:"start,omitempty"`
	End         string   `json:"end,omitempty"`
	// Status is A active, I inactive, E expired, D deleted, X do not delete, ...
	Status   string `json:"status,omitempty"`
	EID      int64  `json:"eid,omitempty"`
	Location string `json:"location,omitempty"`
	// SQLCode is the sqlcode of the SQLCA block of a failed operation (0 when none).
	SQLCode int `json:"sqlcode,omitempty"`
}

// Failed reports whether the operation failed (its SQLCA carries a negative sqlcode).
func (e HistoryEntry) Failed() bool { return e.SQLCode < 0 }

// IsBackup reports whether e is a backup that produced an image.
func (e HistoryEntry) IsBackup() bool { return e.Op == OpBackup && !e.Failed() }

// History is the parsed output of `db2 list history backup ...`: the entries in the order
// listed, which is the history file's order (oldest first).
type History struct {
	Database string         `json:"database"`
	Entries  []HistoryEntry `json:"entries"`
}

var (
	historyTitle   = regexp.MustCompile(`(?m)^\s*List History File for\s+(\S+)\s*$`)
	historyCount   = regexp.MustCompile(`(?m)^\s*Number of matching file entries\s*=\s*(\d+)\s*$`)
	historyLog     = regexp.MustCompile(`^[SC]\d{7}\.LOG$`)
	historyTSName  = regexp.MustCompile(`^\d{5}\s+(\S+)$`)
	historyField   = regexp.MustCompile(`^(Comment|Start Time|End Time|Status|EID):\s?(.*)$`)
	historyEID     = regexp.MustCompile(`^(\d+)(?:\s+Location:\s?(.*))?$`)
	historySQLCode = regexp.MustCompile(`sqlcode:\s*(-?\d+)`)
)

// backupTypes reads the Type column of a backup or restore.
var backupTypes = map[string]struct {
	typ  events.BackupType
	mode events.Mode
}{
	"F": {events.Full, events.Offline}, "N": {events.Full, events.Online},
	"I": {events.Incremental, events.Offline}, "O": {events.Incremental, events.Online},
	"D": {events.Delta, events.Offline}, "E": {events.Delta, events.Online},
}

// ParseHistory reads `db2 list history backup all for <db>` (or `... since <timestamp> for
// <db>`) output: the title, "Number of matching file entries = N", then N entries (see
// HistoryEntry). The count must match the entries found, so a listing cut short is an error,
// not a shorter history. Entries of other operations are kept with what their row says. A Db2
// error message returns its *Error; anything else unexpected is unrecognised output.
func ParseHistory(out string) (History, error) {
	if len(out) > maxOutput {
		return History{}, unrecognised("list history", "output larger than %d bytes", maxOutput)
	}
	out = strings.ReplaceAll(out, "\r", "")
	if e := outputError(out); e != nil {
		return History{}, e
	}
	m := historyCount.FindStringSubmatch(out)
	if m == nil {
		return History{}, unrecognised("list history", "no %q line", "Number of matching file entries =")
	}
	want, err := strconv.Atoi(m[1])
	if err != nil || want > maxHistoryEntries {
		return History{}, unrecognised("list history", "%s matching entries", truncate(m[1]))
	}
	h := History{Entries: []HistoryEntry{}}
	if t := historyTitle.FindStringSubmatch(out); t != nil {
		h.Database = t[1]
	}
	lines := strings.Split(out, "\n")
	var cur *HistoryEntry
	inTablespaces := false
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if strings.HasPrefix(line, "Op Obj Timestamp+Sequence") {
			// The header, a rule of dashes, then the entry's row.
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
				j++
			}
			if j >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[j]), "--") {
				return History{}, unrecognised("list history", "no rule under the header of entry %d", len(h.Entries)+1)
			}
			for j++; j < len(lines) && strings.TrimSpace(lines[j]) == ""; j++ {
			}
			if j >= len(lines) {
				return History{}, unrecognised("list history", "entry %d has no row", len(h.Entries)+1)
			}
			e, err := historyRow(lines[j])
			if err != nil {
				return History{}, err
			}
			if len(h.Entries) == want {
				return History{}, unrecognised("list history", "more entries than the %d announced", want)
			}
			h.Entries = append(h.Entries, e)
			cur, inTablespaces, i = &h.Entries[len(h.Entries)-1], false, j
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "Contains ") && strings.HasSuffix(line, "tablespace(s):"):
			inTablespaces = true
		case strings.HasPrefix(line, "--"):
			inTablespaces = false
		case inTablespaces && historyTSName.MatchString(line):
			if len(cur.Tablespaces) < maxTablespaceNames {
				cur.Tablespaces = append(cur.Tablespaces, historyTSName.FindStringSubmatch(line)[1])
			}
		case historyField.MatchString(line):
			f := historyField.FindStringSubmatch(line)
			if err := cur.field(f[1], strings.TrimSpace(f[2])); err != nil {
				return History{}, err
			}
		case historySQLCode.MatchString(line):
			code, err := strconv.Atoi(historySQLCode.FindStringSubmatch(line)[1])
			if err != nil {
				return History{}, unrecognised("list history", "sqlcode in %q", truncate(line))
			}
			cur.SQLCode = code
		}
	}
	if len(h.Entries) != want {
		return History{}, unrecognised("list history", "%d entries listed, %d announced (output cut short?)", len(h.Entries), want)
	}
	return h, nil
}

// maxTablespaceNames bounds the table spaces kept per entry.
const maxTablespaceNames = 4096

// historyRow reads the row under the header: Op, Obj and Timestamp+Sequence, then for most
// operations the Type, the device (blank for a restore), the earliest and current log files and
// a backup ID. Columns can be blank, so the row is read by the shape of its fields: single
// letters for Type and Dev, S0000000.LOG names for logs.
func historyRow(row string) (HistoryEntry, error) {
	f := strings.Fields(row)
	bad := func(why string) (HistoryEntry, error) {
		return HistoryEntry{}, unrecognised("list history", "row %q: %s", truncate(strings.TrimSpace(row)), why)
	}
	if len(f) < 3 {
		return bad("fewer than three columns")
	}
	letter := func(s string) bool { return len(s) == 1 && (s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') }
	if !letter(f[0]) || !letter(f[1]) {
		return bad("Op and Obj must be one letter each")
	}
	e := HistoryEntry{Op: f[0], Object: f[1]}
	ts := f[2]
	switch {
	case len(ts) == 17 && allDigits(ts):
		e.Timestamp, e.Sequence = ts[:14], atoi(ts[14:])
	case len(ts) == 14 && allDigits(ts):
		e.Timestamp = ts
	default:
		return bad("Timestamp+Sequence must be 14 or 17 digits")
	}
	if !ValidTimestamp(e.Timestamp) {
		return bad("the timestamp is not a time")
	}
	rest := f[3:]
	if len(rest) > 0 && len(rest[0]) == 1 {
		e.TypeCode, rest = rest[0], rest[1:]
		if len(rest) > 0 && len(rest[0]) == 1 {
			e.Device, rest = rest[0], rest[1:]
		}
	}
	for len(rest) > 0 && historyLog.MatchString(rest[0]) {
		if e.FirstLog == "" {
			e.FirstLog = rest[0]
		} else if e.LastLog == "" {
			e.LastLog = rest[0]
		}
		rest = rest[1:]
	}
	if len(rest) > 1 {
		return bad("unexpected columns after the logs")
	}
	if len(rest) == 1 {
		e.BackupID = rest[0]
	}
	if e.Op == OpBackup || e.Op == OpRestore {
		if t, ok := backupTypes[e.TypeCode]; ok {
			e.Type, e.Mode = t.typ, t.mode
		} else if e.Op == OpBackup {
			return bad(fmt.Sprintf("backup type %q is not F, N, I, O, D or E", e.TypeCode))
		}
	}
	return e, nil
}

func (e *HistoryEntry) field(name, value string) error {
	stamp := func() (string, error) {
		if value != "" && !ValidTimestamp(value) {
			return "", unrecognised("list history", "%s %q is not yyyymmddhhmmss", name, truncate(value))
		}
		return value, nil
	}
	var err error
	switch name {
	case "Comment":
		e.Comment = truncate(value)
	case "Start Time":
		e.Start, err = stamp()
	case "End Time":
		e.End, err = stamp()
	case "Status":
		e.Status = truncate(value)
	case "EID":
		m := historyEID.FindStringSubmatch(value)
		if m == nil {
			return unrecognised("list history", "EID %q", truncate(value))
		}
		if e.EID, err = strconv.ParseInt(m[1], 10, 64); err != nil {
			return unrecognised("list history", "EID %q", truncate(value))
		}
		e.Location = strings.TrimSpace(m[2])
		if len(e.Location) > 1024 {
			e.Location = e.Location[:1024]
		}
	}
	return err
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Backups returns the backups that produced an image (failed ones left out), one per image
// timestamp (the entries of further sequences, one per file, folded into the first), in the
// order listed.
func (h History) Backups() []HistoryEntry {
	var out []HistoryEntry
	seen := map[string]bool{}
	for _, e := range h.Entries {
		if !e.IsBackup() || seen[e.Timestamp] {
			continue
		}
		seen[e.Timestamp] = true
		out = append(out, e)
	}
	return out
}

// Base returns the image Db2 builds a new backup of type t on: for an incremental the latest
// full backup in the history, for a delta the latest backup of any type; ok is false for a
// full, or when the history holds no such backup. "Latest" is the order of the history file.
// Db2 tracks changed pages per table space, so a backup of any object (the database, or some of
// its table spaces) can be what the next one builds on, at least in part: Base does not filter by
// object, and a caller whose backups are of another object must not build on the result.
func (h History) Base(t events.BackupType) (HistoryEntry, bool) {
	if t != events.Incremental && t != events.Delta {
		return HistoryEntry{}, false
	}
	b := h.Backups()
	for i := len(b) - 1; i >= 0; i-- {
		if e := b[i]; t == events.Delta || e.Type == events.Full {
			return e, true
		}
	}
	return HistoryEntry{}, false
}

// RestoredAfter reports whether a restore that did not fail is listed after the backup taken at
// timestamp ts (or at all, when ts is not listed).
func (h History) RestoredAfter(ts string) bool {
	after := true
	for _, e := range h.Entries {
		if e.Op == OpBackup && e.Timestamp == ts {
			after = false
			continue
		}
		if e.Op == OpRestore && !e.Failed() && !after {
			return true
		}
	}
	// Not listed: any restore counts.
	if after {
		for _, e := range h.Entries {
			if e.Op == OpRestore && !e.Failed() {
				return true
			}
		}
	}
	return false
}

// ListHistory runs `db2 list history backup all for <database>`, or `... since <since> for
// <database>` when since is a timestamp (or a prefix of one, at least yyyy), and parses it.
func ListHistory(ctx context.Context, r Runner, database, since string) (History, error) {
	if !dbAlias.MatchString(database) {
		return History{}, &Error{Class: events.Permanent, Reason: ReasonInvalidRequest,
			Msg: fmt.Sprintf("database %q is not a Db2 alias", truncate(database))}
	}
	argv := []string{"db2", "list", "history", "backup", "all", "for", database}
	if since != "" {
		if len(since) < 4 || len(since) > 14 || !allDigits(since) {
			return History{}, &Error{Class: events.Permanent, Reason: ReasonInvalidRequest,
				Msg: fmt.Sprintf("since %q is not a timestamp prefix (yyyy to yyyymmddhhmmss)", truncate(since))}
		}
		argv = []string{"db2", "list", "history", "backup", "since", since, "for", database}
	}
	out, err := run(ctx, r, argv...)
	if err != nil {
		return History{}, err
	}
	h, err := ParseHistory(out)
	if err != nil {
		return History{}, fmt.Errorf("list history for %s: %w", database, err)
	}
	return h, nil
}
