package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/restore"
)

// storeImage catalogs a backup of db3 whose one image file holds n bytes.
func storeImage(t *testing.T, f fixture, ts string, typ events.BackupType, parent string, n int) ([]byte, catalog.Entry) {
	t.Helper()
	body := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n)})
	_, _ = r.Read(body)
	sum := sha256.Sum256(body)
	e := catalogtest.Sample("db3", ts, typ, parent)
	e.Images[0].Size, e.Images[0].SHA256, e.SizeBytes = int64(n), hex.EncodeToString(sum[:]), int64(n)
	ctx := context.Background()
	if err := catalog.New(f.objs).Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := f.objs.Put(ctx, e.Images[0].Key, body, objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	return body, e
}

// TestBackupFetch: fetch writes the image files of the latest backup (or of its whole chain)
// under Db2's names, checked against the catalog, with progress on standard error; it never
// overwrites a file, and a damaged object fails and leaves nothing behind.
func TestBackupFetch(t *testing.T) {
	f := seed(t)
	full, fe := storeImage(t, f, "20261118020000", events.Full, "", 3<<20)
	inc, ie := storeImage(t, f, "20261119020000", events.Incremental, "20261118020000", 1<<20)
	dir := filepath.Join(t.TempDir(), "restore")
	if err := f.run(t, "backup", "fetch", "db3", "latest", "-o", dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, filepath.Base(ie.Images[0].Key)))
	if err != nil || !bytes.Equal(got, inc) {
		t.Fatalf("fetched file: %v (%d bytes, want %d)", err, len(got), len(inc))
	}
	if out := f.out.String(); !strings.Contains(out, "fetched "+ie.Images[0].Key) || !strings.Contains(out, "1 file, 1.0 MiB") {
		t.Errorf("output:\n%s", out)
	}
	if p := f.errOut.String(); !strings.Contains(p, filepath.Base(ie.Images[0].Key)+": 1.0 MiB of 1.0 MiB (100%)") {
		t.Errorf("progress (not a terminal: plain lines):\n%s", p)
	}

	f.out.Reset()
	if err := f.run(t, "backup", "fetch", "db3", "latest", "-o", dir, "-chain"); err == nil || !strings.Contains(err.Error(), "exists: fetch never overwrites") {
		t.Errorf("fetch over an existing file = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.Base(fe.Images[0].Key))); !os.IsNotExist(err) {
		t.Errorf("fetch wrote the full before refusing: %v", err)
	}
	chain := t.TempDir()
	if err := f.run(t, "backup", "fetch", "db3", ie.ImageTimestamp, "-chain", "-o", chain); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		e    catalog.Entry
		body []byte
	}{{fe, full}, {ie, inc}} {
		if got, err := os.ReadFile(filepath.Join(chain, filepath.Base(c.e.Images[0].Key))); err != nil || !bytes.Equal(got, c.body) {
			t.Errorf("chain file of %s: %v", c.e.Name(), err)
		}
	}

	// A damaged object: the checksum fails and the file is removed.
	if _, err := f.objs.Put(context.Background(), fe.Images[0].Key, bytes.Repeat([]byte{1}, len(full)), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	err = f.run(t, "backup", "fetch", "db3", fe.ImageTimestamp, "-o", bad)
	if !errors.Is(err, restore.ErrChecksum) {
		t.Errorf("fetch of a damaged object = %v, want ErrChecksum", err)
	}
	if left, _ := os.ReadDir(bad); len(left) != 0 {
		t.Errorf("a file that failed its checksum was left: %v", left)
	}
}

// TestBackupFetchServiceBackup: a backup kept by a service has nothing to fetch: an error says
// where it is.
func TestBackupFetchServiceBackup(t *testing.T) {
	f := seed(t)
	e := catalogtest.Sample("db3", "20261118020000", events.Full, "")
	e.Images = []catalog.Object{{Key: "db2saas://crn:v1:x/backups/b1", Size: 1 << 30}}
	e.Executor = "db2saas"
	if err := catalog.New(f.objs).Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	err := f.run(t, "backup", "fetch", "db3", "latest", "-o", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "kept by db2saas at db2saas://crn:v1:x/backups/b1") {
		t.Errorf("fetch of a Db2 on Cloud backup = %v", err)
	}
}
