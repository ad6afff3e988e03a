package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// SchemaVersion is the newest version of the stored entry format this package writes and
// reads. Decode refuses entries of a newer version rather than misreading them. Version 2 added
// Notes and Discarded; Encode writes version 1 for an entry that uses neither, byte for byte as
// before, so that readers of version 1 keep reading ordinary entries during a rolling upgrade.
//
// Version 3 added Partitions (a backup of a partitioned database: one image per database
// partition); Encode writes it only for an entry that has partitions, so entries of
// single-partition databases keep their older version and bytes.
const SchemaVersion = 3

// Limits of one entry. An entry is written once per backup image; these bound what a reader
// accepts from COS.
const (
	// MaxEncodedSize bounds the stored JSON of one entry.
	MaxEncodedSize = 256 << 10
	// MaxImages bounds the image files of one backup (Db2 writes one file per target path or
	// session).
	MaxImages = 1024
	// MaxTablespaces bounds the table spaces named by a table space backup.
	MaxTablespaces = 4096
	// MaxNotes bounds Entry.Notes.
	MaxNotes = 16
	// MaxPartitions bounds Entry.Partitions (Db2 numbers database partitions 0-999).
	MaxPartitions = 1000
	maxText       = 1024
	maxDetail     = 4096
)

// TimestampLayout is the layout of a Db2 backup image timestamp (yyyymmddhhmmss), in the Db2
// server's local time. StartedAt / EndedAt are the UTC instants keyguard observed. Timestamps
// name images; they do not order them (the hour repeated when clocks go back gives later images
// smaller timestamps): Compare does.
const TimestampLayout = "20060102150405"

// Compare orders entries by time: by StartedAt (a UTC instant), then by image timestamp. It is
// the order of List, Chain, PlanRestore and Retain. It returns -1, 0 or +1 like cmp.Compare.
func Compare(a, b Entry) int { return compareRefs(&a, &b) }

// compareRefs is Compare without copying the entries.
func compareRefs(a, b *Entry) int {
	if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ImageTimestamp, b.ImageTimestamp)
}

// Scope of a backup: the whole database or some table spaces.
type Scope string

// Scopes.
const (
	ScopeDatabase   Scope = "database"
	ScopeTablespace Scope = "tablespace"
)

// Object is one stored file of a backup. Key is either an object key relative to the store's
// prefix (images/<database>/<timestamp>/<name>, written by keyguard, for which SHA256 is
// required) or an external location with a scheme ("scheme://...", e.g. a Db2 on Cloud managed
// backup), which keyguard neither checksums nor deletes. upload.Object has the same fields and
// converts to Object.
type Object struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// External reports whether o is a location outside keyguard's object store.
func (o Object) External() bool { return strings.Contains(o.Key, "://") }

// LogRange names the first and last log files (or LSNs) the image needs; both optional.
type LogRange struct {
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`
}

// Partition is one database partition of a backup of a partitioned (DPF) database: Db2's
// single-system-view backup (BACKUP DATABASE ... ON ALL DBPARTITIONNUMS) writes one image per
// partition, all with the backup's timestamp. A restore restores the catalog partition first.
type Partition struct {
	// Number is the database partition number (0-999).
	Number int `json:"number"`
	// Catalog marks the catalog partition (exactly one per entry).
	Catalog bool `json:"catalog,omitempty"`
	// Image is the key of this partition's image in Entry.Images; empty in a summary.
	Image string `json:"image,omitempty"`
}

// CatalogPartition returns the catalog partition's number, and false for an entry without
// partitions.
func (e Entry) CatalogPartition() (int, bool) {
	for _, p := range e.Partitions {
		if p.Catalog {
			return p.Number, true
		}
	}
	return 0, false
}

// Verification is the result of checking an image (db2ckbkp, or the COS checksum re-read).
type Verification struct {
	Verified bool      `json:"verified"`
	Tool     string    `json:"tool,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Detail   string    `json:"detail,omitempty"`
}

