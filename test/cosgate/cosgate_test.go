package cosgate_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/cosconfig"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/test/cosgate"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

const rootKey = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"

// Through the gate, the real COS client meets versitygw signed requests intact, IBM's Key
// Protect headers on HeadBucket, and IAM-like refusals.
func TestGateInFrontOfVersitygw(t *testing.T) {
	s3 := s3server.Start(t)
	g, err := cosgate.New(cosgate.Options{Target: s3.Endpoint, Bucket: s3.Bucket, RootKeyCRN: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	url, stop, err := cosgate.Start(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	client, err := objstore.NewCOSClient(objstore.Options{Endpoint: url, Region: s3.Region, HMACKeyID: s3.AccessKey, HMACSecret: s3.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := cosconfig.New(client, s3.Bucket)
	h, err := b.Head(ctx)
	if err != nil || !h.KeyProtect || h.RootKeyCRN != rootKey {
		t.Fatalf("head: %+v %v", h, err)
	}
	if _, err := cosconfig.New(client, "no-such-bucket").Head(ctx); !errors.Is(err, preflight.ErrNotFound) {
		t.Fatalf("missing bucket: %v", err)
	}
	if v, err := b.Versioning(ctx); err != nil || v != "" {
		t.Fatalf("versioning of a new bucket: %q %v", v, err)
	}
	if err := b.PutVersioning(ctx, "Enabled"); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Versioning(ctx); err != nil || v != "Enabled" {
		t.Fatalf("versioning: %q %v", v, err)
	}
	if lock, err := b.ObjectLock(ctx); err != nil || lock {
		t.Fatalf("object lock: %v %v", lock, err)
	}
	g.DenyBucketConfiguration()
	if err := b.PutVersioning(ctx, "Enabled"); !b.Refused(err) {
		t.Fatalf("versioning write under the custom role: %v", err)
	}
	store := objstore.NewCOS(client, s3.Bucket, "keyguard/")
	if _, err := store.Put(ctx, "state/db.json", []byte("{}"), objstore.Cond{IfNoneMatch: true}); err != nil {
		t.Fatalf("a signed conditional put through the gate: %v", err)
	}
	rule := cosgate.Rule{Method: http.MethodPut, Subresource: "-", KeyPrefix: "keyguard/preflight/"}
	undo := g.Deny(rule)
	_, err = store.Put(ctx, "preflight/x/probe.json", []byte("{}"), objstore.Cond{})
	if status, code := objstore.S3Error(err); status != 403 || code != "AccessDenied" || g.Refused(rule) != 1 {
		t.Fatalf("denied put: %v (%d %s)", err, status, code)
	}
	if _, err := store.Put(ctx, "state/other.json", []byte("{}"), objstore.Cond{}); err != nil {
		t.Fatalf("a put outside the denied prefix: %v", err)
	}
	undo()
	if _, err := store.Put(ctx, "preflight/x/probe.json", []byte("{}"), objstore.Cond{}); err != nil {
		t.Fatalf("after undo: %v", err)
	}
}
