package upload_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/upload"
)

// fakeS3 is an in-memory implementation of upload.API with S3's semantics for the calls the
// Uploader makes (conditional PUT and Complete, multipart uploads, user metadata), counters, and
// hooks to inject failures. It is safe for concurrent use.
type fakeS3 struct {
	mu       sync.Mutex
	objects  map[string]fakeObject
	uploads  map[string]*fakeUpload
	nextID   int
	calls    map[string]int
	inFlight int
	peak     int
	// discard keeps only sizes of parts (for memory measurements).
	discard bool
	// partDelay slows each UploadPart, to observe concurrency.
	partDelay time.Duration

	// Hooks, called without the lock; a non-nil error is returned instead of doing the call.
	onPart     func(num int64) error
	onComplete func(key string) error
	onAbort    func() error
	// partAfterAbort, when set, makes the first Abort leave the upload in place, as a part that
	// was still being stored when the abort came would bring it back (S3 documents that an abort
	// may have to be repeated).
	partAfterAbort bool
	// afterComplete, when set, replaces the answer of a Complete that succeeded.
	afterComplete func() error

	kpEnabled bool
	kpCRN     string
	// parts records the part sizes of each completed multipart upload, by key.
	parts map[string][]int64
}

type fakeObject struct {
	data []byte
	size int64
	meta map[string]*string
	sse  string
}

type fakeUpload struct {
	key   string
	meta  map[string]*string
	sse   string
	parts map[int64][]byte
	sizes map[int64]int64
}

func newFake() *fakeS3 {
	return &fakeS3{objects: map[string]fakeObject{}, uploads: map[string]*fakeUpload{}, calls: map[string]int{}, parts: map[string][]int64{}}
}

var _ upload.API = (*fakeS3)(nil)

func awsErr(status int, code string) error {
	return awserr.NewRequestFailure(awserr.New(code, code, nil), status, "req-1")
}

// headers applies request options to a blank request and returns its headers.
func headers(opts []request.Option) http.Header {
	r := &request.Request{HTTPRequest: &http.Request{Header: http.Header{}}}
	for _, o := range opts {
		o(r)
	}
	return r.HTTPRequest.Header
}

func (f *fakeS3) count(op string) {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
}

func (f *fakeS3) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeS3) PutObjectWithContext(ctx aws.Context, in *s3.PutObjectInput, opts ...request.Option) (*s3.PutObjectOutput, error) {
	f.count("put")
	if err := ctx.Err(); err != nil {
		return nil, awserr.New(request.CanceledErrorCode, "canceled", err)
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := aws.StringValue(in.Key)
	if _, exists := f.objects[key]; exists && headers(opts).Get("If-None-Match") == "*" {
		return nil, awsErr(412, "PreconditionFailed")
	}
	f.objects[key] = fakeObject{data: data, size: int64(len(data)), meta: in.Metadata, sse: aws.StringValue(in.ServerSideEncryption)}
	return &s3.PutObjectOutput{ETag: aws.String(etag(data))}, nil
}

func etag(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (f *fakeS3) CreateMultipartUploadWithContext(_ aws.Context, in *s3.CreateMultipartUploadInput, _ ...request.Option) (*s3.CreateMultipartUploadOutput, error) {
	f.count("create")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("upload-%d", f.nextID)
	f.uploads[id] = &fakeUpload{key: aws.StringValue(in.Key), meta: in.Metadata, sse: aws.StringValue(in.ServerSideEncryption),
		parts: map[int64][]byte{}, sizes: map[int64]int64{}}
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String(id)}, nil
}

func (f *fakeS3) UploadPartWithContext(ctx aws.Context, in *s3.UploadPartInput, _ ...request.Option) (*s3.UploadPartOutput, error) {
	f.count("part")
	f.mu.Lock()
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.onPart != nil {
		if err := f.onPart(aws.Int64Value(in.PartNumber)); err != nil {
			return nil, err
		}
	}
	select {
	case <-time.After(f.partDelay):
	case <-ctx.Done():
		return nil, awserr.New(request.CanceledErrorCode, "canceled", ctx.Err())
	}
	var data []byte
	var n int64
	var err error
	if f.discard {
		n, err = io.Copy(io.Discard, in.Body)
	} else {
		data, err = io.ReadAll(in.Body)
		n = int64(len(data))
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	up, ok := f.uploads[aws.StringValue(in.UploadId)]
	if !ok {
		return nil, awsErr(404, s3.ErrCodeNoSuchUpload)
	}
	up.parts[aws.Int64Value(in.PartNumber)] = data
	up.sizes[aws.Int64Value(in.PartNumber)] = n
	return &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf(`"part-%d"`, aws.Int64Value(in.PartNumber)))}, nil
}

