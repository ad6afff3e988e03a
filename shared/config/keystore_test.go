package config

import (
	"errors"
	"strings"
	"testing"
)

const otherKey = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b009"

func TestKeystoreKeyCRN(t *testing.T) {
	db := func(name, extra string) string {
		return "  - name: " + name + "\n    instance: x\n    executor: db2saas\n    key_crn: " + goodKey + "\n    schedules: {full: \"@daily\"}\n" + extra
	}
	tests := []struct {
		name    string
		yaml    string
		want    map[string]string // database -> keystore key CRN
		wantErr string
	}{
		{"defaults to the database key", "version: 1\ndatabases:\n" + db("a", ""), map[string]string{"a": goodKey}, ""},
		{"per database", "version: 1\ndatabases:\n" + db("a", "    keystore_key_crn: "+otherKey+"\n"), map[string]string{"a": otherKey}, ""},
		{"from defaults, overridden", "version: 1\ndefaults:\n  keystore_key_crn: " + otherKey + "\ndatabases:\n" + db("a", "") + db("b", "    keystore_key_crn: "+goodKey+"\n"),
			map[string]string{"a": otherKey, "b": goodKey}, ""},
		{"bad per database", "version: 1\ndatabases:\n" + db("a", "    keystore_key_crn: nope\n"), nil, `database "a": keystore_key_crn "nope" is not a Key Protect`},
		{"bad in defaults", "version: 1\ndefaults:\n  keystore_key_crn: crn:v1:x\ndatabases:\n" + db("a", ""), nil, `keystore_key_crn "crn:v1:x" is not a Key Protect`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Load([]byte(tc.yaml))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalidFleet) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				if d, _ := f.Database(name); d.KeystoreKeyCRN != want {
					t.Errorf("%s: keystore key %q, want %q", name, d.KeystoreKeyCRN, want)
				}
			}
		})
	}
}
