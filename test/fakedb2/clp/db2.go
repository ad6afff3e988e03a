package clp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CLP exit statuses, as the real db2 command documents them.
const (
	exitOK      = 0
	exitWarning = 2
	exitError   = 4
	exitSystem  = 8
)

// DB2 runs one `db2` command line (args are os.Args[1:]) against the state file at statePath,
// writes what the real CLP would print to stdout and returns the exit status.
func DB2(args []string, statePath string, stdout io.Writer) int {
	if statePath == "" {
		fmt.Fprint(stdout, "DB21061E  Command line environment not initialized.\n")
		return exitSystem
	}
	s, err := Load(statePath)
	if err != nil {
		fmt.Fprintf(stdout, "DB21061E  Command line environment not initialized.\n(fake db2: %v)\n", err)
		return exitSystem
	}
	line := strings.Join(args, " ")
	s.Calls = append(s.Calls, "db2 "+line)
	c := &session{s: s, out: stdout}
	code := c.dispatch(strings.Fields(line))
	if err := Save(statePath, s); err != nil {
		fmt.Fprintf(stdout, "DB21018E  A system error occurred. The command line processor could not continue processing.\n(fake db2: %v)\n", err)
		return exitSystem
	}
	return code
}

type session struct {
	s   *State
	out io.Writer
}

func (c *session) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

// fail prints a Db2 message and returns the error exit status.
func (c *session) fail(format string, args ...any) int {
	c.printf(format+"\n", args...)
	return exitError
}

func (c *session) dispatch(tok []string) int {
	lower := make([]string, len(tok))
	for i, t := range tok {
		lower[i] = strings.ToLower(t)
	}
	is := func(words ...string) bool {
		if len(lower) < len(words) {
			return false
		}
		for i, w := range words {
			if w != "*" && !strings.EqualFold(lower[i], w) {
				return false
			}
		}
		return true
	}
	switch {
	case len(tok) == 0:
		return c.syntax("", "BEGIN-OF-STATEMENT")
	case (is("get", "db", "*", "for") || is("get", "database", "*", "for")) && isCfg(lower[2]) && len(tok) == 5:
		return c.dbCfg(tok[4])
	case (is("get", "dbm", "*") || is("get", "database", "manager", "*")) && isCfg(lower[len(lower)-1]) && len(tok) <= 4:
		return c.dbmCfg()
	case is("list", "applications") && len(tok) == 2:
		return c.listApplications(c.s.Database)
	case is("list", "applications", "for", "*") && len(tok) == 5 && (lower[3] == "db" || lower[3] == "database"):
		return c.listApplications(tok[4])
	case is("connect", "to") && len(tok) == 3:
		return c.connect(tok[2])
	case is("connect", "reset") && len(tok) == 2, is("terminate") && len(tok) == 1:
		c.s.Connected, c.s.ConnectedTo = false, ""
		if lower[0] == "terminate" {
			c.printf("DB20000I  The TERMINATE command completed successfully.\n")
		} else {
			c.printf("DB20000I  The SQL command completed successfully.\n")
		}
		return exitOK
	case strings.HasPrefix(strings.ToLower(strings.Join(tok, "")), "callget_dbsize_info("):
		return c.dbSize()
	case is("list", "history", "backup", "all", "for") && len(tok) == 6:
		return c.listHistory(tok[5], "")
	case is("list", "history", "backup", "since", "*", "for") && len(tok) == 7:
		return c.listHistory(tok[6], tok[4])
	case is("list", "history", "backup", "all", "for", "database") && len(tok) == 7,
		is("list", "history", "backup", "all", "for", "db") && len(tok) == 7:
		return c.listHistory(tok[6], "")
	case is("set", "client", "connect_dbpartitionnum") && len(tok) == 4:
		return c.setPartition(tok[3])
	case (is("list", "db", "directory") || is("list", "database", "directory")) && len(tok) == 3:
		return c.listDirectory()
	case is("backup", "database") || is("backup", "db"):
		return c.backup(tok[2:])
	case is("restore", "database") || is("restore", "db"):
		return c.restore(tok[2:])
	case is("rollforward", "database") || is("rollforward", "db"):
		return c.rollforward(tok[2:])
	case is("list", "history", "archive", "log", "all", "for") && len(tok) == 7:
		return c.listArchived(tok[6])
	case (is("archive", "log", "for", "database") || is("archive", "log", "for", "db")) && len(tok) == 5:
		return c.archiveLog(tok[4])
	case (is("quiesce", "database") || is("quiesce", "db")) && len(tok) >= 3:
		return c.quiesce(lower[2:])
	case (is("unquiesce", "database") || is("unquiesce", "db")) && len(tok) == 2:
		return c.unquiesce()
	case is("force", "application") || is("force", "applications"):
		return c.force(tok[2:])
	case (is("drop", "database") || is("drop", "db")) && len(tok) == 3:
		return c.drop(tok[2])
	case (is("update", "dbm", "*", "using") || is("update", "database", "manager", "*")) && len(tok) >= 5:
		return c.updateDbmCfg(tok)
	case is("set", "stogroup", "paths", "for"):
		return c.setStogroupPaths(tok)
	case is("select") || is("values") || is("with"):
		return c.query(strings.Join(tok, " "))
	}
	return c.syntax(tok[0], "BEGIN-OF-STATEMENT")
}

