package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/keystore"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

// Uploader streams files to COS, create-only, returning size and SHA-256.
type Uploader interface {
	UploadFile(ctx context.Context, key, path string) (upload.Object, error)
	Upload(ctx context.Context, key string, r io.Reader, size int64) (upload.Object, error)
	// Download writes the object at key to w; a missing key wraps objstore.ErrNotFound.
	Download(ctx context.Context, key string, w io.Writer) (upload.Object, error)
}

// Catalog is where image entries and run records go.
type Catalog interface {
	List(ctx context.Context, db string) ([]catalog.Entry, error)
	// Put stores an entry once; storing it again succeeds, storing another at its timestamp is
	// catalog.ErrExists.
	Put(ctx context.Context, e catalog.Entry) error
	// GetRun returns a run's recorded outcome, or an error wrapping catalog.ErrNotFound.
	GetRun(ctx context.Context, db, runID string) (catalog.RunRecord, error)
	// Record writes a run's entry (when not nil) and record, create-only and idempotent.
	Record(ctx context.Context, e *catalog.Entry, r catalog.RunRecord) error
}

// Runner runs one backup per event.
type Runner struct {
	Fleet   config.Source
	DB2     db2.Runner
	Upload  Uploader
	Catalog Catalog
	Send    outbox.Sender
	Clock   clock.Clock
	Log     *slog.Logger
	// Keys wraps the data key of each keystore copy with the database's keystore_key_crn (Key
	// Protect; *keyprotect.Client). When nil, a database with a local keystore fails its
	// backups (class configuration): a keystore copy is never stored in clear.
	Keys keystore.Wrapper
	// FreeSpace reports the free bytes of a directory (statfs when nil).
	FreeSpace func(dir string) (int64, error)
	// Objects, when set, is keyguard's bucket: the log chain check after each backup writes its
	// report there (logchain/<database>.json), and lists a DB2REMOTE archive in it
	// (log_archive.cos_prefix). Without it no log chain check is made.
	Objects objstore.Store
}

// Handle runs the backup of a backup.started event, records its outcome in the catalog (the
// image's entry, then the run record) and publishes it. A run already recorded is not run again:
// its outcome is published again. The error is non-nil only when the outcome could be neither
// recorded nor published, or is unknown (the catalog took neither the image nor its discarded
// record): the job then fails and the scheduler's probe or lease reconciles the run from the
// catalog. A failed backup is an outcome, not an error.
func (r *Runner) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeBackupStarted {
		return edge.Result{}, edge.Reject("the runner takes %s, not %q", events.TypeBackupStarted, e.Type)
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil {
		return edge.Result{}, err
	}
	run := *p.(*events.BackupStarted)
	db, err := config.Lookup(ctx, r.Fleet, run.Database)
	if err != nil {
		return edge.Result{}, err
	}
	switch rec, err := r.Catalog.GetRun(ctx, db.Name, run.RunID); {
	case err == nil: // this run already finished: say so again
		return r.publish(ctx, run, rec.Outcome(), "already recorded", true)
	case !errors.Is(err, catalog.ErrNotFound):
		return edge.Result{}, fmt.Errorf("look up run %s in the catalog: %w", run.RunID, err)
	}
	entries, err := r.Catalog.List(ctx, db.Name)
	if err != nil {
		return edge.Result{}, fmt.Errorf("read catalog of %s: %w", db.Name, err)
	}
	out, note := r.backup(ctx, db, run, entries)
	if out == nil {
		// The outcome is unknown (see discard): the job fails, and the scheduler reads the
		// outcome from the catalog at the run's lease.
		return edge.Result{}, fmt.Errorf("backup %s: %s", run.RunID, note)
	}
	recorded := true
	if f, ok := out.(events.BackupFailed); ok {
		if err := r.Catalog.Record(ctx, nil, catalog.RunRecord{Database: db.Name, RunID: run.RunID, Failed: &f}); err != nil && !errors.Is(err, catalog.ErrExists) {
			r.log().Warn("recording the failure failed; the scheduler counts it at the lease", "database", db.Name, "run", run.RunID, "err", err)
			recorded = false
		}
	}
	return r.publish(ctx, run, out, note, recorded)
}

