package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/keystore"
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

// runnerKey's parts, so that the Key Protect emulator holds the fleet's key.
const (
	runnerKeyInstance = "5f1e2d3c-0000-4000-8000-00000000aaaa"
	runnerKeyAccount  = "0123456789abcdef0123456789abcdef"
	runnerKeyID       = "0b1c2d3e-0000-4000-8000-00000000b001"
)

// keyProtect starts a Key Protect emulator holding runnerKey and gives the rig's runner a client
// of it (the real keyprotect-go-client, through the adapter).
func (g *runnerRig) keyProtect(t *testing.T) (*kpemu.Emulator, *keyprotect.Client) {
	t.Helper()
	e := kpemu.Start(t, kpemu.Options{InstanceID: runnerKeyInstance, Account: runnerKeyAccount})
	if crn := e.AddKeyWithID(runnerKeyID, "db2-root"); crn != runnerKey {
		t.Fatalf("emulated key %s, want %s", crn, runnerKey)
	}
	c, err := keyprotect.New(keyprotect.Options{URL: e.URL(), InstanceID: e.InstanceID(), APIKey: e.APIKey(), TokenURL: e.TokenURL(),
		RetryWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.r.Keys = c
	g.keyVersion, _ = e.CurrentVersion(runnerKeyID)
	return e, c
}

// isSealed reports whether a stored keystore copy is sealed.
func isSealed(b []byte) bool { return keystore.IsSealed(b) }

// writeKeystore writes a keystore and its stash file with recognisable bytes.
func writeKeystore(t *testing.T) (keystorePath string) {
	dir := t.TempDir()
	keystorePath = filepath.Join(dir, "db2keys.p12")
	if err := os.WriteFile(keystorePath, []byte("PKCS12 KEYSTORE BYTES"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db2keys.sth"), []byte("STASHED KEYSTORE PASSWORD"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keystorePath
}

// TestRunnerSealsKeystoreCopy: the keystore copy in COS is sealed: not a tar, neither the stash's
// nor the keystore's bytes, the wrapped data key and the key version Key Protect reported in its
// header. Bucket read access alone opens nothing.
func TestRunnerSealsKeystoreCopy(t *testing.T) {
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
		NextTimestamp: "20261124020000", KeystoreLocation: writeKeystore(t)})
	e, _ := g.keyProtect(t)
	ctx := context.Background()
	full, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted)
	if !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	ent, err := g.cat.Get(ctx, "sales", full.ImageTimestamp)
	if err != nil || ent.Keystore == nil {
		t.Fatalf("catalog entry %+v %v", ent, err)
	}
	if !strings.HasSuffix(ent.Keystore.Key, "/"+full.ImageTimestamp+"/keystore.sealed") {
		t.Fatalf("keystore stored at %s", ent.Keystore.Key)
	}
	body, _, err := g.objs.Get(ctx, ent.Keystore.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tar.NewReader(bytes.NewReader(body)).Next(); err == nil {
		t.Fatal("the stored keystore copy reads as a tar archive")
	}
	for _, secret := range []string{"STASHED KEYSTORE PASSWORD", "PKCS12 KEYSTORE BYTES", "db2keys.sth", "ustar"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("the stored keystore copy contains %q", secret)
		}
	}
	h, err := keystore.ParseHeader(body)
	v, _ := e.CurrentVersion(runnerKeyID)
	if err != nil || h.KeyCRN != runnerKey || h.KeyVersion != v || h.Database != "sales" || h.Timestamp != full.ImageTimestamp {
		t.Fatalf("header %+v %v (want key version %s)", h, err, v)
	}
	if n := e.Calls(kpemu.RouteWrap); n != 1 {
		t.Fatalf("wrap calls %d, want 1", n)
	}
	// With no Key Protect, the copy does not open.
	if _, _, err := keystore.Open(ctx, nil, body, keystore.Binding{Database: "sales", Timestamp: full.ImageTimestamp}); err == nil {
		t.Fatal("opened without Key Protect")
	}
}

// TestRunnerKeystoreNeedsKeyProtect: a keystore whose data key cannot be wrapped fails the run
// (transient when Key Protect is unavailable, configuration without a client or with a suspended
// key), and nothing is stored: no keystore in clear, no image without its keystore, no entry.
func TestRunnerKeystoreNeedsKeyProtect(t *testing.T) {
	tests := []struct {
		name  string
		setup func(g *runnerRig, e *kpemu.Emulator)
		class events.FailureClass
		want  string
	}{
		{"key protect unavailable", func(g *runnerRig, e *kpemu.Emulator) { e.FailNext(keyprotect.DefaultRetries+1, 503) }, events.Transient, "status 503"},
		{"no key protect client", func(g *runnerRig, e *kpemu.Emulator) { g.r.Keys = nil }, events.Configuration, "no Key Protect client"},
		{"key suspended", func(g *runnerRig, e *kpemu.Emulator) { _ = e.SetState(runnerKeyID, kpemu.StateSuspended) }, events.Configuration, "status 409"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
				NextTimestamp: "20261124020000", KeystoreLocation: writeKeystore(t)})
			e, _ := g.keyProtect(t)
			tc.setup(g, e)
			f, ok := g.run(t, "run-1", events.Full).(events.BackupFailed)
			if !ok || f.Class != tc.class || !strings.Contains(f.Message, "keystore") || !strings.Contains(f.Message, tc.want) {
				t.Fatalf("outcome %+v, want failed %s mentioning %q", g.out.last(), tc.class, tc.want)
			}
			infos, err := g.objs.List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			// Db2 wrote the image, so it is cataloged as discarded (with no file) beside the
			// run's record; neither the image nor the keystore reaches the bucket.
			for _, in := range infos {
				if strings.HasPrefix(in.Key, "images/") {
					t.Fatalf("stored after a failed keystore copy: %+v", infos)
				}
			}
			if f.DiscardedImage == "" {
				t.Fatalf("backup.failed does not name the discarded image: %+v", f)
			}
			if files := g.localFiles(t); len(files) != 0 {
				t.Fatalf("local files left: %v", files)
			}
		})
	}
}

