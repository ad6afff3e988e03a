package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/outbox"
)

// Catalog lists a database's image entries (oldest first or in any order; PlanRestore sorts)
// and keeps the restore's record. *catalog.Catalog implements it.
type Catalog interface {
	List(ctx context.Context, db string) ([]catalog.Entry, error)
	// PutRestore stores a restore's record once (the same record again succeeds).
	PutRestore(ctx context.Context, r catalog.RestoreRecord) error
}

// Marks records which restore events have been taken on. objstore.Store implements it.
type Marks interface {
	// Put with Cond{IfNoneMatch: true} stores body only if key is new, else ErrPrecondition.
	Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error)
	// Get returns the body at key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, string, error)
}

// KeystoreDir is the subdirectory of the backup directory the keystore copy is unpacked into.
const KeystoreDir = "keystore"

// Restorer runs one restore per event.
type Restorer struct {
	Fleet    config.Source
	DB2      db2.Runner
	Catalog  Catalog
	Download Downloader
	Send     outbox.Sender
	// Marks, when set, makes a restore run at most once per event (see Handle); nil runs every
	// delivery.
	Marks Marks
	// Keys unwraps the data key of sealed keystore copies (Key Protect; *keyprotect.Client).
	// When nil, a restore whose target image has a sealed keystore copy fails.
	Keys Keys
	// Leases, when set, is where a restore keeps its lease on the images it uses
	// (leases/<db>/restore-<id>.json, see catalog.Lease) from the moment it has planned until it
	// ends, so that retention keeps them; objstore.Store implements it. nil takes no lease.
	Leases catalog.LeaseWriter
	// LeaseTerm is how long the lease holds without renewal (DefaultLeaseTerm when zero).
	LeaseTerm time.Duration
	// LeaseSettle is how long the restore waits, once its lease shows in listings, before it
	// checks that its images are still cataloged (DefaultLeaseSettle when zero; negative: no
	// wait). See settle.
	LeaseSettle time.Duration
	// Archive, when set, is keyguard's bucket, where a DB2REMOTE log archive
	// (log_archive.cos_prefix) is listed before a roll-forward; nil lists DISK archives only.
	Archive logchain.ObjectStore
	Clock   clock.Clock
	// Timer is the clock the restore's waits for its lease run on (the wall clock when nil): a
	// local stack judging a simulated day keeps Clock still.
	Timer clock.Clock
	Log   *slog.Logger
}

// Handle restores the database of a restore.requested event and publishes restore.completed.
// Its error is non-nil only when the outcome could not be published or the event is refused
// (edge.ErrRejected: another type, bad data, a database not in the fleet or not db2cli); a
// failed restore is an outcome, not an error.
//
// Duplicates: with Marks set, the first delivery writes restores/<db>/<hash of the event key>
// create-only before it touches the database; a later delivery of the same event finds the mark
// and returns outcome "duplicate" without restoring or publishing (RESTORE ... REPLACE EXISTING
// would overwrite whatever was written since the first restore). If the first attempt died
// after the mark and before publishing, nothing is published: the operator asks again with a
// new event. Without Marks every delivery restores again.
//
// Keys: with Restorer.Keys set, before anything is downloaded the restore asks Key Protect for
// every key the catalog names and checks that each key version the chosen chain needs is usable
// (the key is active and lists the version: see keyStatus.unusable), and then that the key
// version the keystore copy was sealed under is usable too. The check is PlanRestore's
// keyAvailable; when it would make PlanRestore fall back to an older image than the catalog
// alone allows, the restore is refused (ErrKeyUnavailable, permanent) with a message naming each
// unusable key version, why, the images that need it, and the newest image whose keys are usable
// (which the operator can ask for by target). Key Protect unavailable fails the restore as
// transient. Without Keys, keys are not checked (PlanRestore notes it) and a sealed keystore copy
// cannot be opened; Db2 itself reports a keystore or master key it cannot reach (SQL1728N and
// family), which the message classifies as a rotation failure.
func (r *Restorer) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeRestoreRequested {
		return edge.Result{}, edge.Reject("the restore job takes %s, not %q", events.TypeRestoreRequested, e.Type)
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil {
		return edge.Result{}, err
	}
	req := *p.(*events.RestoreRequested)
	db, err := config.Lookup(ctx, r.Fleet, req.Database)
	if err != nil {
		return edge.Result{}, err
	}
	if db.Executor != config.ExecDb2CLI {
		return edge.Result{}, edge.Reject("database %q is backed up by %s; the restore job restores %s databases only", db.Name, db.Executor, config.ExecDb2CLI)
	}
	id := req.ID
	if id == "" {
		id = restoreID(e)
	}
	if !catalog.ValidRestoreID(id) {
		return edge.Result{}, edge.Reject("restore id %q must be 1-64 letters, digits or '-'", id)
	}
	if dup, err := r.mark(ctx, db.Name, e, req, id); err != nil {
		return edge.Result{}, err
	} else if dup {
		r.log().Info("restore duplicate", "database", db.Name, "event", e.ID)
		return edge.Result{Outcome: "duplicate", Detail: "restore event " + e.ID + " was already taken on"}, nil
	}
	o := r.restore(ctx, db, req, id)
	// The record first: it is the truth a lost event does not change.
	recorded := true
	if err := r.Catalog.PutRestore(ctx, o.rec); err != nil {
		recorded = false
		r.log().Warn("recording the restore failed; its event still says how it ended", "db", db.Name, "restore", id, "err", err)
	}
	out := o.rec.Completed()
	if err := r.Send.Send(ctx, e.ID+"/outcome", out); err != nil && !recorded {
		return edge.Result{}, fmt.Errorf("publish outcome of restore %s: %w", e.ID, err)
	} else if err != nil {
		r.log().Warn("publishing the restore's outcome failed; it is recorded in the catalog", "db", db.Name, "restore", id, "err", err)
	}
	outcome := "restored"
	if !out.Success {
		outcome = "failed"
	}
	r.log().Info("restore outcome", "database", db.Name, "event", e.ID, "restore", id, "outcome", outcome, "seconds", out.Seconds, "message", out.Message)
	return edge.Result{Outcome: outcome, Detail: out.Message}, nil
}

