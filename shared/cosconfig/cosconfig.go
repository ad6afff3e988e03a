package cosconfig

import (
	"context"
	"fmt"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

// Bucket reads (and probes) one bucket's configuration. It is safe for concurrent use.
type Bucket struct {
	client *s3.S3
	name   string
}

var (
	_ preflight.Bucket       = (*Bucket)(nil)
	_ preflight.BucketConfig = (*Bucket)(nil)
)

// New returns a Bucket over name through client (objstore.NewCOSClient builds one).
func New(client *s3.S3, name string) *Bucket { return &Bucket{client: client, name: name} }

// Head returns the bucket's Key Protect settings, from the ibm-sse-kp-* headers of HeadBucket;
// an error wrapping preflight.ErrNotFound when the bucket does not exist.
func (b *Bucket) Head(ctx context.Context) (preflight.BucketHead, error) {
	out, err := b.client.HeadBucketWithContext(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.name)})
	if err != nil {
		if status, code := objstore.S3Error(err); status == 404 || code == s3.ErrCodeNoSuchBucket {
			return preflight.BucketHead{}, fmt.Errorf("head bucket %s: %w: %w", b.name, preflight.ErrNotFound, err)
		}
		return preflight.BucketHead{}, fmt.Errorf("head bucket %s: %w", b.name, err)
	}
	return preflight.BucketHead{Name: b.name, KeyProtect: aws.BoolValue(out.IBMSSEKPEnabled), RootKeyCRN: aws.StringValue(out.IBMSSEKPCrkId)}, nil
}

// Versioning returns the bucket's versioning status ("Enabled", "Suspended", or "").
func (b *Bucket) Versioning(ctx context.Context) (string, error) {
	out, err := b.client.GetBucketVersioningWithContext(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.name)})
	if err != nil {
		return "", fmt.Errorf("get versioning of %s: %w", b.name, err)
	}
	return aws.StringValue(out.Status), nil
}

// ObjectLock reports whether the bucket has an Object Lock configuration.
func (b *Bucket) ObjectLock(ctx context.Context) (bool, error) {
	out, err := b.client.GetObjectLockConfigurationWithContext(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(b.name)})
	if err != nil {
		if status, code := objstore.S3Error(err); status == 404 || code == "ObjectLockConfigurationNotFoundError" {
			return false, nil
		}
		return false, fmt.Errorf("get object lock configuration of %s: %w", b.name, err)
	}
	c := out.ObjectLockConfiguration
	return c != nil && aws.StringValue(c.ObjectLockEnabled) == s3.ObjectLockEnabledEnabled, nil
}

// PutVersioning sets the bucket's versioning status (the preflight writes back the one it read).
func (b *Bucket) PutVersioning(ctx context.Context, status string) error {
	_, err := b.client.PutBucketVersioningWithContext(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b.name),
		VersioningConfiguration: &s3.VersioningConfiguration{Status: aws.String(status)}})
	if err != nil {
		return fmt.Errorf("put versioning of %s: %w", b.name, err)
	}
	return nil
}

// Refused reports whether err is Object Storage's refusal for lack of access (403 or
// AccessDenied).
func (b *Bucket) Refused(err error) bool { return Refused(err) }

// Refused reports whether err is an Object Storage refusal for lack of access.
func Refused(err error) bool {
	if err == nil {
		return false
	}
	status, code := objstore.S3Error(err)
	return status == 403 || code == "AccessDenied"
}
