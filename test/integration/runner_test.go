package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/runner"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

type outcomes struct {
	mu   sync.Mutex
	sent []events.Payload
}

func (o *outcomes) Send(_ context.Context, _ string, p events.Payload) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := p.Validate(); err != nil {
		return err
	}
	o.sent = append(o.sent, p)
	return nil
}

// last is the last outcome (backup.completed or backup.failed) sent.
func (o *outcomes) last() events.Payload {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.sent) - 1; i >= 0; i-- {
		switch o.sent[i].(type) {
		case events.BackupCompleted, events.BackupFailed:
			return o.sent[i]
		}
	}
	return nil
}

const runnerKey = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"

type runnerRig struct {
	r       *runner.Runner
	out     *outcomes
	cat     *catalog.Catalog
	objs    objstore.Store
	up      *upload.Uploader
	state   string
	dir     string
	started time.Time
	// keyVersion is the key version runs are started under ("v1", or Key Protect's once
	// keyProtect is called).
	keyVersion string
}

func newRunnerRig(t *testing.T, st fakedb2.State) *runnerRig {
	srv := s3server.Start(t)
	client := srv.Client(t)
	objs := objstore.NewCOS(client, srv.Bucket, "")
	up, err := upload.New(client, srv.Bucket, "", upload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fleet, err := config.Load([]byte(`version: 1
databases:
  - name: sales
    instance: db2inst1@db2host
    executor: db2cli
    backup_dir: ` + dir + `
    key_crn: ` + runnerKey + `
    schedules: {full: "0 2 * * 0", incremental: "0 2 * * 1-6"}
`))
	if err != nil {
		t.Fatal(err)
	}
	rig := &runnerRig{out: &outcomes{}, cat: catalog.New(objs), objs: objs, up: up, dir: dir, state: filepath.Join(t.TempDir(), "db2.json"),
		started: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), keyVersion: "v1"}
	fakedb2.WriteState(t, rig.state, st)
	rig.r = &runner.Runner{Fleet: config.Static{F: fleet}, DB2: fakedb2.Runner{Bin: fakedb2.Build(t), State: rig.state}, Upload: up, Catalog: rig.cat, Send: rig.out}
	return rig
}

