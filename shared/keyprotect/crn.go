package keyprotect

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadCRN is wrapped by KeyIDFromCRN's errors.
var ErrBadCRN = errors.New("not a Key Protect key CRN")

// maxCRNLength bounds the input KeyIDFromCRN accepts.
const maxCRNLength = 512

// maxIDLength bounds instance and key ids (UUIDs have 36 characters, key aliases at most 90).
const maxIDLength = 128

// KeyIDFromCRN splits a key CRN,
//
//	crn:v1:<cname>:<ctype>:kms:<region>:a/<account>:<instance guid>:key:<key id>
//
// into the Key Protect instance id and the key id. Hyper Protect Crypto Services keys (service
// name hs-crypto) share the API and are accepted too. Ids must consist of letters, digits, '-'
// and '_' (they become URL path segments). Errors wrap ErrBadCRN.
func KeyIDFromCRN(crn string) (instanceID, keyID string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: %s", ErrBadCRN, why)
	}
	if len(crn) > maxCRNLength {
		return bad("longer than 512 characters")
	}
	parts := strings.Split(crn, ":")
	if len(parts) != 10 {
		return bad(fmt.Sprintf("%d colon-separated segments, want 10", len(parts)))
	}
	if parts[0] != "crn" || parts[1] != "v1" {
		return bad("does not start with crn:v1:")
	}
	for i, name := range []string{2: "cname", 3: "ctype", 5: "location"} {
		if name != "" && !validSegment(parts[i]) {
			return bad("empty or invalid " + name)
		}
	}
	if parts[4] != "kms" && parts[4] != "hs-crypto" {
		return bad(fmt.Sprintf("service %q is not kms", parts[4]))
	}
	account, ok := strings.CutPrefix(parts[6], "a/")
	if !ok || !validSegment(account) {
		return bad("scope is not a/<account>")
	}
	if parts[8] != "key" {
		return bad(fmt.Sprintf("resource type %q is not key", parts[8]))
	}
	if !ValidID(parts[7]) {
		return bad("empty or invalid instance id")
	}
	if !ValidID(parts[9]) {
		return bad("empty or invalid key id")
	}
	return parts[7], parts[9], nil
}

// ValidID reports whether s can be a Key Protect instance id, key id or key alias here: 1 to 128
// letters, digits, '-' or '_'.
func ValidID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validSegment accepts a non-empty CRN segment of printable ASCII without spaces or slashes.
func validSegment(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}
