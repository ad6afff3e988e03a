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
	"syscall"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/keystore"
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
}

// Handle runs the backup of a backup.started event, records its outcome in the catalog (the
// image's entry, then the run record) and publishes it. A run already recorded is not run again:
// its outcome is published again. The error is non-nil only when the outcome could be neither
// recorded nor published (the job then fails and the scheduler's probe or lease reconciles the
// run); a failed backup is an outcome, not an error.
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
	r.log().Info("backup outcome", "db", run.Database, "run", run.RunID, "outcome", outcome, "note", note)
	return edge.Result{Outcome: outcome, Detail: note}, nil
}

// backup does the work and always returns an outcome to publish.
func (r *Runner) backup(ctx context.Context, db config.Database, run events.BackupStarted, entries []catalog.Entry) (events.Payload, string) {
	now := clock.Or(r.Clock).Now
	failAs := func(class events.FailureClass, err error) (events.Payload, string) {
		f := events.BackupFailed{Database: db.Name, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt, EndedAt: now(),
			Class: class, Message: truncate(err.Error(), 4000)}
		var de *db2.Error
		if errors.As(err, &de) {
			f.Code = de.Code
		}
		return f, f.Message
	}
	fail := func(err error) (events.Payload, string) { return failAs(db2.ClassOf(err), err) }
	insp, err := db2.Inspect(ctx, r.DB2, db.Alias)
	if err != nil {
		return fail(fmt.Errorf("inspect %s: %w", db.Alias, err))
	}
	free, err := r.freeSpace(db.BackupDir)
	if err != nil {
		free = -1 // unknown: the planner notes the skipped check
	}
	req := db2.Request{Database: db.Alias, Instance: db.Db2Instance(), Type: run.Type, Mode: run.Mode, TargetDir: db.BackupDir,
		Tablespaces: db.Tablespaces, IncludeLogs: db.WithLogs() && run.Mode == events.Online, Compress: true}
	parent := predecessor(entries, run.Type, run.KeyVersion, len(db.Tablespaces) > 0)
	needed := db2.RequiredSpace(insp.Size, insp.Config, req.IncludeLogs, run.Mode)
	plan, err := db2.PlanBackup(req, insp.Config, len(insp.Applications), parent != nil || run.Type == events.Full, free, needed)
	if err != nil {
		return fail(err)
	}
	res, err := db2.Execute(ctx, r.DB2, plan, r.Log)
	if res.Image != "" {
		defer os.Remove(res.Image) // the local copy goes, uploaded or not
	}
	if err != nil {
		return fail(err)
	}
	// The keystore copy is sealed (Key Protect wraps its data key) before anything is uploaded:
	// when Key Protect cannot wrap, the run fails without storing the image or the keystore.
	sealed, err := r.sealKeystore(ctx, db, res.Timestamp)
	if err != nil {
		return failAs(keystoreClass(err), fmt.Errorf("copy keystore: %w", err))
	}
	if plan.Type == events.Full {
		parent = nil
	} else if parent == nil {
		parent = predecessor(entries, plan.Type, run.KeyVersion, len(db.Tablespaces) > 0)
	}
	img, err := r.Upload.UploadFile(ctx, catalog.ImageKey(db.Name, res.Timestamp, filepath.Base(res.Image)), res.Image)
	if err != nil {
		return fail(fmt.Errorf("upload image: %w", err))
	}
	ent := catalog.Entry{Database: db.Name, ImageTimestamp: res.Timestamp, Type: plan.Type, Mode: plan.Mode, Scope: catalog.ScopeDatabase,
		StartedAt: run.StartedAt, EndedAt: now(), Images: []catalog.Object{catalog.Object(img)}, SizeBytes: img.Size,
		KeyCRN: run.KeyCRN, KeyVersion: run.KeyVersion, RunID: run.RunID, Executor: config.ExecDb2CLI,
		Verification: catalog.Verification{Verified: res.Verified, Tool: "db2ckbkp", At: now(), Detail: "Image Verification Complete - successful."}}
	if len(plan.Tablespaces) > 0 {
		ent.Scope, ent.Tablespaces = catalog.ScopeTablespace, plan.Tablespaces
	}
	if parent != nil {
		ent.ParentTimestamp = parent.ImageTimestamp
	}
	if sealed != nil {
		ks, err := r.Upload.Upload(ctx, catalog.ImageKey(db.Name, res.Timestamp, KeystoreObject), bytes.NewReader(sealed.body), int64(len(sealed.body)))
		if err != nil {
			return fail(fmt.Errorf("copy keystore: upload: %w", err))
		}
		o := catalog.Object(ks)
		ent.Keystore = &o
		r.masterKeyRotated(ctx, db, entries, sealed.fingerprint)
	}
	done := completedFrom(run, ent)
	if err := r.Catalog.Record(ctx, &ent, catalog.RunRecord{Database: db.Name, RunID: run.RunID, Completed: &done}); err != nil {
		return fail(fmt.Errorf("write catalog entry: %w", err))
	}
	note := fmt.Sprintf("%s %s image %s, %d bytes, sha256 %s", plan.Mode, plan.Type, res.Timestamp, img.Size, img.SHA256[:12])
	for _, n := range plan.Notes {
		note += "; " + n
	}
	return done, note
}

// predecessor is the image a new backup of type t builds on, under the same key version (a
// chain never spans two key versions): the latest full for an incremental, the latest image of
// any type for a delta. nil when there is none.
func predecessor(entries []catalog.Entry, t events.BackupType, keyVersion string, tablespaces bool) *catalog.Entry {
	scope := catalog.ScopeDatabase
	if tablespaces {
		scope = catalog.ScopeTablespace
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Scope != scope || e.KeyVersion != keyVersion {
			continue
		}
		if t == events.Delta || e.Type == events.Full {
			return &e
		}
	}
	return nil
}

func completedFrom(run events.BackupStarted, e catalog.Entry) events.BackupCompleted {
	loc := ""
	sum := ""
	if len(e.Images) > 0 {
		loc, sum = e.Images[0].Key, e.Images[0].SHA256
	}
	return events.BackupCompleted{Database: e.Database, RunID: run.RunID, Type: e.Type, Mode: e.Mode, StartedAt: run.StartedAt, EndedAt: e.EndedAt,
		ImageTimestamp: e.ImageTimestamp, Location: loc, SizeBytes: e.SizeBytes, SHA256: sum, KeyCRN: e.KeyCRN, KeyVersion: e.KeyVersion,
		Verified: e.Verification.Verified, CatalogKey: e.Key()}
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
