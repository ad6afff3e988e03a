package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// hashBuffer is the buffer of the pass that computes a file's SHA-256.
const hashBuffer = 256 << 10

// hashFirst makes UploadFile compute the file's SHA-256 before it sends any part instead of
// while it sends them (tests and benchmarks compare the two).
var hashFirst = false

// UploadFile uploads the file at path to key (see Upload) without copying it into buffers: each
// part is a section of the file that the SDK reads in place (once to sign the part, once to
// send it), Options.Concurrency parts at a time, while one sequential pass over the file
// computes its SHA-256. Memory stays the same whatever the file's size (a few buffers of a
// few hundred KiB). The file must not change meanwhile: one that turns out longer or shorter
// than it was when opened is ErrSize, and the upload is aborted. Create-only as Upload.
func (u *Uploader) UploadFile(ctx context.Context, key, path string) (Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("upload %s: %s is not a regular file", key, path)
	}
	size := fi.Size()
	full, err := u.full(key)
	if err != nil {
		return Object{}, fmt.Errorf("upload: %w", err)
	}
	partSize, err := u.partSizeFor(size)
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	if !u.opt.Overwrite {
		head, err := u.head(ctx, full)
		switch {
		case err == nil:
			return u.existing(ctx, key, full, newSource(fileFrom(ctx, f, 0), size), aws.Int64Value(head.ContentLength))
		case !errors.Is(err, objstore.ErrNotFound):
			return Object{}, fmt.Errorf("upload %s: %w", key, err)
		}
	}
	start := time.Now()
	up := &upload{u: u, key: key, full: full, partSize: partSize, token: newToken()}
	// The file is read several times (its checksum, then each part twice): it must be the same
	// file each time.
	unchanged := func() error {
		now, err := f.Stat()
		switch {
		case err != nil:
			return err
		case now.Size() != size || !now.ModTime().Equal(fi.ModTime()):
			return fmt.Errorf("%w: %s changed during the upload (%d bytes, then %d)", ErrSize, path, size, now.Size())
		}
		return nil
	}
	obj, parts, err := up.runFile(ctx, f, size, unchanged)
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", key, err)
	}
	d := time.Since(start)
	u.opt.Logger.Debug("upload finished", "key", full, "bytes", obj.Size, "parts", parts, "from", "file",
		"seconds", d.Seconds(), "mb_per_s", float64(obj.Size)/1e6/max(d.Seconds(), 1e-9))
	return obj, nil
}

// fileFrom reads f from off to its end (whatever its size by then), stopping when ctx is done.
func fileFrom(ctx context.Context, f *os.File, off int64) io.Reader {
	return ctxReader{ctx, io.NewSectionReader(f, off, math.MaxInt64-off)}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// hashFile reads f once, in order, and returns its size and SHA-256 as the Object of key: ErrSize
// when f does not hold exactly size bytes.
func hashFile(ctx context.Context, f *os.File, size int64, key string) (Object, error) {
	return hashReader(fileFrom(ctx, f, 0), size, key)
}

// hashReader is hashFile over the reader of a file.
func hashReader(r io.Reader, size int64, key string) (Object, error) {
	src := newSource(r, size)
	buf := make([]byte, hashBuffer)
	for {
		_, eof, err := src.fill(buf)
		if err != nil {
			return Object{}, err
		}
		if eof {
			return src.object(key), nil
		}
	}
}

// runFile uploads size bytes of f: one PUT when they fit in one part, else a multipart upload
// of sections of f, with the file's SHA-256 computed alongside, checking that the file is
// unchanged before the final write. It returns the object and the number of parts (0 for one
// PUT).
func (up *upload) runFile(ctx context.Context, f *os.File, size int64, unchanged func() error) (Object, int, error) {
	if size <= up.partSize {
		obj, err := hashFile(ctx, f, size, up.key)
		if err == nil {
			err = unchanged()
		}
		if err != nil {
			return Object{}, 0, err
		}
		obj, err = up.putBody(ctx, io.NewSectionReader(f, 0, size), size, obj)
		return obj, 0, err
	}
	n := (size + up.partSize - 1) / up.partSize
	if n > maxParts {
		return Object{}, 0, fmt.Errorf("%w: %d parts of %d bytes", ErrTooLarge, n, up.partSize)
	}
	var first Object
	if hashFirst {
		var err error
		if first, err = hashFile(ctx, f, size, up.key); err != nil {
			return Object{}, 0, err
		}
	}
	id, err := up.create(ctx)
	if err != nil {
		return Object{}, 0, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu        sync.Mutex
		completed []*s3.CompletedPart
		wg        sync.WaitGroup
		hashed    = make(chan Object, 1)
	)
	// The checksum pass reads each part once it is handed to an uploader: in step with the
	// parts (whose bytes the SDK is reading too), never racing ahead for the CPU they need.
	dispatched := make(chan struct{}, n)
	if hashFirst {
		hashed <- first
	} else {
		wg.Go(func() {
			r := &pacedReader{ctx: ctx, r: fileFrom(ctx, f, 0), partSize: up.partSize, parts: dispatched}
			obj, err := hashReader(r, size, up.key)
			if err != nil {
				cancel(err)
			}
			hashed <- obj
		})
	}
	work := make(chan int64)
	for range up.u.opt.Concurrency {
		wg.Go(func() {
			for num := range work {
				off := (num - 1) * up.partSize
				length := min(up.partSize, size-off)
				etag, err := up.partBody(ctx, id, num, io.NewSectionReader(f, off, length), length)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				completed = append(completed, &s3.CompletedPart{ETag: aws.String(etag), PartNumber: aws.Int64(num)})
				mu.Unlock()
			}
		})
	}
feed:
	for num := int64(1); num <= n; num++ {
		select {
		case work <- num:
			dispatched <- struct{}{}
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	close(dispatched)
	wg.Wait()
	obj := <-hashed
	if context.Cause(ctx) == nil {
		if err := unchanged(); err != nil {
			cancel(err)
		}
	}
	if err := context.Cause(ctx); err != nil {
		return Object{}, 0, errors.Join(err, up.abort(ctx, id))
	}
	slices.SortFunc(completed, func(a, b *s3.CompletedPart) int {
		return int(aws.Int64Value(a.PartNumber) - aws.Int64Value(b.PartNumber))
	})
	if err := up.complete(ctx, id, completed, obj); err != nil {
		return Object{}, 0, err
	}
	return obj, len(completed), nil
}

// pacedReader reads r part by part, each part once a token for it has come from parts; once
// parts is closed, to the end.
type pacedReader struct {
	ctx      context.Context
	r        io.Reader
	partSize int64
	read     int64 // bytes read
	allowed  int64 // bytes that may be read before the next token
	parts    <-chan struct{}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.read == p.allowed {
		select {
		case _, ok := <-p.parts:
			if ok {
				p.allowed += p.partSize
			} else {
				p.allowed = math.MaxInt64
			}
		case <-p.ctx.Done():
			return 0, p.ctx.Err()
		}
	}
	if rest := p.allowed - p.read; int64(len(b)) > rest {
		b = b[:rest]
	}
	n, err := p.r.Read(b)
	p.read += int64(n)
	return n, err
}
