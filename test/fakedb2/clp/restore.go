package clp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// restoreCmd is a parsed RESTORE DATABASE command.
type restoreCmd struct {
	db, dir, ts, into           string
	incr, auto                  bool
	replace, withoutRollForward bool
}

// parseRestore reads `<db> [incremental [automatic|auto]] [from <dir>] [taken at <ts>]
// [into <db>] [replace existing] [without rolling forward] [without prompting]`, options in any
// order, keywords in any case. On a syntax error it returns the unexpected token and the one
// before it, as SQL0104N names them.
func parseRestore(tok []string) (restoreCmd, string, string) {
	var r restoreCmd
	if len(tok) == 0 {
		return r, "END-OF-STATEMENT", "DATABASE"
	}
	r.db = tok[0]
	prev := tok[0]
	for i := 1; i < len(tok); i++ {
		t := strings.ToLower(tok[i])
		next := func() (string, bool) {
			if i+1 < len(tok) {
				i++
				return tok[i], true
			}
			return "", false
		}
		word := func(want ...string) (string, bool) {
			w, ok := next()
			if !ok {
				return "END-OF-STATEMENT", false
			}
			return w, slices.Contains(want, strings.ToLower(w))
		}
		switch t {
		case "incremental":
			r.incr = true
			if i+1 < len(tok) && slices.Contains([]string{"automatic", "auto"}, strings.ToLower(tok[i+1])) {
				r.auto = true
				i++
			}
		case "from", "into":
			w, ok := next()
			if !ok {
				return r, "END-OF-STATEMENT", tok[i]
			}
			if t == "from" {
				r.dir = w
			} else {
				r.into = w
			}
		case "taken":
			if w, ok := word("at"); !ok {
				return r, w, tok[i]
			}
			w, ok := next()
			if !ok {
				return r, "END-OF-STATEMENT", "AT"
			}
			r.ts = w
		case "replace":
			if w, ok := word("existing"); !ok {
				return r, w, tok[i]
			}
			r.replace = true
		case "without":
			w, ok := word("prompting", "rolling")
			if !ok {
				return r, w, tok[i]
			}
			if strings.EqualFold(w, "rolling") {
				if w, ok := word("forward"); !ok {
					return r, w, "ROLLING"
				}
				r.withoutRollForward = true
			}
		default:
			return r, tok[i], prev
		}
		prev = tok[i]
	}
	return r, "", ""
}

// restore runs RESTORE DATABASE: it finds the image of the TAKEN AT timestamp in the FROM
// directory under its Db2 name, checks it as db2ckbkp does and, for INCREMENTAL AUTOMATIC, finds
// and checks every image of its chain (from History) in the same directory. An online image,
// or an offline one of a recoverable database restored without WITHOUT ROLLING FORWARD, leaves
// the database rollforward pending. The fake knows one database, so INTO must name it.
func (c *session) restore(tok []string) int {
	r, bad, after := parseRestore(tok)
	if bad != "" || after != "" {
		return c.syntax(bad, after)
	}
	s := c.s
	dir := r.dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	switch {
	case !c.known(r.db):
		return c.notFound(r.db)
	case r.into != "" && !c.known(r.into):
		return c.notFound(r.into)
	case s.Has(FaultKeyUnavailable):
		return c.keystore()
	case s.Applications > 0 || s.Connected:
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return c.fail("SQL2036N  The path for the file or device %q is not valid.", dir)
	}
	ts := r.ts
	if ts == "" {
		found, _ := filepath.Glob(filepath.Join(dir, c.imageName("*")))
		switch len(found) {
		case 0:
			return c.noImage(ts)
		case 1:
			ts = strings.Split(filepath.Base(found[0]), ".")[4]
		default:
			return c.fail("SQL2522N  More than one backup file matches the time stamp value provided \nfor the backed up database image.")
		}
	}
	target, code := c.checkImage(dir, ts)
	if code != exitOK {
		return code
	}
	images := []string{ts}
	switch {
	case target.Type != "full" && !r.incr:
		return c.fail("SQL2573N  An incremental backup image must be restored as part of an \nincremental RESTORE operation.")
	case target.Type != "full" && r.auto:
		chain, ok := c.chain(ts)
		if !ok {
			return c.noImage(ts)
		}
		for _, b := range chain[:len(chain)-1] {
			if _, code := c.checkImage(dir, b.Timestamp); code != exitOK {
				return code
			}
		}
		images = images[:0]
		for _, b := range chain {
			images = append(images, b.Timestamp)
		}
	}
	if r.withoutRollForward && target.Mode == "online" {
		return c.fail("SQL2537N  Roll-forward is required following the Restore.")
	}
	s.Connected = false
	s.BackupPending = false
	s.RollforwardPending = target.Mode == "online" || (s.recoverable() && !r.withoutRollForward)
	s.Restores = append(s.Restores, Restore{Timestamp: ts, Incremental: r.incr, Automatic: r.auto, Images: images, From: dir,
		WithoutRollingForward: r.withoutRollForward})
	code = exitOK
	if !r.replace {
		c.printf("SQL2539W  The specified name of the backup image to restore is the same as the \nname of the target database.  Restoring to an existing database that is the \nsame as the backup image database will cause the current database to be \noverwritten by the backup version.\n")
		code = exitWarning
	}
	c.printf("DB20000I  The RESTORE DATABASE command completed successfully.\n")
	return code
}