// publish sends the outcome. When it cannot, the run is still known from its record (the
// scheduler finds it on its next tick), so the error matters only if nothing was recorded.
func (r *Runner) publish(ctx context.Context, run events.BackupStarted, out events.Payload, note string, recorded bool) (edge.Result, error) {
	if err := r.Send.Send(ctx, run.RunID+"/outcome", out); err != nil {
		if !recorded {
			return edge.Result{}, fmt.Errorf("publish outcome of %s: %w", run.RunID, err)
		}
		r.log().Warn("publishing the outcome failed; it is recorded in the catalog, where the scheduler finds it", "database", run.Database, "run", run.RunID, "err", err)
	}
	outcome := "completed"
	if _, failed := out.(events.BackupFailed); failed {
		outcome = "failed"
	}
	r.log().Info("backup outcome", "database", run.Database, "run", run.RunID, "outcome", outcome, "note", note)
	return edge.Result{Outcome: outcome, Detail: note}, nil
}

// backup does the work and always returns an outcome to publish. Once Db2 has written an
// image, a failure (verification, upload, keystore copy, catalog write) records the image as
// discarded in the catalog and names it in backup.failed: Db2's history counts it, so its next
// incremental or delta would build on it.
func (r *Runner) backup(ctx context.Context, db config.Database, run events.BackupStarted, entries []catalog.Entry) (events.Payload, string) {
	now := clock.Or(r.Clock).Now
	failAs := func(class events.FailureClass, err error) (events.BackupFailed, string) {
		f := events.BackupFailed{Database: db.Name, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt, EndedAt: now(),
			Class: class, Message: truncate(err.Error(), 4000)}
		var de *db2.Error
		if errors.As(err, &de) {
			f.Code = de.Code
		}
		return f, f.Message
	}
	fail := func(err error) (events.BackupFailed, string) { return failAs(db2.ClassOf(err), err) }
	insp, err := db2.Inspect(ctx, r.DB2, db.Alias)
	if err != nil {
		return fail(fmt.Errorf("inspect %s: %w", db.Alias, err))
	}
	free, err := r.freeSpace(db.BackupDir)
	if err != nil {
		free = -1 // unknown: the planner notes the skipped check
	}
	// A run of the table space schedule backs up the listed table spaces; every other run the
	// whole database.
	var tablespaces []string
	if run.Scope == events.ScopeTablespace {
		tablespaces = db.Tablespaces
	}
	b := r.basis(ctx, db, run, tablespaces, entries)
	req := db2.Request{Database: db.Alias, Instance: db.Db2Instance(), Type: b.typ, Mode: run.Mode, TargetDir: db.BackupDir,
		Tablespaces: tablespaces, IncludeLogs: db.WithLogs() && run.Mode == events.Online, Compress: true, Partitioned: db.Partitioned}
	needed := db2.RequiredSpace(insp.Size, insp.Config, req.IncludeLogs, run.Mode)
	plan, err := db2.PlanBackup(req, insp.Config, len(insp.Applications), b.parent != nil || b.typ == events.Full, free, needed)
	if err != nil {
		return fail(err)
	}
	parent := b.parent
	if plan.Type == events.Full {
		parent = nil
	}
	// The entry notes how the image differs from what was asked, and why.
	notes := b.notes
	if plan.Type != req.Type || plan.Mode != req.Mode {
		notes = slices.Concat(b.notes, plan.Notes)
	}
	ent := catalog.Entry{Database: db.Name, Type: plan.Type, Mode: plan.Mode, Scope: catalog.ScopeDatabase,
		StartedAt: run.StartedAt, Images: []catalog.Object{}, KeyCRN: run.KeyCRN, KeyVersion: run.KeyVersion, RunID: run.RunID,
		Executor: config.ExecDb2CLI, Notes: entryNotes(notes)}
	if len(plan.Tablespaces) > 0 {
		ent.Scope, ent.Tablespaces = catalog.ScopeTablespace, plan.Tablespaces
	}
	if parent != nil {
		ent.ParentTimestamp = parent.ImageTimestamp
	}
	res, err := db2.Execute(ctx, r.DB2, plan, r.Log)
	localImages := res.Images
	if len(localImages) == 0 && res.Image != "" {
		localImages = []string{res.Image}
	}
	defer func() {
		for _, p := range localImages {
			os.Remove(p) // the local copies go, uploaded or not
		}
	}()
	ent.ImageTimestamp = res.Timestamp
	ent.Verification = catalog.Verification{Verified: res.Verified, Tool: "db2ckbkp", At: now()}
	if err != nil {
		if res.Timestamp == "" { // Db2 wrote no image
			return fail(err)
		}
		ent.Verification.Detail = truncate(strings.Join(res.Check.Errors, "; "), 4000)
		return r.discard(ctx, ent, fail, err)
	}
	ent.Verification.Detail = "Image Verification Complete - successful."
	// The log files the image needs, from Db2's history of the backup.
	ent.LogRange = r.logRange(ctx, db, res.Timestamp)
	// The keystore copy is sealed (Key Protect wraps its data key) before anything is uploaded:
	// when Key Protect cannot wrap, the run fails without storing the image or the keystore.
	sealed, err := r.sealKeystore(ctx, db, res.Timestamp)
	if err != nil {
		keystoreFail := func(err error) (events.BackupFailed, string) { return failAs(keystoreClass(err), err) }
		return r.discard(ctx, ent, keystoreFail, fmt.Errorf("copy keystore: %w", err))
	}
	if len(res.Partitions) > 0 {
		cat, err := r.catalogPartition(ctx, db)
		if err != nil {
			return r.discard(ctx, ent, fail, fmt.Errorf("catalog partition: %w", err))
		}
		if !slices.Contains(res.Partitions, cat) {
			return r.discard(ctx, ent, fail, fmt.Errorf("the backup holds partitions %v but not the catalog partition %d", res.Partitions, cat))
		}
		for _, n := range res.Partitions {
			ent.Partitions = append(ent.Partitions, catalog.Partition{Number: n, Catalog: n == cat})
		}
	}
	var img upload.Object
	ent.Images, ent.SizeBytes = nil, 0
	for i, local := range localImages {
		o, err := r.Upload.UploadFile(ctx, catalog.ImageKey(db.Name, res.Timestamp, filepath.Base(local)), local)
		if err != nil {
			return r.discard(ctx, ent, fail, fmt.Errorf("upload image: %w", err))
		}
		if i == 0 {
			img = o
		}
		ent.Images, ent.SizeBytes = append(ent.Images, catalog.Object(o)), ent.SizeBytes+o.Size
		if i < len(ent.Partitions) {
			ent.Partitions[i].Image = o.Key
		}
	}
	if sealed != nil {
		ks, err := r.Upload.Upload(ctx, catalog.ImageKey(db.Name, res.Timestamp, KeystoreObject), bytes.NewReader(sealed.body), int64(len(sealed.body)))
		if err != nil {
			return r.discard(ctx, ent, fail, fmt.Errorf("copy keystore: upload: %w", err))
		}
		o := catalog.Object(ks)
		ent.Keystore = &o
		r.masterKeyRotated(ctx, db, entries, sealed.fingerprint)
	}
	ent.EndedAt = now()
	done := completedFrom(run, ent)
	rec := catalog.RunRecord{Database: db.Name, RunID: run.RunID, Completed: &done}
	// The entry first, then the run record (catalog.Record's order), each written twice at most
	// (a write is idempotent, and its answer may be lost). Once the entry is stored the image is
	// kept, whatever becomes of the run record: the scheduler reads the outcome from the entry
	// when the run's lease ends.
	if err := r.putEntry(ctx, ent); err != nil {
		return r.discard(ctx, ent, fail, fmt.Errorf("%w: %w", errNotCataloged, err))
	}
	note := fmt.Sprintf("%s %s image %s, %d bytes, sha256 %s", plan.Mode, plan.Type, res.Timestamp, ent.SizeBytes, img.SHA256[:12])
	if len(ent.Partitions) > 0 {
		note += fmt.Sprintf(", %d partitions (catalog partition %d)", len(ent.Partitions), catalogOf(ent))
	}
	for _, n := range slices.Concat(b.notes, plan.Notes) {
		note += "; " + n
	}
	if err := r.Catalog.Record(ctx, nil, rec); err != nil {
		if err = r.Catalog.Record(ctx, nil, rec); err != nil {
			r.log().Warn("the image is cataloged but its run record could not be written; the scheduler reads the outcome from the entry",
				"database", db.Name, "run", run.RunID, "image", ent.Name(), "err", err)
			note += fmt.Sprintf("; the run record could not be written (%v): the outcome is the catalog entry", err)
		}
	}
	if lc := r.checkLogs(ctx, db, insp.Config, append(slices.Clone(entries), ent)); lc != "" {
		note += "; " + lc
	}
	return done, note
}

