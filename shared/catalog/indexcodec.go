package catalog

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// The index's stored form: lines of tab-separated fields (every text an entry may hold is
// validated to be free of control characters, tabs and newlines included). A head is plain text
// (small, rewritten by compare-and-swap, readable by an operator); a base is the same lines
// gzip-compressed (large, written once). Both start with a header line naming the format
// version and the kind, then the database. Summaries are "e" lines in name order, each naming
// its key CRN and version by their number in the "k" lines before them. Decoding is strict:
// unknown or repeated lines, rows out of order, a newer version, or a summary that breaks the
// rules of Validate it keeps are errors wrapping ErrIndex.
//
// A keyguard that writes entries older readers cannot judge (an entry schema whose new fields
// change what retention or a chain may do) must write a newer IndexVersion: older readers then
// rebuild the index from the entries, report the entries they cannot read, and retention
// pauses, as it does for a listing (Listing.Retain).

// IndexVersion is the newest version of the index format this package writes and reads.
// Version 2 added an 18th field to summaries, the database partitions of a backup of a
// partitioned database ("0*,1,2": numbers ascending, the catalog partition starred). A head or
// base is written as version 1, byte for byte as before, unless one of its summaries has
// partitions: readers of version 1 then rebuild the index from the entries, whose schema
// version 3 they report as unreadable, and retention pauses rather than misjudge them.
const IndexVersion = 2

// Limits of the index a reader accepts.
const (
	// MaxIndexEntries bounds the summaries of one database's index.
	MaxIndexEntries = 1_000_000
	// MaxIndexHeadSize bounds a stored head.
	MaxIndexHeadSize = 8 << 20
	// maxBaseText bounds a base once decompressed.
	maxBaseText = 512 << 20
	// maxSkipped bounds the unreadable objects a head names.
	maxSkipped = 256
	// maxInUse bounds the images in use a retention mark records.
	maxInUse = 256
)

// baseTextLimit is maxBaseText; tests lower it.
var baseTextLimit = maxBaseText

// ErrIndex: a stored index object does not decode (corrupt, truncated, of a newer format, or
// breaking a rule). The index is then rebuilt from the entries.
var ErrIndex = errors.New("unreadable catalog index")

const indexMagic = "keyguard-catalog-index"

// mark is a name with the instant an operation on it began: a Put's intent (pending) or a
// deletion (deleting).
type mark struct {
	Name  string
	Since time.Time
	// Where a deleting entry's summary is: 'b' in the base, 'r' in the head's rows, '-' in
	// neither (an entry the index did not know). Unused for pending marks.
	Where byte
}

// baseRef names a head's base and what it must hold.
type baseRef struct {
	Key    string
	Count  int
	Size   int64
	SHA256 string
}

// retained records the last retention pass that deleted nothing more (see Prune): under the
// same policy, before Due, with no deletion since, the same base and every image then in use
// still in use, summaries added after it can be judged from the head alone.
type retained struct {
	KeepFulls, KeepDays int
	At                  time.Time
	// Due is the first instant at which time alone may make retention drop something; zero when
	// time alone never does (no KeepDays).
	Due time.Time
	// Through is the newest summary the pass saw (by Compare), "" when none; ThroughStarted its
	// StartedAt.
	Through        string
	ThroughStarted time.Time
	// Count is how many summaries the pass kept; Rows how many rows the head held, Base its
	// base ("" when none) and Deletions its deletion count, once written.
	Count     int
	Rows      int
	Base      string
	Deletions uint64
	// InUse are the image timestamps running restores held then, sorted.
	InUse []string
	// fresh is set on a mark written by this process's current change (not stored): a
	// compaction in the same write updates Base and Rows.
	fresh bool
}

// head is the mutable part of a database's index: index/<database>/head.
type head struct {
	Database   string
	Generation uint64
	// Building, when set, says a rebuild from the entries began then and has not finished: the
	// head's summaries are not the catalog.
	Building time.Time
	// Rebuilt is when the index was last rebuilt from the entries.
	Rebuilt time.Time
	Base    *baseRef
	// Rows are the summaries added since the base, by name.
	Rows []Entry
	// Removed are names of the base's summaries deleted since, sorted.
	Removed []string
	// Deleting are entries whose deletion began: no reader sees them any more.
	Deleting []mark
	// Pending are Puts that began: the entry may exist and not be in Rows yet.
	Pending []mark
	// Skipped are the objects the last rebuild could not read.
	Skipped []Skipped
	// Deletions counts the deletions ever begun.
	Deletions uint64
	// RunsPruned is when run records were last pruned.
	RunsPruned time.Time
	Retained   *retained
}