func (c *session) imageName(ts string) string {
	return fmt.Sprintf("%s.0.%s.DBPART000.%s.001", c.s.Database, c.s.instance(), ts)
}

func (c *session) noImage(ts string) int {
	return c.fail("SQL2542N  No match for a database image file was found based on the source \ndatabase alias %q and timestamp %q provided.", c.s.Database, ts)
}

// checkImage verifies the database image taken at ts in dir and returns its header.
func (c *session) checkImage(dir, ts string) (ImageMeta, int) {
	v, err := VerifyImage(filepath.Join(dir, c.imageName(ts)))
	switch {
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrNotImage):
		return v.Meta, c.fail("SQL2530N  The backup image is corrupted. Restore of database from this \nbackup image is not possible.")
	case err != nil:
		return v.Meta, c.noImage(ts)
	case !c.known(v.Meta.Database) || v.Meta.Timestamp != ts || len(v.Meta.Tablespaces) > 0:
		return v.Meta, c.noImage(ts)
	}
	return v.Meta, exitOK
}

// chain is the database-scope images an automatic incremental restore of ts reads, full first,
// following the Base links of History: the image each one was built on (a delta on the backup
// before it, an incremental on the full before it), whether or not its file still exists.
func (c *session) chain(ts string) ([]Backup, bool) {
	byTS := map[string]Backup{}
	for _, b := range c.s.History {
		if len(b.Tablespaces) == 0 {
			byTS[b.Timestamp] = b
		}
	}
	var out []Backup
	for cur, ok := byTS[ts]; ; cur, ok = byTS[cur.Base] {
		if !ok || len(out) > len(byTS) {
			return nil, false
		}
		out = append(out, cur)
		if cur.Type == "full" {
			break
		}
	}
	slices.Reverse(out)
	return out, true
}

// rollforwardCmd is a parsed ROLLFORWARD DATABASE command.
type rollforwardCmd struct {
	db        string
	endOfLogs bool
	// to is the stop time as given; local is USING LOCAL TIME (the fake reads it as UTC too).
	to          string
	local       bool
	stop, query bool
}

