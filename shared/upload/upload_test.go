package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

const mib = 1 << 20

// stream is n deterministic pseudo-random bytes.
func stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func sum(t testing.TB, r io.Reader) (int64, string) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

func newUploader(t *testing.T, f *fakeS3, o upload.Options) *upload.Uploader {
	t.Helper()
	u, err := upload.New(f, "bucket", "kg", o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUploadSizes(t *testing.T) {
	const ps = upload.MinPartSize
	cases := []struct {
		name  string
		size  int64
		parts int // 0: one PUT
	}{
		{"empty", 0, 0},
		{"one byte", 1, 0},
		{"just under a part", ps - 1, 0},
		{"exactly a part", ps, 0},
		{"a part and a byte", ps + 1, 2},
		{"exactly two parts", 2 * ps, 2},
		{"three parts and change", 3*ps + 7, 4},
	}
	for _, tc := range cases {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/known=%v", tc.name, known), func(t *testing.T) {
				f := newFake()
				u := newUploader(t, f, upload.Options{PartSize: ps, Concurrency: 3})
				size := tc.size
				if !known {
					size = -1
				}
				obj, err := u.Upload(context.Background(), "images/db1/x", stream(1, tc.size), size)
				if err != nil {
					t.Fatal(err)
				}
				n, want := sum(t, stream(1, tc.size))
				if obj != (upload.Object{Key: "images/db1/x", Size: n, SHA256: want}) {
					t.Errorf("Upload = %+v, want size %d sha %s", obj, n, want)
				}
				stored, ok := f.object("kg/images/db1/x")
				if !ok {
					t.Fatal("nothing stored under the prefixed key")
				}
				if _, got := sum(t, bytes.NewReader(stored.data)); got != want {
					t.Errorf("stored bytes differ")
				}
				if tc.parts == 0 && (f.Calls("put") != 1 || f.Calls("create") != 0) {
					t.Errorf("want one PUT, got %d puts and %d multipart uploads", f.Calls("put"), f.Calls("create"))
				}
				if tc.parts > 0 && (f.Calls("put") != 0 || len(f.partSizes("kg/images/db1/x")) != tc.parts) {
					t.Errorf("want %d parts, got %v (%d puts)", tc.parts, f.partSizes("kg/images/db1/x"), f.Calls("put"))
				}
				if got, err := u.Verify(context.Background(), "images/db1/x", want); err != nil || got != obj {
					t.Errorf("Verify = %+v, %v", got, err)
				}
				if _, pending := f.state(); len(pending) != 0 {
					t.Errorf("pending uploads left: %v", pending)
				}
			})
		}
	}
}

func TestObjectConvertsToCatalogObject(t *testing.T) {
	o := upload.Object{Key: "images/db1/20240303010000/f", Size: 3, SHA256: strings.Repeat("a", 64)}
	if c := catalog.Object(o); c.Key != o.Key || c.Size != o.Size || c.SHA256 != o.SHA256 {
		t.Errorf("catalog.Object(%+v) = %+v", o, c)
	}
}

func TestConcurrencyAndMemoryAreBounded(t *testing.T) {
	for _, conc := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			f := newFake()
			f.discard = true
			f.partDelay = 20 * time.Millisecond
			u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Concurrency: conc})
			const parts = 16
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			obj, err := u.Upload(context.Background(), "big", stream(2, parts*upload.MinPartSize), -1)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if obj.Size != parts*upload.MinPartSize {
				t.Errorf("size %d", obj.Size)
			}
			if f.peak > conc || (conc > 1 && f.peak < 2) {
				t.Errorf("peak parts in flight %d with concurrency %d", f.peak, conc)
			}
			// Buffers: at most concurrency+1 parts, whatever the stream length.
			allocated := after.TotalAlloc - before.TotalAlloc
			if limit := uint64(conc+1)*upload.MinPartSize + 4*mib; allocated > limit {
				t.Errorf("allocated %d MiB for a %d MiB stream, want at most %d MiB", allocated/mib, obj.Size/mib, limit/mib)
			}
		})
	}
}

