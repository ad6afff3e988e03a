package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// Limits and defaults of a multipart upload (S3's limits; IBM COS keeps the same).
const (
	DefaultPartSize    = 16 << 20
	MinPartSize        = 5 << 20
	MaxPartSize        = 5 << 30
	MaxParts           = 10000
	DefaultConcurrency = 4
	MaxConcurrency     = 16
	// DefaultAbortTimeout bounds the abort of a failed upload, which runs even when the
	// caller's context is done.
	DefaultAbortTimeout = 30 * time.Second
)

// metaToken is the user metadata (x-amz-meta-keyguard-upload) carrying a random token per
// Upload call, so that an upload can recognise its own object after an ambiguous failure (a
// retried CompleteMultipartUpload or PUT whose first attempt had succeeded).
const metaToken = "Keyguard-Upload"

// maxParts is MaxParts; tests lower it.
var maxParts int64 = MaxParts

// Errors of this package. Test with errors.Is.
var (
	// ErrExists: create-only upload, and the key holds different bytes.
	ErrExists = errors.New("a different object exists at the key")
	// ErrChecksum: the stored object's SHA-256 is not the expected one.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSize: the reader gave more or fewer bytes than the size announced.
	ErrSize = errors.New("size mismatch")
	// ErrTooLarge: the stream needs more than MaxParts parts of the part size.
	ErrTooLarge = errors.New("stream too large for a multipart upload")

	errPrecondition = errors.New("precondition failed")
	errNoSuchUpload = errors.New("no such multipart upload")
)

// API is the part of the ibm-cos-sdk-go S3 client an Uploader uses; *s3.S3 implements it.
// Request options carry extra headers (If-None-Match), which the client signs.
type API interface {
	PutObjectWithContext(aws.Context, *s3.PutObjectInput, ...request.Option) (*s3.PutObjectOutput, error)
	CreateMultipartUploadWithContext(aws.Context, *s3.CreateMultipartUploadInput, ...request.Option) (*s3.CreateMultipartUploadOutput, error)
	UploadPartWithContext(aws.Context, *s3.UploadPartInput, ...request.Option) (*s3.UploadPartOutput, error)
	CompleteMultipartUploadWithContext(aws.Context, *s3.CompleteMultipartUploadInput, ...request.Option) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUploadWithContext(aws.Context, *s3.AbortMultipartUploadInput, ...request.Option) (*s3.AbortMultipartUploadOutput, error)
	ListPartsWithContext(aws.Context, *s3.ListPartsInput, ...request.Option) (*s3.ListPartsOutput, error)
	HeadObjectWithContext(aws.Context, *s3.HeadObjectInput, ...request.Option) (*s3.HeadObjectOutput, error)
	GetObjectWithContext(aws.Context, *s3.GetObjectInput, ...request.Option) (*s3.GetObjectOutput, error)
	HeadBucketWithContext(aws.Context, *s3.HeadBucketInput, ...request.Option) (*s3.HeadBucketOutput, error)
}

var _ API = (*s3.S3)(nil)

// Options tune an Uploader. The zero value is the defaults.
type Options struct {
	// PartSize is the size of each part but the last: DefaultPartSize when 0, at least
	// MinPartSize, at most MaxPartSize. When the size of a stream is known and would need more
	// than MaxParts parts, a larger part size is used for it.
	PartSize int64
	// Concurrency is how many parts are sent at once: DefaultConcurrency when 0, at most
	// MaxConcurrency. Upload of a stream holds about (Concurrency+1) x PartSize bytes of
	// buffers; UploadFile reads the parts from the file in place.
	Concurrency int
	// ServerSideEncryption, when set, is sent as x-amz-server-side-encryption ("AES256"). Leave
	// it empty for a bucket protected by Key Protect (the bucket's root key applies).
	ServerSideEncryption string
	// Overwrite lets an upload replace an existing object. By default uploads are create-only.
	Overwrite bool
	// AbortTimeout bounds aborting a failed multipart upload: DefaultAbortTimeout when 0.
	AbortTimeout time.Duration
	// Logger receives a debug line per finished upload and the progress lines; slog.Default()
	// when nil.
	Logger *slog.Logger
	// ProgressEvery is how often an Upload or Download that is still running logs its progress
	// at INFO (bytes, total, rate, ETA): DefaultProgressEvery when 0, never when negative.
	ProgressEvery time.Duration
	// Clock times the progress lines: the wall clock when nil.
	Clock clock.Clock
}

