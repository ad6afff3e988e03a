package clp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// restoreCmd is a parsed RESTORE DATABASE command.
type restoreCmd struct {
	db, dir, ts, into, logTarget string
	incr, auto                   bool
	replace, withoutRollForward  bool
	redirect, abort, cont        bool
	// tablespaces and online are TABLESPACE (...) ONLINE (a table space restore).
	tablespaces []string
	online      bool
}

// parseRestore reads `<db> [incremental [automatic|auto|abort]] [from <dir>] [taken at <ts>]
// [into <db>] [logtarget <dir>] [replace existing] [redirect] [without rolling forward]
// [without prompting]`, options in any order, keywords in any case, and `<db> continue` and
// `<db> abort` (of a redirected restore). On a syntax error it returns the unexpected token and
// the one before it, as SQL0104N names them.
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
			if i+1 < len(tok) {
				switch strings.ToLower(tok[i+1]) {
				case "automatic", "auto":
					r.auto = true
					i++
				case "abort":
					r.abort = true
					i++
				}
			}
		case "from", "into", "logtarget":
			w, ok := next()
			if !ok {
				return r, "END-OF-STATEMENT", tok[i]
			}
			switch t {
			case "from":
				r.dir = w
			case "into":
				r.into = w
			default:
				r.logTarget = w
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
		case "redirect":
			r.redirect = true
		case "tablespace":
			list, j, ok := parseList(tok, i)
			if !ok {
				return r, tok[min(i+1, len(tok)-1)], "TABLESPACE"
			}
			i, r.tablespaces = j, list
		case "online":
			r.online = true
		case "continue":
			r.cont = true
		case "abort":
			r.abort = true
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
	if (r.cont || r.abort) && (r.dir != "" || r.ts != "" || r.auto || r.redirect || r.replace || r.logTarget != "") {
		return r, prev, r.db
	}
	return r, "", ""
}

