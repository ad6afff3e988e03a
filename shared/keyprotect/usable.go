package keyprotect

import (
	"context"
	"fmt"

	"github.com/keyguard-dev/keyguard/events"
)

// KeyReader is what Usability needs of Key Protect. *Client implements it.
type KeyReader interface {
	Key(ctx context.Context, ref string) (KeyInfo, error)
	Versions(ctx context.Context, ref string) ([]Version, error)
}

// Usability is what Key Protect says of a root key, to judge whether a key version can still
// open a backup (a restore needs it, a check asks it).
type Usability struct {
	CRN string
	// Missing: Key Protect has no such key (404).
	Missing bool
	State   events.KeyState
	// Versions are the key's versions (ListKeyVersions); nil unless the key is active.
	Versions map[string]bool
}

// Observe asks Key Protect for the state (and, for an active key, the versions) of the key. A
// key Key Protect does not know is Missing; any other failure is returned (IsTransient tells
// whether a later attempt may succeed).
func Observe(ctx context.Context, keys KeyReader, crn string) (Usability, error) {
	u := Usability{CRN: crn}
	info, err := keys.Key(ctx, crn)
	switch {
	case IsNotFound(err):
		u.Missing = true
		return u, nil
	case err != nil:
		return u, fmt.Errorf("check key %s: %w", crn, err)
	}
	u.State = info.State
	if u.State == events.KeyActive {
		vs, err := keys.Versions(ctx, crn)
		if err != nil {
			return u, fmt.Errorf("check versions of key %s: %w", crn, err)
		}
		u.Versions = make(map[string]bool, len(vs))
		for _, v := range vs {
			u.Versions[v.ID] = true
		}
	}
	return u, nil
}

// Unusable says why version (empty: not recorded) of the key cannot open a backup, or "".
//
// A key version is usable when the key is active and the version is in the key's version list.
// Key Protect wraps and unwraps only with an active key: a suspended (disabled), deactivated
// (expired), pre-activation or destroyed key can open neither Db2's data keys nor a keystore
// copy's, so a restore that needs it would fail half way. Key Protect cannot destroy one version
// (a version becomes unavailable with its key), so a version missing from the list means the
// catalog names a version this key never had. An unrecorded version passes on the key's state.
func (u Usability) Unusable(version string) string {
	switch {
	case u.Missing:
		return "Key Protect has no such key"
	case u.State == events.KeySuspended:
		return "the key is suspended (disabled): enable it to restore"
	case u.State != events.KeyActive:
		return "the key is " + string(u.State)
	case version != "" && !u.Versions[version]:
		return "Key Protect lists no such version of the key"
	}
	return ""
}
