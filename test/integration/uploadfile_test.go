package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// TestUploadFileVersitygw uploads files with UploadFile (parts read in place, signed by the SDK
// from the file, four at a time) and checks them against the local checksum and the server's
// copy: a 40 MiB file in eight parts, a small one in one PUT, the same file again (success), and
// another file to the same key (ErrExists).
func TestUploadFileVersitygw(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	client := srv.Client(t)
	prefix := uniquePrefix()
	u, err := upload.New(client, srv.Bucket, prefix, upload.Options{PartSize: upload.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, seed uint64, n int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, genStream(seed, n)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		size int64
	}{{"SALES.0.db2inst1.DBPART000.20240303010000.001", 40<<20 + 333}, {"keystore.p12", 4096}} {
		path := write(tc.name, 7, tc.size)
		key := "images/sales/20240303010000/" + tc.name
		obj, err := u.UploadFile(ctx, key, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, want := localSum(t, genStream(7, tc.size)); obj.Size != tc.size || obj.SHA256 != want {
			t.Fatalf("UploadFile = %+v, want %d bytes, %s", obj, tc.size, want)
		}
		if got, err := headSize(client, srv.Bucket, prefix+"/"+key); err != nil || got != tc.size {
			t.Errorf("server size = %d, %v", got, err)
		}
		if _, err := u.Verify(ctx, key, obj.SHA256); err != nil {
			t.Errorf("Verify = %v", err)
		}
		if again, err := u.UploadFile(ctx, key, path); err != nil || again != obj {
			t.Errorf("UploadFile of the same file again = %+v, %v", again, err)
		}
		if _, err := u.UploadFile(ctx, key, write("other", 8, tc.size)); !errors.Is(err, upload.ErrExists) {
			t.Errorf("UploadFile of another file to the key = %v, want ErrExists", err)
		}
	}
	if p := pendingUploads(t, client, srv.Bucket, prefix); len(p) != 0 {
		t.Errorf("pending multipart uploads: %v", p)
	}
}
