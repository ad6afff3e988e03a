package iampolicy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/iampolicy"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

const account = "0123456789abcdef0123456789abcdef"

func client(t *testing.T, iam *iamemu.Emulator, key string) *iampolicy.Client {
	t.Helper()
	srv := httptest.NewServer(iam)
	t.Cleanup(srv.Close)
	auth, err := core.NewIamAuthenticatorBuilder().SetApiKey(key).SetURL(srv.URL).Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := iampolicy.New(srv.URL, auth, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The real SDK reads the emulator's policies, every page, with their services, instances and
// roles.
func TestListsAuthorizationsThroughTheSDK(t *testing.T) {
	iam := iamemu.New("key")
	iam.AddAuthorization(iamemu.Authorization{Source: "dashdb-for-transactions", SourceInstance: "db2-1", Target: "kms", TargetInstance: "kp-1", Roles: []string{"Reader"}})
	for i := range 120 {
		iam.AddAuthorization(iamemu.Authorization{Source: "cloud-object-storage", SourceInstance: fmt.Sprintf("cos-%d", i), Target: "kms", Roles: []string{"Reader"}})
	}
	iam.AddAuthorization(iamemu.Authorization{Account: "another", Source: "x", Target: "kms"})
	got, err := client(t, iam, "key").Authorizations(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 121 {
		t.Fatalf("got %d policies, want 121 (two pages, another account's left out)", len(got))
	}
	a := got[0]
	if a.Source != "dashdb-for-transactions" || a.SourceInstance != "db2-1" || a.Target != "kms" || a.TargetInstance != "kp-1" ||
		len(a.Roles) != 2 || a.Roles[0] != "Reader" || a.Roles[1] != "crn:v1:bluemix:public:iam::::serviceRole:Reader" || a.ID == "" {
		t.Fatalf("first policy: %+v", a)
	}
	if got[1].TargetInstance != "" {
		t.Fatalf("a policy on every instance: %+v", got[1])
	}
}

func TestRefusalIsConfiguration(t *testing.T) {
	iam := iamemu.New("key")
	_, err := client(t, iam, "wrong").Authorizations(context.Background(), account)
	var e *iampolicy.Error
	if !errors.As(err, &e) || e.StatusCode != 400 {
		t.Fatalf("unknown API key: %v", err)
	}
	iam2 := iamemu.New("key")
	c := client(t, iam2, "key")
	if _, err := c.Authorizations(context.Background(), account); err != nil {
		t.Fatal(err)
	}
	iam2.RevokeAll() // the cached token is now foreign: 401
	_, err = c.Authorizations(context.Background(), account)
	if errkind.Of(err) != errkind.Configuration {
		t.Fatalf("revoked token: %v (kind %q)", err, errkind.Of(err))
	}
}