// parseRollforward reads `<db> [to end of logs | to <time> [using utc|local time]]
// [and stop|and complete | stop | complete] | <db> query status`.
func parseRollforward(tok []string) (rollforwardCmd, string, string) {
	var r rollforwardCmd
	if len(tok) == 0 {
		return r, "END-OF-STATEMENT", "DATABASE"
	}
	r.db = tok[0]
	prev := tok[0]
	for i := 1; i < len(tok); i++ {
		t := strings.ToLower(tok[i])
		word := func(want ...string) (string, bool) {
			if i+1 >= len(tok) {
				return "END-OF-STATEMENT", false
			}
			i++
			return tok[i], slices.Contains(want, strings.ToLower(tok[i]))
		}
		switch t {
		case "to":
			if i+1 >= len(tok) {
				return r, "END-OF-STATEMENT", "TO"
			}
			i++
			if !strings.EqualFold(tok[i], "end") {
				r.to = tok[i]
				break
			}
			if w, ok := word("of"); !ok {
				return r, w, "END"
			}
			if w, ok := word("logs"); !ok {
				return r, w, "OF"
			}
			r.endOfLogs = true
		case "using":
			w, ok := word("utc", "local")
			if !ok || r.to == "" {
				return r, w, tok[i-1]
			}
			r.local = strings.EqualFold(w, "local")
			if w, ok := word("time"); !ok {
				return r, w, tok[i-1]
			}
		case "and":
			if w, ok := word("stop", "complete"); !ok {
				return r, w, "AND"
			}
			r.stop = true
		case "stop", "complete":
			r.stop = true
		case "query":
			if w, ok := word("status"); !ok {
				return r, w, "QUERY"
			}
			r.query = true
		default:
			return r, tok[i], prev
		}
		prev = tok[i]
	}
	if r.query && (r.stop || r.endOfLogs || r.to != "") {
		return r, "STATUS", "QUERY"
	}
	return r, "", ""
}

// RollForwardLayout is how ROLLFORWARD ... TO <time> spells the stop time.
const RollForwardLayout = "2006-01-02-15.04.05.000000"

// rollforward applies (pretend) logs after a restore. It needs ROLL-FORWARD PENDING; AND STOP
// ends it and records where it went on the last Restore.
func (c *session) rollforward(tok []string) int {
	r, bad, after := parseRollforward(tok)
	if bad != "" || after != "" {
		return c.syntax(bad, after)
	}
	s := c.s
	if !c.known(r.db) {
		return c.notFound(r.db)
	}
	if !s.RollforwardPending {
		return c.fail("SQL1260N  Database %q is not in ROLL-FORWARD PENDING state.", s.Database)
	}
	var last *Restore
	if n := len(s.Restores); n > 0 {
		last = &s.Restores[n-1]
	}
	imageTime := time.Time{}
	if last != nil {
		imageTime, _ = time.Parse("20060102150405", last.Timestamp)
	}
	if r.query {
		c.status("DB pending", imageTime)
		return exitOK
	}
	committed, went := imageTime.Add(time.Second), "END OF LOGS"
	if r.to != "" {
		stop, err := time.Parse(RollForwardLayout, r.to)
		if err != nil {
			stop, err = time.Parse("2006-01-02-15.04.05", r.to)
		}
		if err != nil {
			return c.fail("SQL2032N  The \"TO\" parameter is not valid.")
		}
		if stop.Before(imageTime) {
			return c.fail("SQL1275N  The stoptime passed to roll-forward must be greater than or equal to \n%q, because database %q on node(s) \"0\" contains information later \nthan the specified time.", imageTime.Format(RollForwardLayout), s.Database)
		}
		committed, went = stop, stop.Format(RollForwardLayout)
	} else if !r.endOfLogs && !r.stop {
		return c.syntax("END-OF-STATEMENT", r.db)
	}
	if !r.stop {
		c.status("DB working", committed)
		c.printf("DB20000I  The ROLLFORWARD command completed successfully.\n")
		return exitOK
	}
	s.RollforwardPending = false
	if last != nil {
		last.RollForward = went
	}
	c.status("not pending", committed)
	c.printf("DB20000I  The ROLLFORWARD command completed successfully.\n")
	return exitOK
}

func (c *session) status(state string, committed time.Time) {
	c.printf("\n                                 Rollforward Status\n\n")
	c.printf(" Input database alias                   = %s\n Number of members have returned status = 1\n\n", c.s.Database)
	c.printf(" Member ID                              = 0\n Rollforward status                     = %s\n", state)
	next, processed := "S0000002.LOG", "S0000000.LOG - S0000001.LOG"
	if state == "not pending" {
		next = ""
	} else if state == "DB pending" {
		processed = " -"
	}
	c.printf(" Next log file to be read               = %s\n Log files processed                    = %s\n", next, processed)
	c.printf(" Last committed transaction             = %s UTC\n\n", committed.Format(RollForwardLayout))
}