func isCfg(w string) bool { return w == "cfg" || w == "config" || w == "configuration" }

func (c *session) syntax(token, after string) int {
	return c.fail("DB21034E  The command was processed as an SQL statement because it was not a \n"+
		"valid Command Line Processor command.  During SQL processing it returned:\n"+
		"SQL0104N  An unexpected token %q was found following %q.  \nExpected tokens may include:  \"JOIN <joined_table>\".  SQLSTATE=42601", token, after)
}

// known reports whether db is the fake's own database (and it was not dropped).
func (c *session) known(db string) bool { return strings.EqualFold(db, c.s.Database) && !c.s.Dropped }

func (c *session) notFound(db string) int {
	return c.fail("SQL1013N  The database alias name or database name %q could not be \nfound.  SQLSTATE=42705", strings.ToUpper(db))
}

func (c *session) keystore() int {
	return c.fail("SQL1728N  The command or operation failed because the keystore could not be \naccessed. Reason code \"3\".")
}

func (c *session) backupPending() int {
	return c.fail("SQL1116N  A connection to or activation of database %q failed because \nthe database is in BACKUP PENDING state.  SQLSTATE=57019", c.s.Database)
}

func (c *session) dbCfg(db string) int {
	ref, ok := c.db(db)
	if !ok {
		return c.notFound(db)
	}
	s := c.s
	yn := func(b bool) string {
		if b {
			return "YES"
		}
		return "NO"
	}
	rollforward := "NO"
	if *ref.rfPending {
		rollforward = "DATABASE"
	}
	backupPending := s.BackupPending && ref.main
	c.printf("\n       Database Configuration for Database %s\n\n", ref.name)
	for _, l := range [][3]string{
		{"Database configuration release level", "", "0x1500"},
		{"Database release level", "", "0x1500"},
		{},
		{"Database territory", "", "US"},
		{"Database code page", "", "1208"},
		{"Database code set", "", "UTF-8"},
		{"Alternate collating sequence", "ALT_COLLATE", ""},
		{"Database page size", "", "8192"},
		{},
		{"Backup pending", "", yn(backupPending)},
		{},
		{"All committed transactions have been written to disk", "", yn(!backupPending && !*ref.rfPending)},
		{"Rollforward pending", "", rollforward},
		{"Restore pending", "", yn(*ref.rsPending)},
		{},
		{"Log retain for recovery status", "", map[bool]string{true: "RECOVERY", false: "NO"}[s.recoverable()]},
		{"User exit for logging status", "", yn(s.recoverable())},
		{},
		{"Track modified pages", "TRACKMOD", yn(s.TrackMod)},
		{},
		{"Log file size (4KB)", "LOGFILSIZ", "1024"},
		{"Number of primary log files", "LOGPRIMARY", "13"},
		{"Number of secondary log files", "LOGSECOND", "12"},
		{"Path to log files", "", "/database/" + s.instance() + "/NODE0000/SQL00001/LOGSTREAM0000/"},
		{},
		{"First active log file", "", LogName(s.LogSeq)},
		{},
		{"First log archive method", "LOGARCHMETH1", s.logArchMeth1()},
		{"Archive compression for logarchmeth1", "LOGARCHCOMPR1", "OFF"},
		{"Options for logarchmeth1", "LOGARCHOPT1", ""},
		{"Second log archive method", "LOGARCHMETH2", "OFF"},
		{},
		{"Number of database backups to retain", "NUM_DB_BACKUPS", "12"},
		{"Recovery history retention (days)", "REC_HIS_RETENTN", "366"},
		{"Auto deletion of recovery objects", "AUTO_DEL_REC_OBJ", map[bool]string{true: "ON", false: "OFF"}[s.AutoDelRecObj]},
		{"Encryption Library for Backup", "ENCRLIB", ""},
		{"Encryption Options for Backup", "ENCROPTS", ""},
		{},
		{"Encrypted database", "", yn(s.Encrypted)},
	} {
		c.printf("%s\n", cfgLine(l[0], l[1], l[2]))
	}
	c.printf("\n")
	return exitOK
}