func (o Options) withDefaults() (Options, error) {
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.AbortTimeout == 0 {
		o.AbortTimeout = DefaultAbortTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	switch {
	case o.PartSize < MinPartSize || o.PartSize > MaxPartSize:
		return o, fmt.Errorf("upload options: part size %d is outside [%d, %d]", o.PartSize, MinPartSize, MaxPartSize)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return o, fmt.Errorf("upload options: concurrency %d is outside [1, %d]", o.Concurrency, MaxConcurrency)
	case o.ServerSideEncryption != "" && o.ServerSideEncryption != s3.ServerSideEncryptionAes256:
		return o, fmt.Errorf("upload options: server-side encryption %q: only %q is supported per object (Key Protect is a bucket setting)",
			o.ServerSideEncryption, s3.ServerSideEncryptionAes256)
	case o.AbortTimeout < 0:
		return o, fmt.Errorf("upload options: negative abort timeout")
	}
	return o, nil
}

// Object is a stored file: its key relative to the Uploader's prefix, size in bytes, and
// SHA-256 (lowercase hex). It converts to catalog.Object.
type Object struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Uploader moves objects of one bucket, under a key prefix, to and from streams. It is safe for
// concurrent use; each call has its own buffers.
type Uploader struct {
	api    API
	bucket string
	prefix string
	opt    Options
}

// New returns an Uploader over bucket through api (typically objstore.NewCOSClient's client),
// with every key stored under prefix ("keyguard" stores "keyguard/images/..."; the same prefix
// as the objstore.COS of the catalog, so that catalog keys and image keys agree).
func New(api API, bucket, prefix string, opt Options) (*Uploader, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if api == nil || bucket == "" {
		return nil, errors.New("upload: a client and a bucket are required")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Uploader{api: api, bucket: bucket, prefix: prefix, opt: opt}, nil
}

func (u *Uploader) full(key string) (string, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return "", err
	}
	full := u.prefix + key
	return full, objstore.ValidateKey(full)
}

// Upload streams r to key and returns its size and SHA-256. size is the number of bytes r will
// give, or -1 when unknown; a known size that r does not match is ErrSize (nothing is stored).
// A stream that fits in one part is one PUT; a longer one is a multipart upload of
// Options.Concurrency parts at a time, aborted on any error (read error, part failure,
// cancellation). Create-only unless Options.Overwrite: an existing object with the same bytes
// is success (idempotent; deciding it costs reading r and the stored object once), with other
// bytes ErrExists. r is read once, sequentially, and never
// closed. Safe for concurrent use with other keys; two concurrent create-only uploads of one
// key: at most one stores its bytes, the other returns success only if its bytes are equal.
func (u *Uploader) Upload(ctx context.Context, key string, r io.Reader, size int64) (Object, error) {
	full, err := u.full(key)
	if err != nil {
		return Object{}, fmt.Errorf("upload: %w", err)
	}
	if size < -1 {
		return Object{}, fmt.Errorf("upload %s: negative size %d", key, size)
	}
	partSize, err := u.partSizeFor(size)
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	prog, stop := u.track("upload", key, size)
	defer stop()
	src := newSource(io.TeeReader(r, prog), size)
	if !u.opt.Overwrite {
		head, err := u.head(ctx, full)
		switch {
		case err == nil:
			return u.existing(ctx, key, full, src, aws.Int64Value(head.ContentLength))
		case !errors.Is(err, objstore.ErrNotFound):
			return Object{}, fmt.Errorf("upload %s: %w", key, err)
		}
	}
	start := time.Now()
	up := &upload{u: u, key: key, full: full, src: src, partSize: partSize, token: newToken()}
	obj, parts, err := up.run(ctx)
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	d := time.Since(start)
	u.opt.Logger.Debug("upload finished", "key", full, "bytes", obj.Size, "parts", parts,
		"seconds", d.Seconds(), "mb_per_s", float64(obj.Size)/1e6/max(d.Seconds(), 1e-9))
	return obj, nil
}

// partSizeFor is the part size for a stream of size bytes (-1: unknown): Options.PartSize, or
// the least whole number of MiB that keeps a known size within MaxParts parts.
func (u *Uploader) partSizeFor(size int64) (int64, error) {
	partSize := u.opt.PartSize
	if size > partSize*maxParts {
		const mib = 1 << 20
		partSize = ((size+maxParts-1)/maxParts + mib - 1) / mib * mib
		if partSize > MaxPartSize {
			return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
		}
	}
	return partSize, nil
}

// existing handles a create-only upload to a key that exists: read the whole stream for its
// checksum, and succeed only if the stored object has the same bytes.
func (u *Uploader) existing(ctx context.Context, key, full string, src *source, storedSize int64) (Object, error) {
	if _, err := io.CopyBuffer(io.Discard, src, make([]byte, 1<<20)); err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	if err := src.done(); err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	obj := src.object(key)
	if storedSize != obj.Size {
		return Object{}, fmt.Errorf("upload %s: %w (%d bytes stored, %d given)", key, ErrExists, storedSize, obj.Size)
	}
	if _, err := u.Verify(ctx, key, obj.SHA256); err != nil {
		if errors.Is(err, ErrChecksum) {
			return Object{}, fmt.Errorf("upload %s: %w (same size, other bytes)", key, ErrExists)
		}
		return Object{}, fmt.Errorf("upload %s: exists; checking it: %w", key, err)
	}
	return obj, nil
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// source reads the stream, counting and hashing what it gives, and holds it to a known size.
type source struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
}

func newSource(r io.Reader, size int64) *source {
	s := &source{h: sha256.New(), size: size}
	if size >= 0 {
		r = io.LimitReader(r, size+1) // one byte more reveals a stream longer than announced
	}
	s.r = io.TeeReader(r, s.h)
	return s
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read source: %w", err)
	}
	return n, err
}

