package integration

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
)

// restored is the last restore.completed sent.
func (o *outcomes) restored() (events.RestoreCompleted, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	var last events.RestoreCompleted
	for _, p := range o.sent {
		if rc, ok := p.(events.RestoreCompleted); ok {
			last, n = rc, n+1
		}
	}
	return last, n
}

func TestRestoreIncrementalChainFromCOS(t *testing.T) {
	ksDir := t.TempDir()
	keystore := filepath.Join(ksDir, "db2keys.p12")
	if err := os.WriteFile(keystore, []byte("pkcs12 keystore bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
		NextTimestamp: "20261124020000", KeystoreLocation: keystore})
	_, keys := g.keyProtect(t)
	ctx := context.Background()
	var ts []string
	for _, typ := range []events.BackupType{events.Full, events.Incremental, events.Delta} {
		c, ok := g.run(t, "run-"+string(typ), typ).(events.BackupCompleted)
		if !ok {
			t.Fatalf("%s backup: %+v", typ, g.out.last())
		}
		ts = append(ts, c.ImageTimestamp)
	}
	r := &restore.Restorer{Fleet: g.r.Fleet, DB2: g.r.DB2, Catalog: g.cat, Download: g.up, Send: g.out, Marks: g.objs, Keys: keys}
	request := func(id string) events.Event {
		ev, err := events.Encode(id, "keyguard/operator", g.started.Add(time.Hour), events.RestoreRequested{Database: "sales", RequestedBy: "ops@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}

	res, err := r.Handle(ctx, request("restore-1"))
	if err != nil || res.Outcome != "restored" {
		t.Fatalf("restore: %+v %v", res, err)
	}
	done, n := g.out.restored()
	wantImages := []string{ts[0] + "-full", ts[1] + "-incremental", ts[2] + "-delta"}
	if n != 1 || !done.Success || done.Database != "sales" || !slices.Equal(done.Images, wantImages) ||
		!strings.Contains(done.Message, "rolled forward end of logs") || !strings.Contains(done.Message, filepath.Join(g.dir, "keystore")) {
		t.Fatalf("restore.completed %+v (%d sent), want images %v", done, n, wantImages)
	}
	st := fakedb2.ReadState(t, g.state)
	if len(st.Restores) != 1 || st.RollforwardPending {
		t.Fatalf("db2 restores %+v, rollforward pending %v", st.Restores, st.RollforwardPending)
	}
	rs := st.Restores[0]
	if rs.Timestamp != ts[2] || !rs.Incremental || !rs.Automatic || !slices.Equal(rs.Images, ts) || rs.From != g.dir || rs.RollForward != "END OF LOGS" {
		t.Fatalf("db2 restore %+v, want target %s with chain %v rolled forward to end of logs", rs, ts[2], ts)
	}
	logs := filepath.Join(g.dir, "logs-"+done.ID)
	if !slices.Contains(st.Calls, "db2 restore database SALES incremental automatic from "+g.dir+" taken at "+ts[2]+" logtarget "+logs+" replace existing without prompting") ||
		!slices.Contains(st.Calls, "db2 rollforward database SALES to end of logs and stop overflow log path ("+logs+")") {
		t.Fatalf("db2 calls %q", st.Calls)
	}
	// The images are gone; the keystore copy stays for the operator.
	if files := g.localFiles(t); !slices.Equal(files, []string{"keystore"}) {
		t.Fatalf("backup dir holds %v", files)
	}
	if b, err := os.ReadFile(filepath.Join(g.dir, "keystore", "db2keys.p12")); err != nil || string(b) != "pkcs12 keystore bytes" {
		t.Fatalf("unpacked keystore %q %v", b, err)
	}

	// The same event again does not restore again.
	res, err = r.Handle(ctx, request("restore-1"))
	if _, n := g.out.restored(); err != nil || res.Outcome != "duplicate" || n != 1 || len(fakedb2.ReadState(t, g.state).Restores) != 1 {
		t.Fatalf("duplicate: %+v %v, %d outcomes", res, err, n)
	}

	// Damage the incremental's object in COS: the download check refuses it before Db2 runs.
	ent, err := g.cat.Get(ctx, "sales", ts[1])
	if err != nil {
		t.Fatal(err)
	}
	key := ent.Images[0].Key
	body, _, err := g.objs.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	body[len(body)/2] ^= 0x55
	if _, err := g.objs.Put(ctx, key, body, objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	calls := len(fakedb2.ReadState(t, g.state).Calls)
	res, err = r.Handle(ctx, request("restore-2"))
	if err != nil || res.Outcome != "failed" {
		t.Fatalf("restore of a damaged chain: %+v %v", res, err)
	}
	done, n = g.out.restored()
	if n != 2 || done.Success || !strings.Contains(done.Message, "(permanent)") || !strings.Contains(done.Message, "does not match the catalog") ||
		!strings.Contains(done.Message, key) {
		t.Fatalf("restore.completed %+v", done)
	}
	st = fakedb2.ReadState(t, g.state)
	if len(st.Calls) != calls || len(st.Restores) != 1 {
		t.Fatalf("db2 ran %q after a failed download", st.Calls[calls:])
	}
	if files := g.localFiles(t); !slices.Equal(files, []string{"keystore"}) {
		t.Fatalf("backup dir holds %v after a failed restore", files)
	}
}

// leaseWatch is a Downloader that records, at each download, the images the restore leases say
// are in use.
type leaseWatch struct {
	restore.Downloader
	objs objstore.Store
	seen []map[string]bool
}

func (w *leaseWatch) Download(ctx context.Context, key string, dst io.Writer) (upload.Object, error) {
	inUse, err := catalog.InUse(ctx, w.objs, "sales", time.Now())
	if err != nil {
		return upload.Object{}, err
	}
	w.seen = append(w.seen, inUse)
	return w.Downloader.Download(ctx, key, dst)
}

// TestRestoreLeasesItsImages: while a restore downloads and restores, a lease in COS
// (leases/<db>/restore-<id>.json) holds every image of its chain, so retention keeps them; at
// the end the lease is gone.
func TestRestoreLeasesItsImages(t *testing.T) {
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
		NextTimestamp: "20261124020000"})
	ctx := context.Background()
	var ts []string
	for _, typ := range []events.BackupType{events.Full, events.Incremental} {
		c, ok := g.run(t, "run-"+string(typ), typ).(events.BackupCompleted)
		if !ok {
			t.Fatalf("%s: %+v", typ, g.out.last())
		}
		ts = append(ts, c.ImageTimestamp)
	}
	watch := &leaseWatch{Downloader: g.up, objs: g.objs}
	r := &restore.Restorer{Fleet: g.r.Fleet, DB2: g.r.DB2, Catalog: g.cat, Download: watch, Send: g.out, Leases: g.objs, LeaseSettle: -1}
	ev, err := events.Encode("restore-1", "keyguard/operator", g.started.Add(time.Hour), events.RestoreRequested{Database: "sales", RequestedBy: "ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Handle(ctx, ev); err != nil || res.Outcome != "restored" {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if len(watch.seen) != 2 {
		t.Fatalf("%d downloads", len(watch.seen))
	}
	for i, inUse := range watch.seen {
		if len(inUse) != 2 || !inUse[ts[0]] || !inUse[ts[1]] {
			t.Fatalf("download %d: in use %v, want %v", i, inUse, ts)
		}
	}
	if infos, err := g.objs.List(ctx, "leases/"); err != nil || len(infos) != 0 {
		t.Fatalf("leases left after the restore: %v %v", infos, err)
	}
}