func (f *fakeS3) CompleteMultipartUploadWithContext(_ aws.Context, in *s3.CompleteMultipartUploadInput, opts ...request.Option) (*s3.CompleteMultipartUploadOutput, error) {
	f.count("complete")
	key := aws.StringValue(in.Key)
	if f.onComplete != nil {
		if err := f.onComplete(key); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	up, ok := f.uploads[aws.StringValue(in.UploadId)]
	if !ok {
		f.mu.Unlock()
		return nil, awsErr(404, s3.ErrCodeNoSuchUpload)
	}
	if _, exists := f.objects[key]; exists && headers(opts).Get("If-None-Match") == "*" {
		f.mu.Unlock()
		return nil, awsErr(412, "PreconditionFailed")
	}
	nums := make([]int64, 0, len(in.MultipartUpload.Parts))
	for i, p := range in.MultipartUpload.Parts {
		n := aws.Int64Value(p.PartNumber)
		if _, ok := up.sizes[n]; !ok || (i > 0 && n <= nums[i-1]) {
			f.mu.Unlock()
			return nil, awsErr(400, "InvalidPart")
		}
		nums = append(nums, n)
	}
	var buf bytes.Buffer
	var size int64
	f.parts[key] = nil
	for _, n := range nums {
		buf.Write(up.parts[n])
		size += up.sizes[n]
		f.parts[key] = append(f.parts[key], up.sizes[n])
	}
	f.objects[key] = fakeObject{data: buf.Bytes(), size: size, meta: up.meta, sse: up.sse}
	delete(f.uploads, aws.StringValue(in.UploadId))
	f.mu.Unlock()
	if f.afterComplete != nil {
		if err := f.afterComplete(); err != nil {
			return nil, err
		}
	}
	return &s3.CompleteMultipartUploadOutput{ETag: aws.String(`"multi"`)}, nil
}

func (f *fakeS3) AbortMultipartUploadWithContext(ctx aws.Context, in *s3.AbortMultipartUploadInput, _ ...request.Option) (*s3.AbortMultipartUploadOutput, error) {
	f.count("abort")
	if err := ctx.Err(); err != nil {
		return nil, awserr.New(request.CanceledErrorCode, "canceled", err)
	}
	if f.onAbort != nil {
		if err := f.onAbort(); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.uploads[aws.StringValue(in.UploadId)]; !ok {
		return nil, awsErr(404, s3.ErrCodeNoSuchUpload)
	}
	if f.partAfterAbort {
		f.partAfterAbort = false
		return &s3.AbortMultipartUploadOutput{}, nil
	}
	delete(f.uploads, aws.StringValue(in.UploadId))
	return &s3.AbortMultipartUploadOutput{}, nil
}

func (f *fakeS3) ListPartsWithContext(ctx aws.Context, in *s3.ListPartsInput, _ ...request.Option) (*s3.ListPartsOutput, error) {
	f.count("list-parts")
	if err := ctx.Err(); err != nil {
		return nil, awserr.New(request.CanceledErrorCode, "canceled", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	up, ok := f.uploads[aws.StringValue(in.UploadId)]
	if !ok {
		return nil, awsErr(404, s3.ErrCodeNoSuchUpload)
	}
	out := &s3.ListPartsOutput{}
	for num, size := range up.sizes {
		out.Parts = append(out.Parts, &s3.Part{PartNumber: aws.Int64(num), Size: aws.Int64(size)})
	}
	return out, nil
}

func (f *fakeS3) HeadObjectWithContext(_ aws.Context, in *s3.HeadObjectInput, _ ...request.Option) (*s3.HeadObjectOutput, error) {
	f.count("head")
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[aws.StringValue(in.Key)]
	if !ok {
		return nil, awsErr(404, "NotFound")
	}
	// The SDK canonicalises metadata names from response headers.
	meta := map[string]*string{}
	for k, v := range o.meta {
		meta[http.CanonicalHeaderKey(k)] = v
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(o.size), Metadata: meta}, nil
}

func (f *fakeS3) GetObjectWithContext(_ aws.Context, in *s3.GetObjectInput, _ ...request.Option) (*s3.GetObjectOutput, error) {
	f.count("get")
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[aws.StringValue(in.Key)]
	if !ok {
		return nil, awsErr(404, s3.ErrCodeNoSuchKey)
	}
	return &s3.GetObjectOutput{ContentLength: aws.Int64(o.size), Body: io.NopCloser(bytes.NewReader(o.data))}, nil
}

func (f *fakeS3) HeadBucketWithContext(_ aws.Context, in *s3.HeadBucketInput, _ ...request.Option) (*s3.HeadBucketOutput, error) {
	f.count("head-bucket")
	out := &s3.HeadBucketOutput{}
	if f.kpEnabled {
		out.IBMSSEKPEnabled, out.IBMSSEKPCrkId = aws.Bool(true), aws.String(f.kpCRN)
	}
	return out, nil
}

// object returns a stored object's bytes.
func (f *fakeS3) object(key string) (fakeObject, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	return o, ok
}

// keys lists the stored keys and the pending multipart uploads.
func (f *fakeS3) state() (objects, pending []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.objects {
		objects = append(objects, k)
	}
	for id, u := range f.uploads {
		pending = append(pending, id+":"+u.key)
	}
	sort.Strings(objects)
	sort.Strings(pending)
	return objects, pending
}

// put stores an object directly.
func (f *fakeS3) put(key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = fakeObject{data: data, size: int64(len(data))}
}

func (f *fakeS3) partSizes(key string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[key]
}

// hookedFake adds hooks around PutObject.
type hookedFake struct {
	*fakeS3
	beforePut func(key string)
	afterPut  func() error
}

func (h *hookedFake) PutObjectWithContext(ctx aws.Context, in *s3.PutObjectInput, opts ...request.Option) (*s3.PutObjectOutput, error) {
	if h.beforePut != nil {
		h.beforePut(aws.StringValue(in.Key))
	}
	out, err := h.fakeS3.PutObjectWithContext(ctx, in, opts...)
	if err == nil && h.afterPut != nil {
		return nil, h.afterPut()
	}
	return out, err
}