func catalogOf(e catalog.Entry) int { n, _ := e.CatalogPartition(); return n }

// logRange reads, from Db2's history, the first and last log files the image taken at ts
// needs. Empty when the history does not say (the entry then records no range).
func (r *Runner) logRange(ctx context.Context, db config.Database, ts string) catalog.LogRange {
	hist, err := db2.ListHistory(ctx, r.DB2, db.Alias, ts)
	if err != nil {
		r.log().Warn("read Db2 history for the log range", "database", db.Name, "image", ts, "err", err)
		return catalog.LogRange{}
	}
	for _, h := range hist.Backups() {
		if h.Timestamp == ts && h.FirstLog != "" {
			return catalog.LogRange{First: h.FirstLog, Last: h.LastLog}
		}
	}
	return catalog.LogRange{}
}

// catalogPartition asks Db2's database directory for the catalog partition of db.
func (r *Runner) catalogPartition(ctx context.Context, db config.Database) (int, error) {
	out, _, err := r.DB2.Run(ctx, []string{"db2", "list", "database", "directory"})
	if err != nil {
		return 0, err
	}
	return db2.ParseCatalogPartition(out, db.Alias)
}

// putEntry stores the image's entry, trying twice.
func (r *Runner) putEntry(ctx context.Context, ent catalog.Entry) error {
	if err := r.Catalog.Put(ctx, ent); err == nil || errors.Is(err, catalog.ErrExists) || errors.Is(err, catalog.ErrInvalid) {
		return err
	}
	return r.Catalog.Put(ctx, ent)
}

