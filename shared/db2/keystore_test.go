package db2

import (
	"reflect"
	"testing"
)

func TestParseDBMKeystore(t *testing.T) {
	tests := []struct {
		name, out string
		want      Keystore
		files     []string
	}{
		{"pkcs12", `
          Database Manager Configuration

     Node type = Enterprise Server Edition with local and remote clients

 Keystore type                           (KEYSTORE_TYPE) = PKCS12
 Keystore location                   (KEYSTORE_LOCATION) = /home/db2inst1/keystore/db2keys.p12
`, Keystore{Type: "PKCS12", Location: "/home/db2inst1/keystore/db2keys.p12"},
			[]string{"/home/db2inst1/keystore/db2keys.p12", "/home/db2inst1/keystore/db2keys.sth"}},
		{"none", " Keystore type                           (KEYSTORE_TYPE) = NONE\n Keystore location                   (KEYSTORE_LOCATION) =\n", Keystore{Type: "NONE"}, nil},
		{"kmip", " Keystore type (KEYSTORE_TYPE) = KMIP\n Keystore location (KEYSTORE_LOCATION) = /home/db2inst1/kmip.cfg\n", Keystore{Type: "KMIP", Location: "/home/db2inst1/kmip.cfg"}, nil},
		{"old release", " Node type = Database Server\n", Keystore{Type: "NONE"}, nil},
	}
	for _, tc := range tests {
		got, err := ParseDBMKeystore(tc.out)
		if err != nil || got != tc.want || !reflect.DeepEqual(got.Files(), tc.files) {
			t.Errorf("%s: %+v %v files %v", tc.name, got, err, got.Files())
		}
	}
	if _, err := ParseDBMKeystore("SQL1092N  The requested command or operation failed because the user ID does not have the authority.\n"); err == nil {
		t.Error("error output accepted")
	}
}

func FuzzParseDBMKeystore(f *testing.F) {
	f.Add(" Keystore type (KEYSTORE_TYPE) = PKCS12\n Keystore location (KEYSTORE_LOCATION) = /k.p12\n")
	f.Add("SQL1092N  no\n")
	f.Fuzz(func(t *testing.T, out string) {
		k, err := ParseDBMKeystore(out)
		if err == nil && k.Type == "" {
			t.Fatal("empty type without error")
		}
	})
}