// cfgLine lays a parameter out as `get db cfg` does: description, the parameter name in
// parentheses ending at column 56, then " = value".
func cfgLine(desc, param, value string) string {
	if desc == "" {
		return ""
	}
	left, right := " "+desc, ""
	if param != "" {
		right = "(" + param + ")"
	}
	pad := max(1, 56-len(left)-len(right))
	line := left + strings.Repeat(" ", pad) + right + " ="
	if value != "" {
		line += " " + value
	}
	return line
}

func (c *session) listApplications(db string) int {
	n := 0
	if c.known(db) {
		n = c.s.Applications
	}
	own := c.connectedTo(db) && c.known(db)
	if n == 0 && !own {
		c.printf("SQL1611W  No data was returned by Database System Monitor.  \n")
		return exitWarning
	}
	c.printf("\nAuth Id  Application    Appl.      Application Id                                                 DB       # of\n")
	c.printf("         Name           Handle                                                                    Name    Agents\n")
	c.printf("-------- -------------- ---------- -------------------------------------------------------------- -------- -----\n")
	row := func(auth, name string, handle int, id string) {
		c.printf("%-8s %-14s %-10d %-62s %-8s %-5d\n", auth, name, handle, id, c.s.Database, 1)
	}
	if own {
		row(strings.ToUpper(c.s.instance()), "db2bp", 7, "*LOCAL."+c.s.instance()+".261124000001")
	}
	for i := range n {
		row("APPUSER", "java", 100+i, fmt.Sprintf("10.0.4.%d.%d.261124011806", 10+i%200, 50000+i))
	}
	c.printf("\n")
	return exitOK
}

func (c *session) connect(db string) int {
	ref, ok := c.db(db)
	switch {
	case !ok:
		return c.notFound(db)
	case c.s.Has(FaultKeyUnavailable):
		return c.keystore()
	case ref.main && (c.s.BackupPending || c.s.Has(FaultBackupPending)):
		return c.backupPending()
	case *ref.rsPending:
		return c.fail("SQL1119N  A connection to or activation of database %q cannot be made \nbecause a previous restore is incomplete or still in progress.  SQLSTATE=57019", ref.name)
	case *ref.rfPending:
		return c.fail("SQL1117N  A connection to or activation of database %q cannot be made \nbecause of ROLL-FORWARD PENDING.  SQLSTATE=57019", ref.name)
	}
	c.s.Connected, c.s.ConnectedTo = true, ""
	if !ref.main {
		c.s.ConnectedTo = ref.name
	}
	c.printf("\n   Database Connection Information\n\n Database server        = DB2/LINUXX8664 11.5.9.0\n"+
		" SQL authorization ID   = %s\n Local database alias   = %s\n\n", strings.ToUpper(c.s.instance()), ref.name)
	return exitOK
}