// errNotCataloged is the cause of a failure to store an image's entry: the entry may have been
// stored all the same, by a write whose answer was lost.
var errNotCataloged = errors.New("write catalog entry")

// discard records the image of ent, which Db2 wrote before the run failed with cause, as
// discarded in the catalog (with whatever files were stored, for retention to delete), and
// returns the failure naming it. The record is best effort: when the catalog cannot take it
// either, the failure says so, and the next run finds the image in Db2's history but not in
// the catalog, and takes a full.
//
// When the cause is that the entry could not be stored (errNotCataloged) and the discarded
// record is not stored either, the kept entry may be (a write whose answer was lost): storing
// it again tells. Then the image is kept and the run's success (catalog.RecordOf) is recorded
// and returned. When nothing tells, the outcome is unknown and discard returns nil: nothing is
// recorded or published (a failure could contradict the catalog), and the scheduler reads the
// outcome from the catalog when the run's lease ends.
func (r *Runner) discard(ctx context.Context, ent catalog.Entry, fail func(error) (events.BackupFailed, string), cause error) (events.Payload, string) {
	f, note := fail(cause)
	f.DiscardedImage = ent.ImageTimestamp
	at := clock.Or(r.Clock).Now()
	if ent.EndedAt.IsZero() {
		ent.EndedAt = at
	}
	kept := ent
	ent.Discarded = &catalog.Discard{At: at, Reason: oneLine(cause.Error(), 4000)}
	err := r.Catalog.Put(ctx, ent)
	switch {
	case err == nil:
		return f, note + "; image " + ent.Name() + " recorded as discarded"
	case errors.Is(cause, errNotCataloged) && r.Catalog.Put(ctx, kept) == nil:
		// The image's entry is stored as kept (by a write whose answer was lost, or now): the
		// run succeeded, and its outcome is the entry's (when its record cannot be written
		// either, the scheduler reads it from the entry when the run's lease ends).
		rec := catalog.RecordOf(kept)
		note := "image " + kept.Name() + " is cataloged after all"
		if err := r.Catalog.Record(ctx, nil, rec); err != nil && !errors.Is(err, catalog.ErrExists) {
			note += fmt.Sprintf("; the run record could not be written (%v): the outcome is the catalog entry", err)
		}
		return *rec.Completed, note
	}
	if errors.Is(cause, errNotCataloged) {
		// Neither the image nor its discarded record could be stored, as far as the answers
		// tell; but a write whose answer was lost may have stored the image. A failure recorded
		// now could contradict the catalog, so nothing is recorded or published: the scheduler
		// reads the outcome from the catalog when the run's lease ends.
		r.log().Warn("the image could be neither cataloged nor recorded as discarded; the scheduler reads the outcome from the catalog at the run's lease",
			"db", ent.Database, "image", ent.Name(), "err", err)
		return nil, fmt.Sprintf("image %s could be neither cataloged (%v) nor recorded as discarded (%v): its outcome is left to the catalog", kept.Name(), cause, err)
	}
	r.log().Warn("record discarded image", "db", ent.Database, "image", ent.Name(), "err", err)
	f.Message = truncate(f.Message+"; image "+ent.ImageTimestamp+" could not be recorded as discarded: "+err.Error(), 4000)
	return f, f.Message
}

