package db2

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/keyguard-dev/keyguard/events"
)

// maxMsg bounds a message taken from command output (backup.failed allows 4096 bytes).
const maxMsg = 1024

// messageID matches a whole Db2 message identifier: SQLnnnnN / SQLnnnnW / SQLnnnnC (database
// manager) and DB2nnnnE / W / I (command line processor). findMessages does the scanning; the
// expression documents the shape and checks table rows.
var messageID = regexp.MustCompile(`^(?:SQL\d{4,5}[NWC]|DB2\d{4,5}[EWI])$`)

// findMessages returns the offsets of message identifiers that start a line or follow white
// space and end at a word boundary, in order.
func findMessages(out string) [][2]int {
	var hits [][2]int
	for i := 0; i+8 <= len(out); {
		j := strings.IndexAny(out[i:], "SD")
		if j < 0 {
			break
		}
		at := i + j
		i = at + 1
		if at > 0 && !isSpace(out[at-1]) {
			continue
		}
		var sev string
		switch {
		case strings.HasPrefix(out[at:], "SQL"):
			sev = "NWC"
		case strings.HasPrefix(out[at:], "DB2"):
			sev = "EWI"
		default:
			continue
		}
		k := at + 3
		for k < len(out) && k-at-3 < 6 && out[k] >= '0' && out[k] <= '9' {
			k++
		}
		if n := k - at - 3; n < 4 || n > 5 || k >= len(out) || !strings.ContainsRune(sev, rune(out[k])) {
			continue
		}
		k++
		if k < len(out) && isWord(out[k]) {
			continue
		}
		hits = append(hits, [2]int{at, k})
		i = k
	}
	return hits
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}

func isWord(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// ParseSQLCode finds the Db2 message that matters in command output and returns its identifier
// and text (white space collapsed, up to the first blank line, at most 1 KiB). It prefers the
// first database manager error (SQLnnnnN or SQLnnnnC), then the first command line processor
// error (DB2nnnnE), then the first warning (SQLnnnnW, DB2nnnnW). Informational messages
// (DB20000I) and output without any message give ok == false.
func ParseSQLCode(out string) (code, msg string, ok bool) {
	sqlErr, clpErr, warn := -1, -1, -1
	hits := findMessages(out)
	for n, h := range hits {
		c := out[h[0]:h[1]]
		switch {
		case strings.HasPrefix(c, "SQL") && severity(c) != 'W':
			sqlErr = n
		case severity(c) == 'E' && clpErr < 0:
			clpErr = n
		case severity(c) == 'W' && warn < 0:
			warn = n
		}
		if sqlErr >= 0 {
			break
		}
	}
	for _, n := range []int{sqlErr, clpErr, warn} {
		if n >= 0 {
			h := hits[n]
			return out[h[0]:h[1]], messageText(out[h[0]:]), true
		}
	}
	return "", "", false
}

// severity is the last letter of a message identifier: N, C or E (error), W (warning), I.
func severity(code string) byte {
	if code == "" {
		return 0
	}
	return code[len(code)-1]
}

// messageText is the message starting at s, up to the first blank line, white space collapsed.
func messageText(s string) string {
	if len(s) > 4*maxMsg {
		s = s[:4*maxMsg]
	}
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "\n\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMsg {
		s = s[:maxMsg]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "?")
}

// codeInfo is one row of the classification table.
type codeInfo struct {
	Code    string              `json:"code"`
	Class   events.FailureClass `json:"class"`
	Meaning string              `json:"meaning"`
	// Unsure marks rows whose exact IBM wording was not checked against the message reference
	// while writing this table; their class follows the list and the message family.
	Unsure bool `json:"unsure,omitempty"`
}