func (c *session) dbSize() int {
	if !c.s.Connected {
		return c.fail("SQL1024N  A database connection does not exist.  SQLSTATE=08003")
	}
	if c.s.Has(FaultKeyUnavailable) {
		return c.keystore()
	}
	size, capacity := c.s.SizeBytes, c.s.CapacityBytes
	if size == 0 {
		size = c.s.imageBytes()
	}
	if capacity == 0 {
		capacity = -1
	}
	c.printf("\n\n  Value of output parameters\n  --------------------------\n")
	c.printf("  Parameter Name  : SNAPSHOTTIMESTAMP\n  Parameter Value : %s\n\n", time.Now().UTC().Format("2006-01-02-15.04.05.000000"))
	c.printf("  Parameter Name  : DATABASESIZE\n  Parameter Value : %d\n\n", size)
	c.printf("  Parameter Name  : DATABASECAPACITY\n  Parameter Value : %d\n\n", capacity)
	c.printf("  Return Status = 0\n")
	return exitOK
}

// backupCmd is a parsed BACKUP DATABASE command.
type backupCmd struct {
	db                    string
	tablespaces           []string
	online, incr, delta   bool
	dir                   string
	compress, includeLogs bool
	excludeLogs           bool
	// allParts is ON ALL DBPARTITIONNUMS.
	allParts bool
}

// parseList reads "(A,B)" written as one or more tokens from tok[i+1] on; it returns the names
// (upper case) and the index of the last token read, or ok false.
func parseList(tok []string, i int) ([]string, int, bool) {
	var list []string
	for {
		if i+1 >= len(tok) {
			return nil, i, false
		}
		i++
		list = append(list, tok[i])
		if strings.HasSuffix(tok[i], ")") {
			break
		}
	}
	joined := strings.Join(list, "")
	if !strings.HasPrefix(joined, "(") {
		return nil, i, false
	}
	var out []string
	for _, ts := range strings.Split(strings.Trim(joined, "()"), ",") {
		out = append(out, strings.ToUpper(ts))
	}
	return out, i, true
}

func parseBackup(tok []string) (backupCmd, string, string) {
	var b backupCmd
	if len(tok) == 0 {
		return b, "", "DATABASE"
	}
	b.db = tok[0]
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
		switch t {
		case "on":
			if i+2 >= len(tok) || !strings.EqualFold(tok[i+1], "all") || !strings.EqualFold(tok[i+2], "dbpartitionnums") {
				return b, tok[min(i+1, len(tok)-1)], "ON"
			}
			i += 2
			b.allParts = true
		case "tablespace":
			list, j, ok := parseList(tok, i)
			if !ok {
				return b, tok[min(i+1, len(tok)-1)], "TABLESPACE"
			}
			i, b.tablespaces = j, list
		case "online":
			b.online = true
		case "incremental":
			b.incr = true
		case "delta":
			if !b.incr {
				return b, tok[i], prev
			}
			b.delta = true
		case "to":
			d, ok := next()
			if !ok {
				return b, "END-OF-STATEMENT", "TO"
			}
			b.dir = d
		case "compress":
			b.compress = true
		case "include", "exclude":
			w, ok := next()
			if !ok || !strings.EqualFold(w, "logs") {
				return b, w, tok[i-1]
			}
			b.includeLogs, b.excludeLogs = t == "include", t == "exclude"
		case "without":
			w, ok := next()
			if !ok || !strings.EqualFold(w, "prompting") {
				return b, w, "WITHOUT"
			}
		default:
			return b, tok[i], prev
		}
		prev = tok[i]
	}
	return b, "", ""
}

