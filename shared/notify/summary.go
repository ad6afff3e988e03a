package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// EN severities keyguard uses (ibmenseverity).
const (
	SeverityHigh   = "HIGH"
	SeverityMedium = "MEDIUM"
	SeverityLow    = "LOW"
)

// maxShort bounds ibmendefaultshort; longer summaries are cut with an ellipsis.
const maxShort = 200

type summary struct {
	short, long, severity, subject string
}

// AlertSeverity maps a keyguard alert severity to EN's.
func AlertSeverity(s events.Severity) string {
	switch s {
	case events.Critical:
		return SeverityHigh
	case events.Warning:
		return SeverityMedium
	}
	return SeverityLow
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// summarize writes the human texts of a (dereferenced, valid) payload.
func summarize(p events.Payload) summary {
	s := summary{severity: SeverityLow}
	switch v := p.(type) {
	case events.KeyRotated:
		s.subject = v.KeyCRN
		s.short = "keyguard: key rotated to version " + v.NewVersion
		s.long = fmt.Sprintf("Root key %s rotated to version %s (previous %s) at %s, detected by %s.",
			v.KeyCRN, v.NewVersion, orNone(v.OldVersion), ts(v.RotatedAt), v.DetectedBy)
	case events.KeyStateChanged:
		s.subject = v.KeyCRN
		if !v.State.Usable() {
			s.severity = SeverityHigh
		}
		s.short = "keyguard: key is " + string(v.State)
		s.long = fmt.Sprintf("Root key %s is %s (was %s) since %s.", v.KeyCRN, v.State,
			orNone(string(v.Previous)), ts(v.ChangedAt))
	case events.RotationSettled:
		s.subject = v.Database
		how := "confirmed by every registration"
		if !v.Confirmed {
			how = "not confirmed, closed at its maximum"
		}
		s.short = "keyguard: rotation settled for " + v.Database
		s.long = fmt.Sprintf("Rotation window of %s on key %s closed at %s with key version %s (%s): %s.",
			v.Database, v.KeyCRN, ts(v.ClosedAt), v.KeyVersion, how, v.Reason)
	case events.BackupRequested:
		s.subject = v.Database
		s.short = fmt.Sprintf("keyguard: %s backup requested for %s", v.Type, v.Database)
		s.long = fmt.Sprintf("A %s backup of %s was requested by %s.", v.Type, v.Database, v.RequestedBy)
		if v.Reason != "" {
			s.long = strings.TrimSuffix(s.long, ".") + ": " + v.Reason
		}
	case events.BackupStarted:
		s.subject = v.Database
		s.short = fmt.Sprintf("keyguard: %s backup started for %s", v.Type, v.Database)
		s.long = fmt.Sprintf("Run %s: %s %s backup of %s started at %s on %s, lease until %s.",
			v.RunID, v.Type, v.Mode, v.Database, ts(v.StartedAt), v.Executor, ts(v.LeaseUntil))
	case events.BackupCompleted:
		s.subject = v.Database
		s.short = fmt.Sprintf("keyguard: %s backup completed for %s", v.Type, v.Database)
		s.long = fmt.Sprintf("Run %s: %s %s backup of %s completed at %s: image %s, %d bytes, verified %t, key version %s.",
			v.RunID, v.Type, v.Mode, v.Database, ts(v.EndedAt), v.ImageTimestamp, v.SizeBytes, v.Verified,
			orNone(v.KeyVersion))
	case events.BackupFailed:
		s.subject = v.Database
		s.severity = SeverityMedium
		s.short = fmt.Sprintf("keyguard: %s backup failed for %s (%s)", v.Type, v.Database, v.Class)
		code := ""
		if v.Code != "" {
			code = " " + v.Code
		}
		s.long = fmt.Sprintf("Run %s: %s backup of %s failed at %s (%s%s): %s",
			v.RunID, v.Type, v.Database, ts(v.EndedAt), v.Class, code, v.Message)
	case events.RestoreRequested:
		s.subject = v.Database
		s.short = "keyguard: restore requested for " + v.Database
		s.long = fmt.Sprintf("A restore of %s was requested by %s.", v.Database, v.RequestedBy)
	case events.RestoreCompleted:
		s.subject = v.Database
		outcome := "succeeded"
		if !v.Success {
			outcome, s.severity = "failed", SeverityMedium
		}
		s.short = fmt.Sprintf("keyguard: restore of %s %s", v.Database, outcome)
		s.long = fmt.Sprintf("Restore of %s from %d image(s) %s.", v.Database, len(v.Images), outcome)
		if v.Message != "" {
			s.long = strings.TrimSuffix(s.long, ".") + ": " + v.Message
		}
	case events.Alert:
		s.subject = v.Database
		if s.subject == "" {
			s.subject = v.KeyCRN
		}
		s.severity = AlertSeverity(v.Severity)
		s.short = fmt.Sprintf("keyguard %s: %s", strings.ToUpper(string(v.Severity)), v.Reason)
		if v.Database != "" {
			s.short += " (" + v.Database + ")"
		}
		s.long = fmt.Sprintf("[%s] %s: %s", strings.ToUpper(string(v.Severity)), v.Reason, v.Message)
	default:
		s.short = "keyguard event " + p.EventType()
		s.long = s.short + "."
	}
	s.short = cut(s.short, maxShort)
	return s
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n-3])
	// Drop a rune the byte cut may have split.
	if len(r) > 0 && r[len(r)-1] == '\uFFFD' {
		r = r[:len(r)-1]
	}
	return string(r) + "..."
}
