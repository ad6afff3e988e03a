package db2

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// RestoreRequest is one Db2 restore to plan: images already in Dir under their Db2 names.
type RestoreRequest struct {
	// Source is the alias of the database the images are of.
	Source string
	// Into is the alias of the database restored into: Source (in place) when empty or equal,
	// else a new database, created by the restore (RESTORE ... INTO).
	Into string
	// Dir is the absolute directory holding the images (FROM).
	Dir string
	// Target is the timestamp of the last image of the chain (TAKEN AT).
	Target string
	// Incremental restores a chain of several images (INCREMENTAL AUTOMATIC).
	Incremental bool
	// LogTarget, for an image that includes logs, is the absolute directory its log files are
	// extracted to (LOGTARGET); the roll-forward reads them there (OVERFLOW LOG PATH).
	LogTarget string
	// Replace overwrites an existing database (REPLACE EXISTING).
	Replace bool
	// WithoutRollForward leaves the database as of the image (WITHOUT ROLLING FORWARD): offline
	// images only.
	WithoutRollForward bool
	// Online is true when the target image was taken online (which needs a roll-forward).
	Online bool
	// StoragePaths, when set, redirects the restore: the storage group IBMSTOGROUP gets these
	// absolute paths (REDIRECT, SET STOGROUP PATHS, RESTORE ... CONTINUE).
	StoragePaths []string
	// PointInTime is the roll-forward's stop time; zero rolls forward to the end of the logs.
	PointInTime time.Time
	// Partitions, for a partitioned database, are its database partitions in restore order,
	// the catalog partition first: each is restored on its partition (SET CLIENT
	// CONNECT_DBPARTITIONNUM n, then RESTORE), and the roll-forward runs ON ALL DBPARTITIONNUMS.
	// In place only, not redirected.
	Partitions []int
	// Tablespaces, when set, restores only these table spaces, online, from the image
	// (RESTORE ... TABLESPACE (...) ONLINE), then rolls them forward to the end of the logs
	// (ROLLFORWARD ... AND STOP TABLESPACE (...) ONLINE). In place only, not redirected, no
	// point in time.
	Tablespaces []string
}

// RestoreCommands are the argument vectors of a restore, in order.
type RestoreCommands struct {
	// Restore is RESTORE DATABASE, followed for a redirected restore by SET STOGROUP PATHS and
	// RESTORE ... CONTINUE.
	Restore [][]string `json:"restore"`
	// Abort cleans up after Restore failed part way (an incremental or redirected restore): Db2
	// leaves the database restore pending until it runs. Nil when nothing needs it.
	Abort []string `json:"abort,omitempty"`
	// RollForward is ROLLFORWARD DATABASE ... AND STOP, nil WITHOUT ROLLING FORWARD. Run it when
	// Db2 left the database rollforward pending.
	RollForward []string `json:"roll_forward,omitempty"`
}

// StorageGroup is the storage group a redirected restore moves: Db2's default one.
const StorageGroup = "IBMSTOGROUP"

// RollForwardTime formats t for ROLLFORWARD ... TO <time> USING UTC TIME.
func RollForwardTime(t time.Time) string { return t.UTC().Format("2006-01-02-15.04.05.000000") }