// name is an entry's name "<timestamp>-<type>".
func entryName(ts string, typ events.BackupType) string { return ts + "-" + string(typ) }

// parseName splits "<timestamp>-<type>".
func parseName(name string) (string, events.BackupType, bool) {
	return parseKey(name + ".json")
}

// Summary returns the part of e the index keeps: what retention, chains, restore planning and
// listings read (database, timestamp, type, mode, scope, table spaces, parent, start and end,
// size, log range, key CRN and version, whether it was verified, run id, the discard, and the
// database partitions without their image keys).
// Images, keystore, executor, notes and the verification's tool, time and detail are left
// empty: Get returns the whole entry. Instants are in UTC.
func Summary(e Entry) Entry {
	s := Entry{
		Database: e.Database, ImageTimestamp: e.ImageTimestamp, Type: e.Type, Mode: e.Mode, Scope: e.Scope,
		ParentTimestamp: e.ParentTimestamp, StartedAt: e.StartedAt.UTC(), EndedAt: e.EndedAt.UTC(),
		SizeBytes: e.SizeBytes, LogRange: e.LogRange, KeyCRN: e.KeyCRN, KeyVersion: e.KeyVersion, RunID: e.RunID,
		Verification: Verification{Verified: e.Verification.Verified},
	}
	if len(e.Tablespaces) > 0 {
		s.Tablespaces = slices.Clone(e.Tablespaces)
	}
	for _, p := range e.Partitions {
		s.Partitions = append(s.Partitions, Partition{Number: p.Number, Catalog: p.Catalog})
	}
	if e.Discarded != nil {
		s.Discarded = &Discard{At: e.Discarded.At.UTC(), Reason: e.Discarded.Reason}
	}
	return s
}

// sameSummary reports whether a and b have the same summary.
func sameSummary(a, b Entry) bool {
	var kt keyTable
	return string(kt.row(nil, Summary(a))) == string(kt.row(nil, Summary(b)))
}

// --- encoding ---

// keyTable numbers the (key CRN, key version) pairs of the rows.
type keyTable struct {
	ids  map[[2]string]int
	keys [][2]string
}

func (kt *keyTable) id(crn, version string) int {
	k := [2]string{crn, version}
	if id, ok := kt.ids[k]; ok {
		return id
	}
	if kt.ids == nil {
		kt.ids = map[[2]string]int{}
	}
	kt.ids[k] = len(kt.keys)
	kt.keys = append(kt.keys, k)
	return kt.ids[k]
}

// tablespaceSep joins table space names in a row (a control character: never in a name).
const tablespaceSep = "\x1f"

// row appends e's summary line to b (after "e\t"), numbering its key in kt.
func (kt *keyTable) row(b []byte, e Entry) []byte {
	b = append(b, "e\t"...)
	b = append(b, e.ImageTimestamp...)
	b = append(b, '\t')
	b = append(b, e.Type...)
	b = append(b, '\t')
	b = append(b, e.Mode...)
	b = append(b, '\t')
	b = append(b, e.Scope...)
	b = append(b, '\t')
	b = append(b, strings.Join(e.Tablespaces, tablespaceSep)...)
	b = append(b, '\t')
	b = append(b, e.ParentTimestamp...)
	b = append(b, '\t')
	b = appendUnix(b, e.StartedAt)
	b = append(b, '\t')
	b = appendUnix(b, e.EndedAt)
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(kt.id(e.KeyCRN, e.KeyVersion)), 10)
	b = append(b, '\t')
	b = append(b, e.RunID...)
	b = append(b, '\t')
	b = strconv.AppendInt(b, e.SizeBytes, 10)
	b = append(b, '\t')
	if e.Verification.Verified {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, '\t')
	b = append(b, e.LogRange.First...)
	b = append(b, '\t')
	b = append(b, e.LogRange.Last...)
	b = append(b, '\t')
	if d := e.Discarded; d != nil {
		b = appendUnix(b, d.At)
		b = append(b, '\t')
		b = append(b, d.Reason...)
	} else {
		b = append(b, '\t')
	}
	if len(e.Partitions) > 0 {
		b = append(b, '\t')
		b = appendPartitions(b, e.Partitions)
	}
	return append(b, '\n')
}