// fill reads into buf until it is full or the stream ends (eof).
func (s *source) fill(buf []byte) (n int, eof bool, err error) {
	n, err = io.ReadFull(s, buf)
	switch {
	case err == nil:
		return n, false, s.tooLong()
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, true, s.done()
	}
	return n, false, err
}

func (s *source) tooLong() error {
	if s.size >= 0 && s.n > s.size {
		return fmt.Errorf("%w: the stream is longer than %d bytes", ErrSize, s.size)
	}
	return nil
}

// done checks the count at the end of the stream.
func (s *source) done() error {
	if s.size >= 0 && s.n != s.size {
		if s.n > s.size {
			return s.tooLong()
		}
		return fmt.Errorf("%w: the stream ended after %d of %d bytes", ErrSize, s.n, s.size)
	}
	return nil
}

func (s *source) object(key string) Object {
	return Object{Key: key, Size: s.n, SHA256: hex.EncodeToString(s.h.Sum(nil))}
}

// upload is one Upload call.
type upload struct {
	u        *Uploader
	key      string
	full     string
	src      *source
	partSize int64
	token    string
}

// pool hands out at most max part buffers, allocated on first use.
type pool struct {
	free      chan []byte
	allocated int
	size      int64
}

func newPool(max int, size int64) *pool { return &pool{free: make(chan []byte, max), size: size} }

// get returns a buffer, waiting for one to come back when max are out; nil when ctx is done.
// Only the reading goroutine calls get.
func (p *pool) get(ctx context.Context) []byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.allocated < cap(p.free) {
		p.allocated++
		return make([]byte, p.size)
	}
	select {
	case b := <-p.free:
		return b
	case <-ctx.Done():
		return nil
	}
}

func (p *pool) put(b []byte) { p.free <- b[:cap(b)] }

type part struct {
	num  int64
	data []byte
}