// restore runs RESTORE DATABASE: it finds the image of the TAKEN AT timestamp in the FROM
// directory under its Db2 name, checks it as db2ckbkp does and, for INCREMENTAL AUTOMATIC,
// restores every image of its chain (from History) from the same directory, oldest first: an
// image missing or damaged there (or FaultRestoreMedia) stops the restore with the database
// restore pending, until RESTORE ... INCREMENTAL ABORT. INTO names the database restored into:
// the fake's own, or a new one (a Copy), created by the restore. An online image, or an offline
// one of a recoverable database restored without WITHOUT ROLLING FORWARD, leaves the database
// rollforward pending. LOGTARGET extracts the log file an online image carries. REDIRECT stops
// before restoring, until SET STOGROUP PATHS and RESTORE ... CONTINUE. An encrypted image needs
// the keystore KEYSTORE_LOCATION names.
func (c *session) restore(tok []string) int {
	r, bad, after := parseRestore(tok)
	if bad != "" || after != "" {
		return c.syntax(bad, after)
	}
	if r.abort {
		return c.restoreAbort(r)
	}
	if r.cont {
		return c.restoreContinue(r)
	}
	s := c.s
	dir := r.dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	if len(r.tablespaces) > 0 {
		return c.restoreTablespaces(r, dir)
	}
	if s.partitioned() && (r.into == "" || strings.EqualFold(r.into, s.Database)) && r.ts != "" {
		if done, code := c.restorePartition(dir, r.ts); done {
			return code
		}
	}
	into := r.into
	if into == "" || strings.EqualFold(into, s.Database) {
		into = ""
	}
	_, exists := c.db(orText(into, s.Database))
	switch {
	case !c.known(r.db) && !c.imageOf(r.db):
		return c.notFound(r.db)
	case s.Has(FaultKeyUnavailable):
		return c.keystore()
	case into == "" && exists && (s.Applications > 0 || c.connectedTo(s.Database)):
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	case into != "" && exists && c.connectedTo(into):
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	case into != "" && !validAlias(into):
		return c.fail("SQL1001N  %q is not a valid database name.  SQLSTATE=2E000", into)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return c.fail("SQL2036N  The path for the file or device %q is not valid.", dir)
	}
	if r.logTarget != "" {
		if st, err := os.Stat(r.logTarget); err != nil || !st.IsDir() {
			return c.fail("SQL2036N  The path for the file or device %q is not valid.", r.logTarget)
		}
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
	switch {
	case target.Type != "full" && !r.incr:
		return c.fail("SQL2573N  An incremental backup image must be restored as part of an \nincremental RESTORE operation.")
	case r.withoutRollForward && target.Mode == "online":
		return c.fail("SQL2537N  Roll-forward is required following the Restore.")
	case target.Encrypted && !c.keystoreReadable():
		return c.fail("SQL1728N  The command or operation failed because the keystore could not be \naccessed. Reason code \"1\".")
	case r.logTarget != "" && !target.IncludeLogs:
		return c.fail("SQL2581N  Restore is unable to extract log files or restore a log directory \nfrom the backup image to the specified path. Reason code \"3\".")
	}
	rec := Restore{Timestamp: ts, Incremental: r.incr, Automatic: r.auto, Images: []string{ts}, From: dir, Into: into,
		WithoutRollingForward: r.withoutRollForward, LogTarget: r.logTarget, Replace: r.replace}
	if target.Type != "full" && r.auto {
		chain, ok := c.chain(ts)
		if !ok {
			return c.noImage(ts)
		}
		rec.Images = rec.Images[:0]
		for _, b := range chain {
			rec.Images = append(rec.Images, b.Timestamp)
		}
	}
	warn := ""
	switch {
	case exists && !r.replace && into == "":
		warn = "SQL2539W  The specified name of the backup image to restore is the same as the \nname of the target database.  Restoring to an existing database that is the \nsame as the backup image database will cause the current database to be \noverwritten by the backup version.\n"
	case exists && !r.replace:
		warn = "SQL2529W  Warning!  Restoring to an existing database that is different from \nthe database on the backup image, and that has a different name, will cause \nthe existing database to be overwritten.\n"
	}
	if r.redirect {
		s.Redirected = &rec
		c.printf("%sSQL1277W  A redirected restore operation is being performed. During a table \nspace restore, only table spaces being restored can have their paths \nreconfigured. During a database restore, storage group storage paths and DMS \ntable space containers can be reconfigured.\nDB20000I  The RESTORE DATABASE command completed successfully.\n", warn)
		return exitWarning
	}
	return c.finishRestore(rec, warn)
}

// finishRestore reads the images of rec after the first and makes the restored database.
func (c *session) finishRestore(rec Restore, warn string) int {
	s := c.s
	name := orText(rec.Into, s.Database)
	ref := c.create(name)
	for i, ts := range rec.Images[:len(rec.Images)-1] {
		// The target was read first; the chain is restored from its full on.
		_, code := c.checkImage(rec.From, ts)
		if code == exitOK && i == 0 && s.Has(FaultRestoreMedia) {
			code = c.fail("SQL2062N  An error occurred while accessing media %q. Reason code: \"11\".", rec.From)
		}
		if code != exitOK {
			*ref.rsPending = true
			return code
		}
	}
	if rec.LogTarget != "" {
		if b, ok := c.backupAt(rec.Timestamp); ok {
			if err := os.WriteFile(filepath.Join(rec.LogTarget, LogName(b.Log)), []byte("fake db2 log file "+LogName(b.Log)+"\n"), 0o600); err != nil {
				return c.fail("SQL2581N  Restore is unable to extract log files or restore a log directory \nfrom the backup image to the specified path. Reason code \"1\".")
			}
		}
	}
	target, _ := c.backupAt(rec.Timestamp)
	*ref.rows = target.Rows
	rec.Rows = target.Rows
	*ref.rsPending = false
	*ref.rfPending = target.Mode == "online" || (s.recoverable() && !rec.WithoutRollingForward)
	if ref.main {
		s.BackupPending, s.Quiesced = false, false
	} else {
		ref.cp.StoragePaths = rec.StoragePaths
	}
	s.Restores = append(s.Restores, rec)
	code := exitOK
	if warn != "" {
		c.printf("%s", warn)
		code = exitWarning
	}
	c.printf("DB20000I  The RESTORE DATABASE command completed successfully.\n")
	return code
}

// restoreContinue finishes a redirected restore.
func (c *session) restoreContinue(r restoreCmd) int {
	rec := c.s.Redirected
	if rec == nil {
		return c.fail("SQL2553N  The RESTORE DATABASE command cannot be continued because no \nredirected restore is in progress.")
	}
	c.s.Redirected = nil
	return c.finishRestore(*rec, "")
}

// restoreAbort ends an incomplete incremental or redirected restore: RESTORE ...
// [INCREMENTAL] ABORT [INTO <db>].
func (c *session) restoreAbort(r restoreCmd) int {
	name := orText(r.into, r.db)
	if c.s.Redirected != nil {
		name = orText(c.s.Redirected.Into, c.s.Database)
		c.s.Redirected = nil
	}
	if ref, ok := c.db(name); ok {
		*ref.rsPending = false
	}
	c.printf("DB20000I  The RESTORE DATABASE command completed successfully.\n")
	return exitOK
}

// create returns the database a restore makes: the fake's own, or a Copy (created if new).
func (c *session) create(name string) dbRef {
	if ref, ok := c.db(name); ok {
		return ref
	}
	if strings.EqualFold(name, c.s.Database) {
		c.s.Dropped = false
		ref, _ := c.db(name)
		return ref
	}
	c.s.Copies = append(c.s.Copies, Copy{Name: strings.ToUpper(name)})
	ref, _ := c.db(name)
	return ref
}

// imageOf reports whether db names the fake's database even after DROP DATABASE (whose images
// can still be restored).
func (c *session) imageOf(db string) bool { return strings.EqualFold(db, c.s.Database) }

// backupAt is the history entry of the image taken at ts.
func (c *session) backupAt(ts string) (Backup, bool) {
	for _, b := range c.s.History {
		if b.Timestamp == ts {
			return b, true
		}
	}
	return Backup{}, false
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func (c *session) imageName(ts string) string {
	return fmt.Sprintf("%s.0.%s.DBPART%03d.%s.001", c.s.Database, c.s.instance(), c.s.CurrentPartition, ts)
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
	case !c.imageOf(v.Meta.Database) || v.Meta.Timestamp != ts || len(v.Meta.Tablespaces) > 0:
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
	// overflow is the OVERFLOW LOG PATH, where logs missing from the archive may be found.
	overflow string
	// tablespaces and online are TABLESPACE (...) ONLINE (a table space roll-forward);
	// allParts is ON ALL DBPARTITIONNUMS.
	tablespaces []string
	online      bool
	allParts    bool
}

// parseRollforward reads `<db> [to end of logs | to <time> [using utc|local time]]
// [and stop|and complete | stop | complete] [overflow log path (<dir>)] | <db> query status`.
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
		case "tablespace":
			list, j, ok := parseList(tok, i)
			if !ok {
				return r, tok[min(i+1, len(tok)-1)], "TABLESPACE"
			}
			i, r.tablespaces = j, list
		case "online":
			r.online = true
		case "on":
			if w, ok := word("all"); !ok {
				return r, w, "ON"
			}
			if w, ok := word("dbpartitionnums"); !ok {
				return r, w, "ALL"
			}
			r.allParts = true
		case "query":
			if w, ok := word("status"); !ok {
				return r, w, "QUERY"
			}
			r.query = true
		case "overflow":
			if w, ok := word("log"); !ok {
				return r, w, "OVERFLOW"
			}
			if w, ok := word("path"); !ok {
				return r, w, "LOG"
			}
			var dir []string
			for i+1 < len(tok) {
				i++
				dir = append(dir, tok[i])
				if strings.HasSuffix(tok[i], ")") {
					break
				}
			}
			joined := strings.Join(dir, "")
			if !strings.HasPrefix(joined, "(") || !strings.HasSuffix(joined, ")") || len(joined) < 3 {
				return r, orText(joined, "END-OF-STATEMENT"), "PATH"
			}
			r.overflow = strings.Trim(joined, "()")
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

// rollforward replays the writes committed after the restored image, to the end of the logs
// or to the stop time. It needs ROLL-FORWARD PENDING. Every log file holding a write it replays
// (and, for an online image, the one the image was taken in) must be in the archive or in the
// overflow log path; a stop time later than the newest log record it can read cannot be reached.
// Either halts with SQL4970N and leaves the database pending. AND STOP ends the pending state and
// records where it went on the restore.
func (c *session) rollforward(tok []string) int {
	r, bad, after := parseRollforward(tok)
	if bad != "" || after != "" {
		return c.syntax(bad, after)
	}
	s := c.s
	if len(r.tablespaces) > 0 {
		if !c.known(r.db) {
			return c.notFound(r.db)
		}
		return c.rollforwardTablespaces(r)
	}
	ref, ok := c.db(r.db)
	if !ok {
		return c.notFound(r.db)
	}
	if s.partitioned() && ref.main && len(s.RestoredPartitions) < len(s.Partitions) && *ref.rfPending {
		return c.fail("SQL1276N  Database %q cannot be rolled forward: database partitions %v of %v are restored; restore every partition first.", ref.name, s.RestoredPartitions, s.Partitions)
	}
	if !*ref.rfPending {
		return c.fail("SQL1260N  Database %q is not in ROLL-FORWARD PENDING state.", ref.name)
	}
	var last *Restore
	for i := len(s.Restores) - 1; i >= 0; i-- {
		if strings.EqualFold(orText(s.Restores[i].Into, s.Database), ref.name) {
			last = &s.Restores[i]
			break
		}
	}
	imageTime := time.Time{}
	var image Backup
	if last != nil {
		imageTime, _ = time.Parse("20060102150405", last.Timestamp)
		image, _ = c.backupAt(last.Timestamp)
	}
	if r.query {
		c.status(ref.name, "DB pending", imageTime)
		return exitOK
	}
	var stop time.Time
	went := "END OF LOGS"
	if r.to != "" {
		var err error
		stop, err = time.Parse(RollForwardLayout, r.to)
		if err != nil {
			stop, err = time.Parse("2006-01-02-15.04.05", r.to)
		}
		if err != nil {
			return c.fail("SQL2032N  The \"TO\" parameter is not valid.")
		}
		if stop.Before(imageTime) {
			return c.fail("SQL1275N  The stoptime passed to roll-forward must be greater than or equal to \n%q, because database %q on node(s) \"0\" contains information later \nthan the specified time.", imageTime.Format(RollForwardLayout), ref.name)
		}
		went = stop.Format(RollForwardLayout)
	} else if !r.endOfLogs && !r.stop {
		return c.syntax("END-OF-STATEMENT", r.db)
	}
	// What the logs hold after the image, and whether each log needed can be read.
	rows, committed := image.Rows, imageTime.Add(time.Second)
	readable := func(n int) bool {
		if s.inArchive(n) {
			return true
		}
		if r.overflow == "" {
			return false
		}
		_, err := os.Stat(filepath.Join(r.overflow, LogName(n)))
		return err == nil
	}
	halt := func(n int) int {
		return c.fail("SQL4970N  Roll-forward recovery on database %q cannot reach the specified stop \npoint (end-of-log or point-in-time) on database partition(s) \"0\". Roll-forward \nrecovery processing has halted on log file %q.", ref.name, LogName(n))
	}
	if last != nil && image.Mode == "online" && !readable(image.Log) {
		return halt(image.Log)
	}
	end := imageTime // the newest log record that can be read
	for _, a := range s.Archived {
		if n := logNumber(a.Name); n >= image.Log && readable(n) && a.End.After(end) {
			end = a.End
		}
	}
	for _, w := range s.Writes {
		if ref.main && w.Log == s.LogSeq && w.At.After(end) { // the active log, on this instance only
			end = w.At
		}
		if !w.At.After(imageTime) || (!stop.IsZero() && w.At.After(stop)) {
			continue
		}
		if !readable(w.Log) {
			return halt(w.Log)
		}
		rows += w.Rows
		committed = w.At
	}
	if !stop.IsZero() {
		if stop.After(end) {
			return halt(s.LogSeq)
		}
		committed = stop
	}
	if !r.stop {
		c.status(ref.name, "DB working", committed)
		c.printf("DB20000I  The ROLLFORWARD command completed successfully.\n")
		return exitOK
	}
	*ref.rfPending = false
	*ref.rows = rows
	if last != nil {
		last.RollForward = went
		last.Rows = rows
	}
	c.status(ref.name, "not pending", committed)
	c.printf("DB20000I  The ROLLFORWARD command completed successfully.\n")
	return exitOK
}

func logNumber(name string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "S"), ".LOG"))
	return n
}

func (c *session) status(db, state string, committed time.Time) {
	c.printf("\n                                 Rollforward Status\n\n")
	c.printf(" Input database alias                   = %s\n Number of members have returned status = 1\n\n", db)
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
