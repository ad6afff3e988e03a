package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
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
	status, code := 0, ""
	var rf awserr.RequestFailure
	var ae awserr.Error
	switch {
	case errors.As(err, &rf):
		status, code = rf.StatusCode(), rf.Code()
	case errors.As(err, &ae):
		code = ae.Code()
	}
	switch {
	case status == 412 || code == "PreconditionFailed":
		return fmt.Errorf("%s: %w: %w", where, errPrecondition, err)
	case code == s3.ErrCodeNoSuchUpload:
		return fmt.Errorf("%s: %w: %w", where, errNoSuchUpload, err)
	case code == s3.ErrCodeNoSuchKey || (status == 404 && (code == "NotFound" || code == "")):
		return fmt.Errorf("%s: %w: %w", where, objstore.ErrNotFound, err)
	case ctx.Err() == nil && transient(status, code, err):
		return objstore.MarkTransient(fmt.Errorf("%s: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

var transientCodes = map[string]bool{
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequests": true, "ServiceUnavailable": true, "InternalError": true, "RequestTimeout": true,
	request.ErrCodeResponseTimeout: true, request.ErrCodeRead: true,
}

func transient(status int, code string, err error) bool {
	switch {
	case code == request.CanceledErrorCode:
		return false
	case status >= 500 && status != 501, status == 429, status == 408, transientCodes[code]:
		return true
	}
	// The SDK's awserr values do not implement Unwrap: follow OrigErr by hand.
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
			return false
		}
		e = ae.OrigErr()
	}
	return false
}
