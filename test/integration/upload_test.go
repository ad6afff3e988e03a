package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// prng is a deterministic pseudo-random stream (splitmix64), fast enough not to be what an
// upload benchmark measures.
type prng struct {
	state uint64
	left  int64
	buf   [8]byte
	off   int
}

// genStream returns n pseudo-random bytes determined by seed. It is a plain io.Reader (no
// WriterTo, no Seek), as a pipe from a backup tool would be.
func genStream(seed uint64, n int64) io.Reader {
	return &prng{state: seed*0x9e3779b97f4a7c15 + 1, left: n, off: 8}
}

func (p *prng) next() uint64 {
	p.state += 0x9e3779b97f4a7c15
	z := p.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (p *prng) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) && p.off < 8 { // rest of the last word
		b[n] = p.buf[p.off]
		n, p.off = n+1, p.off+1
	}
	for ; n+8 <= len(b); n += 8 {
		binary.LittleEndian.PutUint64(b[n:], p.next())
	}
	if n < len(b) {
		binary.LittleEndian.PutUint64(p.buf[:], p.next())
		p.off = copy(b[n:], p.buf[:])
	}
	p.left -= int64(len(b))
	return len(b), nil
}

func localSum(t testing.TB, r io.Reader) (int64, string) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

// pendingUploads lists the multipart uploads in progress under prefix.
func pendingUploads(t testing.TB, c *s3.S3, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListMultipartUploadsWithContext(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.StringValue(u.Key)+" "+aws.StringValue(u.UploadId))
	}
	return ids
}

