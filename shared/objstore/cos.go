package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
)

// COS is a Store over one bucket and key prefix of IBM Cloud Object Storage (or any S3-compatible
// server), through ibm-cos-sdk-go. Conditional puts send If-Match / If-None-Match headers, which
// the SDK signs. It is safe for concurrent use.
type COS struct {
	client *s3.S3
	bucket string
	prefix string
}

var (
	_ Store        = (*COS)(nil)
	_ BatchDeleter = (*COS)(nil)
)

// NewCOS returns a Store over bucket, with every key stored under prefix. A non-empty prefix
// without a trailing "/" gets one ("keyguard" stores "keyguard/state/db1.json"). The client is
// typically built by NewCOSClient.
func NewCOS(client *s3.S3, bucket, prefix string) *COS {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &COS{client: client, bucket: bucket, prefix: prefix}
}

// Get returns the body and ETag of key, or ErrNotFound.
func (c *COS) Get(ctx context.Context, key string) ([]byte, string, error) {
	full, err := c.full(key)
	if err != nil {
		return nil, "", fmt.Errorf("objstore: get %s: %w", key, err)
	}
	out, err := c.client.GetObjectWithContext(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(full)})
	if err != nil {
		return nil, "", classify(ctx, "get", full, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, MaxGetSize+1))
	if err != nil {
		return nil, "", classify(ctx, "get", full, fmt.Errorf("read body: %w", err))
	}
	if len(body) > MaxGetSize {
		return nil, "", fmt.Errorf("objstore: get %s: object larger than %d bytes", full, MaxGetSize)
	}
	return body, aws.StringValue(out.ETag), nil
}

// Put stores body at key if cond holds and returns the new ETag. See Store.Put.
func (c *COS) Put(ctx context.Context, key string, body []byte, cond Cond) (string, error) {
	full, err := c.full(key)
	if err != nil {
		return "", fmt.Errorf("objstore: put %s: %w", key, err)
	}
	if err := cond.validate(); err != nil {
		return "", err
	}
	// PutObjectInput has no If-Match / If-None-Match fields in ibm-cos-sdk-go v1.14.1: set the
	// headers on the request; they are set before signing, so they are signed too.
	var opts []request.Option
	switch {
	case cond.IfMatch != "":
		opts = append(opts, request.WithSetRequestHeaders(map[string]string{"If-Match": cond.IfMatch}))
	case cond.IfNoneMatch:
		opts = append(opts, request.WithSetRequestHeaders(map[string]string{"If-None-Match": "*"}))
	}
	out, err := c.client.PutObjectWithContext(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(c.bucket),
		Key:           aws.String(full),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}, opts...)
	if err != nil {
		return "", classify(ctx, "put", full, err)
	}
	return aws.StringValue(out.ETag), nil
}

// Delete removes key; a missing key is not an error.
func (c *COS) Delete(ctx context.Context, key string) error {
	full, err := c.full(key)
	if err != nil {
		return fmt.Errorf("objstore: delete %s: %w", key, err)
	}
	_, err = c.client.DeleteObjectWithContext(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(full)})
	if err = classify(ctx, "delete", full, err); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// DeleteMany removes keys with S3 DeleteObjects (quiet mode), MaxBatchDelete keys a request;
// missing keys are not errors. A key the server refuses fails the call, named with its S3 error
// code; the other keys of its request are deleted.
func (c *COS) DeleteMany(ctx context.Context, keys []string) error {
	full := make([]*s3.ObjectIdentifier, 0, len(keys))
	for _, k := range keys {
		f, err := c.full(k)
		if err != nil {
			return fmt.Errorf("objstore: delete %s: %w", k, err)
		}
		full = append(full, &s3.ObjectIdentifier{Key: aws.String(f)})
	}
	var failed []error
	for len(full) > 0 {
		batch := full[:min(MaxBatchDelete, len(full))]
		full = full[len(batch):]
		out, err := c.client.DeleteObjectsWithContext(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.bucket),
			Delete: &s3.Delete{Objects: batch, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return classify(ctx, fmt.Sprintf("delete %d keys from", len(batch)), aws.StringValue(batch[0].Key), err)
		}
		for _, e := range out.Errors {
			code := aws.StringValue(e.Code)
			if code == s3.ErrCodeNoSuchKey {
				continue
			}
			err := fmt.Errorf("objstore: delete %s: %s: %s", aws.StringValue(e.Key), code, aws.StringValue(e.Message))
			if TransientS3(0, code, nil) {
				err = transientError{err}
			}
			failed = append(failed, err)
		}
	}
	return joinFailures(fmt.Sprintf("objstore: delete %d keys", len(keys)), failed)
}