// TestRestoreNeedsKeyProtectToOpenKeystore: a restore without Key Protect's unwrap (no client, or
// Key Protect unavailable) fails clearly before Db2 runs, and unpacks no keystore; with it, the
// keystore and its stash are back, byte for byte.
func TestRestoreNeedsKeyProtectToOpenKeystore(t *testing.T) {
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
		NextTimestamp: "20261124020000", KeystoreLocation: writeKeystore(t)})
	e, keys := g.keyProtect(t)
	full, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted)
	if !ok {
		t.Fatalf("full: %+v", g.out.last())
	}
	ctx := context.Background()
	request := func(id string) events.Event {
		ev, err := events.Encode(id, "keyguard/operator", g.started.Add(time.Hour), events.RestoreRequested{Database: "sales", RequestedBy: "ops@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	tests := []struct {
		name  string
		keys  restore.Keys
		setup func()
		want  []string
	}{
		{"no key protect client", nil, func() {}, []string{"(permanent)", "keystore copied with " + full.ImageTimestamp, "no Key Protect client"}},
		{"key protect unavailable", keys, func() { e.FailNext(keyprotect.DefaultRetries+1, 503) }, []string{"(transient)", "check key availability", "status 503"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			r := &restore.Restorer{Fleet: g.r.Fleet, DB2: g.r.DB2, Catalog: g.cat, Download: g.up, Send: g.out, Keys: tc.keys}
			calls := len(fakedb2.ReadState(t, g.state).Calls)
			res, err := r.Handle(ctx, request(fmt.Sprint("restore-", i)))
			if err != nil || res.Outcome != "failed" {
				t.Fatalf("restore: %+v %v", res, err)
			}
			done, _ := g.out.restored()
			for _, w := range tc.want {
				if !strings.Contains(done.Message, w) {
					t.Fatalf("restore.completed message %q lacks %q", done.Message, w)
				}
			}
			if st := fakedb2.ReadState(t, g.state); len(st.Calls) != calls {
				t.Fatalf("db2 ran %q", st.Calls[calls:])
			}
			if files := g.localFiles(t); len(files) != 0 {
				t.Fatalf("backup dir holds %v", files)
			}
		})
	}
	r := &restore.Restorer{Fleet: g.r.Fleet, DB2: g.r.DB2, Catalog: g.cat, Download: g.up, Send: g.out, Keys: keys}
	if res, err := r.Handle(ctx, request("restore-ok")); err != nil || res.Outcome != "restored" {
		t.Fatalf("restore with Key Protect: %+v %v", res, err)
	}
	for name, want := range map[string]string{"db2keys.p12": "PKCS12 KEYSTORE BYTES", "db2keys.sth": "STASHED KEYSTORE PASSWORD"} {
		b, err := os.ReadFile(filepath.Join(g.dir, "keystore", name))
		if err != nil || string(b) != want {
			t.Fatalf("unpacked %s: %q %v", name, b, err)
		}
		if st, _ := os.Stat(filepath.Join(g.dir, "keystore", name)); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", name, st.Mode())
		}
	}
	if n := e.Calls(kpemu.RouteUnwrap); n != 1 {
		t.Fatalf("unwrap calls %d", n)
	}
}