func headSize(c *s3.S3, bucket, key string) (int64, error) {
	out, err := c.HeadObjectWithContext(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	return aws.Int64Value(out.ContentLength), nil
}

// TestUploadVersitygw uploads a 64 MiB stream of unknown size with the default options (four
// 16 MiB parts, four at a time) and checks the result three ways: the local checksum of the same
// stream, the server's size, and a streamed re-download.
func TestUploadVersitygw(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	client := srv.Client(t)
	prefix := uniquePrefix()
	u, err := upload.New(client, srv.Bucket, prefix, upload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	key := "images/sales/20240303010000/SALES.0.db2inst1.DBPART000.20240303010000.001"
	obj, err := u.Upload(ctx, key, genStream(42, size), -1)
	if err != nil {
		t.Fatal(err)
	}
	n, want := localSum(t, genStream(42, size))
	if obj.Key != key || obj.Size != n || obj.SHA256 != want {
		t.Fatalf("Upload = %+v, want size %d sha256 %s", obj, n, want)
	}
	if got, err := headSize(client, srv.Bucket, prefix+"/"+key); err != nil || got != size {
		t.Errorf("server size = %d, %v; want %d", got, err, size)
	}
	h := sha256.New()
	got, err := u.Download(ctx, key, h)
	if err != nil || got != obj || hex.EncodeToString(h.Sum(nil)) != want {
		t.Errorf("Download = %+v, %v", got, err)
	}
	if _, err := u.Verify(ctx, key, want); err != nil {
		t.Errorf("Verify = %v", err)
	}
	if _, err := u.Verify(ctx, key, strings.Repeat("0", 64)); !errors.Is(err, upload.ErrChecksum) {
		t.Errorf("Verify with another sum = %v, want ErrChecksum", err)
	}
	if p := pendingUploads(t, client, srv.Bucket, prefix); len(p) != 0 {
		t.Errorf("pending multipart uploads: %v", p)
	}
	// The same bytes again (a retried runner): success without a second upload; other bytes:
	// ErrExists, and the stored object is untouched.
	if again, err := u.Upload(ctx, key, genStream(42, size), size); err != nil || again != obj {
		t.Errorf("re-upload of the same bytes = %+v, %v", again, err)
	}
	if _, err := u.Upload(ctx, key, genStream(43, size), size); !errors.Is(err, upload.ErrExists) {
		t.Errorf("upload of other bytes = %v, want ErrExists", err)
	}
	if _, err := u.Verify(ctx, key, want); err != nil {
		t.Errorf("after a refused upload: %v", err)
	}
	if enc, err := u.BucketEncryption(ctx); err != nil || enc.KeyProtect {
		t.Errorf("BucketEncryption on versitygw = %+v, %v; want none (an IBM-only header)", enc, err)
	}
	// A small object is one PUT, create-only too.
	small, err := u.Upload(ctx, "images/sales/k.p12", bytes.NewReader([]byte("keystore")), 8)
	if err != nil || small.Size != 8 {
		t.Fatalf("small upload = %+v, %v", small, err)
	}
	if _, err := u.Upload(ctx, "images/sales/k.p12", bytes.NewReader([]byte("KEYSTORE")), 8); !errors.Is(err, upload.ErrExists) {
		t.Errorf("small upload of other bytes = %v, want ErrExists", err)
	}
}

// failAfter gives n bytes of r, then err.
type failAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// TestUploadAbortVersitygw: a reader that fails after 40 MiB (two parts sent, a third being
// read) leaves no object and no multipart upload on the server.
func TestUploadAbortVersitygw(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	client := srv.Client(t)
	prefix := uniquePrefix()
	u, err := upload.New(client, srv.Bucket, prefix, upload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("injected read error")
	_, err = u.Upload(ctx, "images/sales/broken", &failAfter{r: genStream(7, 1<<30), n: 40 << 20, err: boom}, -1)
	if !errors.Is(err, boom) {
		t.Fatalf("Upload = %v, want the reader's error", err)
	}
	if _, err := headSize(client, srv.Bucket, prefix+"/images/sales/broken"); err == nil {
		t.Error("an object was stored")
	}
	if p := pendingUploads(t, client, srv.Bucket, prefix); len(p) != 0 {
		t.Errorf("pending multipart uploads after the failure: %v", p)
	}
	// A known size the stream does not reach is refused the same way.
	_, err = u.Upload(ctx, "images/sales/short", genStream(8, 20<<20), 40<<20)
	if !errors.Is(err, upload.ErrSize) {
		t.Fatalf("short stream = %v, want ErrSize", err)
	}
	if p := pendingUploads(t, client, srv.Bucket, prefix); len(p) != 0 {
		t.Errorf("pending multipart uploads after a short stream: %v", p)
	}
}

// slipIn is a stream that, when it ends, has another writer store different bytes at key, so
// that the upload's If-None-Match on CompleteMultipartUpload meets an existing object.
type slipIn struct {
	io.Reader
	done func()
}

func (s *slipIn) Read(p []byte) (int, error) {
	n, err := s.Reader.Read(p)
	if err == io.EOF && s.done != nil {
		s.done()
		s.done = nil
	}
	return n, err
}

// TestUploadCompleteIsCreateOnlyVersitygw checks that versitygw honours If-None-Match: * on
// CompleteMultipartUpload: the upload loses to the object written meanwhile, reports ErrExists,
// leaves that object as it was and aborts its own upload.
func TestUploadCompleteIsCreateOnlyVersitygw(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	client := srv.Client(t)
	prefix := uniquePrefix()
	u, err := upload.New(client, srv.Bucket, prefix, upload.Options{PartSize: upload.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	full := prefix + "/images/sales/raced"
	theirs := []byte("written by someone else")
	r := &slipIn{Reader: genStream(9, 12<<20), done: func() {
		if _, err := client.PutObjectWithContext(ctx, &s3.PutObjectInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String(full), Body: bytes.NewReader(theirs),
		}); err != nil {
			t.Errorf("the other writer: %v", err)
		}
	}}
	_, err = u.Upload(ctx, "images/sales/raced", r, -1)
	if !errors.Is(err, upload.ErrExists) || !strings.Contains(err.Error(), "written concurrently") {
		t.Fatalf("Upload = %v, want ErrExists from the conditional Complete", err)
	}
	if got, err := headSize(client, srv.Bucket, full); err != nil || got != int64(len(theirs)) {
		t.Errorf("the other writer's object: size %d, %v", got, err)
	}
	if p := pendingUploads(t, client, srv.Bucket, prefix); len(p) != 0 {
		t.Errorf("pending multipart uploads: %v", p)
	}
}

// vmHWM returns the process's peak resident set size in bytes (/proc/self/status VmHWM).
func vmHWM(tb testing.TB) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkUploadLarge uploads a 2 GiB generated stream of unknown size to versitygw with the
// default options, verifies it by a streamed re-download, and reports upload throughput (MB/s),
// verify throughput and the process's peak RSS during the upload (VmHWM, reset through
// /proc/self/clear_refs before it). Run it alone:
//
//	go test ./test/integration -run '^$' -bench BenchmarkUploadLarge -benchtime 1x
func BenchmarkUploadLarge(b *testing.B) {
	const size = 2 << 30
	ctx := context.Background()
	srv := s3server.Start(b)
	client := srv.Client(b)
	u, err := upload.New(client, srv.Bucket, "bench", upload.Options{})
	if err != nil {
		b.Fatal(err)
	}
	_, want := localSum(b, genStream(2024, size))
	b.SetBytes(size)
	var peak, verifyNanos int64
	i := 0
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Logf("cannot reset VmHWM (%v): the peak includes earlier work", err)
		}
		key := "images/bench/large-" + strconv.Itoa(i)
		i++
		b.StartTimer()
		obj, err := u.Upload(ctx, key, genStream(2024, size), -1)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, vmHWM(b))
		if obj.Size != size || obj.SHA256 != want {
			b.Fatalf("Upload = %+v, want %d bytes, sha256 %s", obj, size, want)
		}
		start := time.Now()
		if _, err := u.Verify(ctx, key, want); err != nil {
			b.Fatal(err)
		}
		verifyNanos += time.Since(start).Nanoseconds()
		if err := objstore.NewCOS(client, srv.Bucket, "bench").Delete(ctx, key); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(size)*float64(i)/1e6/(float64(verifyNanos)/1e9), "verify-MB/s")
}
