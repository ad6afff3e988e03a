package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
)

// failingUploads fails UploadFile (the image) while fail is set.
type failingUploads struct {
	next interface {
		UploadFile(ctx context.Context, key, path string) (upload.Object, error)
		Upload(ctx context.Context, key string, r io.Reader, size int64) (upload.Object, error)
		Download(ctx context.Context, key string, w io.Writer) (upload.Object, error)
	}
	fail bool
}

func (f *failingUploads) Download(ctx context.Context, key string, w io.Writer) (upload.Object, error) {
	return f.next.Download(ctx, key, w)
}

func (f *failingUploads) UploadFile(ctx context.Context, key, path string) (upload.Object, error) {
	if f.fail {
		return upload.Object{}, errors.New("put part 1: 503 Slow Down")
	}
	return f.next.UploadFile(ctx, key, path)
}

func (f *failingUploads) Upload(ctx context.Context, key string, r io.Reader, size int64) (upload.Object, error) {
	return f.next.Upload(ctx, key, r, size)
}

// db2Chain is the chain Db2 restores for ts (RESTORE ... INCREMENTAL AUTOMATIC), from the fake's
// history: the images each one was built on, full first.
func db2Chain(t *testing.T, hist []fakedb2.Backup, ts string) []string {
	t.Helper()
	by := map[string]fakedb2.Backup{}
	for _, b := range hist {
		by[b.Timestamp] = b
	}
	var out []string
	for cur, ok := by[ts]; ok; cur, ok = by[cur.Base] {
		out = append(out, cur.Timestamp)
		if cur.Type == "full" {
			slices.Reverse(out)
			return out
		}
	}
	t.Fatalf("image %s has no complete chain in Db2's history", ts)
	return nil
}

// checkChainsMatchDb2 asserts the invariant the catalog exists for: every chain the catalog
// approves is the chain Db2 restores, and every image of it was stored.
func checkChainsMatchDb2(t *testing.T, g *runnerRig) {
	t.Helper()
	list := mustList(t, g.cat)
	hist := fakedb2.ReadState(t, g.state).History
	for _, e := range list {
		chain, err := catalog.Chain(list, e.ImageTimestamp)
		if err != nil {
			continue
		}
		var got []string
		for _, c := range chain {
			got = append(got, c.ImageTimestamp)
			if len(c.Images) == 0 {
				t.Errorf("%s: chain image %s stored no file", e.Name(), c.Name())
			}
		}
		if want := db2Chain(t, hist, e.ImageTimestamp); !slices.Equal(got, want) {
			t.Errorf("the catalog approves the chain %v of %s, Db2 would restore %v (RESTORE ... INCREMENTAL AUTOMATIC fails with SQL2542N)", got, e.Name(), want)
		}
	}
	if _, err := catalog.PlanRestore(list, g.started.AddDate(1, 0, 0), nil); err != nil {
		t.Errorf("nothing restorable: %v", err)
	}
}

func historyRig(t *testing.T) *runnerRig {
	return newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
		NextTimestamp: "20261124020000"})
}

func setFaults(t *testing.T, g *runnerRig, faults ...fakedb2.Fault) {
	t.Helper()
	s := fakedb2.ReadState(t, g.state)
	s.Inject = faults
	fakedb2.WriteState(t, g.state, s)
}

// TestRunnerDiscardedDeltaIsNotChained: a delta whose verification fails after Db2 wrote it is
// cataloged as discarded and announced as such; Db2 would build the next delta on it, so the next
// delta run takes a full and says why. Every chain the catalog approves is one Db2 can restore.
func TestRunnerDiscardedDeltaIsNotChained(t *testing.T) {
	g := historyRig(t)
	ctx := context.Background()
	full, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted)
	if !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	setFaults(t, g, fakedb2.FaultCorruptImage)
	failed, ok := g.run(t, "run-delta-1", events.Delta).(events.BackupFailed)
	if !ok {
		t.Fatalf("delta with a corrupt image: %+v", g.out.last())
	}
	hist := fakedb2.ReadState(t, g.state).History
	discarded := hist[len(hist)-1].Timestamp
	if failed.DiscardedImage != discarded {
		t.Fatalf("backup.failed discarded_image = %q, want %s (Db2 wrote it)", failed.DiscardedImage, discarded)
	}
	ent, err := g.cat.Get(ctx, "sales", discarded)
	if err != nil || !ent.IsDiscarded() || ent.RunID != "run-delta-1" || !strings.Contains(ent.Discarded.Reason, "db2ckbkp") {
		t.Fatalf("catalog entry of the discarded image: %+v, %v", ent, err)
	}
	if files := g.localFiles(t); len(files) != 0 {
		t.Fatalf("local files left: %v", files)
	}
	// A redelivered event of the failed run announces the failure again and backs up nothing.
	if again, ok := g.run(t, "run-delta-1", events.Delta).(events.BackupFailed); !ok || again.DiscardedImage != discarded ||
		len(fakedb2.ReadState(t, g.state).History) != len(hist) {
		t.Fatalf("redelivery: %+v", g.out.last())
	}

	setFaults(t, g)
	next, ok := g.run(t, "run-delta-2", events.Delta).(events.BackupCompleted)
	if !ok {
		t.Fatalf("next delta: %+v", g.out.last())
	}
	if next.Type != events.Full || !strings.Contains(next.Note, discarded) || !strings.Contains(next.Note, "discarded") {
		t.Errorf("after a discarded delta the next run took a %s (note %q), want a full saying why", next.Type, next.Note)
	}
	if e, err := g.cat.Get(ctx, "sales", next.ImageTimestamp); err != nil || !strings.Contains(strings.Join(e.Notes, " "), discarded) {
		t.Errorf("catalog entry %+v, %v: its notes do not say why it is a full", e.Notes, err)
	}
	// And the chain goes on normally.
	if d, ok := g.run(t, "run-delta-3", events.Delta).(events.BackupCompleted); !ok || d.Type != events.Delta {
		t.Fatalf("delta after the full: %+v", g.out.last())
	} else if e, _ := g.cat.Get(ctx, "sales", d.ImageTimestamp); e.ParentTimestamp != next.ImageTimestamp {
		t.Errorf("delta parent %s, want %s", e.ParentTimestamp, next.ImageTimestamp)
	}
	if full.ImageTimestamp == next.ImageTimestamp {
		t.Fatal("the full was not taken")
	}
	checkChainsMatchDb2(t, g)
}