// codes is the documented classification table. Classes:
//   - rotation: key material in transition (native encryption keystore or master key not
//     reachable). The scheduler treats these like an open rotation window: hold and retry.
//   - configuration: the database or the host must change before a backup can succeed (archive
//     logging, TRACKMOD, pending states, space, paths, authority). Alert an operator.
//   - permanent: keyguard built a command Db2 rejects; retrying the same command cannot help.
//   - transient: everything else worth another try (database in use, media or I/O errors, the
//     instance restarting).
//
// Decisions worth stating: a full file system (SQL0968C, SQL2419N, SQL2059W) is configuration,
// not transient, because waiting on a backoff schedule rarely frees space and an operator should
// hear at once; backup pending (SQL1116N) is configuration although PlanBackup answers it with an
// offline full backup, because Db2 reporting it at backup time means the plan did not see it.
var codes = []codeInfo{
	// Rotation.
	{"SQL1728N", events.Rotation, "the keystore could not be accessed", false},
	{"SQL1782N", events.Rotation, "keystore or master key problem (native encryption family)", true},
	{"SQL1783N", events.Rotation, "keystore or master key problem (native encryption family)", true},
	{"SQL1784N", events.Rotation, "keystore or master key problem (native encryption family)", true},
	{"SQL1785N", events.Rotation, "keystore or master key problem (native encryption family)", true},

	// Configuration.
	{"SQL2413N", events.Configuration, "online backup not allowed: database not recoverable (archive logging off) or backup pending", false},
	{"SQL2426N", events.Configuration, "incremental backup not enabled: TRACKMOD off or no full backup since it was enabled", false},
	{"SQL2421N", events.Configuration, "table space level backup not allowed: roll-forward recovery not enabled", false},
	{"SQL1116N", events.Configuration, "database is in BACKUP PENDING state", false},
	{"SQL1117N", events.Configuration, "database is in ROLL-FORWARD PENDING state", false},
	{"SQL1119N", events.Configuration, "a previous restore is incomplete or still in progress (restore pending)", false},
	{"SQL0968C", events.Configuration, "the file system is full", false},
	{"SQL2419N", events.Configuration, "the target disk has become full", false},
	{"SQL2059W", events.Configuration, "a device full warning was encountered", false},
	{"SQL2036N", events.Configuration, "the path for the file or device is not valid", false},
	{"SQL1013N", events.Configuration, "the database alias or name could not be found", false},
	{"SQL1031N", events.Configuration, "the database directory cannot be found", false},
	{"SQL1092N", events.Configuration, "the user does not have the authority for the command", false},
	{"SQL0551N", events.Configuration, "the authorization ID lacks the privilege for the operation", false},
	{"SQL1060N", events.Configuration, "the user does not have the CONNECT privilege", false},
	{"SQL30082N", events.Configuration, "security processing failed (credentials)", false},
	{"SQL2071N", events.Configuration, "an error occurred accessing a shared library (vendor or compression library)", false},
	{"DB21061E", events.Configuration, "command line environment not initialized (db2profile not sourced)", false},
	{"SQL4970N", events.Configuration, "roll-forward cannot reach its stop point: a log file it needs is missing", false},

	// Restore: what an operator must decide or fix; trying again the same way does not help.
	{"SQL1275N", events.Permanent, "the roll-forward stop time is before the time the image ends", false},
	{"SQL1260N", events.Permanent, "the database is not in roll-forward pending state", false},
	{"SQL2537N", events.Permanent, "roll-forward is required after restoring an online image", false},
	{"SQL2542N", events.Permanent, "no image file matches the database alias and timestamp", false},
	{"SQL2530N", events.Permanent, "the backup image is corrupted", false},
	{"SQL2573N", events.Permanent, "an incremental image must be restored by an incremental restore", false},
	{"SQL2581N", events.Permanent, "restore cannot extract the log files from the image (LOGTARGET)", true},

	// Permanent.
	{"SQL0104N", events.Permanent, "syntax error: an unexpected token was found", false},
	{"SQL1001N", events.Permanent, "not a valid database name", false},
	{"SQL2032N", events.Permanent, "a parameter of the utility command is not valid", false},

	// Transient.
	{"SQL1035N", events.Transient, "the database is in use (cannot be connected to in the mode requested)", false},
	{"SQL2062N", events.Transient, "an error occurred while accessing media", false},
	{"SQL2033N", events.Transient, "an error occurred while accessing TSM", false},
	{"SQL2025N", events.Transient, "an I/O error occurred on media", false},
	{"SQL2048N", events.Transient, "an error occurred while accessing an object", false},
	{"SQL2044N", events.Transient, "an error occurred while accessing a message queue", false},
	{"SQL1032N", events.Transient, "no start database manager command was issued (instance down)", false},
	{"SQL1224N", events.Transient, "the database manager cannot accept new requests", false},
	{"SQL1042C", events.Transient, "an unexpected system error occurred", false},
	{"SQL1040N", events.Transient, "the maximum number of applications is already connected", false},
	{"SQL0911N", events.Transient, "deadlock or lock timeout", false},
	{"SQL0954C", events.Transient, "not enough storage in the application heap", false},
	{"SQL0964C", events.Transient, "the transaction log is full", false},
}

var codeIndex = func() map[string]codeInfo {
	m := make(map[string]codeInfo, len(codes))
	for _, c := range codes {
		m[c.Code] = c
	}
	return m
}()

// Classify returns the failure class of a Db2 message identifier (case and surrounding space
// ignored) from the table above. An identifier not in the table is transient: unknown failures
// are retried with backoff, and the completion function alerts when they keep failing.
func Classify(code string) events.FailureClass {
	if c, ok := codeIndex[strings.ToUpper(strings.TrimSpace(code))]; ok {
		return c.Class
	}
	return events.Transient
}

var (
	keyMaterial = regexp.MustCompile(`(?i)\b(keystore|master key|key store)\b`)
	// SQL2004N wraps another SQLCODE: `An SQL error "-1035" occurred during processing.`
	wrappedSQLCode = regexp.MustCompile(`SQL error "-(\d{1,5})"`)
)

// classifyMessage refines Classify with the message text: SQL2004N is classified by the SQLCODE
// it wraps, and an identifier missing from the table whose text speaks of the keystore or a
// master key is a rotation failure.
func classifyMessage(code, msg string) events.FailureClass {
	if code == "SQL2004N" {
		if m := wrappedSQLCode.FindStringSubmatch(msg); m != nil {
			digits := strings.Repeat("0", max(0, 4-len(m[1]))) + m[1]
			for _, sev := range []string{"N", "C"} {
				if c, ok := codeIndex["SQL"+digits+sev]; ok {
					return c.Class
				}
			}
		}
	}
	if _, ok := codeIndex[code]; !ok && keyMaterial.MatchString(msg) {
		return events.Rotation
	}
	return Classify(code)
}
