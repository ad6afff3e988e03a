package db2

import (
	"path/filepath"
	"strings"
)

// Keystore is the native-encryption keystore of an instance, from `db2 get dbm cfg`.
type Keystore struct {
	// Type is KEYSTORE_TYPE: NONE, PKCS12, KMIP, PKCS11.
	Type string `json:"type"`
	// Location is KEYSTORE_LOCATION: the keystore file for PKCS12 (a local file to copy with
	// every backup), a configuration file for the others.
	Location string `json:"location,omitempty"`
}

// Local reports whether the keystore is a local PKCS#12 file, which a restore needs beside the
// image and which keyguard therefore copies with every backup.
func (k Keystore) Local() bool { return strings.EqualFold(k.Type, "PKCS12") && k.Location != "" }

// Files returns the files to copy for a local keystore: the keystore and its stash file (same
// name with .sth; Db2 writes it when the keystore password is stashed; it may be absent).
func (k Keystore) Files() []string {
	if !k.Local() {
		return nil
	}
	stash := strings.TrimSuffix(k.Location, filepath.Ext(k.Location)) + ".sth"
	return []string{k.Location, stash}
}

// ParseDBMKeystore reads KEYSTORE_TYPE and KEYSTORE_LOCATION from `db2 get dbm cfg` output.
// Output without them (Db2 before 10.5 FP5) means no native encryption: Type NONE. A Db2 error
// message in the output returns its *Error.
func ParseDBMKeystore(out string) (Keystore, error) {
	if len(out) > maxOutput {
		return Keystore{}, unrecognised("dbm cfg", "output larger than %d bytes", maxOutput)
	}
	if e := outputError(out); e != nil {
		return Keystore{}, e
	}
	k := Keystore{Type: "NONE"}
	for _, line := range strings.Split(out, "\n") {
		left, value, ok := cfgLine(line)
		if !ok {
			continue
		}
		switch name, _ := paramName(left); name {
		case "KEYSTORE_TYPE":
			if value != "" {
				k.Type = strings.ToUpper(value)
			}
		case "KEYSTORE_LOCATION":
			k.Location = value
		}
	}
	return k, nil
}
