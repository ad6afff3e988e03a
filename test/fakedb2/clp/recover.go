package clp

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// dbRef is one database the fake knows: its own (main) or a Copy made by RESTORE ... INTO.
type dbRef struct {
	name      string
	main      bool
	rows      *int64
	rfPending *bool
	rsPending *bool
	cp        *Copy
}

// db finds a database by alias.
func (c *session) db(name string) (dbRef, bool) {
	s := c.s
	if c.known(name) {
		return dbRef{name: s.Database, main: true, rows: &s.Rows, rfPending: &s.RollforwardPending, rsPending: &s.RestorePending}, true
	}
	for i := range s.Copies {
		cp := &s.Copies[i]
		if strings.EqualFold(name, cp.Name) {
			return dbRef{name: cp.Name, rows: &cp.Rows, rfPending: &cp.RollforwardPending, rsPending: &cp.RestorePending, cp: cp}, true
		}
	}
	return dbRef{}, false
}

// connectedTo reports whether the CLP session is connected to db.
func (c *session) connectedTo(db string) bool {
	if !c.s.Connected {
		return false
	}
	return strings.EqualFold(orText(c.s.ConnectedTo, c.s.Database), db)
}

var aliasRE = regexp.MustCompile(`^[A-Za-z@#$][A-Za-z0-9@#$_]{0,7}$`)

func validAlias(s string) bool { return aliasRE.MatchString(s) }

