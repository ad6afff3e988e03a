package keyprotect_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/keyprotect"
)

const (
	instance = "a192d603-0b8d-452f-aac3-f9e1f95e7411"
	keyUUID  = "88d649f8-41b8-4426-b52b-45c88953d5b8"
	goodCRN  = "crn:v1:bluemix:public:kms:us-south:a/ea998d3389c3473aa0987652b46fb146:" + instance + ":key:" + keyUUID
)

func TestKeyIDFromCRN(t *testing.T) {
	for _, tc := range []struct {
		name         string
		crn          string
		wantInstance string
		wantKey      string
	}{
		{"key protect", goodCRN, instance, keyUUID},
		{"hpcs", "crn:v1:bluemix:public:hs-crypto:eu-de:a/acc:" + instance + ":key:" + keyUUID, instance, keyUUID},
		{"staging", "crn:v1:staging:public:kms:us-south:a/acc:" + instance + ":key:" + keyUUID, instance, keyUUID},
		{"private", "crn:v1:bluemix:private:kms:us-east:a/acc:" + instance + ":key:" + keyUUID, instance, keyUUID},
		{"empty", "", "", ""},
		{"not a crn", "88d649f8-41b8-4426-b52b-45c88953d5b8", "", ""},
		{"too few segments", "crn:v1:bluemix:public:kms:us-south:a/acc:" + instance + ":key", "", ""},
		{"too many segments", goodCRN + ":extra", "", ""},
		{"v2", strings.Replace(goodCRN, "crn:v1:", "crn:v2:", 1), "", ""},
		{"upper prefix", strings.Replace(goodCRN, "crn:", "CRN:", 1), "", ""},
		{"other service", strings.Replace(goodCRN, ":kms:", ":cloud-object-storage:", 1), "", ""},
		{"not a key", strings.Replace(goodCRN, ":key:", ":bucket:", 1), "", ""},
		{"no account", strings.Replace(goodCRN, "a/ea998d3389c3473aa0987652b46fb146", "a/", 1), "", ""},
		{"org scope", strings.Replace(goodCRN, "a/ea998d", "o/ea998d", 1), "", ""},
		{"empty instance", strings.Replace(goodCRN, instance, "", 1), "", ""},
		{"empty key", strings.TrimSuffix(goodCRN, keyUUID), "", ""},
		{"key with slash", strings.Replace(goodCRN, keyUUID, "../metadata", 1), "", ""},
		{"key with query", strings.Replace(goodCRN, keyUUID, "k?x=1", 1), "", ""},
		{"instance with space", strings.Replace(goodCRN, instance, "a b", 1), "", ""},
		{"empty region", strings.Replace(goodCRN, ":us-south:", "::", 1), "", ""},
		{"empty cname", strings.Replace(goodCRN, ":bluemix:", "::", 1), "", ""},
		{"too long", goodCRN[:len(goodCRN)-len(keyUUID)] + strings.Repeat("a", 600), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, key, err := keyprotect.KeyIDFromCRN(tc.crn)
			if tc.wantKey == "" {
				if err == nil || !errors.Is(err, keyprotect.ErrBadCRN) || inst != "" || key != "" {
					t.Fatalf("got %q %q %v, want ErrBadCRN", inst, key, err)
				}
				return
			}
			if err != nil || inst != tc.wantInstance || key != tc.wantKey {
				t.Fatalf("got %q %q %v, want %q %q", inst, key, err, tc.wantInstance, tc.wantKey)
			}
		})
	}
}

func FuzzKeyIDFromCRN(f *testing.F) {
	for _, s := range []string{goodCRN, "", "crn:v1:::kms::a/:x:key:y", "crn:v1:b:p:hs-crypto:r:a/a:i:key:k",
		goodCRN + ":", "crn:v1:bluemix:public:kms:us-south:a/acc:i:key:k/../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, crn string) {
		inst, key, err := keyprotect.KeyIDFromCRN(crn)
		if err != nil {
			if !errors.Is(err, keyprotect.ErrBadCRN) || inst != "" || key != "" {
				t.Fatalf("error %v with results %q %q", err, inst, key)
			}
			return
		}
		if !keyprotect.ValidID(inst) || !keyprotect.ValidID(key) {
			t.Fatalf("accepted invalid ids %q %q from %q", inst, key, crn)
		}
		if !strings.HasPrefix(crn, "crn:v1:") || !strings.HasSuffix(crn, ":"+inst+":key:"+key) {
			t.Fatalf("ids %q %q are not where the CRN has them: %q", inst, key, crn)
		}
		// Rebuilding a CRN from the parts parses to the same ids.
		head := strings.TrimSuffix(crn, inst+":key:"+key)
		if i2, k2, err := keyprotect.KeyIDFromCRN(head + inst + ":key:" + key); err != nil || i2 != inst || k2 != key {
			t.Fatalf("round trip of %q: %q %q %v", crn, i2, k2, err)
		}
	})
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		keyUUID: true, "my_alias-1": true, "": false, "a/b": false, "a b": false, "..": false,
		"é": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	} {
		if got := keyprotect.ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v", s, got)
		}
	}
}
