package policy

import (
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// rotationSlack is how close two rotation times must be to be the same rotation when one of them
// has no version (a Cloud Logs alert's event time against Key Protect's lastRotateDate).
const rotationSlack = time.Minute

// Rotated applies a key rotation to one database's state. It is idempotent and guards against
// the past: a rotation to the version already held or already awaited changes nothing; a
// rotation that is not newer than the recorded one (by its rotation time: Key Protect's
// versions are ids, not ordered strings) is stale and changes nothing, so a late Cloud Logs
// alert or a redelivery can neither re-open nor rewind a window nor move the key version back.
// A rotation found by polling Key Protect (DetectedBy poll or managed) is the key's newest
// version by definition. A rotation without a version (a Cloud Logs alert that does not carry
// one) opens a window whose target the next poll fills in.
func Rotated(st *state.State, db config.Database, p events.KeyRotated, now time.Time) (note string, changed bool) {
	if p.DetectedBy == events.DetectedByKeystore {
		// Db2 rotates a native-encryption master key synchronously: no re-wrap to wait for, but
		// the next image starts a new chain, so restores never mix master keys.
		if st.NeedFull {
			return "master key rotated; a full backup is already due", false
		}
		st.NeedFull, st.NeedFullReason = true, "native-encryption master key rotated (keystore "+p.NewVersion+")"
		return "master key rotated: next backup is full", true
	}
	v, w := p.NewVersion, st.Window
	authoritative := p.DetectedBy == "poll" || p.DetectedBy == "managed"
	newest := st.Key.RotatedAt
	if w != nil && w.RotatedAt.After(newest) {
		newest = w.RotatedAt
	}
	at := p.RotatedAt.UTC().Format(time.RFC3339)
	switch {
	case v != "" && w == nil && st.Key.Version == v:
		return "version " + v + " already settled", false
	case v != "" && w != nil && w.ToVersion == v:
		return "window already open for version " + v, false
	case v != "" && w != nil && w.ToVersion == "" && (authoritative || !p.RotatedAt.Before(w.RotatedAt.Add(-rotationSlack))):
		w.ToVersion = v
		if p.RotatedAt.After(w.RotatedAt) {
			w.RotatedAt = p.RotatedAt
		}
		return "window already open; its key version is now known: " + v, true
	case v == "" && w != nil:
		return "window already open", false
	case v == "" && !newest.IsZero() && !p.RotatedAt.After(newest.Add(rotationSlack)):
		return "rotation at " + at + " already handled", false
	case !authoritative && !newest.IsZero() && !p.RotatedAt.After(newest):
		return fmt.Sprintf("stale: version %s rotated at %s is not newer than the recorded rotation (%s at %s); ignored",
			orUnknown(v), at, orUnknown(current(st)), newest.UTC().Format(time.RFC3339)), false
	}
	minClose, maxClose := WindowBounds(db, now)
	from, verb := st.Key.Version, "opened"
	if p.OldVersion != "" && w == nil {
		from = p.OldVersion
	}
	if w != nil {
		verb, from = "extended", w.FromVersion
	}
	st.Window = &state.RotationWindow{FromVersion: from, ToVersion: v, RotatedAt: p.RotatedAt, OpenedAt: now, MinCloseAt: minClose, MaxCloseAt: maxClose, DetectedBy: p.DetectedBy}
	note = fmt.Sprintf("rotation window %s for version %s (settle until %s, at most until %s)", verb, orUnknown(v),
		minClose.UTC().Format(time.RFC3339), maxClose.UTC().Format(time.RFC3339))
	if st.Run != nil && !st.Run.Suspect {
		st.Run.Suspect = true
		note += "; run " + st.Run.ID + " marked suspect"
	}
	return note, true
}

func current(st *state.State) string {
	if st.Window != nil && st.Window.ToVersion != "" {
		return st.Window.ToVersion
	}
	return st.Key.Version
}

func orUnknown(v string) string {
	if v == "" {
		return "(not yet known)"
	}
	return v
}

// KeyState records a key state seen at changedAt: a key that is not active blocks backups and
// queues a critical alert once; a key active again unblocks and says so. A state older than the
// one recorded is stale and changes nothing (events arrive out of order). A destroyed key also
// owes the alert that names the backups it made unrestorable (Unrestorable).
func KeyState(st *state.State, db config.Database, ks events.KeyState, changedAt time.Time) (note string, changed bool) {
	if !st.Key.StateAt.IsZero() && changedAt.Before(st.Key.StateAt) {
		return fmt.Sprintf("stale: key %s at %s is older than the recorded state (%s at %s); ignored", ks,
			changedAt.UTC().Format(time.RFC3339), st.Key.State, st.Key.StateAt.UTC().Format(time.RFC3339)), false
	}
	if st.Key.State == ks {
		return "key already " + string(ks), false
	}
	was := st.Key.Blocked
	first := st.Key.State == ""
	st.Key.State, st.Key.StateAt = ks, changedAt
	st.Key.Blocked = !ks.Usable()
	if ks != events.KeyDestroyed {
		st.Key.UnrestorableQueued = false
	}
	id := fmt.Sprintf("%s/key-state/%s/%d", db.Name, ks, changedAt.Unix())
	switch {
	case st.Key.Blocked && !was:
		st.AddAlert(id, events.Alert{Severity: events.Critical, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "key-state",
			Message: fmt.Sprintf("root key of %s is %s: backups of %s are blocked until the key is active again", db.Name, ks, db.Name)})
		return "blocked: key " + string(ks), true
	case !st.Key.Blocked && was:
		st.AddAlert(id, events.Alert{Severity: events.Info, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "key-state",
			Message: fmt.Sprintf("root key of %s is active again: backups resume", db.Name)})
		return "unblocked", true
	case first:
		return "key state " + string(ks) + " (first sighting)", true
	}
	return "key state " + string(ks), true
}

// NeedsUnrestorable reports whether st owes the alert naming the backups a destroyed key made
// unrestorable: the handler then lists the catalog before deciding (Unrestorable).
func NeedsUnrestorable(st *state.State) bool {
	return st.Key.State == events.KeyDestroyed && !st.Key.UnrestorableQueued
}

// UnrestorableImages are the cataloged images a destroyed key protects: how many, and the first
// few names (newest first) for the alert.
type UnrestorableImages struct {
	Count int
	First []string
}

// UnrestorableOf picks, from a database's catalog, the images the key keyCRN protects: how many,
// and the names of the newest (at most state.MaxAlertRelated).
func UnrestorableOf(entries []catalog.Entry, keyCRN string) UnrestorableImages {
	var u UnrestorableImages
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.KeyCRN != keyCRN || e.IsDiscarded() { // a discarded image was never restorable
			continue
		}
		u.Count++
		if len(u.First) < state.MaxAlertRelated {
			v := e.KeyVersion
			if v == "" {
				v = "unrecorded"
			}
			u.First = append(u.First, e.Name()+" (key version "+v+")")
		}
	}
	return u
}

