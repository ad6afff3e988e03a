package policy

import (
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// OpenWindow applies a key rotation to one database's state and says what it did. A rotation to a
// version already held or already settled changes nothing but the rotation time, so the poll, the
// Cloud Logs alert and a redelivery of either open one window between them.
func OpenWindow(st *state.State, db config.Database, p events.KeyRotated, now time.Time) string {
	if p.DetectedBy == events.DetectedByKeystore {
		// Db2 rotates a native-encryption master key synchronously: no re-wrap to wait for, but
		// the next image starts a new chain, so restores never mix master keys.
		if st.NeedFull {
			return "master key rotated; a full backup is already due"
		}
		st.NeedFull, st.NeedFullReason = true, "native-encryption master key rotated (keystore "+p.NewVersion+")"
		return "master key rotated: next backup is full"
	}
	if p.RotatedAt.After(st.Key.RotatedAt) {
		defer func() { st.Key.RotatedAt = p.RotatedAt }()
	}
	switch {
	case p.NewVersion != "" && st.Window != nil && st.Window.ToVersion == "":
		st.Window.ToVersion = p.NewVersion
		return "window already open; its key version is now known: " + p.NewVersion
	case p.NewVersion != "" && st.Window != nil && st.Window.ToVersion == p.NewVersion:
		return "window already open for version " + p.NewVersion
	case p.NewVersion != "" && st.Window == nil && st.Key.Version == p.NewVersion:
		return "version " + p.NewVersion + " already settled"
	case p.NewVersion == "" && st.Window != nil:
		return "window already open"
	case p.NewVersion == "" && !st.Key.RotatedAt.IsZero() && !p.RotatedAt.After(st.Key.RotatedAt.Add(time.Minute)):
		return "rotation at " + p.RotatedAt.Format(time.RFC3339) + " already handled"
	}
	minClose, maxClose := WindowBounds(db, now)
	from := st.Key.Version
	if p.OldVersion != "" {
		from = p.OldVersion
	}
	verb := "opened"
	if st.Window != nil {
		verb = "extended"
		from = st.Window.FromVersion
	}
	st.Window = &state.RotationWindow{FromVersion: from, ToVersion: p.NewVersion, OpenedAt: now, MinCloseAt: minClose, MaxCloseAt: maxClose, DetectedBy: p.DetectedBy}
	note := fmt.Sprintf("rotation window %s for version %s (settle until %s, at most until %s)", verb, p.NewVersion, minClose.Format(time.RFC3339), maxClose.Format(time.RFC3339))
	if st.Run != nil && !st.Run.Suspect {
		st.Run.Suspect = true
		note += "; run " + st.Run.ID + " marked suspect"
	}
	return note
}

// ApplyKeyState records a key state in st: a key that is not active blocks backups and queues a
// critical alert once; a key active again unblocks and says so. It returns what it did.
func ApplyKeyState(st *state.State, db config.Database, ks events.KeyState, changedAt time.Time) string {
	if st.Key.State == ks {
		return "key already " + string(ks)
	}
	was := st.Key.Blocked
	st.Key.State = ks
	st.Key.Blocked = !ks.Usable()
	id := fmt.Sprintf("%s/key-state/%s/%d", db.Name, ks, changedAt.Unix())
	switch {
	case st.Key.Blocked && !was:
		st.AddAlert(id, events.Alert{Severity: events.Critical, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "key-state",
			Message: fmt.Sprintf("root key of %s is %s: backups of %s are blocked until the key is active again", db.Name, ks, db.Name)})
		return "blocked: key " + string(ks)
	case !st.Key.Blocked && was:
		st.AddAlert(id, events.Alert{Severity: events.Info, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "key-state",
			Message: fmt.Sprintf("root key of %s is active again: backups resume", db.Name)})
		return "unblocked"
	}
	return "key state " + string(ks)
}
