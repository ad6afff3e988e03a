package upload

import (
	"context"
	"fmt"

	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// classify wraps an SDK error with the operation and key: a failed precondition (412), a
// missing multipart upload, a missing object (objstore.ErrNotFound), or an error marked
// transient (5xx but 501, 408, 429, throttling, timeouts, broken connections) unless ctx is
// done. nil stays nil.
func classify(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("%s %s", op, key)
	status, code := objstore.S3Error(err)
	switch {
	case status == 412 || code == "PreconditionFailed":
		return fmt.Errorf("%s: %w: %w", where, errPrecondition, err)
	case code == s3.ErrCodeNoSuchUpload:
		return fmt.Errorf("%s: %w: %w", where, errNoSuchUpload, err)
	case code == s3.ErrCodeNoSuchKey || (status == 404 && (code == "NotFound" || code == "")):
		return fmt.Errorf("%s: %w: %w", where, objstore.ErrNotFound, err)
	case ctx.Err() == nil && objstore.TransientS3(status, code, err):
		return objstore.MarkTransient(fmt.Errorf("%s: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}