func (c *session) backup(tok []string) int {
	b, bad, after := parseBackup(tok)
	if bad != "" || after != "" {
		return c.syntax(bad, after)
	}
	s := c.s
	typ, mode := "full", "offline"
	if b.delta {
		typ = "delta"
	} else if b.incr {
		typ = "incremental"
	}
	if b.online {
		mode = "online"
	}
	offlineFull := !b.online && typ == "full" && len(b.tablespaces) == 0
	dir := b.dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	switch {
	case !c.known(b.db):
		return c.notFound(b.db)
	case b.includeLogs && !b.online:
		return c.fail("SQL2032N  The \"INCLUDE LOGS\" parameter is not valid.")
	case s.Has(FaultKeyUnavailable):
		return c.keystore()
	case b.online && (!s.recoverable() || s.BackupPending || s.Has(FaultOnlineNotAllowed)):
		return c.fail("SQL2413N  Online backup is not allowed because the database is not \nrecoverable or a backup pending condition is in effect.")
	case (s.BackupPending || s.Has(FaultBackupPending)) && !offlineFull:
		return c.backupPending()
	case s.RollforwardPending:
		return c.fail("SQL1117N  A connection to or activation of database %q cannot be made \nbecause of ROLL-FORWARD PENDING.  SQLSTATE=57019", s.Database)
	case len(b.tablespaces) > 0 && !s.recoverable():
		return c.fail("SQL2421N  Table space level backup is not allowed because roll-forward \nrecovery is not enabled.")
	case b.incr && (!s.TrackMod || s.Has(FaultTrackModOff)):
		return c.fail("SQL2426N  The database has not been configured to allow the incremental \nbackup operation. Reason code = \"1\".")
	case b.incr && c.base(typ, b.tablespaces) == "":
		return c.fail("SQL2426N  The database has not been configured to allow the incremental \nbackup operation. Reason code = \"2\".")
	case !b.online && (s.Applications > 0 || c.connectedTo(s.Database)):
		return c.fail("SQL1035N  The operation failed because the specified database cannot be \nconnected to in the mode requested.  SQLSTATE=57019")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return c.fail("SQL2036N  The path for the file or device %q is not valid.", dir)
	}
	ts, err := c.timestamp()
	if err != nil {
		return c.fail("SQL2044N  An error occurred while accessing a message queue.  Reason code: \"1\".\n(fake db2: %v)", err)
	}
	meta := ImageMeta{Database: s.Database, Instance: s.instance(), Timestamp: ts, Type: typ, Mode: mode,
		Tablespaces: b.tablespaces, IncludeLogs: b.includeLogs, Compress: b.compress, Encrypted: s.Encrypted}
	objType := 0
	if len(b.tablespaces) > 0 {
		objType = 3
	}
	// One image per partition backed up: all of them ON ALL DBPARTITIONNUMS, else the
	// session's own.
	parts := []int{s.CurrentPartition}
	if b.allParts {
		parts = s.Partitions
		if len(parts) == 0 {
			parts = []int{0}
		}
	}
	var limit int64
	if s.Has(FaultDiskFull) {
		limit = s.imageBytes() / 2
	}
	var path, sum string
	for k, part := range parts {
		p := filepath.Join(dir, fmt.Sprintf("%s.%d.%s.DBPART%03d.%s.001", s.Database, objType, s.instance(), part, ts))
		sm, err := WriteImage(p, meta, s.imageBytes(), s.Has(FaultCorruptImage), limit)
		if err != nil {
			os.Remove(p)
			if errors.Is(err, errDiskFull) {
				return c.fail("SQL2419N  The target disk %q has become full.", dir)
			}
			return c.fail("SQL2062N  An error occurred while accessing media %q. Reason code: \"%d\".\n(fake db2: %v)", dir, 2, err)
		}
		if k == 0 {
			path, sum = p, sm
		}
	}
	if offlineFull {
		s.BackupPending = false
	}
	s.History = append(s.History, Backup{Timestamp: ts, Type: typ, Mode: mode, Tablespaces: b.tablespaces,
		IncludeLogs: b.includeLogs, Compress: b.compress, Image: path, SizeBytes: s.imageBytes(), SHA256: sum,
		Base: c.base(typ, b.tablespaces), EID: len(s.History) + 1, Rows: s.Rows, Log: s.LogSeq})
	if s.recoverable() {
		// The backup closes the active log, which an online image carries (INCLUDE LOGS).
		at, _ := time.Parse("20060102150405", ts)
		s.closeLog(at)
	}
	if b.allParts {
		c.printf("\nPart  Result\n----  ------------------------------------------------------------------------\n")
		for _, part := range parts {
			c.printf("%04d  DB20000I  The BACKUP DATABASE command completed successfully.\n", part)
		}
	}
	c.printf("\nBackup successful. The timestamp for this backup image is : %s\n\n", ts)
	return exitOK
}