// mark writes the create-only mark of event e and reports whether another attempt wrote it.
func (r *Restorer) mark(ctx context.Context, db string, e events.Event, req events.RestoreRequested, id string) (bool, error) {
	if r.Marks == nil {
		return false, nil
	}
	key := "restores/" + db + "/" + id + ".json"
	body, err := json.Marshal(struct {
		Event       string    `json:"event"`
		Source      string    `json:"source"`
		RequestedBy string    `json:"requested_by"`
		StartedAt   time.Time `json:"started_at"`
	}{e.ID, e.Source, req.RequestedBy, clock.Or(r.Clock).Now()})
	if err != nil {
		return false, err
	}
	_, err = r.Marks.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true})
	if !errors.Is(err, objstore.ErrPrecondition) {
		if err != nil {
			return false, fmt.Errorf("mark restore %s: %w", e.ID, err)
		}
		return false, nil
	}
	// Ours, if a retried Put of this very body is what answered "exists".
	got, _, gerr := r.Marks.Get(ctx, key)
	if gerr != nil {
		return false, fmt.Errorf("read restore mark %s: %w", e.ID, gerr)
	}
	return string(got) != string(body), nil
}

// imagePath is where obj of entry e goes in dir: its Db2 image name, which RESTORE looks for.
func imagePath(dir string, e catalog.Entry, obj catalog.Object) (string, error) {
	if obj.External() {
		return "", fmt.Errorf("image %s is outside keyguard's store (%s): restore it by hand", e.Name(), obj.Key)
	}
	name := path.Base(obj.Key)
	img, err := db2.ParseImageName(name)
	if err != nil || img.Timestamp != e.ImageTimestamp {
		return "", fmt.Errorf("image %s is stored as %q, which is not a Db2 image name of that timestamp", e.Name(), obj.Key)
	}
	return filepath.Join(dir, name), nil
}

// db2 runs a Db2 utility command and returns its classified failure, if any: a Db2 error
// message, or output without the DB20000I completion message.
func (r *Restorer) db2(ctx context.Context, argv []string) error {
	out, err := r.run(ctx, argv...)
	if err != nil {
		return err
	}
	what := strings.Join(argv[1:3], " ")
	if code, msg, ok := db2.ParseSQLCode(out); ok && !strings.HasSuffix(code, "W") {
		return fmt.Errorf("%s: %w", what, &db2.Error{Class: db2.Classify(code), Code: code, Msg: msg})
	}
	if !strings.Contains(out, "DB20000I") {
		return fmt.Errorf("%s: %w", what, &db2.Error{Class: events.Permanent, Reason: db2.ReasonUnrecognisedOutput,
			Msg: "no completion message in: " + truncate(strings.TrimSpace(out), 500)})
	}
	r.log().Info("db2 command completed", "command", strings.Join(argv, " "))
	return nil
}

func (r *Restorer) run(ctx context.Context, argv ...string) (string, error) {
	out, _, err := r.DB2.Run(ctx, argv)
	if err != nil {
		return "", fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}

// classOf classifies a restore failure: damaged or missing objects, an unrestorable catalog
// and Db2's own errors are what they say; anything else is transient.
func classOf(err error) events.FailureClass {
	switch {
	case errors.Is(err, ErrChecksum), errors.Is(err, objstore.ErrNotFound), errors.Is(err, catalog.ErrNoRestorableChain), errors.Is(err, ErrRefused):
		return events.Permanent
	}
	if c, ok := keyClass(err); ok {
		return c
	}
	return db2.ClassOf(err)
}

func (r *Restorer) log() *slog.Logger {
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