func (g *runnerRig) run(t *testing.T, id string, typ events.BackupType) events.Payload {
	t.Helper()
	ev, err := events.Encode(id, "keyguard/scheduler", g.started, events.BackupStarted{Database: "sales", RunID: id, Type: typ, Mode: events.Online,
		Slot: g.started, StartedAt: g.started, LeaseUntil: g.started.Add(6 * time.Hour), KeyCRN: runnerKey, KeyVersion: g.keyVersion, Executor: config.ExecDb2CLI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return g.out.last()
}

func (g *runnerRig) localFiles(t *testing.T) []string {
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestRunnerBacksUpVerifiesUploadsAndCatalogs(t *testing.T) {
	ksDir := t.TempDir()
	keystore := filepath.Join(ksDir, "db2keys.p12")
	if err := os.WriteFile(keystore, []byte("pkcs12 keystore bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ksDir, "db2keys.sth"), []byte("stash"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 6 << 20,
		NextTimestamp: "20261124020000", KeystoreLocation: keystore})
	g.keyProtect(t)
	ctx := context.Background()

	full, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted)
	if !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	hist := fakedb2.ReadState(t, g.state).History
	if len(hist) != 1 || full.ImageTimestamp != hist[0].Timestamp || full.SHA256 != hist[0].SHA256 || full.SizeBytes != 6<<20 || !full.Verified {
		t.Fatalf("completed %+v vs db2 history %+v", full, hist)
	}
	// The object in the S3 server is the image Db2 wrote, byte for byte.
	body, err := g.up.Verify(ctx, full.Location, full.SHA256)
	if err != nil || body.Size != 6<<20 {
		t.Fatalf("verify uploaded image: %+v %v", body, err)
	}
	if files := g.localFiles(t); len(files) != 0 {
		t.Fatalf("local copy not removed: %v", files)
	}
	ent, err := g.cat.Get(ctx, "sales", full.ImageTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	if ent.KeyVersion != g.keyVersion || ent.RunID != "run-full" || ent.Keystore == nil || ent.Mode != events.Online || !ent.Verification.Verified {
		t.Fatalf("catalog entry %+v", ent)
	}
	ksBody, _, err := g.objs.Get(ctx, ent.Keystore.Key)
	if err != nil || !isSealed(ksBody) || strings.Contains(string(ksBody), "pkcs12 keystore bytes") {
		t.Fatalf("keystore copy is not sealed: %v", err)
	}
	sum := sha256.Sum256(ksBody)
	if hex.EncodeToString(sum[:]) != ent.Keystore.SHA256 {
		t.Fatal("keystore checksum mismatch")
	}

	// An incremental builds on the full; a redelivered event does not back up twice.
	inc, ok := g.run(t, "run-inc", events.Incremental).(events.BackupCompleted)
	if !ok || inc.Type != events.Incremental {
		t.Fatalf("incremental: %+v", g.out.last())
	}
	if ent, _ := g.cat.Get(ctx, "sales", inc.ImageTimestamp); ent.ParentTimestamp != full.ImageTimestamp {
		t.Fatalf("incremental parent = %q, want %q", ent.ParentTimestamp, full.ImageTimestamp)
	}
	again, ok := g.run(t, "run-inc", events.Incremental).(events.BackupCompleted)
	if !ok || again.ImageTimestamp != inc.ImageTimestamp || len(fakedb2.ReadState(t, g.state).History) != 2 {
		t.Fatalf("redelivery ran again: %+v", again)
	}
	chain, err := catalog.Chain(mustList(t, g.cat), inc.ImageTimestamp)
	if err != nil || len(chain) != 2 {
		t.Fatalf("chain = %v %v", chain, err)
	}
	if n := countRotations(g.out); n != 0 {
		t.Fatalf("%d master key rotations announced with an unchanged keystore", n)
	}
	// ADMIN_ROTATE_MASTER_KEY changes the keystore: the next image's copy differs, and the runner
	// announces a key rotation (the rotation function then makes the next backup a full).
	if err := os.WriteFile(keystore, []byte("pkcs12 keystore with a new master key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.run(t, "run-delta", events.Delta).(events.BackupCompleted); !ok {
		t.Fatalf("delta: %+v", g.out.last())
	}
	if n := countRotations(g.out); n != 1 {
		t.Fatalf("master key rotations announced = %d, want 1", n)
	}
}

func countRotations(o *outcomes) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, p := range o.sent {
		if kr, ok := p.(events.KeyRotated); ok && kr.DetectedBy == events.DetectedByKeystore {
			n++
		}
	}
	return n
}

func mustList(t *testing.T, c *catalog.Catalog) []catalog.Entry {
	l, err := c.List(context.Background(), "sales")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRunnerClassifiesDb2Failures(t *testing.T) {
	tests := []struct {
		fault fakedb2.Fault
		typ   events.BackupType
		class events.FailureClass
	}{
		{fakedb2.FaultDiskFull, events.Full, events.Configuration},
		{fakedb2.FaultKeyUnavailable, events.Full, events.Rotation},
		{fakedb2.FaultCorruptImage, events.Full, events.Transient},
		{fakedb2.FaultOnlineNotAllowed, events.Full, events.Configuration},
	}
	for _, tc := range tests {
		t.Run(string(tc.fault), func(t *testing.T) {
			g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
				NextTimestamp: "20261124020000", Inject: []fakedb2.Fault{tc.fault}})
			f, ok := g.run(t, "run-"+string(tc.fault), tc.typ).(events.BackupFailed)
			if !ok || f.Class != tc.class || f.Message == "" {
				t.Fatalf("outcome %+v, want failed %s", g.out.last(), tc.class)
			}
			if files := g.localFiles(t); len(files) != 0 {
				t.Fatalf("local files left: %v", files)
			}
			// Only an image Db2 wrote (and db2ckbkp then refused) is cataloged, as discarded.
			l := mustList(t, g.cat)
			if tc.fault != fakedb2.FaultCorruptImage {
				if len(l) != 0 || f.DiscardedImage != "" {
					t.Fatalf("a failed backup without an image was cataloged: %+v (discarded_image %q)", l, f.DiscardedImage)
				}
				return
			}
			if len(l) != 1 || !l[0].IsDiscarded() || l[0].ImageTimestamp != f.DiscardedImage || len(l[0].Images) != 0 {
				t.Fatalf("the corrupt image is not cataloged as discarded: %+v, discarded_image %q", l, f.DiscardedImage)
			}
		})
	}
}

func TestRunnerAgentPullsRunsFromTheState(t *testing.T) {
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20, NextTimestamp: "20261124020000"})
	f, _ := g.r.Fleet.Fleet(context.Background())
	f.Databases[0].Runner = config.RunnerHost
	states := state.NewObjectStore(g.objs)
	ctx := context.Background()
	poller := &runner.Poller{Runner: g.r, States: states, Interval: time.Second}
	// Nothing in flight: nothing runs.
	if n, err := poller.Poll(ctx); n != 0 || err != nil {
		t.Fatalf("idle poll: %d %v", n, err)
	}
	// The scheduler puts a run in flight (as its pull executor does): the agent runs it once.
	now := time.Now().UTC()
	_, err := state.Update(ctx, states, "sales", func() *state.State { return state.New("sales", runnerKey) }, func(st *state.State) error {
		st.Run = &state.Run{ID: "run-pulled", Type: events.Full, Mode: events.Online, Slot: now, Attempt: 1, StartedAt: now, LeaseUntil: now.Add(time.Hour), KeyVersion: "v1"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := poller.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fakedb2.ReadState(t, g.state).History); n != 1 {
		t.Fatalf("db2 ran %d backups, want 1", n)
	}
	if c, ok := g.out.last().(events.BackupCompleted); !ok || c.RunID != "run-pulled" {
		t.Fatalf("outcome %+v", g.out.last())
	}
	// A new agent (restarted) finds the run cataloged and only announces it again.
	again := &runner.Poller{Runner: g.r, States: states, Interval: time.Second}
	if n, err := again.Poll(ctx); n != 1 || err != nil {
		t.Fatalf("restarted agent: %d %v", n, err)
	}
	if n := len(fakedb2.ReadState(t, g.state).History); n != 1 {
		t.Fatalf("restarted agent backed up again: %d", n)
	}
}

// TestRunnerAgentRunsDrillsFromTheState: a drill the scheduler put in the state of a database
// served by a host agent is run by the agent (the restore job's logic, where Db2 is), once,
// into the scratch database, probed and dropped, and recorded in the catalog.
func TestRunnerAgentRunsDrillsFromTheState(t *testing.T) {
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20, NextTimestamp: "20261124020000", Rows: 42})
	f, _ := g.r.Fleet.Fleet(context.Background())
	f.Databases[0].Runner = config.RunnerHost
	f.Databases[0].Drill = &config.Drill{Cron: "@weekly", Target: "SCRATCH", Probe: "SELECT COUNT(*) FROM APP.ORDERS"}
	if _, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted); !ok {
		t.Fatalf("backup: %+v", g.out.last())
	}
	states := state.NewObjectStore(g.objs)
	ctx := context.Background()
	rs := &restore.Restorer{Fleet: g.r.Fleet, DB2: g.r.DB2, Catalog: g.cat, Download: g.up, Send: g.out, Marks: g.objs, Leases: g.objs}
	poller := &runner.Poller{Runner: g.r, States: states, Interval: time.Second, Restores: rs}
	now := time.Now().UTC()
	_, err := state.Update(ctx, states, "sales", func() *state.State { return state.New("sales", runnerKey) }, func(st *state.State) error {
		st.Restore = &state.RestoreRun{ID: "drill-20261124T050000Z", Drill: true, Target: "SCRATCH", StartedAt: now, LeaseUntil: now.Add(time.Hour), Requested: true}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := poller.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := g.cat.GetRestore(ctx, "sales", "drill-20261124T050000Z")
	if err != nil || !rec.Success || !rec.Drill || rec.Into != "SCRATCH" || rec.ProbeResult != "42" {
		t.Fatalf("drill record %+v %v", rec, err)
	}
	s := fakedb2.ReadState(t, g.state)
	if len(s.Restores) != 1 || len(s.Copies) != 0 {
		t.Fatalf("db2 restores %+v copies %+v: want one restore, its database dropped", s.Restores, s.Copies)
	}
}
