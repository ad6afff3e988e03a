package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/objstore/objstoretest"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// uniquePrefix gives each store of a suite its own key space in the server's one bucket.
func uniquePrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

// TestObjstoreContractVersitygw holds objstore.COS to the strict contract (If-Match on a
// missing key is ErrNotFound) against versitygw, through the real ibm-cos-sdk-go client.
func TestObjstoreContractVersitygw(t *testing.T) {
	srv := s3server.Start(t)
	client := srv.Client(t)
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return objstore.NewCOS(client, srv.Bucket, uniquePrefix())
	})
}

// TestConditionalHeadersReachVersitygw sends the conditional headers with the bare SDK, the way
// objstore does, and checks the server's own answers: 412 PreconditionFailed for a stale
// If-Match and for If-None-Match: * on an existing key, 404 NoSuchKey for If-Match on a missing
// key. A server or SDK that dropped the headers would answer 200.
func TestConditionalHeadersReachVersitygw(t *testing.T) {
	srv := s3server.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	put := func(key, body string, hdr map[string]string) (*s3.PutObjectOutput, error) {
		return c.PutObjectWithContext(ctx, &s3.PutObjectInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String(key), Body: strings.NewReader(body),
		}, request.WithSetRequestHeaders(hdr))
	}
	first, err := put("k", "v1", map[string]string{"If-None-Match": "*"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := put("k", "v2", map[string]string{"If-Match": aws.StringValue(first.ETag)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key string
		hdr       map[string]string
		status    int
		code      string
	}{
		{"stale If-Match", "k", map[string]string{"If-Match": aws.StringValue(first.ETag)}, 412, "PreconditionFailed"},
		{"If-None-Match on existing", "k", map[string]string{"If-None-Match": "*"}, 412, "PreconditionFailed"},
		{"If-Match on missing", "missing", map[string]string{"If-Match": aws.StringValue(first.ETag)}, 404, "NoSuchKey"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := put(tc.key, "v3", tc.hdr)
			var rf awserr.RequestFailure
			if !errors.As(err, &rf) || rf.StatusCode() != tc.status || rf.Code() != tc.code {
				t.Fatalf("put = %v, want %d %s from the server", err, tc.status, tc.code)
			}
		})
	}
	got, err := c.GetObjectWithContext(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if aws.StringValue(got.ETag) != aws.StringValue(second.ETag) {
		t.Fatalf("stored ETag %s, want %s: a refused put changed the object", aws.StringValue(got.ETag), aws.StringValue(second.ETag))
	}

	// And through objstore: the same answers, classified.
	s := objstore.NewCOS(c, srv.Bucket, "")
	if _, err := s.Put(ctx, "k", []byte("v4"), objstore.Cond{IfMatch: aws.StringValue(first.ETag)}); !errors.Is(err, objstore.ErrPrecondition) || objstore.IsTransient(err) {
		t.Fatalf("objstore stale If-Match = %v, want ErrPrecondition, not transient", err)
	}
}

// TestWrongSecretIsNotTransient: versitygw checks signatures; a refusal is permanent.
func TestWrongSecretIsNotTransient(t *testing.T) {
	srv := s3server.Start(t)
	bad := *srv
	bad.SecretKey = "not-the-secret"
	s := objstore.NewCOS(bad.Client(t), srv.Bucket, "")
	_, _, err := s.Get(context.Background(), "k")
	if err == nil || objstore.IsTransient(err) || errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get with a wrong secret = %v, want a permanent error", err)
	}
}