func TestKnownSizeRaisesPartSize(t *testing.T) {
	defer upload.SetMaxParts(4)()
	f := newFake()
	f.discard = true
	u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize})
	size := int64(30 * mib) // 6 parts of 5 MiB > 4: parts of 8 MiB
	if _, err := u.Upload(context.Background(), "k", stream(3, size), size); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(f.partSizes("kg/k")); got != fmt.Sprint([]int64{8 * mib, 8 * mib, 8 * mib, 6 * mib}) {
		t.Errorf("part sizes %s", got)
	}
	// An unknown size cannot be planned: too many parts is an error, and nothing is left.
	_, err := u.Upload(context.Background(), "k2", stream(3, size), -1)
	if !errors.Is(err, upload.ErrTooLarge) {
		t.Errorf("Upload of an unknown-size stream of too many parts = %v, want ErrTooLarge", err)
	}
	if objects, pending := f.state(); len(pending) != 0 || strings.Contains(fmt.Sprint(objects), "k2") {
		t.Errorf("left behind: objects %v pending %v", objects, pending)
	}
}

// failingReader gives n bytes of a stream, then fails.
type failingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
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

func TestFailuresAbortAndLeaveNothing(t *testing.T) {
	boom := errors.New("disk read error")
	cases := []struct {
		name      string
		size      int64 // announced
		reader    func() io.Reader
		setup     func(f *fakeS3, cancel context.CancelFunc)
		want      error
		transient bool
		aborted   bool
	}{
		{name: "reader fails mid-stream", size: -1, aborted: true, want: boom,
			reader: func() io.Reader { return &failingReader{r: stream(4, 1<<30), n: 12 * mib, err: boom} }},
		{name: "reader fails in the first part", size: -1, want: boom,
			reader: func() io.Reader { return &failingReader{r: stream(4, 1<<30), n: mib, err: boom} }},
		{name: "stream shorter than announced", size: 20 * mib, aborted: true, want: upload.ErrSize,
			reader: func() io.Reader { return stream(4, 17*mib) }},
		{name: "stream longer than announced", size: 12 * mib, aborted: true, want: upload.ErrSize,
			reader: func() io.Reader { return stream(4, 13*mib) }},
		{name: "small stream longer than announced", size: 10, want: upload.ErrSize,
			reader: func() io.Reader { return stream(4, 11) }},
		{name: "a part is refused", size: -1, aborted: true, want: errors.New("InvalidArgument"),
			reader: func() io.Reader { return stream(4, 30*mib) },
			setup: func(f *fakeS3, _ context.CancelFunc) {
				f.onPart = func(n int64) error {
					if n == 3 {
						return awsErr(400, "InvalidArgument")
					}
					return nil
				}
			}},
		{name: "the server is unavailable", size: -1, aborted: true, transient: true, want: errors.New("ServiceUnavailable"),
			reader: func() io.Reader { return stream(4, 30*mib) },
			setup: func(f *fakeS3, _ context.CancelFunc) {
				f.onPart = func(n int64) error {
					if n == 2 {
						return awsErr(503, "ServiceUnavailable")
					}
					return nil
				}
			}},
		{name: "the caller cancels", size: -1, aborted: true, want: context.Canceled,
			reader: func() io.Reader { return stream(4, 60*mib) },
			setup: func(f *fakeS3, cancel context.CancelFunc) {
				f.partDelay = 10 * time.Millisecond
				f.onPart = func(n int64) error {
					if n == 4 {
						cancel()
					}
					return nil
				}
			}},
		{name: "complete fails", size: -1, aborted: true, want: errors.New("InternalError"), transient: true,
			reader: func() io.Reader { return stream(4, 12*mib) },
			setup: func(f *fakeS3, _ context.CancelFunc) {
				f.onComplete = func(string) error { return awsErr(500, "InternalError") }
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.setup != nil {
				tc.setup(f, cancel)
			}
			u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Concurrency: 2})
			_, err := u.Upload(ctx, "images/db1/x", tc.reader(), tc.size)
			if err == nil {
				t.Fatal("Upload succeeded")
			}
			if !errors.Is(err, tc.want) && !strings.Contains(err.Error(), tc.want.Error()) {
				t.Errorf("Upload = %v, want %v", err, tc.want)
			}
			if objstore.IsTransient(err) != tc.transient {
				t.Errorf("IsTransient(%v) = %v, want %v", err, !tc.transient, tc.transient)
			}
			objects, pending := f.state()
			if len(objects) != 0 || len(pending) != 0 {
				t.Errorf("left behind: objects %v, pending uploads %v", objects, pending)
			}
			if got := f.Calls("abort") > 0; got != tc.aborted {
				t.Errorf("aborted = %v, want %v", got, tc.aborted)
			}
		})
	}
}