// TestRunnerDiscardedFullThenIncremental: a full whose upload fails is discarded; Db2 would build
// the next incremental on it, so that run takes a full.
func TestRunnerDiscardedFullThenIncremental(t *testing.T) {
	g := historyRig(t)
	up := &failingUploads{next: g.up}
	g.r.Upload = up
	if _, ok := g.run(t, "run-full-1", events.Full).(events.BackupCompleted); !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	up.fail = true
	failed, ok := g.run(t, "run-full-2", events.Full).(events.BackupFailed)
	if !ok || failed.DiscardedImage == "" || !strings.Contains(failed.Message, "503") {
		t.Fatalf("full with a failed upload: %+v", g.out.last())
	}
	up.fail = false
	inc, ok := g.run(t, "run-inc", events.Incremental).(events.BackupCompleted)
	if !ok || inc.Type != events.Full || !strings.Contains(inc.Note, failed.DiscardedImage) {
		t.Fatalf("incremental after a discarded full: %+v, want a full naming %s", g.out.last(), failed.DiscardedImage)
	}
	checkChainsMatchDb2(t, g)
}

// TestRunnerCatalogWriteFails: when the catalog takes neither the image's entry nor its
// discarded record, the outcome is unknown (a write whose answer was lost may have stored the
// entry): nothing is recorded or published, the job fails, and the scheduler reads the outcome
// from the catalog at the run's lease (test/sim found a failure recorded over a stored entry).
// The next delta takes a full, since Db2's history holds an image the catalog does not.
func TestRunnerCatalogWriteFails(t *testing.T) {
	g := historyRig(t)
	ctx := context.Background()
	if _, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted); !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	g.r.Catalog = failingPuts{Catalog: g.cat}
	sent := len(g.out.sent)
	ev, err := events.Encode("run-delta-1", "keyguard/scheduler", g.started, events.BackupStarted{Database: "sales", RunID: "run-delta-1", Type: events.Delta,
		Mode: events.Online, Slot: g.started, StartedAt: g.started, LeaseUntil: g.started.Add(6 * time.Hour), KeyCRN: runnerKey, KeyVersion: g.keyVersion,
		Executor: config.ExecDb2CLI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Handle(ctx, ev); err == nil || !strings.Contains(err.Error(), "write catalog entry") {
		t.Fatalf("delta with a failing catalog: Handle = %v, want an error (the outcome is unknown)", err)
	}
	if len(g.out.sent) != sent {
		t.Fatalf("published %+v, want nothing", g.out.last())
	}
	if _, err := g.cat.GetRun(ctx, "sales", "run-delta-1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("run record of run-delta-1: %v, want none", err)
	}
	hist := fakedb2.ReadState(t, g.state).History
	lost := hist[len(hist)-1].Timestamp
	g.r.Catalog = g.cat
	next, ok := g.run(t, "run-delta-2", events.Delta).(events.BackupCompleted)
	if !ok || next.Type != events.Full || !strings.Contains(next.Note, lost) {
		t.Fatalf("delta after an uncataloged image: %+v, want a full naming %s", g.out.last(), lost)
	}
	checkChainsMatchDb2(t, g)
}

type failingPuts struct{ *catalog.Catalog }

func (f failingPuts) Put(context.Context, catalog.Entry) error {
	return errors.New("put catalog entry: 503 Slow Down")
}

// Record fails for an entry; a run record alone (a failure's) still goes through.
func (f failingPuts) Record(ctx context.Context, e *catalog.Entry, r catalog.RunRecord) error {
	if e != nil {
		return errors.New("put catalog entry: 503 Slow Down")
	}
	return f.Catalog.Record(ctx, nil, r)
}

// TestRunnerReportsBackupsTakenOutsideKeyguard: a backup a DBA took by hand is in Db2's history
// but not in the catalog. It is reported, and not chained: a delta that Db2 would build on it is
// taken as a full; an incremental, which Db2 builds on keyguard's full, is taken as asked.
func TestRunnerReportsBackupsTakenOutsideKeyguard(t *testing.T) {
	g := historyRig(t)
	ctx := context.Background()
	full, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted)
	if !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	manual := t.TempDir()
	out, _, err := fakedb2.Runner{Bin: fakedb2.Build(t), State: g.state}.Run(ctx,
		[]string{"db2", "backup", "database", "SALES", "online", "incremental", "delta", "to", manual, "include", "logs", "without", "prompting"})
	if err != nil || !strings.Contains(out, "Backup successful") {
		t.Fatalf("manual backup: %v\n%s", err, out)
	}
	hist := fakedb2.ReadState(t, g.state).History
	outside := hist[len(hist)-1].Timestamp

	inc, ok := g.run(t, "run-inc", events.Incremental).(events.BackupCompleted)
	if !ok || inc.Type != events.Incremental || !strings.Contains(inc.Note, outside) || !strings.Contains(inc.Note, "outside keyguard") {
		t.Fatalf("incremental after a manual delta: %+v, want an incremental whose note reports %s", g.out.last(), outside)
	}
	if e, _ := g.cat.Get(ctx, "sales", inc.ImageTimestamp); e.ParentTimestamp != full.ImageTimestamp {
		t.Errorf("incremental parent %s, want %s", e.ParentTimestamp, full.ImageTimestamp)
	}

	out, _, err = fakedb2.Runner{Bin: fakedb2.Build(t), State: g.state}.Run(ctx,
		[]string{"db2", "backup", "database", "SALES", "online", "incremental", "delta", "to", manual, "include", "logs", "without", "prompting"})
	if err != nil || !strings.Contains(out, "Backup successful") {
		t.Fatalf("manual backup: %v\n%s", err, out)
	}
	hist = fakedb2.ReadState(t, g.state).History
	outside = hist[len(hist)-1].Timestamp
	delta, ok := g.run(t, "run-delta", events.Delta).(events.BackupCompleted)
	if !ok || delta.Type != events.Full || !strings.Contains(delta.Note, outside) || !strings.Contains(delta.Note, "not in the catalog") {
		t.Fatalf("delta after a manual delta: %+v, want a full saying %s is not in the catalog", g.out.last(), outside)
	}
	checkChainsMatchDb2(t, g)
}

