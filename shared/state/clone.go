package state

import (
	"maps"
	"slices"
)

// Clone returns a deep copy of s: nothing the copy holds is shared with s. It is what Update
// hands to its function, so a function that fails or loses a race leaves the state as read
// untouched. Clone(nil) is nil.
func (s *State) Clone() *State {
	if s == nil {
		return nil
	}
	c := *s
	c.Window = ptr(s.Window)
	c.Run = ptr(s.Run)
	c.LastExpired = ptr(s.LastExpired)
	c.LastSuccess = ptr(s.LastSuccess)
	c.LastFailure = ptr(s.LastFailure)
	c.NextRetry = ptr(s.NextRetry)
	c.LastDecision = ptr(s.LastDecision)
	c.Restore = ptr(s.Restore)
	c.LastDrill = ptr(s.LastDrill)
	c.LastRefusal = ptr(s.LastRefusal)
	c.Slots = maps.Clone(s.Slots)
	c.Seen = slices.Clone(s.Seen)
	c.CheckAlerted = slices.Clone(s.CheckAlerted)
	if s.PendingAlerts != nil {
		c.PendingAlerts = make([]PendingAlert, len(s.PendingAlerts))
		for i, p := range s.PendingAlerts {
			p.Alert.Related = slices.Clone(p.Alert.Related)
			c.PendingAlerts[i] = p
		}
	}
	return &c
}

// ptr copies the value p points to (nil stays nil).
func ptr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
