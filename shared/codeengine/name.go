package codeengine

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// MaxNameLength is the longest Code Engine resource name.
const MaxNameLength = 63

// NamePrefix starts every job run name keyguard creates.
const NamePrefix = "kg-"

// hashLen is the number of hex digits of the run id's SHA-256 added when the name is not the run
// id itself.
const hashLen = 10

// nameRE is the form of a Code Engine resource name: lowercase alphanumerics and '-', starting
// and ending with an alphanumeric.
var nameRE = regexp.MustCompile(`^[a-z0-9]([\-a-z0-9]*[a-z0-9])?$`)

// ValidName reports whether s is a valid Code Engine resource name.
func ValidName(s string) bool { return len(s) <= MaxNameLength && nameRE.MatchString(s) }

// JobRunName returns the job run name of a run id: "kg-" + the run id when the run id is already
// made of lowercase alphanumerics and single '-' (no leading or trailing '-') and fits; otherwise
// "kg-" + a sanitised, possibly shortened form (lowercase, every other character run becomes '-')
// + "-" + the first 10 hex digits of the run id's SHA-256. The hash keeps distinct run ids apart
// when sanitising loses information ("Sales_DB" and "sales-db") or when the id is long. The
// result is always a valid name of at most 63 characters, and the same for the same run id.
func JobRunName(runID string) string {
	clean := sanitise(runID)
	if clean == runID && clean != "" && len(NamePrefix)+len(clean) <= MaxNameLength {
		return NamePrefix + clean
	}
	sum := sha256.Sum256([]byte(runID))
	suffix := hex.EncodeToString(sum[:])[:hashLen]
	room := MaxNameLength - len(NamePrefix) - 1 - hashLen
	if len(clean) > room {
		clean = strings.TrimRight(clean[:room], "-")
	}
	if clean == "" {
		return NamePrefix + suffix
	}
	return NamePrefix + clean + "-" + suffix
}

// sanitise lowercases s and turns every run of characters other than [a-z0-9] into one '-',
// without a leading or trailing '-'.
func sanitise(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}