// basis is what a backup builds on, decided from Db2's history and the catalog.
type basis struct {
	// typ is the type to take: the requested one, or full when the image Db2 would build an
	// incremental or delta on is not a usable catalog entry.
	typ events.BackupType
	// parent is the catalog entry Db2 will build an incremental or delta on; nil for a full.
	parent *catalog.Entry
	// notes say why a full is taken instead, and which backups of Db2's history keyguard did
	// not take.
	notes []string
}

// historyDays is how far before the catalog's newest full Db2's history is read: a day covers
// a local clock that went back an hour.
const historyDays = 1

// basis reads Db2's history (db2 list history backup since <a day before the catalog's newest
// full> for <alias>) and decides what the run builds on: for an incremental the latest full in
// that history, for a delta the latest backup of any type, whatever it backed up (Db2 tracks
// changes per table space, so a backup of some table spaces is what the database's next delta
// builds on, in part). That image must be a catalog entry of the run's scope (the database, or
// the same table spaces) that is not discarded, has a restorable chain and the run's key version
// (a chain never spans two key versions), and no restore may follow it; otherwise the run takes
// a full and a note says why. Backups in the history that
// are newer than everything the catalog holds were taken outside keyguard (or lost before they
// were recorded): they are logged and noted, never chained on. A history that cannot be read
// makes an incremental or delta a full.
func (r *Runner) basis(ctx context.Context, db config.Database, run events.BackupStarted, tablespaces []string, entries []catalog.Entry) basis {
	b := basis{typ: run.Type}
	full := func(format string, args ...any) basis {
		b.typ, b.parent = events.Full, nil
		b.notes = append(b.notes, fmt.Sprintf("full backup instead of %s: ", run.Type)+fmt.Sprintf(format, args...))
		return b
	}
	scope := catalog.ScopeDatabase
	if len(tablespaces) > 0 {
		scope = catalog.ScopeTablespace
	}
	byTS := make(map[string]catalog.Entry, len(entries))
	since := ""
	for _, e := range entries {
		byTS[e.ImageTimestamp] = e
		if since == "" || e.Scope == scope && e.Type == events.Full && !e.IsDiscarded() {
			since = e.ImageTimestamp // entries are oldest first: the newest full wins
		}
	}
	hist, err := db2.ListHistory(ctx, r.DB2, db.Alias, dayBefore(since))
	if err != nil {
		r.log().Warn("read Db2 history", "database", db.Name, "err", err)
		if run.Type == events.Full {
			return b
		}
		return full("Db2's history could not be read (%v)", err)
	}
	if out := outside(hist, byTS); len(out) > 0 {
		r.log().Warn("backups in Db2's history that are not in the catalog", "database", db.Name, "images", out)
		b.notes = append(b.notes, fmt.Sprintf("Db2's history holds %d backup(s) that are not in the catalog (taken outside keyguard, or lost before they were recorded), not chained on: %s",
			len(out), strings.Join(out, ", ")))
	}
	if run.Type != events.Incremental && run.Type != events.Delta {
		return b
	}
	base, ok := hist.Base(run.Type)
	if !ok {
		return full("Db2's history holds no backup to build the %s on", run.Type)
	}
	on := fmt.Sprintf("Db2 would build the %s on image %s (%s)", run.Type, base.Timestamp, base.Type)
	e, known := byTS[base.Timestamp]
	switch {
	case hist.RestoredAfter(base.Timestamp):
		return full("%s, but the database was restored after it", on)
	case !known:
		return full("%s, which is not in the catalog (taken outside keyguard, or lost before it was recorded)", on)
	case e.IsDiscarded():
		return full("%s, which is discarded in the catalog (%s)", on, e.Discarded.Reason)
	case !sameLine(e, scope, tablespaces):
		return full("%s, a backup of %s", on, describeScope(e))
	case e.KeyVersion != run.KeyVersion:
		return full("%s, taken under key version %q, not the current %q", on, e.KeyVersion, run.KeyVersion)
	}
	if _, err := catalog.Chain(entries, e.ImageTimestamp); err != nil {
		return full("%s, whose restore chain is broken (%v)", on, err)
	}
	b.parent = &e
	return b
}