// Entry describes one backup image of one database.
type Entry struct {
	Database string `json:"database"`
	// ImageTimestamp is Db2's timestamp of the image (TAKEN AT), 14 digits.
	ImageTimestamp string            `json:"image_timestamp"`
	Type           events.BackupType `json:"type"`
	Mode           events.Mode       `json:"mode"`
	Scope          Scope             `json:"scope"`
	// Tablespaces are the table spaces of a table space backup (empty for database scope).
	Tablespaces []string `json:"tablespaces,omitempty"`
	// ParentTimestamp is the image this one builds on: for an incremental the most recent full,
	// for a delta the previous backup of any type; empty for a full.
	ParentTimestamp string    `json:"parent_timestamp,omitempty"`
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at"`
	Images          []Object  `json:"images"`
	SizeBytes       int64     `json:"size_bytes"`
	LogRange        LogRange  `json:"log_range,omitzero"`
	KeyCRN          string    `json:"key_crn"`
	// KeyVersion is the Key Protect key version that protected the image; empty when unknown.
	KeyVersion string `json:"key_version,omitempty"`
	// Keystore is the copy of the native-encryption keystore taken with the image, if any.
	Keystore     *Object      `json:"keystore,omitempty"`
	Verification Verification `json:"verification"`
	RunID        string       `json:"run_id"`
	Executor     string       `json:"executor"`
	// Notes say how the backup differs from what was asked and why (e.g. a full taken instead of
	// a delta because Db2 would have built the delta on a discarded image). Schema version 2.
	Notes []string `json:"notes,omitempty"`
	// Discarded, when set, records that Db2 wrote this image but the run failed before it was
	// verified, stored and cataloged (verification, upload, keystore copy or catalog write
	// failed): the image is not restorable and Images lists only what was stored (often
	// nothing). Db2's history still counts it, so its next delta (or, for a full, incremental)
	// builds on it: Chain reports such images as broken. Schema version 2.
	Discarded *Discard `json:"discarded,omitempty"`
	// Partitions, for a backup of a partitioned database, are its database partitions in
	// ascending order, each with its image; empty for a single-partition database. One entry
	// holds every partition of a backup, so that retention keeps or drops them together.
	// Schema version 3.
	Partitions []Partition `json:"partitions,omitempty"`
}

// Discard is when and why an image was discarded.
type Discard struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// IsDiscarded reports whether e records a discarded image (never restorable).
func (e Entry) IsDiscarded() bool { return e.Discarded != nil }

// Name is "<timestamp>-<type>", the entry's file name without ".json".
func (e Entry) Name() string { return e.ImageTimestamp + "-" + string(e.Type) }

// Key is the object key of e (see Key).
func (e Entry) Key() string { return Key(e.Database, e.ImageTimestamp, e.Type) }

// Key is the object key of an entry, relative to the store's prefix:
// catalog/<database>/<timestamp>-<type>.json.
func Key(db, timestamp string, typ events.BackupType) string {
	return Prefix(db) + timestamp + "-" + string(typ) + ".json"
}

// Prefix is the key prefix of db's entries: catalog/<database>/.
func Prefix(db string) string { return "catalog/" + db + "/" }

// ImageKey is where keyguard uploads file name of db's image taken at timestamp:
// images/<database>/<timestamp>/<name>.
func ImageKey(db, timestamp, name string) string {
	return imagePrefix(db) + timestamp + "/" + name
}

func imagePrefix(db string) string { return "images/" + db + "/" }

// Timestamp formats t as a Db2 image timestamp (in t's location).
func Timestamp(t time.Time) string { return t.Format(TimestampLayout) }