// appendPartitions writes partitions as "0*,1,2" (the catalog partition starred).
func appendPartitions(b []byte, parts []Partition) []byte {
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p.Number), 10)
		if p.Catalog {
			b = append(b, '*')
		}
	}
	return b
}

// parsePartitions reads appendPartitions' form strictly (canonical decimals).
func parsePartitions(s string) ([]Partition, error) {
	var out []Partition
	for _, f := range strings.Split(s, ",") {
		num, cat := strings.CutSuffix(f, "*")
		n, err := strconv.Atoi(num)
		if err != nil || !(num == "0" || decimal(num)) || len(out) >= MaxPartitions {
			return nil, fmt.Errorf("%q is not a list of partition numbers", s)
		}
		out = append(out, Partition{Number: n, Catalog: cat})
	}
	return out, nil
}

// rowsVersion is the index version that can carry rows: 2 when a summary has partitions.
func rowsVersion(rows []Entry) int {
	for i := range rows {
		if len(rows[i].Partitions) > 0 {
			return 2
		}
	}
	return 1
}

// rowFields is the number of fields of a summary line of version 1; version 2 adds an
// optional 18th, the partitions.
const rowFields = 17

// appendUnix writes t as Unix seconds, with nine digits of nanoseconds when it has any.
func appendUnix(b []byte, t time.Time) []byte {
	b = strconv.AppendInt(b, t.Unix(), 10)
	if ns := t.Nanosecond(); ns != 0 {
		b = append(b, '.')
		s := strconv.Itoa(ns)
		b = append(b, "000000000"[len(s):]...)
		b = append(b, s...)
	}
	return b
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// keyLines writes the "k" lines of kt.
func (kt *keyTable) lines(b []byte) []byte {
	for _, k := range kt.keys {
		b = append(b, "k\t"...)
		b = append(b, k[0]...)
		b = append(b, '\t')
		b = append(b, k[1]...)
		b = append(b, '\n')
	}
	return b
}

// rowsText returns the "k" and "e" lines of rows (sorted by name).
func rowsText(rows []Entry) []byte {
	var kt keyTable
	var eb []byte
	for _, e := range rows {
		eb = kt.row(eb, e)
	}
	return append(kt.lines(make([]byte, 0, len(eb)+len(kt.keys)*160)), eb...)
}

// clean makes s one line of a field: control characters become spaces; at most max bytes.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	if s == "" {
		s = "-"
	}
	return s
}

// encodeHead returns h's stored form. h must be valid (decodeHead(encodeHead(h)) succeeds for
// every head this package builds).
func encodeHead(h *head) []byte {
	var b bytes.Buffer
	line := func(fields ...string) {
		b.WriteString(strings.Join(fields, "\t"))
		b.WriteByte('\n')
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	line(indexMagic, strconv.Itoa(rowsVersion(h.Rows)), "head")
	line("database", h.Database)
	line("generation", u(h.Generation))
	if !h.Building.IsZero() {
		line("building", fmtTime(h.Building))
	}
	if !h.Rebuilt.IsZero() {
		line("rebuilt", fmtTime(h.Rebuilt))
	}
	if r := h.Base; r != nil {
		line("base", r.Key, strconv.Itoa(r.Count), strconv.FormatInt(r.Size, 10), r.SHA256)
	}
	line("deletions", u(h.Deletions))
	if !h.RunsPruned.IsZero() {
		line("runs-pruned", fmtTime(h.RunsPruned))
	}
	if m := h.Retained; m != nil {
		opt := func(s string) string { return cmpOr(s, "-") }
		optT := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return fmtTime(t)
		}
		line("retained", strconv.Itoa(m.KeepFulls), strconv.Itoa(m.KeepDays), fmtTime(m.At), optT(m.Due),
			opt(m.Through), optT(m.ThroughStarted), strconv.Itoa(m.Count), strconv.Itoa(m.Rows), opt(m.Base), u(m.Deletions),
			opt(strings.Join(m.InUse, ",")))
	}
	for _, p := range h.Pending {
		line("pending", p.Name, fmtTime(p.Since))
	}
	for _, d := range h.Deleting {
		line("deleting", d.Name, fmtTime(d.Since), string(d.Where))
	}
	for _, n := range h.Removed {
		line("removed", n)
	}
	for _, s := range h.Skipped {
		line("skipped", s.Key, clean(s.Reason, maxDetail))
	}
	b.Write(rowsText(h.Rows))
	return b.Bytes()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// encodeBase returns the stored (compressed) form of a base holding rows (sorted by name).
func encodeBase(db string, rows []Entry) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(zw, "%s\t%d\tbase\ndatabase\t%s\ncount\t%d\n", indexMagic, rowsVersion(rows), db, len(rows))
	if _, err := zw.Write(rowsText(rows)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// --- decoding ---

// lines iterates over the lines of a text, each split into fields.
type lines struct {
	text   string
	num    int
	fields [rowFields + 2]string
}

// next returns the fields of the next line (valid until the next call), or nil at the end.
// Every line, the last included, must end in a newline.
func (l *lines) next() ([]string, error) {
	if l.text == "" {
		return nil, nil
	}
	l.num++
	i := strings.IndexByte(l.text, '\n')
	if i < 0 {
		return nil, l.errorf("no newline at the end")
	}
	line := l.text[:i]
	l.text = l.text[i+1:]
	n := 0
	for {
		if n == len(l.fields) {
			return nil, l.errorf("more than %d fields", len(l.fields))
		}
		j := strings.IndexByte(line, '\t')
		if j < 0 {
			l.fields[n] = line
			n++
			break
		}
		l.fields[n] = line[:j]
		n++
		line = line[j+1:]
	}
	return l.fields[:n], nil
}

func (l *lines) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrIndex, l.num, fmt.Sprintf(format, args...))
}