// TestRunnerChainAfterDiscardedDeltaRestores plays the failure end to end: a full, a delta
// discarded after db2ckbkp failed, then two more delta runs; the latest restore the catalog
// plans is then carried out by Db2 (the fake) from the images in COS. Had the second delta been
// cataloged on the full, the plan would name a chain Db2 cannot restore (SQL2542N: the discarded
// image is gone).
func TestRunnerChainAfterDiscardedDeltaRestores(t *testing.T) {
	g := historyRig(t)
	ctx := context.Background()
	if _, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted); !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	setFaults(t, g, fakedb2.FaultCorruptImage)
	if _, ok := g.run(t, "run-delta-1", events.Delta).(events.BackupFailed); !ok {
		t.Fatalf("delta with a corrupt image: %+v", g.out.last())
	}
	setFaults(t, g)
	for _, id := range []string{"run-delta-2", "run-delta-3"} {
		if _, ok := g.run(t, id, events.Delta).(events.BackupCompleted); !ok {
			t.Fatalf("%s: %+v", id, g.out.last())
		}
	}
	plan, err := catalog.PlanRestore(mustList(t, g.cat), g.started.AddDate(1, 0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range plan.Images {
		body, _, err := g.objs.Get(ctx, e.Images[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, path.Base(e.Images[0].Key)), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	argv := []string{"db2", "restore", "database", "SALES", "taken", "at", plan.Target, "from", dir, "replace", "existing", "without", "prompting"}
	if len(plan.Images) > 1 {
		argv = slices.Insert(argv, 4, "incremental", "automatic")
	}
	out, _, err := fakedb2.Runner{Bin: fakedb2.Build(t), State: g.state}.Run(ctx, argv)
	if err != nil || !strings.Contains(out, "DB20000I") {
		t.Fatalf("Db2 could not restore the chain the catalog planned (%v): %s\n%v\n%s", catalogNames(plan.Images), strings.Join(argv, " "), err, out)
	}
}

func catalogNames(es []catalog.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