// ValidTimestamp reports whether s is a Db2 image timestamp: 14 digits naming a real instant.
func ValidTimestamp(s string) bool {
	if len(s) != 14 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	// What time.Parse(TimestampLayout, s) accepts, without its cost (an index checks two
	// timestamps per summary).
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(4, 2), num(6, 2)
	if month < 1 || month > 12 || day < 1 || num(8, 2) > 23 || num(10, 2) > 59 || num(12, 2) > 59 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

// parseKey splits a key relative to Prefix(db) into timestamp and type.
func parseKey(name string) (timestamp string, typ events.BackupType, ok bool) {
	base, found := strings.CutSuffix(name, ".json")
	if !found {
		return "", "", false
	}
	ts, t, found := strings.Cut(base, "-")
	typ = events.BackupType(t)
	if !found || !ValidTimestamp(ts) || !typ.Valid() {
		return "", "", false
	}
	return ts, typ, true
}

// Errors of the catalog. Test with errors.Is.
var (
	// ErrInvalid: the entry breaks a rule of Validate (or a stored entry does not decode).
	ErrInvalid = errors.New("invalid catalog entry")
	// ErrNotFound: no entry for the database and timestamp.
	ErrNotFound = errors.New("catalog entry not found")
	// ErrExists: a different entry is already stored for the database and timestamp.
	ErrExists = errors.New("a different catalog entry exists")
	// ErrBrokenChain: a restore chain cannot be built (a parent is missing or inconsistent).
	// The error is a *ChainError naming the image.
	ErrBrokenChain = errors.New("broken restore chain")
	// ErrNoRestorableChain: no chain satisfies a restore request.
	ErrNoRestorableChain = errors.New("no restorable chain")
)

type problems []string

func (p *problems) need(ok bool, format string, args ...any) {
	if !ok {
		*p = append(*p, fmt.Sprintf(format, args...))
	}
}

func text(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// sane reports whether t is zero or in a year JSON can carry and Db2 could have written.
func sane(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	y := t.UTC().Year()
	return y >= 1970 && y <= 9999
}

func optText(s string, max int) bool { return s == "" || text(s, max) }

func sha256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (p *problems) object(field string, o Object, db string) {
	switch {
	case !text(o.Key, objstore.MaxKeyLen):
		p.need(false, "%s: key must be 1-%d bytes of UTF-8 without control characters", field, objstore.MaxKeyLen)
	case !o.External():
		if err := objstore.ValidateKey(o.Key); err != nil {
			p.need(false, "%s: %v", field, err)
		} else if strings.HasPrefix(o.Key, "images/") {
			p.need(strings.HasPrefix(o.Key, imagePrefix(db)), "%s: key %q is not under %s", field, o.Key, imagePrefix(db))
			p.need(o.SHA256 != "", "%s: sha256 is required for an image keyguard stored", field)
		}
	}
	p.need(o.Size >= 0, "%s: size is negative", field)
	p.need(o.SHA256 == "" || sha256Hex(o.SHA256), "%s: sha256 must be 64 lowercase hex digits", field)
}

// Validate returns an error wrapping ErrInvalid that names every rule e breaks, or nil.
func (e Entry) Validate() error {
	var p problems
	p.summary(e)
	p.need(e.Verification.At.IsZero() || sane(e.Verification.At), "instants must fall in the years 1970-9999 (UTC)")
	p.need(len(e.Images) > 0 || e.IsDiscarded(), "images must name at least one file")
	p.need(len(e.Images) <= MaxImages, "more than %d images", MaxImages)
	keys := make(map[string]bool, len(e.Images))
	for i, o := range e.Images {
		p.object(fmt.Sprintf("images[%d]", i), o, e.Database)
		p.need(!keys[o.Key], "images[%d]: key %q is repeated", i, o.Key)
		keys[o.Key] = true
	}
	for i, pt := range e.Partitions {
		p.need(pt.Image == "" || keys[pt.Image], "partitions[%d]: image %q is not one of images", i, pt.Image)
		p.need(pt.Image != "" || e.IsDiscarded(), "partitions[%d]: image is required", i)
	}
	if e.Keystore != nil {
		p.object("keystore", *e.Keystore, e.Database)
		p.need(!keys[e.Keystore.Key], "keystore: key %q is also an image", e.Keystore.Key)
	}
	v := e.Verification
	p.need(!v.Verified || (v.Tool != "" && !v.At.IsZero()), "verification: a verified image needs tool and at")
	p.need(optText(v.Tool, maxText), "verification.tool must be at most %d bytes without control characters", maxText)
	p.need(v.Detail == "" || (len(v.Detail) <= maxDetail && utf8.ValidString(v.Detail)), "verification.detail must be UTF-8, at most %d bytes", maxDetail)
	p.need(text(e.Executor, maxText), "executor is required")
	p.need(len(e.Notes) <= MaxNotes, "more than %d notes", MaxNotes)
	for i, n := range e.Notes {
		p.need(text(n, maxDetail), "notes[%d] must be 1-%d bytes of UTF-8 without control characters", i, maxDetail)
	}
	return p.err(e)
}

// err is nil without problems, else an error wrapping ErrInvalid naming e and every problem.
func (p problems) err(e Entry) error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s/%s: %s", ErrInvalid, e.Database, e.Name(), strings.Join(p, "; "))
}

// summary checks the rules of the fields an index summary keeps (see Summary): every rule of
// Validate but those of images, keystore, executor, notes and the verification's details.
func (p *problems) summary(e Entry) {
	if err := state.ValidateDatabase(e.Database); err != nil {
		p.need(false, "database: %v", err)
	}
	p.need(text(e.KeyCRN, maxText), "key_crn is required")
	p.need(optText(e.KeyVersion, maxText), "key_version must be at most %d bytes without control characters", maxText)
	p.fields(&e)
}

// fields is summary without the database name and the key, which an index checks once for
// all its summaries.
func (p *problems) fields(e *Entry) {
	p.need(ValidTimestamp(e.ImageTimestamp), "image_timestamp must be 14 digits (yyyymmddhhmmss)")
	p.need(e.Type.Valid(), "type must be full, incremental or delta")
	p.need(e.Mode.Valid(), "mode must be online or offline")
	switch e.Scope {
	case ScopeDatabase:
		p.need(len(e.Tablespaces) == 0, "tablespaces must be empty for database scope")
	case ScopeTablespace:
		p.need(len(e.Tablespaces) > 0, "tablespaces are required for tablespace scope")
		p.need(len(e.Tablespaces) <= MaxTablespaces, "more than %d tablespaces", MaxTablespaces)
		seen := make(map[string]bool, len(e.Tablespaces))
		for i, ts := range e.Tablespaces {
			p.need(text(ts, 128), "tablespaces[%d] must be 1-128 bytes without control characters", i)
			p.need(!seen[ts], "tablespaces[%d] %q is repeated", i, ts)
			seen[ts] = true
		}
	default:
		p.need(false, "scope must be database or tablespace")
	}
	if e.Type == events.Full {
		p.need(e.ParentTimestamp == "", "parent_timestamp must be empty for a full backup")
	} else if e.Type.Valid() && (e.ParentTimestamp != "" || !e.IsDiscarded()) {
		// A discarded image may not know its parent: Db2 chose it, and nothing builds on it.
		if !ValidTimestamp(e.ParentTimestamp) { // no p.need: its arguments would be boxed for every row of an index
			p.need(false, "parent_timestamp must be 14 digits for an %s backup", e.Type)
		}
		// Timestamps are Db2's local time and do not sort like instants across a fall-back
		// hour: Chain checks that the parent is older by Compare.
		p.need(e.ParentTimestamp != e.ImageTimestamp, "parent_timestamp must differ from image_timestamp")
	}
	p.need(!e.StartedAt.IsZero() && !e.EndedAt.IsZero(), "started_at and ended_at are required")
	p.need(!e.EndedAt.Before(e.StartedAt), "ended_at is before started_at")
	p.need(sane(e.StartedAt) && sane(e.EndedAt), "instants must fall in the years 1970-9999 (UTC)")
	p.need(e.SizeBytes >= 0, "size_bytes is negative")
	p.need(optText(e.LogRange.First, maxText) && optText(e.LogRange.Last, maxText), "log_range names must be at most %d bytes without control characters", maxText)
	p.need(e.LogRange.Last == "" || e.LogRange.First != "", "log_range.last needs log_range.first")
	p.need(text(e.RunID, maxText), "run_id is required")
	if len(e.Partitions) > 0 {
		p.partitions(e.Partitions)
	}
	if d := e.Discarded; d != nil {
		p.need(!d.At.IsZero() && sane(d.At), "discarded.at is required (years 1970-9999)")
		p.need(text(d.Reason, maxDetail), "discarded.reason must be 1-%d bytes of UTF-8 without control characters", maxDetail)
	}
}

// partitions checks the rules of a summary's partitions: at most MaxPartitions, numbers 0-999
// in ascending order, exactly one catalog partition.
func (p *problems) partitions(parts []Partition) {
	if len(parts) > MaxPartitions {
		p.need(false, "more than %d partitions", MaxPartitions)
		return
	}
	cat := 0
	for i, pt := range parts {
		if pt.Number < 0 || pt.Number > 999 {
			p.need(false, "partitions[%d]: number %d is not 0-999", i, pt.Number)
		}
		if i > 0 && pt.Number <= parts[i-1].Number {
			p.need(false, "partitions[%d]: numbers must ascend", i)
		}
		if pt.Catalog {
			cat++
		}
		if pt.Image != "" && !text(pt.Image, objstore.MaxKeyLen) {
			p.need(false, "partitions[%d]: image must be a key without control characters", i)
		}
	}
	p.need(cat == 1, "partitions: exactly one catalog partition, not %d", cat)
}

// stored is the JSON form: the entry with the schema version in front.
type stored struct {
	SchemaVersion int `json:"schema_version"`
	Entry
}

// normalize returns e with every instant in UTC and nil slices for empty ones, so that equal
// entries encode to equal bytes.
func normalize(e Entry) Entry {
	e.StartedAt, e.EndedAt = e.StartedAt.UTC(), e.EndedAt.UTC()
	if !e.Verification.At.IsZero() {
		e.Verification.At = e.Verification.At.UTC()
	}
	if len(e.Tablespaces) == 0 {
		e.Tablespaces = nil
	}
	e.Tablespaces = slices.Clone(e.Tablespaces)
	e.Images = slices.Clone(e.Images)
	if e.Images == nil {
		e.Images = []Object{} // "images": [], also for a discarded image that stored nothing
	}
	if e.Keystore != nil {
		k := *e.Keystore
		e.Keystore = &k
	}
	if len(e.Notes) == 0 {
		e.Notes = nil
	}
	e.Notes = slices.Clone(e.Notes)
	if e.Discarded != nil {
		d := *e.Discarded
		d.At = d.At.UTC()
		e.Discarded = &d
	}
	if len(e.Partitions) == 0 {
		e.Partitions = nil
	}
	e.Partitions = slices.Clone(e.Partitions)
	return e
}

// version is the schema version e is stored with: the oldest that carries all its fields.
func version(e Entry) int {
	if len(e.Partitions) > 0 {
		return 3
	}
	if len(e.Notes) > 0 || e.Discarded != nil {
		return 2
	}
	return 1
}

// Encode validates e and returns its stored form: indented JSON with a schema version (the
// oldest that carries e's fields), instants in UTC, ending in a newline. Equal entries encode
// to equal bytes.
func Encode(e Entry) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("encode catalog entry: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(stored{SchemaVersion: version(e), Entry: normalize(e)}); err != nil {
		return nil, fmt.Errorf("encode catalog entry %s: %w", e.Name(), err)
	}
	if buf.Len() > MaxEncodedSize {
		return nil, fmt.Errorf("encode catalog entry %s: %w: %d bytes, more than %d", e.Name(), ErrInvalid, buf.Len(), MaxEncodedSize)
	}
	return buf.Bytes(), nil
}