// rowReader decodes "k" and "e" lines.
type rowReader struct {
	db string
	// version is the header's: 2 allows the partitions field.
	version int
	keys    [][2]string
	rows    []Entry
}

// key reads a "k" line: a key CRN and version. Keys come before the rows.
func (r *rowReader) key(l *lines, f []string) error {
	switch {
	case len(f) != 3:
		return l.errorf("a key line has %d fields, want 3", len(f))
	case len(r.rows) > 0:
		return l.errorf("a key line after the summaries")
	case !text(f[1], maxText) || !optText(f[2], maxText):
		return l.errorf("key CRN or version is not 1-%d bytes without control characters", maxText)
	case len(r.keys) >= MaxIndexEntries:
		return l.errorf("more than %d keys", MaxIndexEntries)
	}
	r.keys = append(r.keys, [2]string{f[1], f[2]})
	return nil
}

// row reads an "e" line.
func (r *rowReader) row(l *lines, f []string) error {
	if len(f) != rowFields && (r.version < 2 || len(f) != rowFields+1) {
		return l.errorf("a summary has %d fields, want %d", len(f), rowFields)
	}
	if len(r.rows) >= MaxIndexEntries {
		return l.errorf("more than %d summaries", MaxIndexEntries)
	}
	e := Entry{Database: r.db, ImageTimestamp: f[1], Type: events.BackupType(f[2]), Mode: events.Mode(f[3]), Scope: Scope(f[4]),
		ParentTimestamp: f[6], RunID: f[10], LogRange: LogRange{First: f[13], Last: f[14]}}
	if n := len(r.rows); n > 0 && compareNames(&r.rows[n-1], &e) >= 0 {
		return l.errorf("summary %s is not after %s", e.Name(), r.rows[n-1].Name())
	}
	var err error
	if f[5] != "" {
		e.Tablespaces = strings.Split(f[5], tablespaceSep)
	}
	if e.StartedAt, err = parseUnix(f[7]); err != nil {
		return l.errorf("started: %v", err)
	}
	if e.EndedAt, err = parseUnix(f[8]); err != nil {
		return l.errorf("ended: %v", err)
	}
	id, err := strconv.Atoi(f[9])
	if err != nil || !decimal(f[9]) || id >= len(r.keys) {
		return l.errorf("key %q is not the number of a key line", f[9])
	}
	e.KeyCRN, e.KeyVersion = r.keys[id][0], r.keys[id][1]
	if e.SizeBytes, err = strconv.ParseInt(f[11], 10, 64); err != nil || !decimal(f[11]) {
		return l.errorf("size %q is not a decimal number", f[11])
	}
	switch f[12] {
	case "1":
		e.Verification.Verified = true
	case "0":
	default:
		return l.errorf("verified %q is not 0 or 1", f[12])
	}
	switch {
	case f[15] != "":
		at, err := parseUnix(f[15])
		if err != nil {
			return l.errorf("discarded: %v", err)
		}
		e.Discarded = &Discard{At: at, Reason: f[16]}
	case f[16] != "":
		return l.errorf("a discard reason without its time")
	}
	if len(f) > rowFields {
		if e.Partitions, err = parsePartitions(f[rowFields]); err != nil {
			return l.errorf("partitions: %v", err)
		}
	}
	var p problems
	p.fields(&e) // the database was checked once, in the header
	if err := p.err(e); err != nil {
		return l.errorf("%v", err)
	}
	r.rows = append(r.rows, e)
	return nil
}