// List returns the objects under prefix (relative to the store's prefix), sorted by key, reading
// every page.
func (c *COS) List(ctx context.Context, prefix string) ([]Info, error) {
	out := []Info{}
	err := c.client.ListObjectsV2PagesWithContext(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(c.bucket),
		Prefix: aws.String(c.prefix + prefix),
	}, func(page *s3.ListObjectsV2Output, _ bool) bool {
		for _, o := range page.Contents {
			out = append(out, Info{
				Key:          strings.TrimPrefix(aws.StringValue(o.Key), c.prefix),
				Size:         aws.Int64Value(o.Size),
				ETag:         aws.StringValue(o.ETag),
				LastModified: aws.TimeValue(o.LastModified).UTC(),
			})
		}
		return true
	})
	if err != nil {
		return nil, classify(ctx, "list", c.prefix+prefix, err)
	}
	return out, nil
}

func (c *COS) full(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	full := c.prefix + key
	if err := ValidateKey(full); err != nil {
		return "", err
	}
	return full, nil
}

// classify wraps an SDK error with the operation and key, as ErrNotFound, ErrPrecondition or a
// transient error where it is one of those. nil stays nil. An error after ctx is done is the
// caller's cancellation or deadline, never transient.
func classify(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("objstore: %s %s", op, key)
	status, code := S3Error(err)
	switch {
	case status == 412 || code == "PreconditionFailed":
		return fmt.Errorf("%s: %w: %w", where, ErrPrecondition, err)
	case code == s3.ErrCodeNoSuchKey || (status == 404 && (code == "NotFound" || code == "")):
		return fmt.Errorf("%s: %w: %w", where, ErrNotFound, err)
	case ctx.Err() == nil && TransientS3(status, code, err):
		return transientError{fmt.Errorf("%s: %w", where, err)}
	}
	return fmt.Errorf("%s: %w", where, err)
}

// S3Error returns the HTTP status and the S3 error code of an ibm-cos-sdk-go error (0 and "" for
// what it does not say).
func S3Error(err error) (status int, code string) {
	var rf awserr.RequestFailure
	var ae awserr.Error
	switch {
	case errors.As(err, &rf):
		return rf.StatusCode(), rf.Code()
	case errors.As(err, &ae):
		return 0, ae.Code()
	}
	return 0, ""
}

// transientCodes are the S3 / COS error codes that mean "try again later".
var transientCodes = map[string]bool{
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequests": true, "TooManyRequestsException": true, "ServiceUnavailable": true,
	"InternalError": true, "RequestTimeout": true, request.ErrCodeResponseTimeout: true, request.ErrCodeRead: true,
}

// TransientS3 reports whether an ibm-cos-sdk-go error with that status and code is worth
// retrying: 5xx but 501, 408, 429, throttling codes, timeouts and broken connections; never a
// cancellation.
func TransientS3(status int, code string, err error) bool {
	switch {
	case code == request.CanceledErrorCode:
		return false
	case status >= 500 && status != 501, status == 429, status == 408:
		return true
	case transientCodes[code]:
		return true
	}
	// Connection-level failures: the SDK wraps them in awserr values (which do not implement
	// Unwrap), so walk OrigErr by hand.
	for e := err; e != nil; {
		var ne net.Error
		if errors.As(e, &ne) && ne.Timeout() {
			return true
		}
		if errors.Is(e, syscall.ECONNRESET) || errors.Is(e, syscall.ECONNREFUSED) ||
			errors.Is(e, syscall.EPIPE) || errors.Is(e, io.ErrUnexpectedEOF) {
			return true
		}
		var ae awserr.Error
		if !errors.As(e, &ae) {
			break
		}
		e = ae.OrigErr()
	}
	return false
}