// sameLine reports whether e backs up what the database's backups back up: the whole database,
// or exactly its table spaces.
func sameLine(e catalog.Entry, scope catalog.Scope, tablespaces []string) bool {
	if e.Scope != scope {
		return false
	}
	a, b := slices.Clone(e.Tablespaces), slices.Clone(tablespaces)
	for i := range b {
		b[i] = strings.ToUpper(b[i])
	}
	for i := range a {
		a[i] = strings.ToUpper(a[i])
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func describeScope(e catalog.Entry) string {
	if e.Scope == catalog.ScopeTablespace {
		return "table spaces " + strings.Join(e.Tablespaces, ", ")
	}
	return "the whole database"
}

// outside lists, newest last, the backups of hist listed after the last one the catalog holds
// (all of them when it holds none): images keyguard did not take.
func outside(hist db2.History, cataloged map[string]catalog.Entry) []string {
	backups := hist.Backups()
	from := 0
	for i, b := range backups {
		if _, ok := cataloged[b.Timestamp]; ok {
			from = i + 1
		}
	}
	var out []string
	for _, b := range backups[from:] {
		out = append(out, fmt.Sprintf("%s (%s %s)", b.Timestamp, b.Mode, b.Type))
	}
	return out
}

// dayBefore is the Db2 timestamp historyDays before ts (wall clock), or "" for "".
func dayBefore(ts string) string {
	t, err := time.Parse(catalog.TimestampLayout, ts)
	if err != nil {
		return ""
	}
	return catalog.Timestamp(t.AddDate(0, 0, -historyDays))
}

// entryNotes bounds notes for a catalog entry.
func entryNotes(notes []string) []string {
	var out []string
	for _, n := range notes {
		if n = oneLine(n, 4000); n != "" && len(out) < catalog.MaxNotes {
			out = append(out, n)
		}
	}
	return out
}

// oneLine is s on one line of valid UTF-8 (control characters become spaces, runs of white
// space one space), at most n bytes: what a catalog entry's texts accept.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))), " ")
	return strings.ToValidUTF8(truncate(s, n), "")
}

func completedFrom(run events.BackupStarted, e catalog.Entry) events.BackupCompleted {
	loc := ""
	sum := ""
	if len(e.Images) > 0 {
		loc, sum = e.Images[0].Key, e.Images[0].SHA256
	}
	return events.BackupCompleted{Database: e.Database, RunID: run.RunID, Type: e.Type, Mode: e.Mode, StartedAt: run.StartedAt, EndedAt: e.EndedAt,
		ImageTimestamp: e.ImageTimestamp, Location: loc, SizeBytes: e.SizeBytes, SHA256: sum, KeyCRN: e.KeyCRN, KeyVersion: e.KeyVersion,
		Verified: e.Verification.Verified, CatalogKey: e.Key(), Note: truncate(strings.Join(e.Notes, "; "), 4000)}
}

func (r *Runner) freeSpace(dir string) (int64, error) {
	if r.FreeSpace != nil {
		return r.FreeSpace(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