// decimal reports whether s is a canonical decimal number: digits, no sign, no leading zero.
func decimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareNames orders entries by name ("<timestamp>-<type>") without building the names.
func compareNames(a, b *Entry) int {
	if c := strings.Compare(a.ImageTimestamp, b.ImageTimestamp); c != 0 {
		return c
	}
	return strings.Compare(string(a.Type), string(b.Type))
}

// parseUnix reads appendUnix's form.
func parseUnix(s string) (time.Time, error) {
	sec, frac, hasFrac := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || !decimal(sec) {
		return time.Time{}, fmt.Errorf("%q is not Unix seconds", s)
	}
	var ns int64
	if hasFrac {
		ns, err = strconv.ParseInt(frac, 10, 64)
		if err != nil || len(frac) != 9 || ns <= 0 || frac[0] == '-' || frac[0] == '+' {
			return time.Time{}, fmt.Errorf("%q: the fraction must be 9 digits, not all zero", s)
		}
	}
	t := time.Unix(n, ns).UTC()
	if !sane(t) {
		return time.Time{}, fmt.Errorf("%q is outside the years 1970-9999", s)
	}
	return t, nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !sane(t) || t.IsZero() {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 instant in the years 1970-9999", s)
	}
	return t.UTC(), nil
}

// header checks the first two lines: the magic, the version and kind, and the database. It
// returns the database and the version (1 or 2).
func header(l *lines, kind string) (string, int, error) {
	f, err := l.next()
	version := 0
	switch {
	case err != nil:
		return "", 0, err
	case len(f) != 3 || f[0] != indexMagic || f[2] != kind:
		return "", 0, l.errorf("not a catalog index %s", kind)
	case f[1] == "1" || f[1] == "2":
		version = int(f[1][0] - '0')
	default:
		if v, err := strconv.Atoi(f[1]); err == nil && v > IndexVersion {
			return "", 0, l.errorf("version %d is newer than this reader (%d)", v, IndexVersion)
		}
		return "", 0, l.errorf("version %q, want 1 or %d", f[1], IndexVersion)
	}
	f, err = l.next()
	switch {
	case err != nil:
		return "", 0, err
	case len(f) != 2 || f[0] != "database":
		return "", 0, l.errorf("the second line must name the database")
	}
	if err := state.ValidateDatabase(f[1]); err != nil {
		return "", 0, l.errorf("database: %v", err)
	}
	return f[1], version, nil
}

func validEntryName(name string) bool {
	_, _, ok := parseName(name)
	return ok
}

// decodeHead parses a stored head strictly.
// DeletingNames returns the names (<timestamp>-<type>) of the entries whose deletion began, in
// name order, as an index head records them: from then on no reader sees them, and their files
// are being deleted. For tools that watch the index (the simulator's oracle).
func DeletingNames(head []byte) ([]string, error) {
	h, err := decodeHead(head)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(h.Deleting))
	for i, m := range h.Deleting {
		names[i] = m.Name
	}
	return names, nil
}

