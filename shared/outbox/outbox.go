package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Sender publishes one event under a caller-chosen id. It is safe to call twice with the same id.
type Sender interface {
	Send(ctx context.Context, id string, p events.Payload) error
}

// Flush sends every alert pending in s (the state as last read or written for db) and removes the
// sent ones from the stored state. It returns how many were sent and the first send error.
func Flush(ctx context.Context, store state.Store, sender Sender, s *state.State) (int, error) {
	if s == nil || len(s.PendingAlerts) == 0 {
		return 0, nil
	}
	var sent []string
	var sendErr error
	for _, p := range s.PendingAlerts {
		if err := sender.Send(ctx, p.ID, p.Alert); err != nil {
			sendErr = errors.Join(sendErr, fmt.Errorf("send alert %s: %w", p.ID, err))
			continue
		}
		sent = append(sent, p.ID)
	}
	if len(sent) == 0 {
		return 0, sendErr
	}
	_, err := state.Update(ctx, store, s.Database, func() *state.State { return state.New(s.Database, s.Key.CRN) },
		func(st *state.State) error {
			before := len(st.PendingAlerts)
			st.PendingAlerts = slices.DeleteFunc(st.PendingAlerts, func(p state.PendingAlert) bool { return slices.Contains(sent, p.ID) })
			if len(st.PendingAlerts) == 0 {
				st.PendingAlerts = nil
			}
			if len(st.PendingAlerts) == before {
				return state.ErrNoChange
			}
			return nil
		})
	if err != nil && !errors.Is(err, state.ErrNoChange) {
		return len(sent), errors.Join(sendErr, fmt.Errorf("clear sent alerts of %s: %w", s.Database, err))
	}
	return len(sent), sendErr
}