// keystoreReadable reports whether KEYSTORE_LOCATION names a file that can be read.
func (c *session) keystoreReadable() bool {
	if c.s.KeystoreLocation == "" {
		return false
	}
	f, err := os.Open(c.s.KeystoreLocation)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// archiveLog is ARCHIVE LOG FOR DATABASE: the active log file is closed and archived.
func (c *session) archiveLog(db string) int {
	if !c.known(db) {
		return c.notFound(db)
	}
	if !c.s.recoverable() {
		return c.fail("SQL1259N  The database manager cannot perform the archive log operation on \nthe database %q because the database is not configured for log archiving.", c.s.Database)
	}
	c.s.closeLog(c.lastClose())
	c.printf("DB20000I  The ARCHIVE LOG command completed successfully.\n")
	return exitOK
}

// lastClose is when the active log was opened (the end of the last archived one).
func (c *session) lastClose() time.Time {
	if n := len(c.s.Archived); n > 0 {
		return c.s.Archived[n-1].End
	}
	return time.Time{}
}

// listArchived prints LIST HISTORY ARCHIVE LOG ALL FOR db: one entry per archived log file
// (operation X, archived through LOGARCHMETH1: type 1), oldest first.
func (c *session) listArchived(db string) int {
	if !c.known(db) {
		return c.notFound(db)
	}
	c.printf("\n                    List History File for %s\n\nNumber of matching file entries = %d\n\n", strings.ToUpper(db), len(c.s.Archived))
	rule := " ----------------------------------------------------------------------------\n"
	for i, a := range c.s.Archived {
		c.printf("\n Op Obj Timestamp+Sequence Type Dev Earliest Log Current Log  Backup ID\n")
		c.printf(" -- --- ------------------ ---- --- ------------ ------------ --------------\n")
		c.printf("  X  D  %s      1    D  %s C0000000\n", a.End.UTC().Format("20060102150405"), a.Name)
		c.printf("%s    Comment:\n Start Time: %s\n   End Time: %s\n     Status: A\n", rule,
			a.Start.UTC().Format("20060102150405"), a.End.UTC().Format("20060102150405"))
		c.printf("%s  EID: %d Location: %s\n", rule, 1000+i, strings.TrimPrefix(c.s.logArchMeth1(), "DISK:")+a.Name)
	}
	c.printf("\n")
	return exitOK
}

// quiesce is QUIESCE DATABASE IMMEDIATE|DEFER [FORCE CONNECTIONS], on the database the session is
// connected to: with FORCE CONNECTIONS every other application is forced off; without it, or
// with DEFER, the fake waits for none and refuses while applications are connected.
func (c *session) quiesce(words []string) int {
	if !c.s.Connected {
		return c.fail("SQL1024N  A database connection does not exist.  SQLSTATE=08003")
	}
	if !c.connectedTo(c.s.Database) {
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	}
	mode := words[0]
	rest := strings.Join(words[1:], " ")
	if (mode != "immediate" && mode != "defer") || (rest != "" && rest != "force connections") {
		return c.syntax(words[0], "DATABASE")
	}
	if rest == "" && c.s.Applications > 0 {
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	}
	c.s.Applications, c.s.Quiesced = 0, true
	c.printf("DB20000I  The QUIESCE DATABASE command completed successfully.\n")
	return exitOK
}

func (c *session) unquiesce() int {
	if !c.connectedTo(c.s.Database) {
		return c.fail("SQL1024N  A database connection does not exist.  SQLSTATE=08003")
	}
	c.s.Quiesced = false
	c.printf("DB20000I  The UNQUIESCE DATABASE command completed successfully.\n")
	return exitOK
}

// force is FORCE APPLICATION ALL | (<handle>, ...): the applications listed (handles 100 and
// up, as LIST APPLICATIONS shows them) are disconnected.
func (c *session) force(tok []string) int {
	arg := strings.ToLower(strings.Join(tok, ""))
	switch {
	case arg == "all":
		c.s.Applications = 0
	case strings.HasPrefix(arg, "(") && strings.HasSuffix(arg, ")"):
		n := 0
		for _, h := range strings.Split(strings.Trim(arg, "()"), ",") {
			var v int
			if _, err := fmt.Sscan(h, &v); err != nil {
				return c.syntax(h, "APPLICATION")
			}
			if v >= 100 && v < 100+c.s.Applications {
				n++
			}
		}
		c.s.Applications -= n
	default:
		return c.syntax(strings.Join(tok, " "), "APPLICATION")
	}
	c.printf("DB20000I  The FORCE APPLICATION command completed successfully.\nDB21024I  This command is asynchronous and may not be effective immediately.\n\n")
	return exitOK
}

// drop is DROP DATABASE: the database must exist and nothing may be connected to it.
func (c *session) drop(db string) int {
	ref, ok := c.db(db)
	switch {
	case !ok:
		return c.notFound(db)
	case c.connectedTo(ref.name), ref.main && c.s.Applications > 0:
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	}
	if ref.main {
		c.s.Dropped = true
	} else {
		c.s.Copies = slices.DeleteFunc(c.s.Copies, func(cp Copy) bool { return strings.EqualFold(cp.Name, ref.name) })
	}
	c.printf("DB20000I  The DROP DATABASE command completed successfully.\n")
	return exitOK
}

// updateDbmCfg is UPDATE DBM CFG USING <param> <value> ...: KEYSTORE_LOCATION and
// KEYSTORE_TYPE are kept (the keystore a restore of an encrypted image reads); other
// parameters are accepted and ignored.
func (c *session) updateDbmCfg(tok []string) int {
	i := slices.IndexFunc(tok, func(t string) bool { return strings.EqualFold(t, "using") })
	if i < 0 || (len(tok)-i-1)%2 != 0 || len(tok)-i-1 == 0 {
		return c.syntax(tok[len(tok)-1], "USING")
	}
	for j := i + 1; j+1 < len(tok); j += 2 {
		switch strings.ToUpper(tok[j]) {
		case "KEYSTORE_LOCATION":
			c.s.KeystoreLocation = tok[j+1]
		case "KEYSTORE_TYPE":
			if t := strings.ToUpper(tok[j+1]); t != "PKCS12" && t != "NONE" && t != "KMIP" && t != "PKCS11" {
				return c.fail("SQL5130N  The value specified for the configuration parameter \"keystore_type\" is \nnot in the valid range.")
			}
		}
	}
	c.printf("DB20000I  The UPDATE DATABASE MANAGER CONFIGURATION command completed \nsuccessfully.\nSQL1362W  One or more of the parameters submitted for immediate modification \nwere not changed dynamically. Server changes will not be effective until the \nnext DB2START command.\n")
	return exitOK
}

// setStogroupPaths is SET STOGROUP PATHS FOR <group> ON '<path>'[, ...], during a redirected
// restore.
func (c *session) setStogroupPaths(tok []string) int {
	if c.s.Redirected == nil {
		return c.fail("SQL20317N  The SET STOGROUP PATHS command is only valid during a \nredirected restore.")
	}
	on := slices.IndexFunc(tok, func(t string) bool { return strings.EqualFold(t, "on") })
	if on < 0 || on == len(tok)-1 || len(tok) < 6 {
		return c.syntax(tok[len(tok)-1], "FOR")
	}
	var paths []string
	for _, p := range strings.Split(strings.Join(tok[on+1:], " "), ",") {
		p = strings.TrimSpace(p)
		if len(p) < 3 || p[0] != '\'' || p[len(p)-1] != '\'' {
			return c.syntax(p, "ON")
		}
		paths = append(paths, p[1:len(p)-1])
	}
	c.s.Redirected.StoragePaths = paths
	c.printf("DB20000I  The SET STOGROUP PATHS command completed successfully.\n")
	return exitOK
}

var countStar = regexp.MustCompile(`(?i)^select\s+count\s*\(\s*\*\s*\)\s+from\s+\S+\s*;?$`)

// query runs an SQL statement on the connected database: SELECT COUNT(*) FROM <table> returns
// its rows; any other SELECT or VALUES returns the single value 1.
func (c *session) query(sql string) int {
	c.s.Queries = append(c.s.Queries, sql)
	if !c.s.Connected {
		return c.fail("SQL1024N  A database connection does not exist.  SQLSTATE=08003")
	}
	ref, ok := c.db(orText(c.s.ConnectedTo, c.s.Database))
	if !ok {
		return c.fail("SQL1024N  A database connection does not exist.  SQLSTATE=08003")
	}
	value := int64(1)
	if countStar.MatchString(strings.TrimSpace(sql)) {
		value = *ref.rows
	}
	c.printf("\n1          \n-----------\n%11d\n\n  1 record(s) selected.\n\n", value)
	return exitOK
}
