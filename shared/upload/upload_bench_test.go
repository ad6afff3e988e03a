package upload_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// BenchmarkUploadFileWays uploads one 512 MiB file to versitygw in each way, in turn within
// every iteration and each way first in turn (so that the load of a shared machine falls on all
// of them alike), and reports each one's MB/s and the CPU time this process spent per GiB:
// UploadFile reading parts in place with the SHA-256 computed during the upload, the same with
// the SHA-256 computed first, Upload of the file as a stream (copied into part buffers), and one
// PutObject of the file (the floor).
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
	cpus := make([]float64, len(ways))
	i := 0
	for b.Loop() {
		// Each way first in turn: the one after a deletion pays for the server's flush.
		for k := range ways {
			w := (i + k) % len(ways)
			way := ways[w]
			key := fmt.Sprintf("images/db1/%d-%s", i, way.name)
			t0, c0 := time.Now(), cpuTime()
			if err := way.run(b, key); err != nil {
				b.Fatalf("%s: %v", way.name, err)
			}
			secs[w] += time.Since(t0).Seconds()
			cpus[w] += (cpuTime() - c0).Seconds()
			if testing.Verbose() {
				b.Logf("%s: %.2f s wall, %.2f s CPU", way.name, time.Since(t0).Seconds(), (cpuTime() - c0).Seconds())
			}
			if err := objs.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
	for w, way := range ways {
		b.ReportMetric(size*float64(i)/1e6/secs[w], way.name+"-MB/s")
		b.ReportMetric(cpus[w]/float64(i)/(size/float64(1<<30)), way.name+"-cpu-s/GiB")
	}
}

// cpuTime is the CPU time this process has used (the uploader's side: versitygw is another
// process). On a shared machine it varies far less than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