// base is the image Db2 builds a backup of type typ of the object (database, or table spaces)
// on: the latest full of the object for an incremental, its latest backup of any type for a
// delta, whether or not the image file still exists; "" for a full or when there is none.
func (c *session) base(typ string, tablespaces []string) string {
	obj := Backup{Tablespaces: tablespaces}.object()
	for i := len(c.s.History) - 1; i >= 0 && typ != "full"; i-- {
		h := c.s.History[i]
		if h.object() == obj && (typ == "delta" || h.Type == "full") {
			return h.Timestamp
		}
	}
	return ""
}

// historyTypes is the Type column of LIST HISTORY for a backup.
var historyTypes = map[[2]string]string{
	{"full", "offline"}: "F", {"full", "online"}: "N",
	{"incremental", "offline"}: "I", {"incremental", "online"}: "O",
	{"delta", "offline"}: "D", {"delta", "online"}: "E",
}

// listHistory prints LIST HISTORY BACKUP ALL (or SINCE since) FOR db in the documented layout:
// the title, the number of entries, then one entry per backup of History, oldest first.
func (c *session) listHistory(db, since string) int {
	if !c.known(db) {
		return c.notFound(db)
	}
	if since != "" && (len(since) < 4 || len(since) > 14 || strings.Trim(since, "0123456789") != "") {
		return c.syntax(since, "SINCE")
	}
	var list []Backup
	for _, b := range c.s.History {
		if b.Timestamp >= since {
			list = append(list, b)
		}
	}
	c.printf("\n                    List History File for %s\n\nNumber of matching file entries = %d\n\n", strings.ToUpper(db), len(list))
	rule := " ----------------------------------------------------------------------------\n"
	for _, b := range list {
		obj, spaces := "D", []string{"SYSCATSPACE", "USERSPACE1", "SYSTOOLSPACE"}
		if len(b.Tablespaces) > 0 {
			obj, spaces = "P", b.Tablespaces
		}
		c.printf("\n Op Obj Timestamp+Sequence Type Dev Earliest Log Current Log  Backup ID\n")
		c.printf(" -- --- ------------------ ---- --- ------------ ------------ --------------\n")
		// The log file active during the backup is the first and last one the image needs (the
		// backup closes it into the archive).
		log := LogName(b.Log)
		c.printf("  B  %s  %s001    %s    D  %s %s\n", obj, b.Timestamp, historyTypes[[2]string{b.Type, b.Mode}], log, log)
		c.printf("%s  Contains %d tablespace(s):\n\n", rule, len(spaces))
		for i, ts := range spaces {
			c.printf(" %05d %s\n", i+1, ts)
		}
		c.printf("%s    Comment: DB2 BACKUP %s %s\n Start Time: %s\n   End Time: %s\n     Status: A\n", rule,
			c.s.Database, strings.ToUpper(b.Mode), b.Timestamp, b.Timestamp)
		c.printf("%s  EID: %d Location: %s\n", rule, b.EID, filepath.Dir(b.Image))
	}
	c.printf("\n")
	return exitOK
}

// timestamp is the next backup timestamp, later than every earlier one (Db2 never reuses one).
func (c *session) timestamp() (string, error) {
	const layout = "20060102150405"
	t := time.Now().UTC().Truncate(time.Second)
	if c.s.NextTimestamp != "" {
		var err error
		if t, err = time.Parse(layout, c.s.NextTimestamp); err != nil {
			return "", fmt.Errorf("next_timestamp: %w", err)
		}
	}
	if n := len(c.s.History); n > 0 {
		if last, err := time.Parse(layout, c.s.History[n-1].Timestamp); err == nil && !t.After(last) {
			t = last.Add(time.Second)
		}
	}
	if c.s.NextTimestamp != "" {
		c.s.NextTimestamp = t.Add(time.Second).Format(layout)
	}
	return t.Format(layout), nil
}

// dbmCfg prints the instance configuration lines keyguard reads (native-encryption keystore).
func (c *session) dbmCfg() int {
	typ := "NONE"
	if c.s.KeystoreLocation != "" {
		typ = "PKCS12"
	}
	c.printf("\n          Database Manager Configuration\n\n     Node type = Enterprise Server Edition with local and remote clients\n\n")
	c.printf("%s\n%s\n", cfgLine("Keystore type", "KEYSTORE_TYPE", typ), cfgLine("Keystore location", "KEYSTORE_LOCATION", c.s.KeystoreLocation))
	return exitOK
}