// PlanRestore returns the commands of a restore, as a pure function of the request. A
// malformed request (aliases, paths with white space or quotes, WITHOUT ROLLING FORWARD of an
// online image or with a point in time) is an *Error of class permanent (invalid-request).
//
//	db2 restore database <src> [incremental automatic] from <dir> taken at <ts> [into <new>]
//	    [logtarget <dir>] [replace existing] [redirect] [without rolling forward] without prompting
//	db2 set stogroup paths for IBMSTOGROUP on '<path>', ...           (redirected)
//	db2 restore database <src> continue                                (redirected)
//	db2 rollforward database <db> to end of logs|<time> using utc time and stop
//	    [overflow log path (<logtarget>)]
func PlanRestore(req RestoreRequest) (RestoreCommands, error) {
	var p []string
	into := req.Into
	if into == "" {
		into = req.Source
	}
	if !dbAlias.MatchString(req.Source) || !dbAlias.MatchString(into) {
		p = append(p, fmt.Sprintf("databases %q and %q must be Db2 aliases", truncate(req.Source), truncate(into)))
	}
	for _, d := range append([]string{req.Dir, req.LogTarget}, req.StoragePaths...) {
		if d == req.LogTarget && d == "" {
			continue
		}
		if !filepath.IsAbs(d) || unsafeDir.MatchString(d) {
			p = append(p, fmt.Sprintf("path %q must be absolute, without white space, quotes, commas or parentheses", truncate(d)))
		}
	}
	if !ValidTimestamp(req.Target) {
		p = append(p, fmt.Sprintf("image timestamp %q is not yyyymmddhhmmss", truncate(req.Target)))
	}
	if req.WithoutRollForward && (req.Online || !req.PointInTime.IsZero()) {
		p = append(p, "WITHOUT ROLLING FORWARD restores an offline image as it is: not an online image, not to a point in time")
	}
	inPlace := req.Into == "" || strings.EqualFold(req.Into, req.Source)
	if (len(req.Partitions) > 0 || len(req.Tablespaces) > 0) && (!inPlace || len(req.StoragePaths) > 0) {
		p = append(p, "a restore of a partitioned database or of table spaces is in place and not redirected")
	}
	if len(req.Tablespaces) > 0 && (!req.PointInTime.IsZero() || req.WithoutRollForward) {
		p = append(p, "restored table spaces roll forward to the end of the logs")
	}
	for _, ts := range req.Tablespaces {
		if !tsName.MatchString(ts) {
			p = append(p, fmt.Sprintf("table space %q is not a valid name", truncate(ts)))
		}
	}
	for _, n := range req.Partitions {
		if n < 0 || n > 999 {
			p = append(p, fmt.Sprintf("partition %d is not 0-999", n))
		}
	}
	if len(p) > 0 {
		return RestoreCommands{}, &Error{Class: events.Permanent, Reason: ReasonInvalidRequest, Msg: strings.Join(p, "; ")}
	}
	src, into := strings.ToUpper(req.Source), strings.ToUpper(into)
	argv := []string{"db2", "restore", "database", src}
	list := "(" + strings.ToUpper(strings.Join(req.Tablespaces, ",")) + ")"
	if len(req.Tablespaces) > 0 {
		argv = append(argv, "tablespace", list, "online")
	}
	if req.Incremental {
		argv = append(argv, "incremental", "automatic")
	}
	argv = append(argv, "from", filepath.Clean(req.Dir), "taken", "at", req.Target)
	if into != src {
		argv = append(argv, "into", into)
	}
	if req.LogTarget != "" {
		argv = append(argv, "logtarget", filepath.Clean(req.LogTarget))
	}
	if req.Replace && len(req.Tablespaces) == 0 { // table spaces are restored into the database as it is
		argv = append(argv, "replace", "existing")
	}
	redirect := len(req.StoragePaths) > 0
	if redirect {
		argv = append(argv, "redirect")
	}
	if req.WithoutRollForward {
		argv = append(argv, "without", "rolling", "forward")
	}
	c := RestoreCommands{Restore: [][]string{append(argv, "without", "prompting")}}
	if len(req.Partitions) > 0 {
		// The catalog partition first, then the others, each on its own partition.
		one := c.Restore[0]
		c.Restore = nil
		for _, n := range req.Partitions {
			c.Restore = append(c.Restore, []string{"db2", "set", "client", "connect_dbpartitionnum", strconv.Itoa(n)}, one)
		}
	}
	if redirect {
		paths := make([]string, len(req.StoragePaths))
		for i, sp := range req.StoragePaths {
			paths[i] = "'" + filepath.Clean(sp) + "'"
		}
		c.Restore = append(c.Restore, []string{"db2", "set", "stogroup", "paths", "for", StorageGroup, "on", strings.Join(paths, ", ")},
			[]string{"db2", "restore", "database", src, "continue"})
	}
	switch {
	case req.Incremental:
		c.Abort = []string{"db2", "restore", "database", src, "incremental", "abort"}
	case redirect:
		c.Abort = []string{"db2", "restore", "database", src, "abort"}
	}
	if !req.WithoutRollForward {
		rf := []string{"db2", "rollforward", "database", into, "to", "end", "of", "logs", "and", "stop"}
		if !req.PointInTime.IsZero() {
			rf = []string{"db2", "rollforward", "database", into, "to", RollForwardTime(req.PointInTime), "using", "utc", "time", "and", "stop"}
		}
		if len(req.Partitions) > 0 {
			rf = slices.Insert(rf, len(rf)-2, "on", "all", "dbpartitionnums")
		}
		if len(req.Tablespaces) > 0 {
			rf = append(rf, "tablespace", list, "online")
		}
		if req.LogTarget != "" {
			rf = append(rf, "overflow", "log", "path", "("+filepath.Clean(req.LogTarget)+")")
		}
		c.RollForward = rf
	}
	return c, nil
}