func TestAbortFailureIsReported(t *testing.T) {
	f := newFake()
	f.onPart = func(n int64) error { return awsErr(400, "InvalidArgument") }
	f.onAbort = func() error { return awsErr(500, "InternalError") }
	u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Concurrency: 2, AbortTimeout: time.Second})
	_, err := u.Upload(context.Background(), "x", stream(5, 12*mib), -1)
	if err == nil || !strings.Contains(err.Error(), "abort multipart upload upload-1") || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("Upload = %v, want both the part error and the failed abort naming the upload id", err)
	}
}

// TestAbortIsRepeatedUntilTheUploadIsGone: a part still being stored when the abort came brings
// the upload back (S3: "it might be necessary to abort a given multipart upload multiple
// times"); the uploader checks with ListParts and aborts again, leaving nothing pending (seen
// against versitygw under load: TestUploadAbortVersitygw).
func TestAbortIsRepeatedUntilTheUploadIsGone(t *testing.T) {
	f := newFake()
	f.partAfterAbort = true
	f.onPart = func(n int64) error {
		if n == 2 {
			return awsErr(400, "InvalidArgument")
		}
		return nil
	}
	u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Concurrency: 2, AbortTimeout: time.Second})
	if _, err := u.Upload(context.Background(), "x", stream(5, 12*mib), -1); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("Upload = %v, want the part's error", err)
	}
	if _, pending := f.state(); len(pending) != 0 {
		t.Errorf("pending uploads after the failure: %v", pending)
	}
	if got := f.Calls("abort"); got != 2 {
		t.Errorf("aborts = %d, want 2 (the second after ListParts found the upload)", got)
	}
}

func TestCreateOnly(t *testing.T) {
	ctx := context.Background()
	data := func(seed uint64, n int64) []byte { b, _ := io.ReadAll(stream(seed, n)); return b }
	for _, size := range []int64{100, 12 * mib} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			f := newFake()
			u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize})
			first, err := u.Upload(ctx, "k", bytes.NewReader(data(6, size)), size)
			if err != nil {
				t.Fatal(err)
			}
			writes := f.Calls("put") + f.Calls("create")
			again, err := u.Upload(ctx, "k", bytes.NewReader(data(6, size)), -1)
			if err != nil || again != first {
				t.Errorf("re-upload of the same bytes = %+v, %v; want %+v, nil", again, err, first)
			}
			if f.Calls("put")+f.Calls("create") != writes {
				t.Error("re-upload of the same bytes wrote again")
			}
			if _, err := u.Upload(ctx, "k", bytes.NewReader(data(7, size)), size); !errors.Is(err, upload.ErrExists) {
				t.Errorf("upload of other bytes, same size = %v, want ErrExists", err)
			}
			if _, err := u.Upload(ctx, "k", bytes.NewReader(data(6, size+1)), size+1); !errors.Is(err, upload.ErrExists) {
				t.Errorf("upload of another size = %v, want ErrExists", err)
			}
			if got, err := u.Verify(ctx, "k", first.SHA256); err != nil || got != first {
				t.Errorf("the stored object changed: %+v, %v", got, err)
			}
			over := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Overwrite: true})
			third, err := over.Upload(ctx, "k", bytes.NewReader(data(7, size)), size)
			if err != nil || third.SHA256 == first.SHA256 {
				t.Errorf("Overwrite upload = %+v, %v", third, err)
			}
			if _, err := u.Verify(ctx, "k", third.SHA256); err != nil {
				t.Errorf("after an Overwrite upload: %v", err)
			}
		})
	}
}