func decodeHead(body []byte) (*head, error) {
	if len(body) > MaxIndexHeadSize {
		return nil, fmt.Errorf("%w: head of %d bytes, more than %d", ErrIndex, len(body), MaxIndexHeadSize)
	}
	l := &lines{text: string(body)}
	db, version, err := header(l, "head")
	if err != nil {
		return nil, err
	}
	h := &head{Database: db}
	r := &rowReader{db: db, version: version}
	seen := map[string]bool{}
	once := func(kind string) error {
		if seen[kind] {
			return l.errorf("%s repeated", kind)
		}
		seen[kind] = true
		return nil
	}
	arity := func(f []string, n int) error {
		if len(f) != n {
			return l.errorf("a %s line has %d fields, want %d", f[0], len(f), n)
		}
		return nil
	}
	uint := func(s string) (uint64, error) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || s != strconv.FormatUint(n, 10) {
			return 0, l.errorf("%q is not a decimal number", s)
		}
		return n, nil
	}
	count := func(s string) (int, error) {
		n, err := uint(s)
		if err == nil && n > MaxIndexEntries {
			err = l.errorf("%d is more than %d", n, MaxIndexEntries)
		}
		return int(n), err
	}
	when := func(s string) (time.Time, error) {
		t, err := parseTime(s)
		if err != nil {
			return t, l.errorf("%v", err)
		}
		return t, nil
	}
	names := map[string]bool{}
	sortedName := func(kind string, list []string, name string) error {
		if !validEntryName(name) {
			return l.errorf("%s %q is not an entry name", kind, name)
		}
		if n := len(list); n > 0 && name <= list[n-1] {
			return l.errorf("%s %s is not after %s", kind, name, list[n-1])
		}
		if len(list) >= MaxIndexEntries {
			return l.errorf("more than %d %s lines", MaxIndexEntries, kind)
		}
		return nil
	}
	var pendingNames, deletingNames []string
	for {
		f, err := l.next()
		if err != nil {
			return nil, err
		}
		if f == nil {
			break
		}
		kind := f[0]
		if len(h.Rows) > 0 || len(r.keys) > 0 {
			if kind != "k" && kind != "e" {
				return nil, l.errorf("a %s line after the summaries", kind)
			}
		}
		switch kind {
		case "generation", "deletions":
			if err := once(kind); err != nil {
				return nil, err
			}
			if err := arity(f, 2); err != nil {
				return nil, err
			}
			n, err := uint(f[1])
			if err != nil {
				return nil, err
			}
			if kind == "generation" {
				h.Generation = n
			} else {
				h.Deletions = n
			}
		case "building", "rebuilt", "runs-pruned":
			if err := once(kind); err != nil {
				return nil, err
			}
			if err := arity(f, 2); err != nil {
				return nil, err
			}
			t, err := when(f[1])
			if err != nil {
				return nil, err
			}
			switch kind {
			case "building":
				h.Building = t
			case "rebuilt":
				h.Rebuilt = t
			default:
				h.RunsPruned = t
			}
		case "base":
			if err := once(kind); err != nil {
				return nil, err
			}
			if err := arity(f, 5); err != nil {
				return nil, err
			}
			ref := &baseRef{Key: f[1], SHA256: f[4]}
			if !strings.HasPrefix(ref.Key, indexPrefix(db)+"base-") || !validBaseName(strings.TrimPrefix(ref.Key, indexPrefix(db))) {
				return nil, l.errorf("base %q is not a base of %s", ref.Key, db)
			}
			if ref.Count, err = count(f[2]); err != nil {
				return nil, err
			}
			size, err := uint(f[3])
			if err != nil {
				return nil, err
			}
			if size > maxBaseText {
				return nil, l.errorf("base of %d bytes", size)
			}
			ref.Size = int64(size)
			if !sha256Hex(ref.SHA256) {
				return nil, l.errorf("base checksum %q is not 64 lowercase hex digits", ref.SHA256)
			}
			h.Base = ref
		case "retained":
			if err := once(kind); err != nil {
				return nil, err
			}
			if err := arity(f, 12); err != nil {
				return nil, err
			}
			m, err := decodeRetained(l, f, db)
			if err != nil {
				return nil, err
			}
			h.Retained = m
		case "pending", "deleting":
			n := 3
			if kind == "deleting" {
				n = 4
			}
			if err := arity(f, n); err != nil {
				return nil, err
			}
			list := &pendingNames
			if kind == "deleting" {
				list = &deletingNames
			}
			if err := sortedName(kind, *list, f[1]); err != nil {
				return nil, err
			}
			since, err := when(f[2])
			if err != nil {
				return nil, err
			}
			*list = append(*list, f[1])
			m := mark{Name: f[1], Since: since}
			if kind == "pending" {
				h.Pending = append(h.Pending, m)
				continue
			}
			if len(f[3]) != 1 || !strings.Contains("br-", f[3]) {
				return nil, l.errorf("deleting %s: where %q is not b, r or -", f[1], f[3])
			}
			m.Where = f[3][0]
			h.Deleting = append(h.Deleting, m)
		case "removed":
			if err := arity(f, 2); err != nil {
				return nil, err
			}
			if err := sortedName(kind, h.Removed, f[1]); err != nil {
				return nil, err
			}
			h.Removed = append(h.Removed, f[1])
		case "skipped":
			if err := arity(f, 3); err != nil {
				return nil, err
			}
			if len(h.Skipped) >= maxSkipped {
				return nil, l.errorf("more than %d skipped objects", maxSkipped)
			}
			if !text(f[1], 2048) || !text(f[2], maxDetail) {
				return nil, l.errorf("a skipped object needs a key and a reason without control characters")
			}
			h.Skipped = append(h.Skipped, Skipped{Key: f[1], Reason: f[2]})
		case "k":
			if err := r.key(l, f); err != nil {
				return nil, err
			}
		case "e":
			if err := r.row(l, f); err != nil {
				return nil, err
			}
			h.Rows = r.rows
		default:
			return nil, l.errorf("unknown line %q", kind)
		}
	}
	if !seen["generation"] || !seen["deletions"] {
		return nil, fmt.Errorf("%w: head without generation or deletions", ErrIndex)
	}
	// Each name has one state: in the rows, removed from the base, deleting, pending.
	for _, list := range [][]string{h.Removed, deletingNames} {
		for _, n := range list {
			if names[n] {
				return nil, fmt.Errorf("%w: %s is both removed and deleting", ErrIndex, n)
			}
			names[n] = true
		}
	}
	for _, e := range h.Rows {
		if _, ok := slices.BinarySearch(h.Removed, e.Name()); ok {
			return nil, fmt.Errorf("%w: %s is both a row and removed from the base", ErrIndex, e.Name())
		}
	}
	for _, d := range h.Deleting {
		_, inRows := slices.BinarySearchFunc(h.Rows, d.Name, func(e Entry, n string) int { return strings.Compare(e.Name(), n) })
		if inRows != (d.Where == 'r') {
			return nil, fmt.Errorf("%w: deleting %s says where %c, and it is %sin the rows", ErrIndex, d.Name, d.Where, map[bool]string{false: "not "}[inRows])
		}
		if d.Where == 'b' && h.Base == nil {
			return nil, fmt.Errorf("%w: deleting %s from a base, and there is none", ErrIndex, d.Name)
		}
	}
	if len(h.Removed) > 0 && h.Base == nil && h.Building.IsZero() {
		return nil, fmt.Errorf("%w: removed names without a base", ErrIndex)
	}
	return h, nil
}