// run performs the upload and returns the object and the number of parts (0 for one PUT).
func (up *upload) run(ctx context.Context) (Object, int, error) {
	conc := up.u.opt.Concurrency
	bufs := newPool(conc+1, up.partSize)
	var first []byte
	if size := up.src.size; size >= 0 && size < up.partSize {
		first = make([]byte, size+1) // a small file needs no part buffer; +1 sees a longer stream
	} else {
		first = bufs.get(ctx)
	}
	n1, eof, err := up.src.fill(first)
	if err != nil {
		return Object{}, 0, err
	}
	if eof {
		obj, err := up.put(ctx, first[:n1])
		return obj, 0, err
	}
	second := bufs.get(ctx)
	n2, eof, err := up.src.fill(second)
	if err != nil {
		return Object{}, 0, err
	}
	if n2 == 0 && eof {
		obj, err := up.put(ctx, first[:n1])
		return obj, 0, err
	}

	id, err := up.create(ctx)
	if err != nil {
		return Object{}, 0, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan part)
	var (
		mu        sync.Mutex
		completed []*s3.CompletedPart
		wg        sync.WaitGroup
	)
	for range conc {
		wg.Go(func() {
			for p := range work {
				etag, err := up.part(ctx, id, p)
				bufs.put(p.data)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				completed = append(completed, &s3.CompletedPart{ETag: aws.String(etag), PartNumber: aws.Int64(p.num)})
				mu.Unlock()
			}
		})
	}
	send := func(p part) bool {
		select {
		case work <- p:
			return true
		case <-ctx.Done():
			bufs.put(p.data)
			return false
		}
	}
	num := int64(2)
	ok := send(part{1, first[:n1]}) && send(part{2, second[:n2]})
	for ok && !eof {
		buf := bufs.get(ctx)
		if buf == nil {
			break
		}
		var n int
		n, eof, err = up.src.fill(buf)
		if err != nil {
			bufs.put(buf)
			cancel(err)
			break
		}
		if n == 0 {
			bufs.put(buf)
			break
		}
		if num++; num > maxParts {
			bufs.put(buf)
			cancel(fmt.Errorf("%w: more than %d parts of %d bytes; give the size, or a larger part size", ErrTooLarge, maxParts, up.partSize))
			break
		}
		ok = send(part{num, buf[:n]})
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return Object{}, 0, errors.Join(err, up.abort(ctx, id))
	}
	obj := up.src.object(up.key)
	slices.SortFunc(completed, func(a, b *s3.CompletedPart) int {
		return int(aws.Int64Value(a.PartNumber) - aws.Int64Value(b.PartNumber))
	})
	if err := up.complete(ctx, id, completed, obj); err != nil {
		return Object{}, 0, err
	}
	return obj, len(completed), nil
}

func (up *upload) createOnly() []request.Option {
	if up.u.opt.Overwrite {
		return nil
	}
	return []request.Option{request.WithSetRequestHeaders(map[string]string{"If-None-Match": "*"})}
}

func (up *upload) sse() *string {
	if up.u.opt.ServerSideEncryption == "" {
		return nil
	}
	return aws.String(up.u.opt.ServerSideEncryption)
}

// put stores a stream that fits in one part with one PUT.
func (up *upload) put(ctx context.Context, data []byte) (Object, error) {
	return up.putBody(ctx, bytes.NewReader(data), int64(len(data)), up.src.object(up.key))
}

// putBody stores the n bytes of body, whose size and checksum obj gives, with one PUT.
func (up *upload) putBody(ctx context.Context, body io.ReadSeeker, n int64, obj Object) (Object, error) {
	_, err := up.u.api.PutObjectWithContext(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(up.u.bucket),
		Key:                  aws.String(up.full),
		Body:                 body,
		ContentLength:        aws.Int64(n),
		Metadata:             map[string]*string{metaToken: aws.String(up.token)},
		ServerSideEncryption: up.sse(),
	}, up.createOnly()...)
	if err == nil {
		return obj, nil
	}
	err = classify(ctx, "put", up.full, err)
	if errors.Is(err, errPrecondition) {
		return obj, up.lost(ctx, obj, err)
	}
	return Object{}, err
}

// lost decides after a create-only write answered 412: success if the object is the one this
// upload wrote (an SDK retry of a write that had succeeded) or holds the same bytes, else
// ErrExists.
func (up *upload) lost(ctx context.Context, obj Object, cause error) error {
	if up.ours(ctx, obj.Size) {
		return nil
	}
	head, err := up.u.head(ctx, up.full)
	if err != nil {
		return errors.Join(cause, err)
	}
	if aws.Int64Value(head.ContentLength) != obj.Size {
		return fmt.Errorf("%w (written concurrently, %d bytes)", ErrExists, aws.Int64Value(head.ContentLength))
	}
	if _, err := up.u.Verify(ctx, up.key, obj.SHA256); err != nil {
		if errors.Is(err, ErrChecksum) {
			return fmt.Errorf("%w (written concurrently, other bytes)", ErrExists)
		}
		return errors.Join(cause, err)
	}
	return nil
}