// TestRaceAtTheFinalWrite: another writer stores the key between the HEAD and the final write.
func TestRaceAtTheFinalWrite(t *testing.T) {
	ctx := context.Background()
	mine, _ := io.ReadAll(stream(8, 12*mib))
	theirs, _ := io.ReadAll(stream(9, 12*mib))
	for _, tc := range []struct {
		name    string
		stored  []byte
		size    int64
		wantErr error
	}{
		{"multipart, other bytes", theirs, 12 * mib, upload.ErrExists},
		{"multipart, same bytes", mine, 12 * mib, nil},
		{"single put, other bytes", theirs[:100], 100, upload.ErrExists},
		{"single put, same bytes", mine[:100], 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			// The other writer's object appears after the HEAD, as the final write starts.
			var once atomic.Bool
			slipIn := func(key string) {
				if once.CompareAndSwap(false, true) {
					f.put(key, tc.stored)
				}
			}
			f.onComplete = func(key string) error { slipIn(key); return nil }
			u, err := upload.New(&hookedFake{fakeS3: f, beforePut: slipIn}, "bucket", "kg", upload.Options{PartSize: upload.MinPartSize})
			if err != nil {
				t.Fatal(err)
			}
			_, err = u.Upload(ctx, "k", bytes.NewReader(mine[:tc.size]), tc.size)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Upload = %v, want %v", err, tc.wantErr)
			}
			if _, pending := f.state(); len(pending) != 0 {
				t.Errorf("pending uploads left: %v", pending)
			}
			if stored, _ := f.object("kg/k"); !bytes.Equal(stored.data, tc.stored) {
				t.Error("the other writer's object was replaced")
			}
		})
	}
}

// TestLostResponseOfTheFinalWrite: the final write succeeded but its answer was lost, and the
// SDK's retry got 412 (PUT) or NoSuchUpload (Complete): the upload recognises its own object.
func TestLostResponseOfTheFinalWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		size int64
		err  error
	}{
		{"complete answered NoSuchUpload", 12 * mib, awsErr(404, "NoSuchUpload")},
		{"complete answered 412", 12 * mib, awsErr(412, "PreconditionFailed")},
		{"put answered 412", 1000, awsErr(412, "PreconditionFailed")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.afterComplete = func() error { return tc.err }
			api := upload.API(f)
			if tc.size < upload.MinPartSize {
				api = &hookedFake{fakeS3: f, afterPut: func() error { return tc.err }}
			}
			u, err := upload.New(api, "bucket", "kg", upload.Options{PartSize: upload.MinPartSize})
			if err != nil {
				t.Fatal(err)
			}
			obj, err := u.Upload(ctx, "k", stream(10, tc.size), tc.size)
			if err != nil {
				t.Fatalf("Upload = %v, want success (the object is ours)", err)
			}
			if f.Calls("get") != 0 {
				t.Error("recognising our own object should not need to re-read it")
			}
			if _, err := u.Verify(ctx, "k", obj.SHA256); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDownloadAndVerify(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	u := newUploader(t, f, upload.Options{})
	payload, _ := io.ReadAll(stream(11, 3*mib+5))
	f.put("kg/images/db1/a", payload)
	_, want := sum(t, bytes.NewReader(payload))
	var buf bytes.Buffer
	obj, err := u.Download(ctx, "images/db1/a", &buf)
	if err != nil || obj.SHA256 != want || obj.Size != int64(len(payload)) || !bytes.Equal(buf.Bytes(), payload) {
		t.Fatalf("Download = %+v, %v", obj, err)
	}
	if _, err := u.Verify(ctx, "images/db1/a", want); err != nil {
		t.Errorf("Verify = %v", err)
	}
	if _, err := u.Verify(ctx, "images/db1/a", strings.Repeat("0", 64)); !errors.Is(err, upload.ErrChecksum) {
		t.Errorf("Verify with a wrong sum = %v, want ErrChecksum", err)
	}
	if _, err := u.Verify(ctx, "images/db1/missing", want); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Verify of a missing key = %v, want objstore.ErrNotFound", err)
	}
	if _, err := u.Verify(ctx, "images/db1/a", "ABC"); err == nil {
		t.Error("Verify accepted a malformed sum")
	}
	if _, err := u.Download(ctx, "../x", io.Discard); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("Download of a bad key = %v, want ErrInvalidKey", err)
	}
}