// Unrestorable queues, once per destruction, the critical alert that names the cataloged backups
// the destroyed key made unrestorable: the count, the first state.MaxAlertRelated names and the
// command that lists them all. It changes nothing unless NeedsUnrestorable.
func Unrestorable(st *state.State, db config.Database, u UnrestorableImages) (note string, changed bool) {
	if !NeedsUnrestorable(st) {
		return "", false
	}
	st.Key.UnrestorableQueued = true
	if u.Count == 0 {
		return "key destroyed; no cataloged backup was protected by it", true
	}
	first := u.First
	if len(first) > state.MaxAlertRelated {
		first = first[:state.MaxAlertRelated]
	}
	st.AddAlert(fmt.Sprintf("%s/unrestorable/%d", db.Name, st.Key.StateAt.Unix()), events.Alert{Severity: events.Critical, Database: db.Name,
		KeyCRN: db.KeyCRN, Reason: "unrestorable", Related: first,
		Message: fmt.Sprintf("the root key of %s was destroyed: %d cataloged backup(s) can no longer be restored unless the key is restored within its recovery period; the newest %d are listed, and `keyguard backup list %s` lists them all",
			db.Name, u.Count, len(first), db.Name)})
	return fmt.Sprintf("key destroyed: %d cataloged backup(s) unrestorable, alert queued", u.Count), true
}