func decodeRetained(l *lines, f []string, db string) (*retained, error) {
	m := &retained{}
	var err error
	small := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxIndexEntries || s != strconv.Itoa(n) {
			return 0, l.errorf("retained: %q is not a count", s)
		}
		return n, nil
	}
	opt := func(s string) (time.Time, error) {
		if s == "-" {
			return time.Time{}, nil
		}
		t, err := parseTime(s)
		if err != nil {
			return t, l.errorf("retained: %v", err)
		}
		return t, nil
	}
	if m.KeepFulls, err = small(f[1]); err != nil {
		return nil, err
	}
	if m.KeepDays, err = small(f[2]); err != nil {
		return nil, err
	}
	if m.At, err = opt(f[3]); err != nil || m.At.IsZero() {
		return nil, l.errorf("retained: a time is required")
	}
	if m.Due, err = opt(f[4]); err != nil {
		return nil, err
	}
	if f[5] != "-" {
		if !validEntryName(f[5]) {
			return nil, l.errorf("retained: %q is not an entry name", f[5])
		}
		m.Through = f[5]
	}
	if m.ThroughStarted, err = opt(f[6]); err != nil {
		return nil, err
	}
	if (m.Through == "") != m.ThroughStarted.IsZero() {
		return nil, l.errorf("retained: the newest entry needs its start, and only it")
	}
	if m.Count, err = small(f[7]); err != nil {
		return nil, err
	}
	if m.Rows, err = small(f[8]); err != nil {
		return nil, err
	}
	if f[9] != "-" {
		if !strings.HasPrefix(f[9], indexPrefix(db)+"base-") || !validBaseName(strings.TrimPrefix(f[9], indexPrefix(db))) {
			return nil, l.errorf("retained: %q is not a base of %s", f[9], db)
		}
		m.Base = f[9]
	}
	n, err := strconv.ParseUint(f[10], 10, 64)
	if err != nil || !decimal(f[10]) {
		return nil, l.errorf("retained: deletions %q is not a decimal number", f[10])
	}
	m.Deletions = n
	if f[11] != "-" {
		m.InUse = strings.Split(f[11], ",")
		if len(m.InUse) > maxInUse {
			return nil, l.errorf("retained: more than %d images in use", maxInUse)
		}
		for i, ts := range m.InUse {
			if !ValidTimestamp(ts) || i > 0 && ts <= m.InUse[i-1] {
				return nil, l.errorf("retained: images in use must be sorted timestamps")
			}
		}
	}
	return m, nil
}