func TestUploadFile(t *testing.T) {
	f := newFake()
	u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize})
	path := filepath.Join(t.TempDir(), "SAMPLE.0.db2inst1.DBPART000.20240303010000.001")
	payload, _ := io.ReadAll(stream(12, 11*mib))
	if err := os.WriteFile(path, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	obj, err := u.UploadFile(context.Background(), "images/db1/20240303010000/"+filepath.Base(path), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, want := sum(t, bytes.NewReader(payload)); obj.SHA256 != want || obj.Size != int64(len(payload)) {
		t.Errorf("UploadFile = %+v", obj)
	}
	// Create-only: the same file again is success, another file at the key ErrExists.
	if again, err := u.UploadFile(context.Background(), "images/db1/20240303010000/"+filepath.Base(path), path); err != nil || again != obj {
		t.Errorf("UploadFile of the same file again = %+v, %v; want %+v", again, err, obj)
	}
	payload[5*mib+7] ^= 1
	if err := os.WriteFile(path, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := u.UploadFile(context.Background(), "images/db1/20240303010000/"+filepath.Base(path), path); !errors.Is(err, upload.ErrExists) {
		t.Errorf("UploadFile of other bytes to the key = %v, want ErrExists", err)
	}
	if _, err := u.UploadFile(context.Background(), "x", t.TempDir()); err == nil {
		t.Error("UploadFile of a directory succeeded")
	}
	if _, err := u.UploadFile(context.Background(), "x", filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("UploadFile of a missing file = %v", err)
	}
}

func TestEncryption(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.kpEnabled, f.kpCRN = true, "crn:v1:bluemix:public:kms:us-south:a/x:y:key:z"
	u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, ServerSideEncryption: "AES256"})
	enc, err := u.BucketEncryption(ctx)
	if err != nil || !enc.KeyProtect || enc.RootKeyCRN != f.kpCRN {
		t.Errorf("BucketEncryption = %+v, %v", enc, err)
	}
	for _, size := range []int64{10, 11 * mib} {
		key := fmt.Sprintf("k%d", size)
		if _, err := u.Upload(ctx, key, stream(13, size), size); err != nil {
			t.Fatal(err)
		}
		if o, _ := f.object("kg/" + key); o.sse != "AES256" {
			t.Errorf("size %d: server-side encryption %q, want AES256", size, o.sse)
		}
	}
	plain := newFake()
	if enc, err := newUploader(t, plain, upload.Options{}).BucketEncryption(ctx); err != nil || enc.KeyProtect {
		t.Errorf("BucketEncryption of a plain bucket = %+v, %v", enc, err)
	}
}

func TestOptions(t *testing.T) {
	cases := []struct {
		name string
		o    upload.Options
		ok   bool
	}{
		{"defaults", upload.Options{}, true},
		{"min part", upload.Options{PartSize: upload.MinPartSize}, true},
		{"part too small", upload.Options{PartSize: upload.MinPartSize - 1}, false},
		{"part too large", upload.Options{PartSize: upload.MaxPartSize + 1}, false},
		{"concurrency too high", upload.Options{Concurrency: upload.MaxConcurrency + 1}, false},
		{"negative concurrency", upload.Options{Concurrency: -1}, false},
		{"kms per object", upload.Options{ServerSideEncryption: "aws:kms"}, false},
		{"negative abort timeout", upload.Options{AbortTimeout: -time.Second}, false},
	}
	for _, tc := range cases {
		_, err := upload.New(newFake(), "b", "", tc.o)
		if (err == nil) != tc.ok {
			t.Errorf("%s: New = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := upload.New(nil, "b", "", upload.Options{}); err == nil {
		t.Error("New without a client succeeded")
	}
	u := newUploader(t, newFake(), upload.Options{})
	if _, err := u.Upload(context.Background(), "", stream(1, 1), 1); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("Upload to an empty key = %v", err)
	}
	if _, err := u.Upload(context.Background(), "k", stream(1, 1), -2); err == nil {
		t.Error("Upload with size -2 succeeded")
	}
}

// TestUploadFileReadsInPlace: UploadFile sends sections of the file, not copies: what it
// allocates does not grow with the file (a few hundred KiB for 64 MiB in 13 parts, where the
// stream path holds Concurrency+1 part buffers), in both orders of hashing, and the object is
// the file.
func TestUploadFileReadsInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image.001")
	payload, _ := io.ReadAll(stream(21, 64*mib+12345))
	if err := os.WriteFile(path, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	_, want := sum(t, bytes.NewReader(payload))
	for _, order := range []string{"hash alongside", "hash first"} {
		t.Run(order, func(t *testing.T) {
			if order == "hash first" {
				defer upload.HashFirst(t)()
			}
			f := newFake()
			f.discard = true
			u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Concurrency: 4})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			obj, err := u.UploadFile(context.Background(), "images/db1/20240303010000/image.001", path)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if obj.Size != int64(len(payload)) || obj.SHA256 != want {
				t.Errorf("UploadFile = %+v, want %d bytes, %s", obj, len(payload), want)
			}
			if got := fmt.Sprint(f.partSizes("kg/images/db1/20240303010000/image.001")); got != fmt.Sprint(append(slices.Repeat([]int64{upload.MinPartSize}, 12), 4*mib+12345)) {
				t.Errorf("part sizes %s", got)
			}
			if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 2*mib {
				t.Errorf("allocated %d KiB to upload a %d MiB file in place", allocated>>10, len(payload)>>20)
			}
		})
	}
}

