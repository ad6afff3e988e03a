package upload_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// BenchmarkUploadFileWays uploads one 512 MiB file to versitygw in each way, in turn within
// every iteration (so that the load of a shared machine falls on all of them alike), and
// reports each one's MB/s: UploadFile reading parts in place with the SHA-256 computed during
// the upload, the same with the SHA-256 computed first, Upload of the file as a stream (copied
// into part buffers), and one PutObject of the file (the floor).
//
//	go test ./shared/upload -run '^$' -bench BenchmarkUploadFileWays -benchtime 3x
func BenchmarkUploadFileWays(b *testing.B) {
	const size = 512 << 20
	ctx := context.Background()
	srv := s3server.Start(b)
	client := srv.Client(b)
	u, err := upload.New(client, srv.Bucket, "bench", upload.Options{})
	if err != nil {
		b.Fatal(err)
	}
	objs := objstore.NewCOS(client, srv.Bucket, "bench")
	path := filepath.Join(b.TempDir(), "image.001")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, stream(9, size)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	ways := []struct {
		name string
		run  func(b *testing.B, key string) error
	}{
		{"in-place", func(b *testing.B, key string) error { _, err := u.UploadFile(ctx, key, path); return err }},
		{"in-place-hash-first", func(b *testing.B, key string) error {
			defer upload.HashFirst(b)()
			_, err := u.UploadFile(ctx, key, path)
			return err
		}},
		{"stream-buffers", func(b *testing.B, key string) error {
			fh, err := os.Open(path)
			if err != nil {
				return err
			}
			defer fh.Close()
			_, err = u.Upload(ctx, key, fh, size)
			return err
		}},
		{"floor-put", func(b *testing.B, key string) error {
			fh, err := os.Open(path)
			if err != nil {
				return err
			}
			defer fh.Close()
			_, err = client.PutObjectWithContext(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("bench/" + key),
				Body: fh, ContentLength: aws.Int64(size)})
			return err
		}},
	}
	secs := make([]float64, len(ways))
	i := 0
	for b.Loop() {
		for w, way := range ways {
			key := fmt.Sprintf("images/db1/%d-%s", i, way.name)
			t0 := time.Now()
			if err := way.run(b, key); err != nil {
				b.Fatalf("%s: %v", way.name, err)
			}
			secs[w] += time.Since(t0).Seconds()
			if err := objs.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
	for w, way := range ways {
		b.ReportMetric(size*float64(i)/1e6/secs[w], way.name+"-MB/s")
	}
}