// validBaseName reports whether name is "base-<generation>-<16 hex digits>.gz".
func validBaseName(name string) bool {
	rest, ok := strings.CutPrefix(name, "base-")
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ".gz")
	if !ok {
		return false
	}
	gen, nonce, ok := strings.Cut(rest, "-")
	if !ok || len(nonce) != 16 {
		return false
	}
	if n, err := strconv.ParseUint(gen, 10, 64); err != nil || gen != strconv.FormatUint(n, 10) {
		return false
	}
	for i := range len(nonce) {
		c := nonce[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// decodeBase parses a stored base strictly, checking it against ref (size, checksum, count) and
// db.
func decodeBase(body []byte, db string, ref baseRef) ([]Entry, error) {
	if int64(len(body)) != ref.Size {
		return nil, fmt.Errorf("%w: base %s is %d bytes, the head says %d", ErrIndex, ref.Key, len(body), ref.Size)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, fmt.Errorf("%w: base %s does not have the checksum the head names", ErrIndex, ref.Key)
	}
	rows, err := decodeBaseText(body, db)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref.Key, err)
	}
	if len(rows) != ref.Count {
		return nil, fmt.Errorf("%w: base %s holds %d summaries, the head says %d", ErrIndex, ref.Key, len(rows), ref.Count)
	}
	return rows, nil
}

// decodeBaseText decompresses and parses a base of db.
func decodeBaseText(body []byte, db string) ([]Entry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	// Straight into a string, which the summaries then share (no copy of the text).
	var raw strings.Builder
	raw.Grow(min(8*len(body), baseTextLimit+1))
	if _, err := io.Copy(&raw, io.LimitReader(zr, int64(baseTextLimit)+1)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	if raw.Len() > baseTextLimit {
		return nil, fmt.Errorf("%w: more than %d bytes once decompressed", ErrIndex, baseTextLimit)
	}
	return parseBaseText(raw.String(), db)
}

// parseBaseText parses the decompressed text of a base of db.
func parseBaseText(text, db string) ([]Entry, error) {
	l := &lines{text: text}
	got, version, err := header(l, "base")
	if err != nil {
		return nil, err
	}
	if got != db {
		return nil, fmt.Errorf("%w: the base is of database %s, not %s", ErrIndex, got, db)
	}
	f, err := l.next()
	if err != nil {
		return nil, err
	}
	if len(f) != 2 || f[0] != "count" {
		return nil, l.errorf("the third line must be the count")
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > MaxIndexEntries || f[1] != strconv.Itoa(n) {
		return nil, l.errorf("count %q", f[1])
	}
	// Room for the rows the text can hold, not for what its count claims.
	r := &rowReader{db: db, version: version, rows: make([]Entry, 0, min(n, len(l.text)/64))}
	for {
		f, err := l.next()
		if err != nil {
			return nil, err
		}
		if f == nil {
			break
		}
		switch f[0] {
		case "k":
			err = r.key(l, f)
		case "e":
			err = r.row(l, f)
		default:
			err = l.errorf("unknown line %q in a base", f[0])
		}
		if err != nil {
			return nil, err
		}
	}
	if len(r.rows) != n {
		return nil, fmt.Errorf("%w: %d summaries, the base says %d", ErrIndex, len(r.rows), n)
	}
	return r.rows, nil
}

// indexPrefix is where db's index lives: index/<database>/, outside catalog/ (whose objects are
// immutable records, copied to the archive) because the head is rewritten on every change.
func indexPrefix(db string) string { return "index/" + db + "/" }

// IndexHeadKey is the object key of db's index head: index/<database>/head.
func IndexHeadKey(db string) string { return indexPrefix(db) + "head" }
