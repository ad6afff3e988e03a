package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
)

// ErrKeyUnavailable: a key version the restore needs is not usable in Key Protect. The restore
// is refused before anything is downloaded or run.
var ErrKeyUnavailable = errors.New("key unavailable")

// keyStatus is what Key Protect says of one root key (the rule is keyprotect.Usability's).
type keyStatus = keyprotect.Usability

// observeKeys asks Key Protect about each distinct key CRN (keyprotect.Observe).
func observeKeys(ctx context.Context, keys Keys, crns []string) (map[string]keyStatus, error) {
	out := make(map[string]keyStatus, len(crns))
	for _, crn := range crns {
		if _, done := out[crn]; done {
			continue
		}
		s, err := keyprotect.Observe(ctx, keys, crn)
		if err != nil {
			return nil, err
		}
		out[crn] = s
	}
	return out, nil
}

// keyCRNs returns the distinct key CRNs of entries, in order.
func keyCRNs(entries []catalog.Entry) []string {
	var out []string
	for _, e := range entries {
		if !slices.Contains(out, e.KeyCRN) {
			out = append(out, e.KeyCRN)
		}
	}
	return out
}

// planWithKeys plans the restore again with the key check (PlanRestore's keyAvailable) and
// refuses, with an error wrapping ErrKeyUnavailable, when the keys make it pick another image
// than all, the plan the catalog alone allows: a restore never falls back silently to an older
// image than asked for. The refusal names every unusable key version, why, and the images that
// need it, and the newest image whose keys are usable, if any, which the operator can ask for by
// target. Pure.
func planWithKeys(entries []catalog.Entry, pit time.Time, all catalog.RestorePlan, status map[string]keyStatus) (catalog.RestorePlan, error) {
	usable := func(crn, version string) bool {
		s, ok := status[crn]
		return ok && s.Unusable(version) == ""
	}
	p, err := catalog.PlanRestore(entries, pit, usable)
	if err == nil && p.Target == all.Target {
		return p, nil
	}
	type need struct{ crn, version string }
	var order []need
	users := map[need][]string{}
	for _, e := range all.Images {
		n := need{e.KeyCRN, e.KeyVersion}
		if usable(n.crn, n.version) {
			continue
		}
		if _, seen := users[n]; !seen {
			order = append(order, n)
		}
		users[n] = append(users[n], e.Name())
	}
	var why []string
	for _, n := range order {
		s, ok := status[n.crn]
		reason := "not checked"
		if ok {
			reason = s.Unusable(n.version)
		}
		why = append(why, fmt.Sprintf("key version %s of %s is unusable: %s (needed by %s)", orText(n.version, "(unrecorded)"), n.crn, reason, strings.Join(users[n], ", ")))
	}
	instead := "no image has usable keys"
	if err == nil {
		instead = fmt.Sprintf("the newest image whose keys are usable is %s (ask for it with target %s to restore it instead)", p.Target, p.Target)
	}
	return catalog.RestorePlan{}, fmt.Errorf("%w: restoring image %s needs keys Key Protect cannot use now: %s; %s",
		ErrKeyUnavailable, all.Target, strings.Join(why, "; "), instead)
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