// ours reports whether the stored object carries this upload's token and size.
func (up *upload) ours(ctx context.Context, size int64) bool {
	head, err := up.u.head(ctx, up.full)
	if err != nil || aws.Int64Value(head.ContentLength) != size {
		return false
	}
	for k, v := range head.Metadata {
		if strings.EqualFold(k, metaToken) && aws.StringValue(v) == up.token {
			return true
		}
	}
	return false
}

func (up *upload) create(ctx context.Context) (string, error) {
	out, err := up.u.api.CreateMultipartUploadWithContext(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(up.u.bucket),
		Key:                  aws.String(up.full),
		Metadata:             map[string]*string{metaToken: aws.String(up.token)},
		ServerSideEncryption: up.sse(),
	})
	if err != nil {
		return "", classify(ctx, "create multipart upload", up.full, err)
	}
	if aws.StringValue(out.UploadId) == "" {
		return "", fmt.Errorf("create multipart upload %s: no upload id in the answer", up.full)
	}
	return aws.StringValue(out.UploadId), nil
}

func (up *upload) part(ctx context.Context, id string, p part) (string, error) {
	return up.partBody(ctx, id, p.num, bytes.NewReader(p.data), int64(len(p.data)))
}

// partBody sends the n bytes of body as part num. The SDK reads body twice (to sign it, then to
// send it) and seeks back to retry, so body can be a section of a file read in place.
func (up *upload) partBody(ctx context.Context, id string, num int64, body io.ReadSeeker, n int64) (string, error) {
	out, err := up.u.api.UploadPartWithContext(ctx, &s3.UploadPartInput{
		Bucket:        aws.String(up.u.bucket),
		Key:           aws.String(up.full),
		UploadId:      aws.String(id),
		PartNumber:    aws.Int64(num),
		Body:          body,
		ContentLength: aws.Int64(n),
	})
	if err != nil {
		return "", classify(ctx, fmt.Sprintf("upload part %d", num), up.full, err)
	}
	return aws.StringValue(out.ETag), nil
}

func (up *upload) complete(ctx context.Context, id string, parts []*s3.CompletedPart, obj Object) error {
	_, err := up.u.api.CompleteMultipartUploadWithContext(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(up.u.bucket),
		Key:             aws.String(up.full),
		UploadId:        aws.String(id),
		MultipartUpload: &s3.CompletedMultipartUpload{Parts: parts},
	}, up.createOnly()...)
	if err == nil {
		return nil
	}
	err = classify(ctx, "complete multipart upload", up.full, err)
	if (errors.Is(err, errNoSuchUpload) || errors.Is(err, errPrecondition)) && up.ours(ctx, obj.Size) {
		return nil // a retry of a Complete that had succeeded
	}
	if abortErr := up.abort(ctx, id); abortErr != nil {
		return errors.Join(err, abortErr)
	}
	if errors.Is(err, errPrecondition) {
		return up.lost(ctx, obj, err)
	}
	return err
}

// abortAttempts bounds the aborts of one upload: a part still being stored when an abort comes
// may bring the upload back, so abort checks with ListParts and aborts again (S3 documents that
// an abort may have to be repeated).
const abortAttempts = 4

// abort cancels the multipart upload id, even when ctx is done, within AbortTimeout, and makes
// sure it is gone. An upload already gone is not an error.
func (up *upload) abort(ctx context.Context, id string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), up.u.opt.AbortTimeout)
	defer cancel()
	what := "abort multipart upload " + id
	for attempt := 1; ; attempt++ {
		_, err := up.u.api.AbortMultipartUploadWithContext(actx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(up.u.bucket),
			Key:      aws.String(up.full),
			UploadId: aws.String(id),
		})
		if err = classify(actx, what, up.full, err); err != nil {
			if errors.Is(err, errNoSuchUpload) {
				return nil
			}
			return err
		}
		_, err = up.u.api.ListPartsWithContext(actx, &s3.ListPartsInput{
			Bucket:   aws.String(up.u.bucket),
			Key:      aws.String(up.full),
			UploadId: aws.String(id),
			MaxParts: aws.Int64(1),
		})
		switch err = classify(actx, what+": list its parts", up.full, err); {
		case errors.Is(err, errNoSuchUpload):
			return nil
		case err != nil:
			return err
		case attempt == abortAttempts:
			return fmt.Errorf("%s: still there after %d aborts", what, attempt)
		}
		if err := clock.Sleep(actx, nil, time.Duration(attempt)*100*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

func (u *Uploader) head(ctx context.Context, full string) (*s3.HeadObjectOutput, error) {
	out, err := u.api.HeadObjectWithContext(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(full)})
	if err != nil {
		return nil, classify(ctx, "head", full, err)
	}
	return out, nil
}