// RollforwardStatus is what ROLLFORWARD DATABASE printed of its status.
type RollforwardStatus struct {
	// Status is "not pending", "DB pending", "DB working", ...
	Status string `json:"status"`
	// LastCommitted is the time of the last transaction the roll-forward replayed (UTC).
	LastCommitted time.Time `json:"last_committed,omitzero"`
	NextLog       string    `json:"next_log,omitempty"`
	Processed     string    `json:"processed,omitempty"`
}

var rfField = regexp.MustCompile(`(?m)^\s*(Rollforward status|Last committed transaction|Next log file to be read|Log files processed)\s*=[ \t]*(.*?)\s*$`)

// ParseRollforward reads the output of ROLLFORWARD DATABASE: the "Rollforward Status" block
// (status, next log, logs processed, last committed transaction) and the DB20000I completion
// message. A Db2 error message (SQL4970N: logs missing, SQL1275N: a stop time before the image,
// SQL1260N: not pending) returns its *Error; output with neither is unrecognised.
func ParseRollforward(out string) (RollforwardStatus, error) {
	if len(out) > maxOutput {
		return RollforwardStatus{}, unrecognised("rollforward", "output larger than %d bytes", maxOutput)
	}
	if e := outputError(out); e != nil {
		return RollforwardStatus{}, e
	}
	var st RollforwardStatus
	for _, m := range rfField.FindAllStringSubmatch(out, -1) {
		switch m[1] {
		case "Rollforward status":
			st.Status = m[2]
		case "Next log file to be read":
			st.NextLog = m[2]
		case "Log files processed":
			st.Processed = strings.TrimSpace(m[2])
		case "Last committed transaction":
			v := strings.TrimSpace(strings.TrimSuffix(m[2], "UTC"))
			if v == "" {
				continue
			}
			t, err := time.Parse("2006-01-02-15.04.05.000000", v)
			if err != nil {
				return RollforwardStatus{}, unrecognised("rollforward", "last committed transaction %q", truncate(m[2]))
			}
			st.LastCommitted = t
		}
	}
	if st.Status == "" || !strings.Contains(out, "DB20000I") {
		return RollforwardStatus{}, unrecognised("rollforward", "no status block and completion message")
	}
	return st, nil
}

var (
	recordsSelected = regexp.MustCompile(`(?m)^\s*(\d+) record\(s\) selected\.\s*$`)
)

// QueryResult is what the CLP printed for an SQL query.
type QueryResult struct {
	// Rows is the "n record(s) selected." count.
	Rows int `json:"rows"`
	// First is the first row's values, as printed (columns split on white space).
	First []string `json:"first,omitempty"`
}

// ParseQuery reads the CLP's output of a query: column headings, a rule of dashes, the rows,
// then "n record(s) selected.". A Db2 error message returns its *Error (SQL0204N: no such
// table, SQL1024N: not connected); output without the count is unrecognised. Warnings (SQL0100W:
// no row) are not errors.
func ParseQuery(out string) (QueryResult, error) {
	if len(out) > maxOutput {
		return QueryResult{}, unrecognised("query", "output larger than %d bytes", maxOutput)
	}
	if e := outputError(out); e != nil {
		return QueryResult{}, e
	}
	m := recordsSelected.FindStringSubmatch(out)
	if m == nil {
		return QueryResult{}, unrecognised("query", "no \"record(s) selected.\" line")
	}
	var r QueryResult
	r.Rows, _ = strconv.Atoi(m[1])
	lines := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t != "" && strings.Trim(t, "- ") == "" && i+1 < len(lines) && r.Rows > 0 {
			r.First = strings.Fields(lines[i+1])
			break
		}
	}
	return r, nil
}

// OpArchiveLog is the operation of an archived log file in the recovery history (LIST HISTORY
// ARCHIVE LOG).
const OpArchiveLog = "X"

// NewestArchivedLog returns the archived log whose records end last (End Time), from the
// output of LIST HISTORY ARCHIVE LOG; ok is false when none is listed.
func (h History) NewestArchivedLog() (e HistoryEntry, end time.Time, ok bool) {
	for _, x := range h.Entries {
		if x.Op != OpArchiveLog || x.Failed() || x.End == "" {
			continue
		}
		t, err := time.Parse(TimestampLayout, x.End)
		if err == nil && (!ok || t.After(end)) {
			e, end, ok = x, t, true
		}
	}
	return e, end, ok
}