// TestRestoreRefusesUnusableKeys: before it starts, the restore checks in Key Protect every key
// version its chain needs and the key version its keystore copy was sealed under; an unusable
// one refuses the restore, naming the key version and the images, and Db2 never runs. It never
// falls back silently to an older image: the refusal names the newest restorable one, which a
// restore by target then restores.
func TestRestoreRefusesUnusableKeys(t *testing.T) {
	g := newRunnerRig(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 1 << 20,
		NextTimestamp: "20261124020000", KeystoreLocation: writeKeystore(t)})
	e, keys := g.keyProtect(t)
	ctx := context.Background()
	// The keystore copies are sealed under a key of their own.
	ksKeyID, ksKey := e.AddKey("keystore-root")
	f, _ := g.r.Fleet.Fleet(ctx)
	f.Databases[0].KeystoreKeyCRN = ksKey
	ksVersion, _ := e.CurrentVersion(ksKeyID)

	var ts []string
	backup := func(id string, typ events.BackupType) {
		c, ok := g.run(t, id, typ).(events.BackupCompleted)
		if !ok {
			t.Fatalf("%s: %+v", id, g.out.last())
		}
		ts = append(ts, c.ImageTimestamp)
	}
	v1 := g.keyVersion
	backup("run-f1", events.Full)
	backup("run-i1", events.Incremental)
	// The next chain names a key version Key Protect does not list.
	g.keyVersion = "0b1c2d3e-ffff-4000-8000-00000000dead"
	backup("run-f2", events.Full)
	backup("run-d2", events.Delta)
	if n := e.Calls(kpemu.RouteWrap); n != 4 {
		t.Fatalf("wrap calls %d", n)
	}

	r := &restore.Restorer{Fleet: g.r.Fleet, DB2: g.r.DB2, Catalog: g.cat, Download: g.up, Send: g.out, Keys: keys}
	n := 0
	restoreTo := func(target string) (events.RestoreCompleted, string) {
		n++
		calls := len(fakedb2.ReadState(t, g.state).Calls)
		ev, err := events.Encode(fmt.Sprint("restore-", n), "keyguard/operator", g.started.Add(time.Hour),
			events.RestoreRequested{Database: "sales", Target: target, RequestedBy: "ops@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		done, _ := g.out.restored()
		if res.Outcome == "failed" {
			if st := fakedb2.ReadState(t, g.state); len(st.Calls) != calls {
				t.Fatalf("db2 ran %q after a refusal", st.Calls[calls:])
			}
		}
		return done, res.Outcome
	}
	expect := func(done events.RestoreCompleted, outcome, wantOutcome string, images []string, want ...string) {
		t.Helper()
		if outcome != wantOutcome || strings.Join(done.Images, ",") != strings.Join(images, ",") {
			t.Fatalf("outcome %s images %v, want %s %v: %s", outcome, done.Images, wantOutcome, images, done.Message)
		}
		for _, w := range want {
			if !strings.Contains(done.Message, w) {
				t.Fatalf("message %q lacks %q", done.Message, w)
			}
		}
	}

	done, outcome := restoreTo("")
	expect(done, outcome, "failed", []string{ts[2] + "-full", ts[3] + "-delta"}, "(permanent)",
		"key version 0b1c2d3e-ffff-4000-8000-00000000dead of "+runnerKey, "Key Protect lists no such version",
		"needed by "+ts[2]+"-full, "+ts[3]+"-delta", "the newest image whose keys are usable is "+ts[1], "target "+ts[1])

	done, outcome = restoreTo(ts[1])
	expect(done, outcome, "restored", []string{ts[0] + "-full", ts[1] + "-incremental"})

	// The keystore's wrapping key is checked too.
	if err := e.SetState(ksKeyID, kpemu.StateSuspended); err != nil {
		t.Fatal(err)
	}
	done, outcome = restoreTo(ts[1])
	expect(done, outcome, "failed", []string{ts[0] + "-full", ts[1] + "-incremental"}, "(permanent)",
		"keystore copy of image "+ts[1]+"-incremental is sealed under key version "+ksVersion+" of "+ksKey, "suspended")
	if err := e.SetState(ksKeyID, kpemu.StateActive); err != nil {
		t.Fatal(err)
	}

	// The database's key suspended: nothing is restorable.
	if err := e.SetState(runnerKeyID, kpemu.StateSuspended); err != nil {
		t.Fatal(err)
	}
	done, outcome = restoreTo(ts[1])
	expect(done, outcome, "failed", []string{ts[0] + "-full", ts[1] + "-incremental"}, "(permanent)",
		"key version "+v1+" of "+runnerKey, "the key is suspended (disabled): enable it", "needed by "+ts[0]+"-full, "+ts[1]+"-incremental",
		"no image has usable keys")
	if files := g.localFiles(t); strings.Join(files, ",") != "keystore" {
		t.Fatalf("backup dir holds %v", files)
	}
}