// TestUploadFileFailuresAbort: a file upload that fails, or a file that changes while it is
// read, aborts the multipart upload and leaves nothing.
func TestUploadFileFailuresAbort(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(f *fakeS3, path string, cancel context.CancelFunc)
		want    error
		aborted bool
	}{
		{name: "a part is refused", aborted: true, want: errors.New("InvalidArgument"),
			setup: func(f *fakeS3, _ string, _ context.CancelFunc) {
				f.onPart = func(n int64) error {
					if n == 3 {
						return awsErr(400, "InvalidArgument")
					}
					return nil
				}
			}},
		{name: "the caller cancels", aborted: true, want: context.Canceled,
			setup: func(f *fakeS3, _ string, cancel context.CancelFunc) {
				f.partDelay = 5 * time.Millisecond
				f.onPart = func(n int64) error {
					if n == 2 {
						cancel()
					}
					return nil
				}
			}},
		{name: "the file grows", aborted: true, want: upload.ErrSize,
			setup: func(f *fakeS3, path string, _ context.CancelFunc) {
				f.onPart = func(n int64) error {
					if n == 1 {
						fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
						if err != nil {
							return err
						}
						defer fh.Close()
						_, err = fh.Write([]byte("more"))
						return err
					}
					return nil
				}
			}},
		{name: "the file shrinks", aborted: true, want: upload.ErrSize,
			setup: func(f *fakeS3, path string, _ context.CancelFunc) {
				f.onPart = func(n int64) error {
					if n == 1 {
						return os.Truncate(path, 7*mib)
					}
					return nil
				}
			}},
		{name: "complete fails", aborted: true, want: errors.New("InternalError"),
			setup: func(f *fakeS3, _ string, _ context.CancelFunc) {
				f.onComplete = func(string) error { return awsErr(500, "InternalError") }
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "image.001")
			payload, _ := io.ReadAll(stream(22, 23*mib))
			if err := os.WriteFile(path, payload, 0o600); err != nil {
				t.Fatal(err)
			}
			f := newFake()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.setup(f, path, cancel)
			u := newUploader(t, f, upload.Options{PartSize: upload.MinPartSize, Concurrency: 2})
			_, err := u.UploadFile(ctx, "images/db1/x", path)
			if err == nil {
				t.Fatal("UploadFile succeeded")
			}
			if !errors.Is(err, tc.want) && !strings.Contains(err.Error(), tc.want.Error()) {
				t.Errorf("UploadFile = %v, want %v", err, tc.want)
			}
			objects, pending := f.state()
			if len(objects) != 0 || len(pending) != 0 {
				t.Errorf("left behind: objects %v, pending uploads %v", objects, pending)
			}
			if got := f.Calls("abort") > 0; got != tc.aborted {
				t.Errorf("aborted = %v, want %v", got, tc.aborted)
			}
		})
	}
}