// Download streams the object at key to w and returns its size and SHA-256, computed from the
// bytes read. A missing key wraps objstore.ErrNotFound; a body shorter than announced is a
// transient error. Memory use is constant. Read-only; safe concurrently.
func (u *Uploader) Download(ctx context.Context, key string, w io.Writer) (Object, error) {
	full, err := u.full(key)
	if err != nil {
		return Object{}, fmt.Errorf("download: %w", err)
	}
	out, err := u.api.GetObjectWithContext(ctx, &s3.GetObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(full)})
	if err != nil {
		return Object{}, fmt.Errorf("download %s: %w", key, classify(ctx, "get", full, err))
	}
	defer out.Body.Close()
	total := int64(-1)
	if out.ContentLength != nil {
		total = *out.ContentLength
	}
	prog, stop := u.track("download", key, total)
	defer stop()
	h := sha256.New()
	// struct{ io.Reader } hides a body's WriteTo, so that the copy goes in steps of the buffer
	// and the progress moves as the bytes arrive.
	n, err := io.CopyBuffer(io.MultiWriter(prog, h, w), struct{ io.Reader }{out.Body}, make([]byte, 1<<20))
	if err != nil {
		return Object{}, fmt.Errorf("download %s: %w", key, classify(ctx, "read", full, err))
	}
	if want := out.ContentLength; want != nil && *want != n {
		return Object{}, fmt.Errorf("download %s: %w", key, objstore.MarkTransient(fmt.Errorf("body ended after %d of %d bytes", n, *want)))
	}
	return Object{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Verify re-reads the object at key as a stream and checks that its SHA-256 is sum (lowercase
// hex). It returns what it read; a different checksum is ErrChecksum, a missing key wraps
// objstore.ErrNotFound. Read-only; safe concurrently.
func (u *Uploader) Verify(ctx context.Context, key, sum string) (Object, error) {
	if len(sum) != sha256.Size*2 || strings.ToLower(sum) != sum {
		return Object{}, fmt.Errorf("verify %s: %q is not a lowercase hex SHA-256", key, sum)
	}
	obj, err := u.Download(ctx, key, io.Discard)
	if err != nil {
		return Object{}, fmt.Errorf("verify: %w", err)
	}
	if obj.SHA256 != sum {
		return obj, fmt.Errorf("verify %s: %w: stored %s, expected %s", key, ErrChecksum, obj.SHA256, sum)
	}
	return obj, nil
}

// Encryption is a bucket's IBM Key Protect / HPCS encryption, as COS reports it.
type Encryption struct {
	// KeyProtect is true when the bucket encrypts every object with a customer root key.
	KeyProtect bool
	// RootKeyCRN is that root key, when COS names it.
	RootKeyCRN string
}

// BucketEncryption reports the bucket's Key Protect encryption (HEAD bucket, headers
// ibm-sse-kp-enabled and ibm-sse-kp-customer-root-key-crn). A server that does not send them
// (versitygw, AWS) reports none. Read-only; safe concurrently.
func (u *Uploader) BucketEncryption(ctx context.Context) (Encryption, error) {
	out, err := u.api.HeadBucketWithContext(ctx, &s3.HeadBucketInput{Bucket: aws.String(u.bucket)})
	if err != nil {
		return Encryption{}, fmt.Errorf("bucket encryption: %w", classify(ctx, "head bucket", u.bucket, err))
	}
	return Encryption{KeyProtect: aws.BoolValue(out.IBMSSEKPEnabled), RootKeyCRN: aws.StringValue(out.IBMSSEKPCrkId)}, nil
}