// Decode parses a stored entry strictly: unknown fields, a second JSON value, a missing or newer
// schema version, or an entry that fails Validate are errors wrapping ErrInvalid.
func Decode(body []byte) (Entry, error) {
	bad := func(format string, args ...any) (Entry, error) {
		return Entry{}, fmt.Errorf("decode catalog entry: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if len(body) > MaxEncodedSize {
		return bad("%d bytes, more than %d", len(body), MaxEncodedSize)
	}
	// The version first, so that an entry written by a newer keyguard (with fields this reader
	// does not know) is named as such.
	var v struct {
		SchemaVersion int `json:"schema_version"`
	}
	if json.Unmarshal(body, &v) == nil && v.SchemaVersion > SchemaVersion {
		return bad("schema_version %d is newer than this reader (%d)", v.SchemaVersion, SchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var s stored
	if err := dec.Decode(&s); err != nil {
		return bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the entry")
	}
	switch {
	case s.SchemaVersion < 1:
		return bad("schema_version %d, want %d", s.SchemaVersion, SchemaVersion)
	case s.SchemaVersion > SchemaVersion:
		return bad("schema_version %d is newer than this reader (%d)", s.SchemaVersion, SchemaVersion)
	case s.SchemaVersion < version(s.Entry):
		return bad("notes and discarded need schema_version 2, partitions 3; the entry says %d", s.SchemaVersion)
	}
	if err := s.Entry.Validate(); err != nil {
		return Entry{}, fmt.Errorf("decode catalog entry: %w", err)
	}
	return normalize(s.Entry), nil
}
